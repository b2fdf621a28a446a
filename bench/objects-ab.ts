/**
 * Two datapath objects side by side in one run: ns per packet through the
 * egress program (BPF_PROG_TEST_RUN, one packet repeated R times per run) for
 * the cases every packet pays, measured in interleaved rounds (old, new, old,
 * new, ...) so drift on a shared machine hits both alike; prints the median of
 * each and the ratio new/old.
 *
 *   node dist/bench/objects-ab.js [--old OBJ | --base REF] [--new OBJ] [--rounds 15] [--repeat 200000]
 *
 * --old defaults to the previous release built from git (test/lib/previous-release.ts);
 * --base REF builds REF's bpf/ instead (bench/base-object.ts, e.g. --base main).
 * --new defaults to build/bpf/gscip_tc.bpf.o. A third object, xoff, is --new
 * loaded with the XLAT stage off (what a GES that never translates runs; its
 * XLAT case then passes untranslated on the PIT entry of the untranslated view).
 * Only maps whose layout all share are touched (PIT, XLAT, iface). Writes
 * bench/results/objects-ab.json. Needs root.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { BpfMap } from '../controlplane/bpf/bpf-map.js';
import { BpfObject } from '../controlplane/bpf/object.js';
import { Action, Dir, MissAction } from '../controlplane/maps/abi.js';
import { cidCodec, ifaceCfgCodec, pitValCodec, u32Codec, xlatValCodec } from '../controlplane/maps/codecs.js';
import { defaultObjectPath } from '../test/lib/bpf-harness.js';
import { IPPROTO_TCP, ipv6UdpFrame, tcpFrame } from '../test/lib/packets.js';
import { previousRelease } from '../test/lib/previous-release.js';
import type { StageSwitches } from '../controlplane/maps/stages.js';
import { stageInitialValues } from '../controlplane/maps/stages.js';
import { intArg, strArg } from './args.js';
import { buildBase } from './base-object.js';

const EGRESS = 'gscip_tc_egress';

const F = { src: '198.18.0.1', dst: '192.0.2.2', sport: 1024, dport: 80 };
const pass = { action: Action.PASS, state: 0, role: 0, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n };

interface Loaded { label: string; path: string; obj: BpfObject }

function load(label: string, path: string, stages?: StageSwitches): Loaded {
  const obj = BpfObject.load(path, { maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, initialValues: stages ? stageInitialValues(stages) : undefined });
  const pit = new BpfMap('gscip_pit', obj.mapFd('gscip_pit'), cidCodec, pitValCodec);
  const xlat = new BpfMap('gscip_xlat', obj.mapFd('gscip_xlat'), cidCodec, xlatValCodec);
  const iface = new BpfMap('gscip_iface', obj.mapFd('gscip_iface'), u32Codec, ifaceCfgCodec);
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
  pit.close(); xlat.close(); iface.close();
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
  const rounds = intArg('rounds', 15);
  const repeat = intArg('repeat', 200_000);
  const baseRef = strArg('base');
  const base = baseRef ? buildBase(baseRef) : null;
  const oldPath = strArg('old') ?? base?.obj ?? previousRelease().bpfObject;
  const newPath = strArg('new') ?? defaultObjectPath();
  const objs = [load('old', oldPath), load('new', newPath), load('xoff', newPath, { xlat: false, pccom: true })];
  // every object in every position equally often: all six orders in turn
  const orders = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0], [1, 0, 2], [0, 2, 1]];
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
  const rows = CASES.map(([name]) => {
    const o = median(per.get(`old|${name}`) ?? []);
    const n = median(per.get(`new|${name}`) ?? []);
    const x = median(per.get(`xoff|${name}`) ?? []);
    return { case: name, old_ns: o, new_ns: n, ratio_new_over_old: Math.round((n / o) * 1000) / 1000,
      xlat_off_ns: x, ratio_xlat_off_over_old: Math.round((x / o) * 1000) / 1000 };
  });
  console.log(`egress program, ns/packet (median of ${rounds} interleaved rounds x ${repeat} runs), kernel ${release()}, ${cpus()[0]?.model ?? '?'}`);
  console.log(`old: ${oldPath}${base ? ` (${baseRef} = ${base.commit.slice(0, 12)})` : ''}\nnew: ${newPath}\nxoff: new with the XLAT stage off`);
  console.log(`${'case'.padEnd(40)} ${'old'.padStart(6)} ${'new'.padStart(6)}  new/old ${'xoff'.padStart(6)}  xoff/old`);
  for (const r of rows) console.log(`${r.case.padEnd(40)} ${String(r.old_ns).padStart(6)} ${String(r.new_ns).padStart(6)}  ${r.ratio_new_over_old.toFixed(3)}  ${String(r.xlat_off_ns).padStart(6)}  ${r.ratio_xlat_off_over_old.toFixed(3)}`);
  const out = resolve(__dirname, __dirname.includes('/dist/') ? '../../bench/results' : 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'objects-ab.json'), JSON.stringify({ bench: 'objects-ab', date: new Date().toISOString(), kernel: release(), old: oldPath, base: base ? { ref: baseRef, commit: base.commit } : null, new: newPath, rounds, repeat, rows }, null, 2) + '\n');
}

main();
