#!/usr/bin/env bash
# GSCIP demo on this machine (root): two network namespaces joined by a veth,
# the agent protecting the client's interface with punt-on-miss and the
# built-in install-pass handler. Shows: the first packet of a new flow is
# punted, an entry installed and the packet released (no retransmission);
# traffic on the fast path; the PIT, the counters and /metrics; the fast path
# carrying on after the agent stops. Everything it creates carries a per-run
# prefix and is removed on exit, even on failure or Ctrl-C.
#
#   client 192.0.2.1 [eth0: gscip agent] ==== veth ==== [eth0] 192.0.2.2 server
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (bpf, netns)"; exit 1; }
[ -f build/bpf/gscip_tc.bpf.o ] && [ -f dist/controlplane/cli/main.js ] || { echo "demo: build first (make build)"; exit 1; }

P="gsdemo$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
CLIENT="$P-client"; SERVER="$P-server"
PINS="/sys/fs/bpf/gscip-demo-$P"; RUN="/run/gscip-demo-$P"
INST=(--instance demo --pin-root "$PINS" --run-dir "$RUN")
GSCIP=(node dist/controlplane/cli/main.js)
AGENT_PID=""; LOG="$(mktemp /tmp/gscip-demo-agent.XXXXXX)"

cleanup() {
  set +e
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  for ns in "$CLIENT" "$SERVER"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$PINS" "$RUN" "$LOG" "$LOG.iperf"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_client() { nsenter --net="/run/netns/$CLIENT" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "topology: $CLIENT (192.0.2.1) <-> $SERVER (192.0.2.2)"
ip netns add "$CLIENT"; ip netns add "$SERVER"
ip link add "${P:0:8}a" type veth peer name "${P:0:8}b"
ip link set "${P:0:8}a" netns "$CLIENT"; ip link set "${P:0:8}b" netns "$SERVER"
ip -n "$CLIENT" link set "${P:0:8}a" name eth0; ip -n "$SERVER" link set "${P:0:8}b" name eth0
for ns in "$CLIENT" "$SERVER"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$CLIENT" addr add 192.0.2.1/24 dev eth0
ip -n "$SERVER" addr add 192.0.2.2/24 dev eth0

step "agent: protect the client's eth0, punt PIT misses, handler install-pass"
# nsenter (not ip netns exec, which hides /sys/fs/bpf) execs node: $! is the agent itself.
nsenter --net="/run/netns/$CLIENT" "${GSCIP[@]}" agent run "${INST[@]}" --iface eth0 --miss punt --handler install-pass --metrics 127.0.0.1:9464 >"$LOG" 2>&1 &
AGENT_PID=$!
for _ in $(seq 1 100); do grep -q 'gscip agent: instance' "$LOG" && break; kill -0 "$AGENT_PID" 2>/dev/null || { cat "$LOG"; exit 1; }; sleep 0.1; done
grep 'gscip agent: instance' "$LOG" || { cat "$LOG"; exit 1; }

step "server: iperf3 and a TCP echo on 192.0.2.2"
ip netns exec "$SERVER" iperf3 -s -B 192.0.2.2 -p 5201 -D
ip netns exec "$SERVER" node -e "require('net').createServer(s=>s.on('data',d=>s.end(d))).listen(7000,'192.0.2.2')" &
disown  # killed with the namespace by cleanup; no job-control noise
for _ in $(seq 1 50); do ip netns exec "$SERVER" ss -ltn | grep -q '192.0.2.2:7000' && break; sleep 0.1; done

step "first packet of a new flow: punted, entry installed, released"
ip netns exec "$CLIENT" nstat -n
ip netns exec "$CLIENT" node -e "
const t0=process.hrtime.bigint(); const s=require('net').connect(7000,'192.0.2.2');
s.on('connect',()=>{console.log('connect took '+(Number(process.hrtime.bigint()-t0)/1e6).toFixed(1)+' ms'); s.write('hello through GSCIP')});
s.on('data',d=>{console.log('echo: '+d); s.destroy()}); setTimeout(()=>{console.log('timeout');process.exit(1)},5000).unref();"
echo "SYN retransmissions: $(ip netns exec "$CLIENT" nstat -az TcpExtTCPSynRetrans | awk '/TcpExtTCPSynRetrans/{print $2}')"

step "traffic on the fast path: iperf3, 3 s"
ip netns exec "$CLIENT" iperf3 -c 192.0.2.2 -p 5201 -t 3 -f g | grep -E 'sender|receiver'

step "gscip maps dump pit"
in_client "${GSCIP[@]}" maps dump pit "${INST[@]}"

step "gscip maps dump stats"
in_client "${GSCIP[@]}" maps dump stats "${INST[@]}"

step "gscip agent status"
in_client "${GSCIP[@]}" agent status "${INST[@]}"

step "/metrics (http://127.0.0.1:9464 in the client namespace), gscip_ series"
in_client node -e "fetch('http://127.0.0.1:9464/metrics').then(r=>r.text()).then(t=>console.log(t.split('\n').filter(l=>/^gscip_(datapath_packets_total|map_entries|agent_)/.test(l)).join('\n')))"

step "stop the agent mid-transfer: the fast path stays attached, the established flow keeps going"
ip netns exec "$CLIENT" iperf3 -c 192.0.2.2 -p 5201 -t 4 -i 1 -f g >"$LOG.iperf" 2>&1 &
IPERF=$!
sleep 1.5
kill "$AGENT_PID"; wait "$AGENT_PID" || true; AGENT_PID=""
echo "agent stopped at t=1.5 s"
in_client "${GSCIP[@]}" agent status "${INST[@]}" | head -4
wait "$IPERF"
grep -E '^\[ *[0-9]+\] +[0-9.]+-[0-9.]+ +sec' "$LOG.iperf"
echo "(new flows would now be punted with nobody to release them: fail closed until an agent runs again)"

step "detach and unpin"
in_client "${GSCIP[@]}" agent detach --unpin "${INST[@]}"
echo; echo "demo done"
