/**
 * bench/dprp-flood: a flood of new UDP flows from a non-member at a GES
 * (issue 11 item 3), real agent + fast path, sampled each second:
 *
 *   a (192.0.2.1, no GSCIP: the flood source) --- r --- (203.0.113.2) b (GES, OP)
 *
 * a sends `--rate` new flows per second (one UDP datagram each, a new source
 * port each) for `--seconds`, then nothing for `--after` seconds. Each second:
 * b's agent RSS and CPU (from /proc), its PIT entries, and the DDEs b sent so
 * far (a capture on b's interface). Printed: baseline, peak and end figures;
 * the issue's run (50,000/s for 20 s, before the bounds) had the PIT grow from
 * 4 to 201,148 entries, RSS from 79 to 366 MB and still rising 30 s after, a
 * full core for 30 s after, and 30,729 DDEs sent.
 *
 * The flood is repeated (--repeat, default 2): RSS flat from one quiet period
 * to the next means the agent's heap is reused (V8 keeps it), not leaked.
 *
 *   node dist/bench/dprp-flood.js [--rate 20000] [--seconds 10] [--after 15] [--repeat 2]
 * GSCIP_BENCH_NODE_ARGS="--max-semi-space-size=1": node flags for the agent (the systemd unit's);
 * GSCIP_BENCH_SMAPS=1: the agent's RSS by kind of mapping before and after, and (with
 * GSCIP_LOG_LEVEL=info) V8's heap figures when the memory relief ran (with
 * GSCIP_TEST_HEAP_LOG_MS=<ms> also every <ms>: per space used/committed MB, external).
 * Needs root. Writes bench/results/dprp-flood.json. Bounded: rate x seconds packets.
 */
import { readFileSync, mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { A, B, DprpTopo } from '../test/netns/dprp-topology.js';
import { intArg } from './args.js';
import { CONTROL_PCAP_FILTER } from '../controlplane/parts/control-framing.js';
import { Capture } from '../test/lib/capture.js';
import { floodScript, procStats } from '../test/lib/flood-source.js';

process.env.GSCIP_LOG_LEVEL ??= 'warn';

/** The agent's RSS by kind of mapping (GSCIP_BENCH_SMAPS=1: where the memory after a flood is). */
function largestMappings(pid: number): string[] {
  const out: Array<[number, string]> = [];
  let head = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) head = line;
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) out.push([Number(m[1]), head]);
  }
  const by = new Map<string, number>();
  for (const [kb, h] of out) {
    const kind = h.includes('bpf-map') ? 'bpf maps (the punt ring)' : h.includes('[heap]') ? 'brk heap (malloc)' : /\s\/\S+$/.test(h) ? 'files (node, libraries)' : 'anonymous (V8 heap, malloc arenas, stacks)';
    by.set(kind, (by.get(kind) ?? 0) + kb);
  }
  return [...by].map(([k, kb]) => `${String(kb).padStart(8)}  ${k}`);
}

