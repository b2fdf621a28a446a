/**
 * Run the real `gscip` binary (agent and CLI) inside a test namespace.
 *
 * The agent runs under `nsenter --net=/run/netns/NS`, not `ip netns exec`:
 * the latter remounts /sys and hides /sys/fs/bpf, so pins would not survive
 * the process. Every run uses its own pin root and run dir (removed by
 * cleanup(), also on failure) so tests never touch a real instance.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultObjectPath } from './bpf-harness.js';
import type { Topology } from './netns.js';
import { waitFor } from './netns.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const FIG6_NETWORK = resolve(__dirname, '../../../deploy/examples/fig6-network.yaml');

export interface CliResult { code: number | null; out: string; err: string }

export class GscipRunner {
  readonly pinRoot: string;
  readonly runDir: string;
  private readonly procs: ChildProcess[] = [];

  constructor(readonly topo: Topology, readonly instance = 'test') {
    this.pinRoot = topo.scratchPinRoot();
    this.runDir = topo.scratchRunDir();
  }

  private nsArgs(host: string): string[] {
    return [`--net=/run/netns/${this.topo.ns(host)}`];
  }

  /** Common flags of every instance-facing command. */
  instanceArgs(instance = this.instance): string[] {
    return ['--instance', instance, '--pin-root', this.pinRoot, '--run-dir', this.runDir];
  }

  /** Run a CLI command in `host`'s network namespace (bounded); `main` = another build's cli/main.js (upgrade tests). */
  cli(host: string, args: string[], input?: string, main = MAIN): CliResult {
    const r = spawnSync('nsenter', [...this.nsArgs(host), process.execPath, main, ...args], { encoding: 'utf8', input, timeout: 30_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  /** `cli` that must succeed; returns stdout. */
  ok(host: string, args: string[], input?: string, main = MAIN): string {
    const r = this.cli(host, args, input, main);
    if (r.code !== 0) throw new Error(`gscip ${args.join(' ')} exited ${r.code}: ${r.err}`);
    return r.out;
  }

  /**
   * Start `gscip agent run` in `host`; resolves once it reports it is attached.
   * `via` rewrites the command line (`nsenter --net=... node main.js agent run ...`),
   * e.g. to start it in a fresh mount namespace; `logLevel` overrides GSCIP_LOG_LEVEL;
   * `build` runs another build's agent and object instead (upgrade tests: test/lib/previous-release.ts).
   */
  async startAgent(host: string, args: string[], instance = this.instance,
    opts: { via?: (cmd: string[]) => string[]; logLevel?: string; build?: { main: string; bpfObject: string } } = {}): Promise<AgentProc> {
    const obj = ['--bpf-object', opts.build?.bpfObject ?? defaultObjectPath()];
    const cmd = ['nsenter', ...this.nsArgs(host), process.execPath, opts.build?.main ?? MAIN, 'agent', 'run', ...this.instanceArgs(instance), ...obj, ...args];
    const [file, ...argv] = opts.via ? opts.via(cmd) : cmd;
    const child = spawn(file, argv, {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GSCIP_LOG_LEVEL: opts.logLevel ?? process.env.GSCIP_LOG_LEVEL ?? 'warn' },
    });
    this.procs.push(child);
    const a = new AgentProc(child);
    await waitFor('agent to attach', () => {
      if (a.exited) throw new Error(`agent exited ${child.exitCode}: ${a.stderr}`);
      return a.stderr.includes('gscip agent: instance');
    }, 15_000, 50);
    return a;
  }

  /** Start an agent that is expected to fail; resolves with its exit code and stderr. */
  async agentRefused(host: string, args: string[], instance = this.instance): Promise<{ code: number | null; err: string }> {
    const child = spawn('nsenter', [...this.nsArgs(host), process.execPath, MAIN, 'agent', 'run', ...this.instanceArgs(instance), '--bpf-object', defaultObjectPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(child);
    const a = new AgentProc(child);
    await waitFor('second agent to exit', () => a.exited, 15_000, 50).catch(() => { child.kill('SIGKILL'); });
    return { code: child.exitCode, err: a.stderr };
  }

  /**
   * A real `gscip gms serve` on loopback in `host`'s namespace (killed by cleanup()), loaded with
   * `networkFile` (default deploy/examples/fig6-network.yaml), and GE `userId` enrolled into `<dir>/agent` with a one-time
   * token through `gscip agent enroll`. Returns the GMS and agent data directories.
   */
  async gmsWithEnrolledGe(host: string, userId: string, dir: string, networkFile = FIG6_NETWORK): Promise<{ gmsDir: string; agentDir: string }> {
    const gmsDir = join(dir, 'gms');
    const agentDir = join(dir, 'agent');
    const gms = spawn('nsenter', [...this.nsArgs(host), process.execPath, MAIN, 'gms', 'serve', '--data-dir', gmsDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(gms);
    let out = '';
    gms.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    gms.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const url = (await waitFor('GMS to listen', () => /GMS listening on (https:\/\/\S+)/.exec(out), 20_000, 50))![1];
    const fp = (await waitFor('CA fingerprint', () => /CA fingerprint[^:]*: (\S+)/.exec(out), 5000, 50))![1];
    this.ok(host, ['gms', 'apply', '--data-dir', gmsDir, '-f', networkFile]);
    const token = this.ok(host, ['gms', 'token', 'issue', '--data-dir', gmsDir, '--ge', userId]).trim();
    this.ok(host, ['agent', 'enroll', '--gms', url, '--token-file', '/dev/stdin', '--ca-fingerprint', fp, '--data-dir', agentDir], `${token}\n`);
    return { gmsDir, agentDir };
  }

  cleanup(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
    rmSync(this.pinRoot, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

export class AgentProc {
  stderr = '';
  stdout = '';
  exited = false;
  private readonly done: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.stderr?.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    child.stdout?.on('data', (d: Buffer) => { this.stdout += d.toString(); });
    this.done = new Promise((r) => child.once('exit', () => { this.exited = true; r(); }));
  }

  get pid(): number { return this.child.pid ?? -1; }

  /** Signal and wait for exit (bounded). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (!this.exited) this.child.kill(signal);
    const t = setTimeout(() => { try { this.child.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    await this.done;
    clearTimeout(t);
    return this.child.exitCode;
  }
}
