/**
 * A throw-away server run as a child of one test file (slapd.ts, postgres.ts):
 * its pid goes into the scratch manifest before anything waits on it, its
 * stderr is kept (bounded) for the start-up error, and stopping it is bounded
 * (SIGKILL after 10 s) and takes the pid back out of the manifest.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { ScratchGuard } from '../../controlplane/lab/scratch-guard.js';

export interface ScratchChild {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * Spawn cmd (stdout ignored, stderr kept) and poll ready() every 100 ms until
 * it holds; throws `<name> did not start: <stderr tail>` if the child exits or
 * timeoutMs passes first. onSpawn sees the child before the wait (so a caller
 * can stop it even if the wait throws).
 */
export async function startScratchChild(
  name: string, cmd: string, args: string[], opts: SpawnOptions, ready: () => boolean, timeoutMs: number,
  onSpawn: (c: ScratchChild) => void,
): Promise<void> {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'ignore', 'pipe'] });
  ScratchGuard.get().add('pid', String(child.pid));
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (err.length < 20_000) err += d; });
  onSpawn({ child, exited: new Promise((r) => child.once('exit', () => r())) });
  const t0 = Date.now();
  for (;;) {
    if (ready()) return;
    if (child.exitCode !== null || Date.now() - t0 > timeoutMs) throw new Error(`${name} did not start: ${err.slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Stop c with signal, bounded: SIGKILL after 10 s; its pid leaves the manifest. No-op if it is gone. */
export async function stopScratchChild(c: ChildProcess | null, exited: Promise<void>, signal: NodeJS.Signals): Promise<void> {
  if (!c || c.exitCode !== null) return;
  c.kill(signal);
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
  ScratchGuard.get().removed('pid', String(c.pid));
}
