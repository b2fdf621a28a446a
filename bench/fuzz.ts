/**
 * bench/fuzz: the DPRP properties of test/lib/dprp-properties.ts and
 * test/lib/dprp-node-fuzz.ts (fast-check) at depth: >= 1,000,000 inputs in
 * total across the codec (round trip, arbitrary bytes, mutations), the
 * authentication (single-byte changes) and the state machine (command
 * sequences into the Fig. 6 simulation; an input there is one injected
 * message, PIT miss or time step). Prints inputs/s per target and each failure
 * with its seed, path and shrunk counterexample; writes bench/results/fuzz.json.
 *
 *   node dist/bench/fuzz.js [--inputs 1000000] [--seed S] [--seconds 600] [--target NAME] [--path P]
 *
 * --inputs is the total, split across the targets by weight; --seconds bounds
 * the whole run (each target gets its share); --target runs one target
 * (roundtrip, bytes, mutation, auth, node, encode-strict, flows-cap), --path
 * replays one counterexample (with its --seed).
 * Exit status 1 when a (non-todo) target failed. No root needed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as fc from 'fast-check';
import {
  authSingleByteProperty, bytesProperty, encodeStrictProperty, mutationProperty, roundTripProperty,
} from '../test/lib/dprp-properties.js';
import { newStats, nodeProperty, unauthenticatedFlowsCappedProperty, type NodeFuzzStats } from '../test/lib/dprp-node-fuzz.js';
import { intArg } from './args.js';

interface Target {
  name: string;
  /** Share of --inputs. */
  weight: number;
  /** Known not to hold today: run on request only, never fails the bench. */
  todo?: string;
  make(stats: NodeFuzzStats, seen: Map<string, number>): fc.IProperty<unknown[]>;
  /** Inputs per fast-check run (the node target counts its own). */
  perRun?: number;
}

const P = <Ts extends unknown[]>(p: fc.IProperty<Ts>) => p as unknown as fc.IProperty<unknown[]>;

const TARGETS: Target[] = [
  { name: 'roundtrip', weight: 0.12, make: () => P(roundTripProperty()), perRun: 1 },
  { name: 'bytes', weight: 0.22, make: (_s, seen) => P(bytesProperty(undefined, seen)), perRun: 1 },
  { name: 'mutation', weight: 0.22, make: (_s, seen) => P(mutationProperty(undefined, seen)), perRun: 1 },
  { name: 'auth', weight: 0.1, make: () => P(authSingleByteProperty()), perRun: 1 },
  { name: 'node', weight: 0.24, make: (s) => P(nodeProperty(s)) },
  { name: 'encode-strict', weight: 0.05, make: () => P(encodeStrictProperty()), perRun: 1 },
  { name: 'flows-cap', weight: 0.05, make: () => P(unauthenticatedFlowsCappedProperty()), perRun: 1 },
];

function strArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const totalInputs = intArg('inputs', 1_000_000);
const seed = intArg('seed', Date.now() % 2 ** 31, 0);
const seconds = intArg('seconds', 600);
const only = strArg('target');
const path = strArg('path');
if (only && !TARGETS.some((t) => t.name === only)) throw new Error(`--target: one of ${TARGETS.map((t) => t.name).join(', ')}`);
const chosen = only ? TARGETS.filter((t) => t.name === only) : TARGETS.filter((t) => !t.todo);
const weights = chosen.reduce((n, t) => n + (t.weight || 1), 0);

interface Row {
  target: string; todo?: string; inputs: number; runs: number; seconds: number; inputsPerSec: number; failed: boolean;
  interrupted: boolean; seed: number; path?: string; error?: string; counterexample?: string; outcomes?: Record<string, number>;
}
const rows: Row[] = [];
const t0 = Date.now();

