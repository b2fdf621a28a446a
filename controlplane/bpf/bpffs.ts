/**
 * bpffs: the filesystem pins live on. A fresh host often has none mounted
 * (no systemd mount unit runs there), so every command that creates pins
 * calls ensureBpffs() first and mounts it itself, the way Cilium's agent
 * mounts its BPF root, and logs that it did. It refuses, naming the fix,
 * only when mounting cannot work: not root, or a kernel without
 * CONFIG_BPF_SYSCALL. In a private mount namespace (`ip netns exec` hides
 * the host's bpffs) it mounts one private to that namespace and warns that
 * its pins die with it. Commands that only read pins never mount: they say
 * why there are none (bpffsAbsence()).
 */
import { existsSync, mkdirSync, readFileSync, readlinkSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { GscipError, type GscipCode } from '../errors/catalogue.js';
import { mount } from './libc.js';

export const BPF_FS_MAGIC = 0xcafe4a11;
/** Where bpffs lives by convention; a pin root below it is served by a mount here. */
export const BPFFS_DEFAULT_MOUNT = '/sys/fs/bpf';

export type BpffsFault = 'not_root' | 'no_kernel_support' | 'mount_failed';

const FAULT_CODE: Record<BpffsFault, GscipCode> = {
  not_root: 'GSCIP_E_BPFFS_NOT_ROOT', no_kernel_support: 'GSCIP_E_BPFFS_NO_KERNEL', mount_failed: 'GSCIP_E_BPFFS_MOUNT_FAILED',
};

export class BpffsError extends GscipError {
  constructor(readonly fault: BpffsFault, message: string, options?: { cause?: unknown }) { super(FAULT_CODE[fault], message, options); }
}

export interface BpffsLog { info(o: object, msg: string): void; warn(o: object, msg: string): void }

export interface BpffsState {
  /** The directory asked about. */
  dir: string;
  /** Mount point of the bpffs serving dir, or null if none does. */
  mountPoint: string | null;
  /** Where ensureBpffs() would mount one (or did). */
  target: string;
}

interface MountEntry { mountPoint: string; fstype: string; source: string }

/** /proc/<pid>/mountinfo as (mount point, fstype, source), in mount order. */
export function mountTable(pid: number | 'self' = 'self'): MountEntry[] {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8'); } catch { return []; }
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f.length < sep + 2) continue;
    out.push({ mountPoint: unescape(f[4]), fstype: f[sep + 1], source: unescape(f[sep + 2] ?? '') });
  }
  return out;
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function nearestExisting(dir: string): string {
  let d = resolve(dir);
  for (let i = 0; i < 64 && !existsSync(d); i++) d = dirname(d);
  return d;
}

function under(dir: string, root: string): boolean {
  return dir === root || dir.startsWith(`${root}/`);
}

/** Where a bpffs for `dir` belongs: /sys/fs/bpf for pins below it, else dir itself. */
export function bpffsTarget(dir: string): string {
  const d = resolve(dir);
  return under(d, BPFFS_DEFAULT_MOUNT) ? BPFFS_DEFAULT_MOUNT : d;
}

/** Which bpffs (if any) serves `dir` in this process's mount namespace. Never changes anything. */
export function bpffsState(dir: string): BpffsState {
  const d = nearestExisting(dir);
  let onBpf = false;
  try { onBpf = statfsSync(d).type === BPF_FS_MAGIC; } catch { /* unreadable: treat as absent */ }
  let mountPoint: string | null = null;
  if (onBpf) {
    // The longest bpf mount point that is a prefix of d (the innermost mount serving it).
    for (const m of mountTable()) if (m.fstype === 'bpf' && under(d, m.mountPoint) && m.mountPoint.length >= (mountPoint?.length ?? 0)) mountPoint = m.mountPoint;
    mountPoint ??= d;
  }
  return { dir: resolve(dir), mountPoint, target: bpffsTarget(dir) };
}

/** Does this kernel offer the bpf filesystem (CONFIG_BPF_SYSCALL)? */
export function kernelHasBpffs(): boolean {
  try { return /\tbpf$/m.test(readFileSync('/proc/filesystems', 'utf8')); } catch { return false; }
}

/**
 * Are we in another mount namespace than pid 1 (e.g. `unshare -m`)? null when
 * that cannot be told (pid 1's namespace links are unreadable to us, as in
 * some containers).
 */
export function inPrivateMountNamespace(): boolean | null {
  try { return readlinkSync('/proc/self/ns/mnt') !== readlinkSync('/proc/1/ns/mnt'); } catch { return null; }
}

