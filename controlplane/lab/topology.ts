/**
 * Scratch network-namespace topologies: the scenario tests, the benches, the
 * demo and `gscip selftest` build their networks with this.
 *
 * Rules it enforces (the project's test network rule):
 *  - every namespace carries a per-run prefix, so parallel runs never collide;
 *  - everything created (namespaces, root-side veths, child processes) is
 *    removed by cleanup(), which also runs on process exit; a kill, or a
 *    signal while a synchronous loop runs, is covered by the ScratchGuard's
 *    watcher, which removes whatever the owner could not;
 *  - only documentation/benchmark/shared address space is accepted by addr().
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { ScratchGuard } from './scratch-guard.js';
import { ensureBpffs } from '../bpf/bpffs.js';

const ALLOWED_V4 = [
  ['192.0.2.0', 24],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['100.64.0.0', 10],
  ['198.18.0.0', 15],
] as const;

function v4ToInt(a: string): number {
  const p = a.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`bad IPv4 address ${a}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** Throws unless the address lies in a range tests may use. */
export function assertTestAddress(addr: string): void {
  const ip = addr.split('/')[0];
  const n = v4ToInt(ip);
  for (const [base, len] of ALLOWED_V4) {
    const mask = (~0 << (32 - len)) >>> 0;
    if ((n & mask) === (v4ToInt(base) & mask)) return;
  }
  throw new Error(`address ${addr} is outside the test ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 100.64/10, 198.18/15)`);
}

export interface ExecResult { stdout: string; stderr: string; code: number }

/** Run a command in the root namespace; throws with stderr on failure unless allowFail. */
export function sh(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): ExecResult {
  try {
    const stdout = execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      input: opts.input,
      timeout: opts.timeoutMs ?? 30_000,
    });
    return { stdout, stderr: '', code: 0 };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string; message: string };
    if (opts.allowFail) return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: err.status ?? -1 };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

const live = new Set<Topology>();
let hooksInstalled = false;
// No SIGINT/SIGTERM handlers on purpose: a JS handler cannot run while a
// synchronous loop holds the event loop, and it would keep the signal from
// ending the process. The default action ends it; the guard's watcher cleans up.
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => { for (const t of [...live]) t.cleanupSync(); });
}

export class Topology {
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly paths: string[] = [];
  private vethSeq = 0;

  constructor(tag = 't') {
    // Short: namespace names appear in error messages; interface names are <= 15 chars.
    this.prefix = `gs${tag.slice(0, 6)}${randomBytes(3).toString('hex')}`;
    live.add(this);
    installExitHooks();
  }

  /** Full namespace name for a short host name. */
  ns(host: string): string { return `${this.prefix}-${host}`; }

  addHost(host: string): string {
    const name = this.ns(host);
    ScratchGuard.get().add('ns', name);
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.exec(host, 'ip', ['link', 'set', 'lo', 'up']);
    return name;
  }

  /** Connect two hosts with a veth pair named ifA (in a) and ifB (in b). */
  link(a: string, ifA: string, b: string, ifB: string): void {
    const tmpA = `${this.prefix.slice(0, 8)}a${this.vethSeq}`;
    const tmpB = `${this.prefix.slice(0, 8)}b${this.vethSeq}`;
    this.vethSeq++;
    // Until both ends are moved into namespaces, the pair lives in the root namespace.
    const guard = ScratchGuard.get();
    guard.add('link', tmpA);
    sh('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
    sh('ip', ['link', 'set', tmpA, 'netns', this.ns(a)]);
    sh('ip', ['link', 'set', tmpB, 'netns', this.ns(b)]);
    guard.removed('link', tmpA);
    this.exec(a, 'ip', ['link', 'set', tmpA, 'name', ifA]);
    this.exec(b, 'ip', ['link', 'set', tmpB, 'name', ifB]);
    this.exec(a, 'ip', ['link', 'set', ifA, 'up']);
    this.exec(b, 'ip', ['link', 'set', ifB, 'up']);
  }

  addr(host: string, ifname: string, cidr: string): void {
    assertTestAddress(cidr);
    this.exec(host, 'ip', ['addr', 'add', cidr, 'dev', ifname]);
  }

  route(host: string, dst: string, via: string): void {
    if (dst !== 'default') assertTestAddress(dst);
    assertTestAddress(via);
    this.exec(host, 'ip', ['route', 'add', dst, 'via', via]);
  }

  forwarding(host: string, on = true): void {
    this.exec(host, 'sysctl', ['-qw', `net.ipv4.ip_forward=${on ? 1 : 0}`]);
  }

  ifindex(host: string, ifname: string): number {
    const out = this.exec(host, 'cat', [`/sys/class/net/${ifname}/ifindex`]).stdout;
    return Number(out.trim());
  }

  exec(host: string, cmd: string, args: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): ExecResult {
    return sh('ip', ['netns', 'exec', this.ns(host), cmd, ...args], opts);
  }

  /**
   * A per-run scratch directory (pins under /sys/fs/bpf, run files under /run, ...),
   * removed by cleanup(), or by the guard's watcher if the owner cannot.
   */
  scratchPath(path: string): string {
    if (!this.paths.includes(path)) {
      ScratchGuard.get().add('path', path);
      this.paths.push(path);
    }
    return path;
  }

  /** This run's pin root, /sys/fs/bpf/gscip-test-<prefix> (bpffs mounted first if none serves it); not created. */
  scratchPinRoot(): string {
    const p = this.scratchPath(`/sys/fs/bpf/gscip-test-${this.prefix}`);
    ensureBpffs(p);
    return p;
  }

  /** This run's agent run dir (locks, state files), /run/gscip-test-<prefix>; not created. */
  scratchRunDir(): string {
    return this.scratchPath(`/run/gscip-test-${this.prefix}`);
  }

  /** Start a long-running process in a host; killed by cleanup(). */
  spawn(host: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(host), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.push(child);
    return child;
  }

  cleanupSync(): void {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try { p.kill('SIGKILL'); } catch { /* already gone */ }
      }
    }
    this.procs.length = 0;
    for (const name of this.namespaces.splice(0).reverse()) {
      // Killing every pid still inside the namespace first makes deletion final.
      const pids = sh('ip', ['netns', 'pids', name], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      sh('ip', ['netns', 'del', name], { allowFail: true });
      ScratchGuard.get().removed('ns', name);
    }
    for (const p of this.paths.splice(0).reverse()) {
      try { rmSync(p, { recursive: true, force: true }); ScratchGuard.get().removed('path', p); } catch { /* the watcher retries */ }
    }
    live.delete(this);
  }

  async cleanup(): Promise<void> { this.cleanupSync(); }
}

/** Bounded wait: polls fn until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < Math.ceil(timeoutMs / stepMs) + 1; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