async function main(): Promise<void> {
  const rate = intArg('rate', 20_000);
  const seconds = intArg('seconds', 10);
  const after = intArg('after', 15);
  const repeat = intArg('repeat', 2);
  const p = new DprpTopo('flood');
  try {
    await p.startGe('b', 'vb', { keys: [[1, 1, randomBytes(32)]], nodeArgs: (process.env.GSCIP_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) });
    const child = (p.ges as unknown as { ges: Map<string, ChildProcess> }).ges.get('b')!;
    const pid = child.pid!;
    const pcap = `/tmp/${p.topo.prefix}-flood.pcap`;
    // Every control message b sends (both transports: a DDE is UDP 7253 now); headers only, so the ring holds
    // thousands; the count is read from the file as it grows, and a capture that lost frames fails the bench.
    const dump = await Capture.start(p.topo, { host: 'b', iface: 'vb', direction: 'out', snaplen: 128, filter: CONTROL_PCAP_FILTER, file: pcap });
    const pitSize = (): number => {
      const m = p.maps('b');
      try { let n = 0; for (const _ of m.pit.entries()) n++; return n; } finally { m.close(); }
    };
    const ddes = (): number => {
      if (!existsSync(pcap)) return 0;
      const b = readFileSync(pcap);
      let n = 0;
      for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) n++;
      return n;
    };
    const samples: Array<{ t: number; phase: string; rssMb: number; cpuPct: number; pit: number; ddes: number }> = [];
    let last = procStats(pid);
    const sample = (t: number, phase: string) => {
      const s = procStats(pid);
      samples.push({ t, phase, rssMb: Math.round(s.rssMb * 10) / 10, cpuPct: Math.round((s.cpuS - last.cpuS) * 100), pit: pitSize(), ddes: ddes() });
      last = s;
      const x = samples[samples.length - 1];
      console.log(`t=${String(t).padStart(3)} s ${phase.padEnd(6)} rss ${x.rssMb.toFixed(1).padStart(6)} MB  cpu ${String(x.cpuPct).padStart(3)} %  pit ${String(x.pit).padStart(7)}  DDEs sent ${x.ddes}`);
    };
    for (let t = -2; t < 0; t++) { await new Promise((r) => setTimeout(r, 1_000)); sample(t, 'base'); }
    if (process.env.GSCIP_BENCH_SMAPS) console.log(`baseline mappings of the agent (RSS kB):\n${largestMappings(pid).join('\n')}`);
    let t = 0;
    let floodEnd = 0;
    let sent = 0;
    const floodEnds: number[] = [];
    for (let k = 0; k < repeat; k++) {
      const flood = p.topo.spawn('a', 'node', ['-e', floodScript(A, B, rate, seconds)]);
      let floodOut = '';
      flood.stdout?.on('data', (d: Buffer) => { floodOut += d.toString(); });
      let floodDone = false;
      flood.once('exit', () => { floodDone = true; });
      const t0 = t;
      for (; !floodDone && t - t0 < seconds * 3; t++) { await new Promise((r) => setTimeout(r, 1_000)); sample(t + 1, `flood${k + 1}`); }
      while (!floodDone) await new Promise((r) => setTimeout(r, 100));
      sent += Number(floodOut) || 0;
      floodEnd = t;
      floodEnds.push(t);
      for (let i = 0; i < after; i++, t++) { await new Promise((r) => setTimeout(r, 1_000)); sample(t + 1, 'after'); }
    }
    if (process.env.GSCIP_BENCH_SMAPS) console.log(p.ges.output('b').split('\n').filter((l) => l.includes('memory handed back') || l.includes('heap figures')).map((l) => l.replace(/^.*"rssMb"/, '{"rssMb"').replace(/,"msg".*$/, '}')).join('\n'));
    if (process.env.GSCIP_BENCH_SMAPS) console.log(`mappings of the agent after (RSS kB):\n${largestMappings(pid).join('\n')}`);
    await dump.stop();
    dump.pcap();
    const totalDdes = ddes();
    rmSync(pcap, { force: true });
    const base = samples.filter((s) => s.phase === 'base');
    const peak = (k: 'rssMb' | 'pit') => Math.max(...samples.map((s) => s[k]));
    const end = samples[samples.length - 1];
    const lastAfter = samples.filter((s) => s.t > floodEnd);
    const settled = lastAfter.find((s) => s.pit <= (base[base.length - 1]?.pit ?? 0));
    const cpuCalm = lastAfter.find((s) => s.cpuPct < 10);
    // The figure: RSS 10 s after each flood's end (or `after` s, if shorter).
    const measureAt = Math.min(10, after);
    const rssAfter = floodEnds.map((e) => samples.find((s) => s.t === e + measureAt)?.rssMb);
    const result = {
      rate, seconds, repeat, sent,
      /** RSS 10 s after each flood (or `after` s): flat from one flood to the next = the heap is reused, not leaked. */
      rssAfterEachFloodMb: rssAfter,
      baseline: { rssMb: base[base.length - 1]?.rssMb, pit: base[base.length - 1]?.pit },
      peak: { rssMb: peak('rssMb'), pit: peak('pit') },
      end: { rssMb: end.rssMb, pit: end.pit, cpuPct: end.cpuPct },
      pitBackToBaselineAfterS: settled ? settled.t - floodEnd : null,
      cpuUnder10PctAfterS: cpuCalm ? cpuCalm.t - floodEnd : null,
      ddesSent: totalDdes,
      samples,
    };
    const baseRss = result.baseline.rssMb ?? 0;
    const vsBase = rssAfter.map((r) => (r === undefined || !baseRss ? '?' : `${r >= baseRss ? '+' : ''}${(((r - baseRss) / baseRss) * 100).toFixed(1)} %`));
    console.log(`\nRSS ${measureAt} s after each flood against the baseline ${baseRss} MB: ${vsBase.join(', ')} (target: within 10 %)`);
    console.log(`${repeat} x flood, ${result.sent} new flows in all at ${rate}/s: PIT ${result.baseline.pit} -> peak ${result.peak.pit} -> ${result.end.pit} (baseline again ${result.pitBackToBaselineAfterS ?? 'not'} s after); `
      + `RSS ${result.baseline.rssMb} -> peak ${result.peak.rssMb} -> ${result.end.rssMb} MB (after each flood: ${rssAfter.join(', ')}); CPU < 10 % ${result.cpuUnder10PctAfterS ?? 'never'} s after; DDEs sent ${totalDdes}`);
    const dir = resolve(__dirname, '../../bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, 'dprp-flood.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await p.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