/**
 * Are we under `ip netns exec NAME`? It runs its command in a new mount
 * namespace with a fresh sysfs on /sys (which hides the host's bpffs), and
 * mounts that sysfs with the namespace's name as its source.
 */
export function underIpNetnsExec(): string | null {
  const sys = mountTable().filter((m) => m.mountPoint === '/sys').pop();
  if (!sys || sys.fstype !== 'sysfs' || sys.source === 'sysfs' || !sys.source) return null;
  return existsSync(`/run/netns/${sys.source}`) ? sys.source : null;
}

const HIDDEN_BY_NETNS_EXEC = 'this process runs in a private mount namespace that hides the host\'s bpffs ' +
  '(`ip netns exec` remounts /sys); run it with `nsenter --net=/run/netns/NAME` instead, which keeps the host\'s mounts';

/** Why ensureBpffs() cannot mount here, or null if it can. */
export function bpffsMountRefusal(target: string): BpffsError | null {
  const how = `mount -t bpf bpf ${target}`;
  if (!kernelHasBpffs()) {
    return new BpffsError('no_kernel_support', `this kernel has no bpf filesystem (not in /proc/filesystems): it needs CONFIG_BPF_SYSCALL=y; GSCIP cannot run on it`);
  }
  if (process.geteuid?.() !== 0) {
    return new BpffsError('not_root', `${target} is not on bpffs and only root can mount it: run as root, or have root run \`${how}\` once`);
  }
  return null;
}

/**
 * For commands that only read pins: why nothing can be pinned at `dir`
 * (no bpffs serves it), or null if one does. Readers never mount: an empty
 * new bpffs would give the same "not found" and change the host for nothing.
 */
export function bpffsAbsence(dir: string): string | null {
  const st = bpffsState(dir);
  if (st.mountPoint) return null;
  if (underIpNetnsExec()) return `${st.target} is not on bpffs here: ${HIDDEN_BY_NETNS_EXEC}`;
  return `${st.target} is not on bpffs (not mounted), so no agent has pinned anything there since boot; \`gscip agent run\` mounts it`;
}

/**
 * Make sure `dir` is on bpffs, mounting one at bpffsTarget(dir) if none
 * serves it. Returns the state after the call and whether it mounted.
 */
export function ensureBpffs(dir: string, log?: BpffsLog): BpffsState & { mountedNow: boolean } {
  const st = bpffsState(dir);
  if (st.mountPoint) return { ...st, mountedNow: false };
  const refusal = bpffsMountRefusal(st.target);
  if (refusal) throw refusal;
  try {
    mkdirP(st.target, 0o700);
    mount('bpf', st.target, 'bpf', 0, 'mode=0700');
  } catch (e) {
    throw new BpffsError('mount_failed', `${st.target} is not on bpffs and mounting it failed: ${(e as Error).message}; ` +
      `mount it by hand (\`mount -t bpf bpf ${st.target}\`) and retry`, { cause: e });
  }
  const after = bpffsState(dir);
  if (!after.mountPoint) throw new BpffsError('mount_failed', `mounted bpffs on ${st.target} but ${dir} is still not on it`);
  const netnsExec = underIpNetnsExec();
  const privateNs = netnsExec !== null || inPrivateMountNamespace() === true;
  log?.info({ mountPoint: after.mountPoint, privateMountNamespace: privateNs }, `mounted bpffs on ${after.mountPoint} (it was not mounted)`);
  if (privateNs) {
    log?.warn({ mountPoint: after.mountPoint, ipNetnsExec: netnsExec }, 'this bpffs is private to this mount namespace: ' +
      'its pins are invisible outside it and are lost when the namespace ends (a restarted agent cannot adopt them)' +
      (netnsExec ? `; ${HIDDEN_BY_NETNS_EXEC}` : ''));
  }
  return { ...after, mountedNow: true };
}

/**
 * mkdir -p, one component at a time. Node 20's recursive mkdirSync spins
 * forever when a parent exists but refuses children with ENOENT, as sysfs's
 * /sys/fs/bpf does with nothing mounted on it; this throws instead.
 */
export function mkdirP(dir: string, mode = 0o700): void {
  const parts = resolve(dir).split('/').filter(Boolean);
  let d = '';
  for (const p of parts) {
    d += `/${p}`;
    if (existsSync(d)) continue;
    mkdirSync(d, { mode });
  }
}

/** mkdir -p for a directory on bpffs, mounting bpffs first if none serves it. */
export function mkdirOnBpffs(dir: string, mode = 0o700, log?: BpffsLog): void {
  ensureBpffs(dir, log);
  mkdirP(dir, mode);
}
