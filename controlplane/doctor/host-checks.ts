/**
 * Host and kernel checks: what the fast path needs from the machine before
 * any instance exists. Kernel release, BTF, bpffs (served, or mountable by
 * the agent: this module never mounts), clsact (tried in a throwaway network
 * namespace, never on a real interface), every helper and kfunc the compiled
 * object calls (derived from its code by object-calls.ts), the object passing
 * the verifier (loaded without pins, closed again), and the clock discipline.
 *
 * prerequisiteChecks() is the cheap subset the agent runs before it loads.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { arch, release } from 'node:os';
import { bpffsMountRefusal, bpffsState, underIpNetnsExec } from '../bpf/bpffs.js';
import { btfHasFuncs } from '../bpf/btf-funcs.js';
import { BpfError } from '../bpf/errors.js';
import { helperName } from '../bpf/helper-names.js';
import { BPF_PROG_TYPE_SCHED_CLS, probeHelper, routeLibbpfMessages } from '../bpf/libbpf.js';
import { clockState, STA_UNSYNC, TIME_ERROR, TIME_STATE } from '../bpf/libc.js';
import { objectCalls, type ObjectCalls } from '../bpf/object-calls.js';
import { GscipError } from '../errors/catalogue.js';
import { BpfObject } from '../bpf/object.js';
import { MAP_NAMES } from '../maps/gscip-maps.js';
import { ringWaitChoice } from '../bpf/ring-poll-addon.js';
import { failed, guard, ok, skip, warn, type Check } from './checks.js';
import { formatFailures } from './report.js';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

/**
 * Above this maxerror the clock is no longer trusted to stay inside half the
 * DPRP replay window (DEFAULT_REPLAY.windowMs = 30 s): two GEs each within
 * 15 s of true time are within 30 s of each other.
 */
export const MAX_CLOCK_ERROR_US = 15_000_000;

export interface HostCheckOptions {
  /** The compiled fast path (build/bpf/gscip_tc.bpf.o). */
  bpfObject: string;
  /** Where the instance pins live (bpffs must serve it, or be mountable there). */
  pinRoot: string;
}

const isRoot = (): boolean => process.geteuid?.() === 0;

let vmlinux: Buffer | null = null;
/** /sys/kernel/btf/vmlinux, read once per process (5-6 MiB, ~10 ms). */
function vmlinuxBtf(): Buffer {
  vmlinux ??= readFileSync(VMLINUX_BTF);
  return vmlinux;
}

export function privilegesCheck(): Check {
  const t = 'privileges';
  return isRoot() ? ok('host.privileges', t, 'running as root (probes load BPF programs, clsact needs CAP_NET_ADMIN)')
    : failed('host.privileges', t, 'not root: the kernel probes below need CAP_BPF and CAP_NET_ADMIN', 'run it as root: sudo gscip doctor');
}

export function kernelCheck(): Check {
  const t = 'kernel';
  if (process.platform !== 'linux') return failed('host.kernel', t, `${process.platform} is not Linux`, 'GSCIP runs on Linux only');
  return ok('host.kernel', t, `Linux ${release()} ${arch()}`);
}

export function btfCheck(): Check {
  const t = 'kernel BTF';
  const fix = 'boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution kernel since 2021 is)';
  if (!existsSync(VMLINUX_BTF)) return failed('host.btf', t, `${VMLINUX_BTF} is missing: the kernel has no BTF, so the object's CO-RE relocations and kfunc calls cannot be resolved`, fix);
  const b = vmlinuxBtf();
  if (b.length < 24 || b.readUInt16LE(0) !== 0xeb9f) return failed('host.btf', t, `${VMLINUX_BTF} is not BTF (bad magic)`, fix);
  return ok('host.btf', t, `${VMLINUX_BTF} (${(b.length / (1 << 20)).toFixed(1)} MiB)`);
}

export function bpffsCheck(pinRoot: string): Check {
  const t = 'bpffs';
  const st = bpffsState(pinRoot);
  if (st.mountPoint) return ok('host.bpffs', t, `${pinRoot} is served by the bpffs mounted on ${st.mountPoint}`);
  const refusal = bpffsMountRefusal(st.target);
  if (!refusal) {
    const netns = underIpNetnsExec();
    if (netns) {
      return warn('host.bpffs', t, `this is \`ip netns exec ${netns}\`: its private mount namespace hides the host's bpffs; an agent started here would pin on a private bpffs that dies with it`,
        'run gscip under `nsenter --net=/run/netns/NAME`, not `ip netns exec`');
    }
    return ok('host.bpffs', t, `no bpffs serves ${pinRoot} yet; the agent mounts one on ${st.target} when it starts`);
  }
  const fix = refusal.fault === 'not_root' ? `run the agent as root, or mount it once: mount -t bpf bpf ${st.target}`
    : refusal.fault === 'no_kernel_support' ? 'boot a kernel with CONFIG_BPF_SYSCALL=y' : `mount -t bpf bpf ${st.target}`;
  return failed('host.bpffs', t, refusal.message, fix);
}

