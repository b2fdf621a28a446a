/**
 * `make test`: runs every test file in its own `node --test` process, one at
 * a time, so that no file can hang the run or leave state behind:
 *  - each test has a time limit (--test-timeout) and each file a wall clock;
 *    at the limit the file's process group gets SIGTERM (the scratch
 *    watchers clean up), then SIGKILL;
 *  - a failed hook (a `before` that could not build its topology) ends its
 *    file at once instead of letting the next suites retry and time out;
 *  - after each file, anything its scratch manifests still list
 *    (namespaces, interfaces, pins, processes) is a failure of that file,
 *    and is removed;
 *  - the run ends with the total time and one `N passed, N failed` line.
 *
 *   node dist/test/run-tests.js [--file-timeout S] [--test-timeout S] [FILE...]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseManifest, removeScratchItem, scratchItemExists, type ScratchItem } from '../controlplane/lab/scratch-guard.js';

interface Args { fileTimeoutS: number; testTimeoutS: number; files: string[] }

function parseArgs(argv: string[]): Args {
  const a: Args = { fileTimeoutS: 600, testTimeoutS: 300, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--file-timeout' || k === '--test-timeout') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${k}: '${argv[i]}' must be a positive whole number of seconds`);
      if (k === '--file-timeout') a.fileTimeoutS = v; else a.testTimeoutS = v;
    } else if (k.startsWith('--')) throw new Error(`unknown option ${k}`);
    else a.files.push(k);
  }
  return a;
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

export interface Tally { passed: number; failed: number; skipped: number; hookFailed: boolean }

/**
 * Counts leaf test results in a node:test TAP stream: an `ok`/`not ok` line
 * followed by a YAML block; suites (type: 'suite') are not counted, so a
 * file cut off half way still counts what it finished.
 */
export class TapCounter {
  readonly tally: Tally = { passed: 0, failed: 0, skipped: 0, hookFailed: false };
  private pending: { ok: boolean; skip: boolean } | null = null;
  private suite = false;
  private inYaml = false;

  line(l: string): void {
    const res = /^\s*(not ok|ok) \d+ - .*?(# (SKIP|TODO)\b.*)?$/.exec(l);
    if (res && !this.inYaml) {
      this.flush();
      this.pending = { ok: res[1] === 'ok', skip: res[3] !== undefined };
      this.suite = false;
      return;
    }
    if (/^\s*---$/.test(l) && this.pending) { this.inYaml = true; return; }
    if (/^\s*\.\.\.$/.test(l) && this.inYaml) { this.inYaml = false; this.flush(); return; }
    if (this.inYaml) {
      if (/^\s*type: 'suite'/.test(l)) this.suite = true;
      if (/^\s*failureType: 'hookFailed'/.test(l)) this.tally.hookFailed = true;
    }
  }

  flush(): void {
    const p = this.pending;
    this.pending = null;
    this.inYaml = false;
    if (!p || this.suite) return;
    if (p.skip) this.tally.skipped++;
    else if (p.ok) this.tally.passed++;
    else this.tally.failed++;
  }
}

interface FileResult extends Tally { file: string; seconds: number; problems: string[] }

function scratchLeft(dir: string): ScratchItem[] {
  const left: ScratchItem[] = [];
  let names: string[] = [];
  try { names = readdirSync(dir); } catch { return left; }
  for (const n of names.filter((x) => x.endsWith('.manifest'))) {
    for (const it of parseManifest(readFileSync(join(dir, n), 'utf8'))) if (scratchItemExists(it)) left.push(it);
  }
  return left;
}

/** The file running now: a signal to the runner ends it (and its watchers clean up) before the runner exits. */
let current: ((why: string) => void) | null = null;
/** Set by a signal: no further file starts; the run reports what it has and exits 130. */
let interrupted: NodeJS.Signals | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = sig;
    current?.(`the test run got ${sig}`);
  });
}

async function sleep(ms: number): Promise<void> { await new Promise((r) => setTimeout(r, ms)); }

/** The environment of one file's run: its own scratch dir, and never a parent test runner's context
 * (with NODE_TEST_CONTEXT set, `node --test` talks the parent's private protocol instead of TAP). */
function fileEnv(scratch: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GSCIP_SCRATCH_DIR: scratch };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

