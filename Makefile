# GSCIP for Linux - build, test, demo, bench.
# Every target that needs the toolchain depends on `deps`, which installs what
# a fresh Debian machine lacks (idempotent: a stamp file remembers success).

SHELL        := /bin/bash
CLANG        ?= clang
BPFTOOL      ?= bpftool
BUILD        := build
BPF_OUT      := $(BUILD)/bpf
BPF_CFLAGS   := -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 \
                -Wall -Wextra -Werror -Wno-unused-parameter \
                -Ibpf/include -Ibpf/lib
APT_PACKAGES := clang llvm libbpf-dev bpftool iproute2 iperf3 tcpdump tshark \
                nftables ethtool libelf-dev pkg-config wireguard-go wireguard-tools \
                strongswan-charon strongswan-swanctl ldap-utils curl
# Test-only packages whose daemons must not be started or enabled by us: prometheus (only its
# promtool: the metrics test) and postgresql (only its binaries: the GMS replica tests run their own
# server as the postgres user, unix socket in a temp dir, no TCP). Debian's postgresql postinst
# creates a cluster (15/main, localhost only): when we install it, the cluster is set to start
# "manual" (start.conf) and its units disabled, so nothing of it runs at boot or after the tests.
# bind9 + bind9-dnsutils: only named, dig and nsupdate (the Mobile PPC DDNS tests start their own named inside a test namespace).
# conntrack: the NAT test flushes the NAT's connection table mid-flow (conntrack -F inside the test namespace).
# slapd: only its binaries (slapd, slapadd, slappasswd); the GSRA directory tests run their own server, ldaps:// on 127.0.0.1,
# config and database in a temp dir; the package's own instance is kept from starting (policy-rc.d) and disabled.
# (ldap-utils is in APT_PACKAGES: the GMS itself runs ldapwhoami/ldapsearch for a directory, docs/gsra.md.)
TEST_ONLY_APT := prometheus postgresql bind9 bind9-dnsutils conntrack slapd iputils-ping vsftpd
BPF_SRCS     := $(wildcard bpf/*.bpf.c)
BPF_OBJS     := $(patsubst bpf/%.bpf.c,$(BPF_OUT)/%.bpf.o,$(BPF_SRCS))
BPF_HDRS     := $(wildcard bpf/include/*.h bpf/lib/*.h)

.PHONY: all deps build bpf ts native test test-unit demo demo-gsra bench clean

all: build

deps: .deps-stamp
.deps-stamp: package.json package-lock.json
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: must run as root (apt-get, bpffs, netns)"; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
	@missing=$$(for p in $(TEST_ONLY_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
	  [ -n "$$policy" ] && rm -f /usr/sbin/policy-rc.d; \
	  for c in /etc/postgresql/*/*/start.conf; do case " $$missing " in *" postgresql "*) [ -f "$$c" ] && echo manual > "$$c";; esac; done; \
	  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
	    for p in $$missing; do systemctl disable --now $$p >/dev/null 2>&1 || true; done; \
	    case " $$missing " in *" postgresql "*) systemctl disable --now 'postgresql@*' >/dev/null 2>&1 || true;; esac; \
	  fi; \
	  exit $$rc; \
	fi
	npm ci --no-audit --no-fund
	touch $@

bpf/include/vmlinux.h:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) bpf/include/vmlinux.h
	@mkdir -p $(BPF_OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

bpf: $(BPF_OBJS)

# The punt reader's optional native addon (native/ring_poll.c: the ring's fd
# watched on Node's event loop, uv_poll). Built with the compiler the BPF build
# already needs and the headers the nodejs package ships (no node-gyp, no npm
# install script). Optional: when it cannot be built the build goes on and the
# agent uses the thread-pool reader (`gscip doctor` and the agent log say which).
NATIVE_OUT   := $(BUILD)/native
NATIVE_CC    ?= $(CLANG)
NODE_INCLUDE ?= $(shell node -e "const p = require('path'), fs = require('fs'); const c = [p.join(p.dirname(process.execPath), '..', 'include', 'node'), p.join(process.config.variables.node_prefix || '/usr', 'include', 'node'), '/usr/include/node']; console.log(p.resolve(c.find((d) => fs.existsSync(p.join(d, 'node_api.h'))) || c[0]))" 2>/dev/null)
native:
	@mkdir -p $(NATIVE_OUT); out=$(NATIVE_OUT)/gscip_ring_poll.node; \
	if [ ! -f "$(NODE_INCLUDE)/node_api.h" ] || [ ! -f "$(NODE_INCLUDE)/uv.h" ]; then \
	  rm -f $$out; echo "make native: no Node headers (node_api.h, uv.h) in '$(NODE_INCLUDE)': addon skipped, the punt reader waits in the thread pool"; \
	elif $(NATIVE_CC) -shared -fPIC -O2 -Wall -Wextra -Werror -I$(NODE_INCLUDE) -o $$out.tmp native/ring_poll.c; then \
	  mv $$out.tmp $$out; \
	else \
	  rm -f $$out $$out.tmp; echo "make native: the addon did not build: the punt reader waits in the thread pool"; \
	fi

# dist/ is rebuilt from scratch: a deleted test must not live on as stale JS.
ts:
	rm -rf dist
	npx tsc -p tsconfig.json

# Ends by checking this host's kernel for what the fast path needs (BTF, bpffs,
# clsact, every helper and kfunc the object calls, the verifier accepting it):
# each missing one is printed with its fix before anything runs.
build: deps bpf ts native
	@node dist/controlplane/cli/main.js doctor --host-only || { echo "make build: this host cannot run the GSCIP fast path (see the failed checks above)"; exit 1; }

# Unit tests need no root; the rest (BPF_PROG_TEST_RUN, namespaces) do.
test-unit: build
	node dist/test/run-tests.js $$(find dist/test/unit -name '*.test.js' | sort)

# One file at a time, each with a wall clock and per-test time limit, leftovers
# checked after each; ends with the total time and "N passed, N failed".
test: build
	node dist/test/run-tests.js

# The main job: the seed 002 Fig. 6 network live (GMS, enrolled agents, DPRP, PCCOM),
# then Mobile PPC live (a host moves mid-transfer), then NAT-f (a global host reaches a
# private one by name through a GNAT); deploy/demo.sh (fast path with a
# trivial handler) still runs on its own.
demo: build
	node dist/deploy/demo-fig6.js
	node dist/deploy/demo-move.js
	node dist/deploy/demo-natf.js

demo-gsra: build
	node dist/deploy/demo-gsra.js

bench: build
	bash bench/run-all.sh

clean:
	rm -rf $(BUILD) dist bpf/include/vmlinux.h .deps-stamp
