/** CLI output: aligned tables for people, JSON (bigints as strings) for scripts, exit codes. */
import { exitCodeOf } from '../errors/catalogue.js';

export { EXIT } from '../errors/catalogue.js';

export function table(headers: string[], rows: Array<Array<string | number | bigint>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const w = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd()).join('\n');
}

export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : Buffer.isBuffer(x) ? x.toString('hex') : x), 2);
}

export function print(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** Print an error an operator can act on; the exit code comes from its catalogue code. */
export function fail(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`error: ${msg}\n`);
  process.exitCode = exitCodeOf(e);
}

/** Wrap a command handler: errors become messages + exit codes, never stack traces. */
export function guarded<A>(fn: (a: A) => void | Promise<void>): (a: A) => Promise<void> {
  return async (a: A) => {
    try { await fn(a); } catch (e) { fail(e); }
  };
}