async function runFile(file: string, a: Args, scratch: string): Promise<FileResult> {
  const t0 = Date.now();
  mkdirSync(scratch, { recursive: true, mode: 0o700 });
  const counter = new TapCounter();
  const problems: string[] = [];
  // Own process group: a timeout signals the file, its children and its scratch watchers together.
  const child = spawn(process.execPath, [
    '--test', `--test-timeout=${a.testTimeoutS * 1000}`,
    // TAP on stdout is for the runner to count; people read the spec reporter, passed through on stderr.
    '--test-reporter=tap', '--test-reporter-destination=stdout',
    '--test-reporter=spec', '--test-reporter-destination=stderr',
    file,
  ], { stdio: ['ignore', 'pipe', 'inherit'], detached: true, env: fileEnv(scratch) });
  const group = child.pid!;
  const signalGroup = (sig: NodeJS.Signals): void => { try { process.kill(-group, sig); } catch { /* gone */ } };
  let ending: string | null = null;
  const end = (why: string): void => {
    if (ending) return;
    ending = why;
    signalGroup('SIGTERM');
    setTimeout(() => signalGroup('SIGKILL'), 15_000).unref();
  };
  current = end;
  const clock = setTimeout(() => end(`file did not finish within its ${a.fileTimeoutS} s wall clock`), a.fileTimeoutS * 1000);
  const tap = createInterface({ input: child.stdout! });
  tap.on('line', (l) => {
    counter.line(l);
    if (counter.tally.hookFailed && !ending) end('a hook failed (its topology could not be built); the rest of the file was not run');
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(clock);
  current = null;
  counter.flush();
  // The group may outlive its leader: give the watchers a bounded moment, then end the rest.
  for (let i = 0; i < 50; i++) {
    try { process.kill(-group, 0); } catch { break; }
    await sleep(200);
  }
  signalGroup('SIGKILL');
  if (ending) problems.push(ending);
  else if (code !== 0 && counter.tally.failed === 0) problems.push(`exited with ${signal ?? `code ${code}`} but reported no failed test`);
  const left = scratchLeft(scratch);
  if (left.length) {
    problems.push(`left behind: ${left.map((i) => `${i.kind} ${i.name}`).join(', ')} (removed now)`);
    for (const it of left) removeScratchItem(it);
  }
  rmSync(scratch, { recursive: true, force: true });
  const t = counter.tally;
  // A file with a problem (wall clock, failed hook, leftovers) counts as failed at least once, whether or not
  // node --test had time to report its killed test (that race decides whether TAP says `not ok`).
  return { ...t, failed: Math.max(t.failed, problems.length ? 1 : 0), file, seconds: (Date.now() - t0) / 1000, problems };
}

function fmtTime(s: number): string {
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const root = resolve(__dirname, '..');
  const files = a.files.length ? a.files.map((f) => resolve(f)) : findTests(resolve(__dirname));
  for (const f of files) statSync(f); // a typo fails here, naming the file
  const runId = `run-${process.pid}-${Date.now().toString(36)}`;
  const scratchRoot = `/run/gscip-scratch/${runId}`;
  const t0 = Date.now();
  const results: FileResult[] = [];
  for (const [i, f] of files.entries()) {
    if (interrupted) { process.stdout.write(`\n=== interrupted by ${interrupted}: ${files.length - i} files not run\n`); break; }
    process.stdout.write(`\n=== [${i + 1}/${files.length}] ${relative(root, f)}\n`);
    const r = await runFile(f, a, `${scratchRoot}/f${i}`);
    results.push(r);
    process.stdout.write(`=== ${relative(root, f)}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped in ${fmtTime(r.seconds)}\n`);
    for (const p of r.problems) process.stdout.write(`    ! ${p}\n`);
  }
  rmSync(scratchRoot, { recursive: true, force: true });
  const sum = results.reduce((s, r) => ({ passed: s.passed + r.passed, failed: s.failed + r.failed, skipped: s.skipped + r.skipped }), { passed: 0, failed: 0, skipped: 0 });
  const bad = results.filter((r) => r.failed > 0);
  process.stdout.write('\n');
  for (const r of bad) process.stdout.write(`failed: ${relative(root, r.file)} (${r.failed})${r.problems.length ? `: ${r.problems.join('; ')}` : ''}\n`);
  const slow = [...results].sort((x, y) => y.seconds - x.seconds).slice(0, 3);
  process.stdout.write(`slowest files: ${slow.map((r) => `${relative(root, r.file)} ${fmtTime(r.seconds)}`).join(', ')}\n`);
  process.stdout.write(`${files.length} test files in ${fmtTime((Date.now() - t0) / 1000)}\n`);
  process.stdout.write(`${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped\n`);
  process.exitCode = interrupted ? 130 : sum.failed ? 1 : 0;
}

if (require.main === module) {
  main().catch((e: unknown) => { process.stderr.write(`run-tests: ${(e as Error).message}\n`); process.exitCode = 2; });
}
