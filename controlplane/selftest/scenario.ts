/**
 * The selftest's network: three scratch namespaces built with the lab
 * Topology (so the scratch guard records everything before it exists and
 * its watcher removes it if this process dies), and this installation's own
 * `gscip agent run` on each end.
 *
 *   a (va 192.0.2.1) --- (ra 192.0.2.254) r (rb 198.51.100.254) --- (vb 198.51.100.2) b
 *   agent, miss drop          plain router; tcpdump -i any           agent, miss drop
 *
 * Pins live under a scratch pin root, locks and state under a scratch run
 * dir, each agent under its own instance name: nothing of a production
 * instance (/sys/fs/bpf/gscip, /run/gscip) is read or written, and no
 * interface outside these namespaces is touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { openPinnedMaps } from '../agent/datapath.js';
import { instancePaths } from '../agent/instance.js';
import { mkdirP } from '../bpf/bpffs.js';
import { Topology, waitFor } from '../lab/topology.js';
import { readStats } from '../maps/accessors.js';
import type { Cid, PitVal } from '../maps/codecs.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import { findExecutable } from './capture.js';
import { exited, type Endpoint } from './traffic.js';

export const ADDR = { A: '192.0.2.1', R_A: '192.0.2.254', R_B: '198.51.100.254', B: '198.51.100.2' } as const;
export const HOSTS = { a: { host: 'a', addr: ADDR.A }, b: { host: 'b', addr: ADDR.B } } as const satisfies Record<string, Endpoint>;
export type End = keyof typeof HOSTS;

export interface StatCount { packets: number; bytes: number }
export type StatSnapshot = Record<string, StatCount>;

export interface ScenarioOptions {
  /** The datapath object the agents load (this installation's default unless overridden). */
  bpfObject: string;
  /** This installation's CLI entry (dist/controlplane/cli/main.js). */
  cliMain: string;
}

export interface KeySpec { end: End; group: number; version: number; key: Buffer }

export class SelftestNet {
  readonly topo = new Topology('selft');
  readonly prefix = this.topo.prefix;
  /** Temporary files (transfer data, the capture). */
  readonly tmp: string;
  readonly pinRoot: string;
  readonly runDir: string;
  readonly instance: Record<End, string>;
  private readonly agents: Array<{ end: End; child: ChildProcess; stderr: () => string }> = [];
  private readonly maps: Partial<Record<End, GscipMaps>> = {};

  constructor(readonly o: ScenarioOptions) {
    this.tmp = this.topo.scratchPath(`/tmp/gscip-selftest-${this.prefix}`);
    this.pinRoot = this.topo.scratchPinRoot();
    this.runDir = this.topo.scratchRunDir();
    this.instance = { a: `selftest-${this.prefix}-a`, b: `selftest-${this.prefix}-b` };
  }

  /** Namespaces, links, addresses, routes. */
  build(): void {
    mkdirSync(this.tmp, { mode: 0o700 });
    mkdirP(this.pinRoot);
    const t = this.topo;
    t.addHost('a'); t.addHost('r'); t.addHost('b');
    t.link('a', 'va', 'r', 'ra');
    t.link('r', 'rb', 'b', 'vb');
    t.addr('a', 'va', `${ADDR.A}/24`);
    t.addr('r', 'ra', `${ADDR.R_A}/24`);
    t.addr('r', 'rb', `${ADDR.R_B}/24`);
    t.addr('b', 'vb', `${ADDR.B}/24`);
    t.route('a', 'default', ADDR.R_A);
    t.route('b', 'default', ADDR.R_B);
    t.forwarding('r');
  }

