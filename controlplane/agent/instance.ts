/**
 * Where an instance lives on the host and who owns what:
 *  - pins:   <pinRoot>/<instance>/<map name>        (bpffs; survives the agent)
 *  - lock:   <runDir>/<instance>.lock                (flock held by the running agent; holds its pid)
 *  - state:  <runDir>/<instance>.json                (interfaces attached, for stop/detach/status)
 *  - iface:  <runDir>/iface-<netns inode>-<ifindex>.lock (flock held by the running agent)
 *            <runDir>/iface-<netns inode>-<ifindex>.owner (instance whose programs are attached; kept while attached)
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, ftruncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { tryLockExclusive } from '../bpf/libc.js';
import { GscipError } from '../errors/catalogue.js';

/** Our TC filter identity on every interface (same handle/prio on restart => replace, not stack). */
export const TC_FILTER = { handle: 0x65c1, priority: 1 } as const;

export class AgentConflictError extends GscipError {
  constructor(message: string) { super('GSCIP_E_AGENT_CONFLICT', message); }
}

export interface InstancePaths {
  pinDir: string;
  lockFile: string;
  stateFile: string;
  runDir: string;
}

export function instancePaths(o: { instance: string; pinRoot: string; runDir: string }): InstancePaths {
  return { pinDir: `${o.pinRoot}/${o.instance}`, lockFile: `${o.runDir}/${o.instance}.lock`, stateFile: `${o.runDir}/${o.instance}.json`, runDir: o.runDir };
}

/** Inode of the caller's network namespace: ifindexes are only unique within one. */
export function netnsInode(): number {
  return statSync('/proc/self/ns/net').ino;
}

export interface InterfaceState {
  name: string; ifindex: number; createdHook: boolean;
  /** IPv6 policy the agent wrote at start (absent in a previous release's state file); the map holds the live one. */
  ipv6?: string;
}

export interface InstanceState {
  instance: string;
  pid: number;
  startedAt: string;
  netnsIno: number;
  pinDir: string;
  metrics: string | null;
  interfaces: InterfaceState[];
  /** This GE's mode as the agent knew it at start (null: not known; absent: a previous release's state file). */
  geMode?: 'OP' | 'CL' | null;
}

export function readState(p: InstancePaths): InstanceState | null {
  try { return JSON.parse(readFileSync(p.stateFile, 'utf8')) as InstanceState; } catch { return null; }
}

export function writeState(p: InstancePaths, s: InstanceState): void {
  mkdirSync(p.runDir, { recursive: true, mode: 0o755 });
  const tmp = `${p.stateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, p.stateFile);
}

export function removeState(p: InstancePaths): void {
  try { unlinkSync(p.stateFile); } catch { /* absent */ }
}

/** An flock held for the life of the process (or until release()). */
export class HeldLock {
  private constructor(readonly path: string, private fd: number | null) {}

  /** Take the lock and write `content` into the file, or return the content of the holder's file. */
  static tryTake(path: string, content: string): HeldLock | { heldBy: string } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const fd = openSync(path, 'a+', 0o644);
    if (!tryLockExclusive(fd)) {
      closeSync(fd);
      let heldBy = '';
      try { heldBy = readFileSync(path, 'utf8').trim(); } catch { /* raced */ }
      return { heldBy };
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${content}\n`, 0);
    return new HeldLock(path, fd);
  }

  release(): void {
    if (this.fd === null) return;
    try { ftruncateSync(this.fd, 0); } catch { /* best effort */ }
    closeSync(this.fd); // closing drops the flock
    this.fd = null;
  }
}

/** Is an agent holding this lock file right now? (Takes and drops the lock to find out.) */
export function lockHeld(path: string): { held: boolean; by: string } {
  if (!existsSync(path)) return { held: false, by: '' };
  const r = HeldLock.tryTake(path, '');
  if (r instanceof HeldLock) { r.release(); return { held: false, by: '' }; }
  return { held: true, by: r.heldBy };
}

export function ifaceLockPath(runDir: string, netnsIno: number, ifindex: number): string {
  return `${runDir}/iface-${netnsIno}-${ifindex}.lock`;
}
export function ifaceOwnerPath(runDir: string, netnsIno: number, ifindex: number): string {
  return `${runDir}/iface-${netnsIno}-${ifindex}.owner`;
}

export function readIfaceOwner(runDir: string, netnsIno: number, ifindex: number): string | null {
  try { return readFileSync(ifaceOwnerPath(runDir, netnsIno, ifindex), 'utf8').trim() || null; } catch { return null; }
}
export function writeIfaceOwner(runDir: string, netnsIno: number, ifindex: number, instance: string): void {
  writeFileSync(ifaceOwnerPath(runDir, netnsIno, ifindex), `${instance}\n`, { mode: 0o644 });
}
export function removeIfaceOwner(runDir: string, netnsIno: number, ifindex: number): void {
  try { unlinkSync(ifaceOwnerPath(runDir, netnsIno, ifindex)); } catch { /* absent */ }
}