/** clsact in a throwaway network namespace (`unshare -n`): never touches a real interface. */
export function clsactCheck(): Check {
  const t = 'clsact qdisc';
  if (!isRoot()) return skip('host.clsact', t, 'needs root (unshare -n)');
  const r = spawnSync('unshare', ['-n', 'tc', 'qdisc', 'add', 'dev', 'lo', 'clsact'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return failed('host.clsact', t, `could not run unshare/tc: ${r.error.message}`, 'install util-linux and iproute2');
  if (r.status !== 0) {
    return failed('host.clsact', t, `tc qdisc add dev lo clsact failed in a new network namespace: ${(r.stderr || r.stdout).trim() || `exit ${r.status}`}`,
      'the kernel needs CONFIG_NET_SCH_INGRESS (clsact) and CONFIG_NET_CLS_BPF: modprobe sch_ingress cls_bpf');
  }
  return ok('host.clsact', t, 'a clsact qdisc can be created (tried on lo of a throwaway network namespace)');
}

/** The helpers and kfuncs the object calls, read from its code. */
export function readObjectCalls(bpfObject: string): ObjectCalls {
  if (!existsSync(bpfObject)) throw new GscipError('GSCIP_E_BPF_OBJECT_MISSING', `BPF object ${bpfObject} not found (make bpf)`);
  return objectCalls(readFileSync(bpfObject));
}

/** One check per missing helper (a single ok row when all are offered). */
export function helperChecks(calls: ObjectCalls): Check[] {
  const t = 'BPF helpers';
  if (!isRoot()) return [skip('host.helpers', t, 'probing needs root (it loads a probe program per helper)')];
  const missing: Check[] = [];
  for (const h of calls.helpers) {
    if (probeHelper(BPF_PROG_TYPE_SCHED_CLS, h.id)) continue;
    const name = helperName(h.id);
    missing.push(failed(`host.helper.${name}`, `helper ${name}`,
      `the programs call ${name} (id ${h.id}) ${h.calls}x (in ${h.sections.join(', ')}), but this kernel does not offer it to TC (sched_cls) programs`,
      `boot a kernel that has ${name} for TC programs (bpf-helpers(7) names the version that added it), or rebuild the object without it`));
  }
  if (missing.length) return missing;
  return [ok('host.helpers', t, `all ${calls.helpers.length} helpers the programs call are offered to TC programs: ${calls.helpers.map((h) => helperName(h.id).replace(/^bpf_/, '')).join(', ')}`)];
}

/** kfuncs by name in the kernel's BTF (weak ones are optional: the programs test them with bpf_ksym_exists). */
export function kfuncChecks(calls: ObjectCalls): Check[] {
  const t = 'kfuncs';
  if (!calls.kfuncs.length) return [ok('host.kfuncs', t, 'the programs call no kfuncs')];
  if (!existsSync(VMLINUX_BTF)) return [skip('host.kfuncs', t, `no ${VMLINUX_BTF} to look them up in (see kernel BTF)`)];
  const have = btfHasFuncs(vmlinuxBtf(), calls.kfuncs.map((k) => k.name));
  const out: Check[] = [];
  for (const k of calls.kfuncs) {
    if (have.has(k.name)) continue;
    if (k.weak) { out.push(warn(`host.kfunc.${k.name}`, `kfunc ${k.name}`, `optional kfunc ${k.name} (declared __weak) is not in this kernel: the programs run without it`)); continue; }
    out.push(failed(`host.kfunc.${k.name}`, `kfunc ${k.name}`,
      `the programs call kfunc ${k.name} ${k.calls}x (in ${k.sections.join(', ')}), but ${VMLINUX_BTF} has no function of that name`,
      `boot a kernel that has ${k.name}, or rebuild the object without it`));
  }
  const found = calls.kfuncs.filter((k) => have.has(k.name)).map((k) => k.name);
  if (!out.some((c) => c.status === 'fail')) out.unshift(ok('host.kfuncs', t, `the kernel's BTF has ${found.length === calls.kfuncs.length ? 'every' : `${found.length} of the`} kfunc the programs call: ${found.join(', ') || '(none)'}`));
  return out;
}

let libbpfCapture: string[] | null = null;
let routed = false;

/** The object passes the verifier: loaded without pins (PIT/XLAT shrunk: sizes do not change what it checks), then closed. */
export function objectLoadCheck(bpfObject: string): Check {
  const t = 'object loads';
  if (!isRoot()) return skip('host.load', t, 'loading needs root');
  if (!existsSync(bpfObject)) return failed('host.load', t, `BPF object ${bpfObject} not found`, 'make bpf');
  if (!routed) { routed = routeLibbpfMessages((_l, m) => { libbpfCapture?.push(m); }); }
  libbpfCapture = [];
  const t0 = process.hrtime.bigint();
  try {
    const o = BpfObject.load(bpfObject, { maxEntries: { [MAP_NAMES.pit]: 1024, [MAP_NAMES.xlat]: 1024 } });
    o.close();
  } catch (e) {
    const log = libbpfCapture.join('\n').split('\n').filter((l) => l.trim());
    const tail = log.slice(-6).join(' | ');
    const verifier = e instanceof BpfError && (e.code === 'EACCES' || e.code === 'EINVAL');
    return failed('host.load', t, `${(e as Error).message}${tail ? `; ${tail}` : ''}`,
      verifier ? 'the verifier of this kernel rejects the object: run gscip doctor on a supported kernel, or rebuild (make bpf) with the matching vmlinux.h'
        : 'see the libbpf message; rebuild with make bpf');
  } finally { libbpfCapture = null; }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return ok('host.load', t, `${bpfObject} passes the verifier (${ms.toFixed(0)} ms, loaded without pins and closed again)`);
}

/**
 * The kernel clock's discipline (adjtimex). A warning, never a failure: this
 * host alone cannot know how far it is from its peers, and a VM whose host
 * keeps time can be fine without NTP. The GMS check compares against the GMS.
 */
export function timeSyncCheck(): Check {
  const t = 'time sync';
  const c = clockState();
  const err = `maxerror ${(c.maxErrorUs / 1e6).toFixed(c.maxErrorUs < 1e6 ? 3 : 1)} s`;
  const fix = 'run an NTP client (chronyd or systemd-timesyncd; timedatectl set-ntp true): the DPRP replay window (±30 s) and key expiry use the wall clock';
  if (c.state === TIME_ERROR || c.status & STA_UNSYNC) {
    return warn('host.time', t, `the kernel clock is not synchronised (adjtimex ${TIME_STATE[c.state] ?? c.state}, STA_UNSYNC${c.status & STA_UNSYNC ? '' : ' clear'}, ${err})`, fix);
  }
  if (c.maxErrorUs > MAX_CLOCK_ERROR_US) return warn('host.time', t, `synchronised but ${err} exceeds ${MAX_CLOCK_ERROR_US / 1e6} s (half the DPRP replay window)`, fix);
  return ok('host.time', t, `synchronised (adjtimex ${TIME_STATE[c.state] ?? c.state}, ${err})`);
}

/** The cheap checks the agent runs before it loads: BTF, bpffs servable, every helper and kfunc offered. */
export function prerequisiteChecks(o: HostCheckOptions): Check[] {
  const out: Check[] = [btfCheck(), bpffsCheck(o.pinRoot)];
  const calls = readObjectCalls(o.bpfObject);
  out.push(...helperChecks(calls), ...kfuncChecks(calls));
  return out;
}

export class PrerequisiteError extends GscipError {
  constructor(readonly failures: Check[], message: string) { super('GSCIP_E_HOST_PREREQUISITE', message); }
}

/**
 * The agent's start-up gate: throws PrerequisiteError listing every missing
 * feature with its fix. Returns how long the checks took (ms; ~10-20 ms).
 */
export function assertPrerequisites(o: HostCheckOptions): number {
  const t0 = process.hrtime.bigint();
  const bad = prerequisiteChecks(o).filter((c) => c.status === 'fail');
  if (bad.length) {
    throw new PrerequisiteError(bad, `this host lacks what the fast path ${o.bpfObject} needs (run gscip doctor --host-only for every check):\n${formatFailures(bad)}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Every host check, in the order an operator reads them. */
/** Which wait the agent's punt reader will use (controlplane/bpf/ring-poll-addon.ts): both work, one is faster. */
function puntWaitCheck(): Check {
  const c = ringWaitChoice();
  if (c.wait === 'event-loop') return ok('host.punt-wait', 'punt wait', `on the event loop (${c.detail})`);
  return warn('host.punt-wait', 'punt wait', `in the libuv thread pool, one more hop per punt: ${c.detail}`,
    'make native (needs clang and the Node headers, node_api.h and uv.h, that the nodejs package installs)');
}

export async function hostChecks(o: HostCheckOptions): Promise<Check[]> {
  const out: Check[] = [privilegesCheck(), kernelCheck()];
  out.push(...await guard('host.btf', 'kernel BTF', btfCheck));
  out.push(...await guard('host.bpffs', 'bpffs', () => bpffsCheck(o.pinRoot)));
  out.push(...await guard('host.clsact', 'clsact qdisc', clsactCheck));
  let calls: ObjectCalls | null = null;
  out.push(...await guard('host.object', 'object calls', () => { calls = readObjectCalls(o.bpfObject); return []; }));
  if (calls) {
    const c: ObjectCalls = calls;
    out.push(...await guard('host.helpers', 'BPF helpers', () => helperChecks(c)));
    out.push(...await guard('host.kfuncs', 'kfuncs', () => kfuncChecks(c)));
  }
  out.push(...await guard('host.load', 'object loads', () => objectLoadCheck(o.bpfObject)));
  out.push(...await guard('host.time', 'time sync', timeSyncCheck));
  out.push(...await guard('host.punt-wait', 'punt wait', puntWaitCheck));
  return out;
}