for (const t of chosen) {
  const share = (t.weight || 1) / weights;
  const inputs = Math.max(1, Math.round(totalInputs * share));
  const stats = newStats();
  const seen = new Map<string, number>();
  // In chunks, each with its own seed (seed + chunk): stop at the inputs, the
  // time share or the first failure. A failure names its chunk's seed.
  const budgetMs = Math.max(1_000, (seconds * 1000 - (Date.now() - t0)) * share);
  const s0 = process.hrtime.bigint();
  const prop = t.make(stats, seen);
  const done = () => (t.perRun ? runsDone * t.perRun : stats.inputs);
  const elapsedMs = () => Number(process.hrtime.bigint() - s0) / 1e6;
  let runsDone = 0;
  let r: fc.RunDetails<unknown[]> | null = null;
  for (let chunk = 0; chunk < 100_000 && done() < inputs && elapsedMs() < budgetMs; chunk++) {
    const left = t.perRun ? Math.ceil((inputs - done()) / t.perRun) : 200;
    r = fc.check(prop, {
      seed: path ? seed : (seed + chunk) | 0, path, numRuns: path ? 1 : Math.min(left, 20_000),
      interruptAfterTimeLimit: Math.max(1, budgetMs - elapsedMs()), markInterruptAsFailure: false,
    });
    runsDone += r.numRuns;
    if (r.failed || r.interrupted || path) break;
  }
  if (!r) throw new Error(`${t.name}: no run within the time limit`);
  const secs = Number(process.hrtime.bigint() - s0) / 1e9;
  const n = done();
  const row: Row = {
    target: t.name, todo: t.todo, inputs: n, runs: runsDone, seconds: Math.round(secs * 100) / 100, inputsPerSec: Math.round(n / secs),
    failed: r.failed, interrupted: r.interrupted, seed: r.seed,
  };
  if (seen.size) row.outcomes = Object.fromEntries([...seen].sort((a, b) => b[1] - a[1]));
  if (stats.rejected.size) row.outcomes = { injected: stats.injected, accepted: stats.accepted, ...Object.fromEntries([...stats.rejected].sort((a, b) => b[1] - a[1])) };
  if (r.failed) {
    row.path = r.counterexamplePath ?? undefined;
    row.error = ((r.errorInstance as Error | undefined)?.message ?? String(r.errorInstance)).split('\n').slice(0, 6).join('\n');
    row.counterexample = fc.stringify(r.counterexample).slice(0, 4000);
  }
  rows.push(row);
  const status = r.failed ? (t.todo ? 'FAILED (todo, known)' : 'FAILED') : r.interrupted ? 'ok (time limit)' : 'ok';
  console.log(`${t.name.padEnd(14)} ${String(n).padStart(9)} inputs ${String(runsDone).padStart(8)} runs ${secs.toFixed(1).padStart(7)} s ${String(row.inputsPerSec).padStart(8)} inputs/s  ${status}`);
  if (r.failed) {
    console.log(`  ${row.error?.split('\n').join('\n  ')}`);
    console.log(`  counterexample: ${row.counterexample?.slice(0, 800)}`);
    console.log(`  reproduce: node dist/bench/fuzz.js --target ${t.name} --seed ${r.seed} --path ${row.path}`);
  }
}

const total = rows.reduce((n, r) => n + r.inputs, 0);
const wall = (Date.now() - t0) / 1000;
const failed = rows.filter((r) => r.failed && !r.todo);
const known = rows.filter((r) => r.failed && r.todo).length;
console.log(`total          ${String(total).padStart(9)} inputs in ${wall.toFixed(1)} s (${Math.round(total / wall)} inputs/s), seed ${seed}; ${failed.length ? `${failed.length} target(s) FAILED` : 'no failure'}${known ? ` (${known} todo target(s) failed, as known)` : ''}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/fuzz.json', JSON.stringify({
  bench: 'fuzz', when: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model,
  command: process.argv.slice(1).join(' '), seed, inputsRequested: totalInputs, totalInputs: total, seconds: wall, targets: rows,
}, null, 2) + '\n');
console.log('wrote bench/results/fuzz.json');
process.exitCode = failed.length ? 1 : 0;
