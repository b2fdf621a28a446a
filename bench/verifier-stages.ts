/**
 * What each stage setting costs the verifier and the kernel: loads the datapath
 * object once per setting (no pins) and prints, per program, the instructions
 * the verifier processed (bpf_prog_info.verified_insns), the program size after
 * dead-code removal (xlated) and after JIT, and the tag (the kernel's hash of
 * the instructions as loaded, before verification).
 *
 *   node dist/bench/verifier-stages.js [--obj OBJ] [--old OBJ]
 *
 * --obj defaults to build/bpf/gscip_tc.bpf.o; --old (optional) adds a row for
 * an object without stage switches (e.g. main's, built by bench/base-object.ts).
 * Writes bench/results/verifier-stages.json. Needs root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { resolve } from 'node:path';
import { progInfo, type ProgInfo } from '../controlplane/bpf/libbpf.js';
import { BpfObject } from '../controlplane/bpf/object.js';
import { PROG_NAMES } from '../controlplane/maps/gscip-maps.js';
import { stageInitialValues, stageList, type StageSwitches } from '../controlplane/maps/stages.js';
import { defaultObjectPath } from '../test/lib/bpf-harness.js';
import { strArg } from './args.js';

export const SETTINGS: StageSwitches[] = [
  { xlat: true, pccom: true }, { xlat: false, pccom: true }, { xlat: true, pccom: false }, { xlat: false, pccom: false },
  { xlat: true, pccom: true, nat: true }, { xlat: true, pccom: true, dns: true },
];

export interface Row { object: string; stages: string; prog: string; verified_insns: number; xlated_bytes: number; jited_bytes: number; tag: string }

export function measureLoad(path: string, label: string, stages?: StageSwitches): Row[] {
  const obj = BpfObject.load(path, { maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, initialValues: stages ? stageInitialValues(stages) : undefined });
  try {
    return (['egress', 'ingress'] as const).map((d) => {
      const i: ProgInfo = progInfo(obj.progFd(PROG_NAMES[d]));
      return { object: label, stages: stages ? stageList(stages) : '(object default)', prog: d, verified_insns: i.verifiedInsns, xlated_bytes: i.xlatedLen, jited_bytes: i.jitedLen, tag: i.tag };
    });
  } finally { obj.close(); }
}

function main(): void {
  const path = strArg('obj') ?? defaultObjectPath();
  const old = strArg('old');
  const rows: Row[] = [];
  if (old) rows.push(...measureLoad(old, 'old'));
  for (const s of SETTINGS) rows.push(...measureLoad(path, 'new', s));
  console.log(`verifier and program size per stage setting, kernel ${release()}`);
  if (old) console.log(`old: ${old}`);
  console.log(`new: ${path}`);
  console.log(`${'object'.padEnd(7)}${'stages'.padEnd(18)}${'prog'.padEnd(9)}${'verified'.padStart(9)}${'xlated B'.padStart(10)}${'jited B'.padStart(9)}  tag`);
  for (const r of rows) console.log(`${r.object.padEnd(7)}${r.stages.padEnd(18)}${r.prog.padEnd(9)}${String(r.verified_insns).padStart(9)}${String(r.xlated_bytes).padStart(10)}${String(r.jited_bytes).padStart(9)}  ${r.tag}`);
  const out = resolve(__dirname, __dirname.includes('/dist/') ? '../../bench/results' : 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'verifier-stages.json'), JSON.stringify({ bench: 'verifier-stages', date: new Date().toISOString(), kernel: release(), old: old ?? null, new: path, rows }, null, 2) + '\n');
}

if (require.main === module) main();