  /** `gscip agent run` on va and vb (miss action drop: nothing unconfigured leaves), both at once; resolves when both attached. */
  async startAgents(timeoutMs: number): Promise<void> {
    const nsenter = findExecutable('nsenter');
    if (!nsenter) throw new Error('nsenter not found (util-linux): the agents must enter the scratch namespaces with it');
    const start = (end: End, dev: string): Promise<void> => {
      // nsenter, not `ip netns exec`: the latter remounts /sys and hides bpffs from the agent.
      const child = spawn(nsenter, [`--net=/run/netns/${this.topo.ns(end)}`, process.execPath, this.o.cliMain, 'agent', 'run',
        '--iface', dev, '--miss', 'drop', '--metrics', 'none', '--instance', this.instance[end],
        '--pin-root', this.pinRoot, '--run-dir', this.runDir, '--bpf-object', this.o.bpfObject,
      ], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, GSCIP_LOG_LEVEL: 'warn' } });
      let err = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => { if (err.length < 65536) err += d; });
      this.agents.push({ end, child, stderr: () => err });
      return waitFor(`the agent on ${end} to attach to ${dev}`, () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`gscip agent run on ${end} exited ${child.exitCode ?? child.signalCode}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
        }
        return err.includes('gscip agent: instance');
      }, timeoutMs, 20).then(() => undefined);
    };
    await Promise.all([start('a', 'va'), start('b', 'vb')]);
    for (const end of ['a', 'b'] as const) this.maps[end] = openPinnedMaps(this.pinDir(end));
  }

  pinDir(end: End): string {
    return instancePaths({ instance: this.instance[end], pinRoot: this.pinRoot, runDir: this.runDir }).pinDir;
  }

  /** The agents that are still running (an agent that died mid-run is a failure of every later check). */
  deadAgents(): string[] {
    return this.agents.filter((a) => a.child.exitCode !== null || a.child.signalCode !== null)
      .map((a) => `the agent on ${a.end} exited (${a.child.exitCode ?? a.child.signalCode}): ${a.stderr().trim().split('\n').slice(-1)[0] ?? ''}`);
  }

  /**
   * Install keys with this installation's CLI (`gscip keys set`, key on stdin, never on the command line), all at once.
   * Run inside the end's namespace like the agents, so that removing the namespace also ends them.
   */
  async setKeys(keys: KeySpec[], timeoutMs: number): Promise<void> {
    const nsenter = findExecutable('nsenter') ?? 'nsenter';
    await Promise.all(keys.map(async (k) => {
      const child = spawn(nsenter, [`--net=/run/netns/${this.topo.ns(k.end)}`, process.execPath, this.o.cliMain, 'keys', 'set', '--instance', this.instance[k.end], '--pin-root', this.pinRoot,
        '--run-dir', this.runDir, '--group', String(k.group), '--version', String(k.version)], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => { err += d; });
      child.stdin?.end(`${k.key.toString('hex')}\n`);
      const code = await exited(child, timeoutMs);
      if (code !== 0) throw new Error(`gscip keys set on ${k.end} (group ${k.group} version ${k.version}) ${code === null ? `timed out after ${timeoutMs} ms` : `exited ${code}`}: ${err.trim()}`);
    }));
  }

  private m(end: End): GscipMaps {
    const m = this.maps[end];
    if (!m) throw new Error(`the agent on ${end} has not attached`);
    return m;
  }

  /** PIT entries straight into the instance's pinned map (the accessors `gscip pit add` uses). */
  pit(end: End, entries: Array<[Cid, PitVal]>): void {
    this.m(end).pit.setBatch(entries);
  }

  /** The datapath's counters on one end, by stat name (summed over CPUs). */
  stats(end: End): StatSnapshot {
    const out: StatSnapshot = {};
    for (const s of readStats(this.m(end))) out[s.name] = { packets: Number(s.packets), bytes: Number(s.bytes) };
    return out;
  }

  /**
   * Remove everything (agents, namespaces, pins, run dir, temp files) and
   * report what, if anything, is still there afterwards.
   */
  cleanup(): { removed: string[]; left: string[] } {
    for (const m of Object.values(this.maps)) { try { m?.close(); } catch { /* fds go with the process anyway */ } }
    for (const a of this.agents) if (a.child.exitCode === null && a.child.signalCode === null) { try { a.child.kill('SIGKILL'); } catch { /* gone */ } }
    const removed = [`namespaces ${this.prefix}-{a,r,b}`, this.pinRoot, this.runDir, this.tmp, `${this.agents.length} agents`];
    this.topo.cleanupSync();
    return { removed, left: leftovers(this.prefix, [this.pinRoot, this.runDir, this.tmp]) };
  }
}

/** Namespaces named with the prefix, paths, and processes whose command line names the prefix, that still exist. */
export function leftovers(prefix: string, paths: string[]): string[] {
  const left: string[] = [];
  try { for (const n of readdirSync('/run/netns')) if (n.startsWith(`${prefix}-`)) left.push(`namespace ${n}`); } catch { /* no /run/netns: none */ }
  for (const p of paths) if (existsSync(p)) left.push(`path ${p}`);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes(prefix)) left.push(`process ${pid} (${cmd.split('\0').join(' ').trim().slice(0, 80)})`);
  }
  return left;
}
