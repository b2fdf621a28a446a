/**
 * The cascade suite (test/netns/dprp-cascade.test.ts: GEs behind a GEN,
 * cascaded GENs, the first flow to the Term after the agents start included)
 * run N times in a row under a CPU hog on every core, as issue 11 item 6 asks:
 * prints how many runs passed and, for each failure, the failing tests.
 *
 *   node dist/bench/cascade-stress.js [--runs 20] [--hogs <cores>]
 *
 * The hogs are busy loops (one process per core, default niceness, the same
 * as the agents). Each run is the suite through the test runner (its own
 * namespaces, agents started afresh). Writes bench/results/cascade-stress.json.
 * Needs root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { intArg } from './args.js';

const ROOT = resolve(__dirname, __dirname.includes('/dist/') ? '../..' : '..');

function main(): void {
  const runs = intArg('runs', 20);
  const hogs = intArg('hogs', cpus().length);
  const procs: ChildProcess[] = [];
  const results: Array<{ run: number; ok: boolean; seconds: number; failed: string[] }> = [];
  try {
    for (let i = 0; i < hogs; i++) procs.push(spawn('node', ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    for (let run = 1; run <= runs; run++) {
      const t0 = Date.now();
      const r = spawnSync('node', [resolve(ROOT, 'dist/test/run-tests.js'), resolve(ROOT, 'dist/test/netns/dprp-cascade.test.js')], {
        encoding: 'utf8', timeout: 900_000, maxBuffer: 64 << 20,
      });
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
      const failed = [...new Set(out.split('\n').filter((l) => /^\s*✖ /.test(l) && !/failing tests|DPRP through GENs/.test(l)).map((l) => l.trim()))];
      const ok = r.status === 0 && /\d+ passed, 0 failed/.test(out);
      results.push({ run, ok, seconds: Math.round((Date.now() - t0) / 100) / 10, failed });
      process.stdout.write(`run ${run}/${runs}: ${ok ? 'passed' : `FAILED ${failed.join(' | ')}`} (${results[results.length - 1].seconds} s)\n`);
    }
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
  const passed = results.filter((r) => r.ok).length;
  console.log(`cascade suite under ${hogs} CPU hog(s), kernel ${release()}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}: ${passed}/${runs} runs passed`);
  const out = resolve(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'cascade-stress.json'), JSON.stringify({ bench: 'cascade-stress', date: new Date().toISOString(), kernel: release(), hogs, runs, passed, results }, null, 2) + '\n');
}

main();
