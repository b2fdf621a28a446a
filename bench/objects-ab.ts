/**
 * Two datapath objects side by side in one run: ns per packet through the
 * egress program (BPF_PROG_TEST_RUN, one packet repeated R times per run) for
 * the cases every packet pays, measured in interleaved rounds (old, new, old,
 * new, ...) so drift on a shared machine hits both alike; prints the median of
 * each and, per comparison, the median and quartiles of the per-round ratios.
 * A fourth object, aa, is old loaded again: old vs aa is an A/A comparison, so
 * the run shows its own noise floor beside new/old. The kernel reports whole
 * ns per packet, so on a ~50 ns path one ns is a 2 % step.
 *
 *   node dist/bench/objects-ab.js [--old OBJ | --base REF] [--new OBJ] [--rounds 41] [--repeat 200000]
 *
 * --old defaults to the previous release built from git (test/lib/previous-release.ts);
 * --base REF builds REF's bpf/ instead (bench/base-object.ts, e.g. --base main).
 * --new defaults to build/bpf/gscip_tc.bpf.o. A third object, xoff, is --new
 * loaded with the XLAT stage off (what a GES that never translates runs; its
 * XLAT case then passes untranslated on the PIT entry of the untranslated view).
 * Only maps whose layout all share are touched (PIT, XLAT, iface: bench/shared-maps.ts). Writes
 * bench/results/objects-ab.json. Needs root.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { Action, Dir, MissAction } from '../controlplane/maps/abi.js';
import { defaultObjectPath } from '../test/lib/bpf-harness.js';
import { IPPROTO_TCP, ipv6UdpFrame, tcpFrame } from '../test/lib/packets.js';
import { previousRelease } from '../test/lib/previous-release.js';
import type { StageSwitches } from '../controlplane/maps/stages.js';
import { intArg, strArg } from './args.js';
import { buildBase } from './base-object.js';
import { BenchObject } from './shared-maps.js';

const EGRESS = 'gscip_tc_egress';

const F = { src: '198.18.0.1', dst: '192.0.2.2', sport: 1024, dport: 80 };
const pass = { action: Action.PASS, state: 0, role: 0, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n };

interface Loaded { label: string; path: string; obj: BenchObject }

function load(label: string, path: string, stages?: StageSwitches): Loaded {
  const obj = BenchObject.load(path, stages);
  const { pit, xlat, iface } = obj.maps;
  iface.set(1, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 0 });
  const orig = { saddr: F.src, daddr: F.dst, sport: F.sport, dport: F.dport };
  const other = { saddr: F.src, daddr: '203.0.113.80', sport: F.sport, dport: 8080 };
  pit.set({ ...orig, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pass);
  pit.set({ ...other, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pass);
  // the XLAT case: a second source port whose packets are rewritten back and forth on every run
  const xs = { ...orig, sport: 2048 };
  const xo = { ...other, sport: 2048 };
  xlat.set({ ...xs, proto: IPPROTO_TCP, dir: Dir.EGRESS }, { ...xo, kind: 0, created_ns: 0n });
  xlat.set({ ...xo, proto: IPPROTO_TCP, dir: Dir.EGRESS }, { ...xs, kind: 0, created_ns: 0n });
  pit.set({ ...xo, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pass);
  pit.set({ ...xs, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pass);
  return { label, path, obj };
}

const CASES: Array<[string, Buffer]> = [
  ['IPv6 pass (parse, verdict, counter)', ipv6UdpFrame()],
  ['PIT hit -> pass', tcpFrame(F)],
  ['PIT miss -> miss pass', tcpFrame({ ...F, dport: 81 })],
  ['XLAT rewrite + PIT hit', tcpFrame({ ...F, sport: 2048 })],
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const rounds = intArg('rounds', 41);
  const repeat = intArg('repeat', 200_000);
  const baseRef = strArg('base');
  const base = baseRef ? buildBase(baseRef) : null;
  const oldPath = strArg('old') ?? base?.obj ?? previousRelease().bpfObject;
  const newPath = strArg('new') ?? defaultObjectPath();
  // 'aa' is old loaded a second time: old vs aa is an A/A comparison, the noise floor of this run
  const objs = [load('old', oldPath), load('new', newPath), load('xoff', newPath, { xlat: false, pccom: true }), load('aa', oldPath)];
  // each object in each position equally often: rotations, forward and reversed
  const orders = objs.flatMap((_, k) => {
    const rot = objs.map((__, i) => (i + k) % objs.length);
    return [rot, [...rot].reverse()];
  });
  const per = new Map<string, number[]>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [name, pkt] of CASES) {
        for (const o of orders[r % orders.length].map((i) => objs[i])) {
          const res = o.obj.testRun(EGRESS, pkt, { repeat });
          if (res.retval !== 0) throw new Error(`${o.label} ${name}: verdict ${res.retval}, want 0 (pass)`);
          const k = `${o.label}|${name}`;
          per.set(k, [...(per.get(k) ?? []), res.durationNs]);
        }
      }
    }
  } finally {
    for (const o of objs) o.obj.close();
    if (base) rmSync(base.dir, { recursive: true, force: true });
  }
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  // the ratio of each round (its runs back to back, so drift between rounds cancels): median and quartiles
  const ratio = (label: string, name: string): { median: number; p25: number; p75: number } => {
    const o = per.get(`old|${name}`) ?? [];
    const xs = (per.get(`${label}|${name}`) ?? []).map((v, i) => v / o[i]).sort((a, b) => a - b);
    const q = (f: number): number => r3(xs[Math.min(xs.length - 1, Math.floor(f * xs.length))]);
    return { median: q(0.5), p25: q(0.25), p75: q(0.75) };
  };
  const rows = CASES.map(([name]) => ({
    case: name,
    old_ns: median(per.get(`old|${name}`) ?? []), new_ns: median(per.get(`new|${name}`) ?? []),
    xlat_off_ns: median(per.get(`xoff|${name}`) ?? []),
    new_over_old: ratio('new', name), xlat_off_over_old: ratio('xoff', name), aa_over_old: ratio('aa', name),
  }));
  const span = (x: { median: number; p25: number; p75: number }): string => `${x.median.toFixed(3)} [${x.p25.toFixed(2)}-${x.p75.toFixed(2)}]`;
  console.log(`egress program, ns/packet (median of ${rounds} interleaved rounds x ${repeat} runs), kernel ${release()}, ${cpus()[0]?.model ?? '?'}`);
  console.log(`old: ${oldPath}${base ? ` (${baseRef} = ${base.commit.slice(0, 12)})` : ''}\nnew: ${newPath}\nxoff: new with the XLAT stage off\naa: old loaded again (A/A: the noise floor)`);
  console.log('ratios: median of the per-round ratios [quartiles]');
  console.log(`${'case'.padEnd(38)} ${'old'.padStart(4)} ${'new'.padStart(4)} ${'xoff'.padStart(4)}  ${'new/old'.padEnd(19)} ${'xoff/old'.padEnd(19)} aa/old`);
  for (const r of rows) {
    console.log(`${r.case.padEnd(38)} ${String(r.old_ns).padStart(4)} ${String(r.new_ns).padStart(4)} ${String(r.xlat_off_ns).padStart(4)}  ${span(r.new_over_old).padEnd(19)} ${span(r.xlat_off_over_old).padEnd(19)} ${span(r.aa_over_old)}`);
  }
  const out = resolve(__dirname, __dirname.includes('/dist/') ? '../../bench/results' : 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'objects-ab.json'), JSON.stringify({ bench: 'objects-ab', date: new Date().toISOString(), kernel: release(), old: oldPath, base: base ? { ref: baseRef, commit: base.commit } : null, new: newPath, rounds, repeat, rows }, null, 2) + '\n');
}

main();
