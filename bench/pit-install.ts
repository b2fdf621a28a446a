/**
 * How fast the control plane installs PIT entries (target >= 200,000/s with
 * batch operations), through the same BpfMap code the agent and CLI use.
 *
 *   node dist/bench/pit-install.js [--entries 1000000] [--rounds 3]
 *
 * Cases (each into an emptied PIT sized for the entries):
 *  - batch, from objects: Cid/PitVal objects -> codecs -> bpf_map_update_batch
 *    (what a protocol engine does: the figure that counts);
 *  - batch, pre-encoded: packed buffers -> bpf_map_update_batch (syscall cost only);
 *  - single updates: bpf_map_update_elem per entry (for comparison; fewer entries).
 * Prints a table, writes bench/results/pit-install.json. Needs root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { BpfHarness, bpfUnavailable, defaultObjectPath } from '../test/lib/bpf-harness.js';
import { Action, Dir, PitState, Role } from '../controlplane/maps/abi.js';
import { cidCodec, pitValCodec, type Cid, type PitVal } from '../controlplane/maps/codecs.js';
import { MAP_NAMES } from '../controlplane/maps/gscip-maps.js';
import { table } from '../controlplane/cli/output.js';
import { intArg } from './args.js';


/** Entry i: distinct flows 100.64.x.y:port -> 198.18.x.y:443 (test ranges only). */
function cidOf(i: number): Cid {
  return {
    saddr: `100.64.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}`, daddr: `198.18.${(i >>> 8) & 0xff}.${i & 0xff}`,
    sport: 1024 + (i % 60000), dport: 443, proto: 6, dir: i & 1 ? Dir.INGRESS : Dir.EGRESS,
  };
}
const VAL: PitVal = { action: Action.PASS, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: 1n, last_seen_ns: 1n };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const why = bpfUnavailable();
  if (why) { process.stderr.write(`pit-install: skipped: ${why}\n`); process.exitCode = 0; return; }
  const n = intArg('entries', 1_000_000);
  const rounds = intArg('rounds', 3);
  const singles = Math.min(n, 100_000);
  const h = BpfHarness.open({ maxEntries: { [MAP_NAMES.pit]: Math.max(n, 1024) } });
  try {
    const pit = h.maps.pit;
    const clear = (): void => {
      const keys = [...pit.keys()];
      pit.deleteBatch(keys);
      if (pit.count() !== 0) throw new Error('PIT not empty after clear');
    };
    const entries: Array<[Cid, PitVal]> = Array.from({ length: n }, (_, i) => [cidOf(i), VAL]);
    const kb = Buffer.alloc(n * cidCodec.size);
    const vb = Buffer.alloc(n * pitValCodec.size);
    entries.forEach(([k, v], i) => { cidCodec.encode(k, kb, i * cidCodec.size); pitValCodec.encode(v, vb, i * pitValCodec.size); });

    const results: Record<string, number[]> = { batch_objects: [], batch_preencoded: [], single: [] };
    for (let r = 0; r < rounds; r++) {
      clear();
      let t0 = process.hrtime.bigint();
      const done = pit.setBatch(entries);
      let s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (done !== n || pit.count() !== n) throw new Error(`batch from objects installed ${done}, map holds ${pit.count()}`);
      results.batch_objects.push(n / s);

      clear();
      t0 = process.hrtime.bigint();
      let applied = 0;
      const CH = 8192;
      for (let i = 0; i < n; i += CH) {
        const c = Math.min(CH, n - i);
        applied += pit.setBatchRaw(kb.subarray(i * cidCodec.size), vb.subarray(i * pitValCodec.size), c);
      }
      s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (applied !== n) throw new Error(`pre-encoded batch installed ${applied}`);
      results.batch_preencoded.push(n / s);

      clear();
      t0 = process.hrtime.bigint();
      for (let i = 0; i < singles; i++) pit.set(entries[i][0], VAL);
      s = Number(process.hrtime.bigint() - t0) / 1e9;
      results.single.push(singles / s);
    }
    // Spot check what the kernel holds: a sample of entries reads back exactly.
    for (let i = 0; i < singles; i += 9973) {
      const v = pit.get(entries[i][0]);
      if (!v || v.action !== Action.PASS) throw new Error(`entry ${i} missing after install`);
    }
    clear();

    const rows = [
      { case: 'batch update, from objects (codec + bpf_map_update_batch)', entries: n, entries_per_s: Math.round(median(results.batch_objects)) },
      { case: 'batch update, pre-encoded buffers', entries: n, entries_per_s: Math.round(median(results.batch_preencoded)) },
      { case: 'single bpf_map_update_elem', entries: singles, entries_per_s: Math.round(median(results.single)) },
    ];
    const target = 200_000;
    const ok = rows[0].entries_per_s >= target;
    process.stdout.write(`PIT install rate (median of ${rounds} rounds, PIT max_entries ${n})\n`);
    process.stdout.write(`${table(['CASE', 'ENTRIES', 'ENTRIES/S'], rows.map((r) => [r.case, r.entries, r.entries_per_s.toLocaleString('en-US')]))}\n`);
    process.stdout.write(`target >= ${target.toLocaleString('en-US')}/s (batch from objects): ${ok ? 'met' : 'NOT met'}\n`);
    const out = resolve(__dirname, '../../bench/results');
    mkdirSync(out, { recursive: true });
    writeFileSync(resolve(out, 'pit-install.json'), `${JSON.stringify({
      bench: 'pit-install', date: new Date().toISOString(), kernel: release(), cpu: cpus()[0]?.model ?? '?', cpus: cpus().length,
      object: defaultObjectPath(), rounds, unit: 'entries_per_second', target, target_met: ok, rows, raw: results,
    }, null, 2)}\n`);
  } finally {
    h.close();
  }
}

main();
