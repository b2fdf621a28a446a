/**
 * Throughput cost of the fast path on the pass path: iperf3, one TCP stream,
 * over a veth pair between two namespaces, in the same run:
 *   baseline  - no programs attached;
 *   programs  - the agent attached on the client's interface (miss=punt with
 *               install-pass, so both iperf3 connections get PIT pass entries
 *               from their first packet), every data packet a PIT hit.
 * Modes alternate (baseline, programs, baseline, ...) so drift hits both.
 *
 *   node dist/bench/throughput-pass.js [--seconds 5] [--rounds 3]
 *
 * Prints both medians and the median of the per-round ratios (target >= 97 %), writes
 * bench/results/throughput-pass.json. Needs root, iperf3.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { resolve } from 'node:path';
import { Topology, waitFor } from '../test/lib/netns.js';
import { bpfUnavailable, defaultObjectPath } from '../test/lib/bpf-harness.js';
import { GscipRunner } from '../test/lib/agent-process.js';
import { table } from '../controlplane/cli/output.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const PORT = 5201;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name}: expected a positive integer`);
  return v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function iperf(topo: Topology, seconds: number): { gbps: number; retransmits: number } {
  const r = topo.exec('a', 'iperf3', ['-c', B, '-p', String(PORT), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } }; error?: string };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return { gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent.retransmits ?? 0 };
}

async function main(): Promise<void> {
  const why = bpfUnavailable();
  if (why) { process.stderr.write(`throughput-pass: skipped: ${why}\n`); return; }
  const seconds = arg('seconds', 5);
  const rounds = arg('rounds', 3);
  const topo = new Topology('tp');
  const g = new GscipRunner(topo, 'bench');
  try {
    topo.addHost('a');
    topo.addHost('b');
    topo.link('a', 'eth0', 'b', 'eth0');
    topo.addr('a', 'eth0', `${A}/24`);
    topo.addr('b', 'eth0', `${B}/24`);
    const server = topo.spawn('b', 'iperf3', ['-s', '-B', B, '-p', String(PORT)]);
    await waitFor('iperf3 server', () => topo.exec('b', 'ss', ['-ltn']).stdout.includes(`${B}:${PORT}`), 10_000);
    const runs: Array<{ mode: 'baseline' | 'programs'; gbps: number; retransmits: number; fastpath_pps?: number; bytes_per_packet?: number }> = [];
    let pitEntries = 0;
    for (let r = 0; r < rounds; r++) {
      runs.push({ mode: 'baseline', ...iperf(topo, seconds) });
      const agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'punt', '--handler', 'install-pass', '--metrics', 'none']);
      try {
        const res = iperf(topo, seconds);
        const pit = JSON.parse(g.ok('a', ['maps', 'dump', 'pit', '--json', ...g.instanceArgs()])) as unknown[];
        const stats = JSON.parse(g.ok('a', ['maps', 'dump', 'stats', '--json', ...g.instanceArgs()])) as Array<{ name: string; packets: string; bytes: string }>;
        const pass = stats.find((s) => s.name === 'pit_pass');
        const hits = Number(pass?.packets ?? 0);
        if (hits < 1000) throw new Error(`programs run: only ${hits} PIT pass hits: the traffic did not go through the fast path`);
        // Packets the programs ran on (both directions; GSO super-packets count once): with the
        // per-packet cost from bench/pit-lookup this bounds the CPU the fast path adds.
        runs.push({ mode: 'programs', ...res, fastpath_pps: Math.round(hits / seconds), bytes_per_packet: Math.round(Number(pass?.bytes ?? 0) / hits) });
        pitEntries = pit.length;
      } finally {
        await agent.stop('SIGTERM');
        g.ok('a', ['agent', 'detach', '--unpin', ...g.instanceArgs()]);
      }
    }
    server.kill('SIGKILL');
    const base = median(runs.filter((x) => x.mode === 'baseline').map((x) => x.gbps));
    const prog = median(runs.filter((x) => x.mode === 'programs').map((x) => x.gbps));
    // Each round pairs a baseline with the programs run right after it: the median of the
    // per-round ratios is less sensitive to load drifting between rounds than the ratio of medians.
    const pairRatios = runs.filter((x) => x.mode === 'programs').map((p, i) => p.gbps / runs.filter((x) => x.mode === 'baseline')[i].gbps);
    const ratio = median(pairRatios);
    const target = 0.97;
    process.stdout.write(`iperf3 TCP single stream, veth, ${seconds} s x ${rounds} rounds per mode (median)\n`);
    process.stdout.write(`${table(['MODE', 'GBIT/S', 'RUNS'], [
      ['baseline (no programs)', base.toFixed(2), runs.filter((x) => x.mode === 'baseline').map((x) => x.gbps.toFixed(2)).join(' ')],
      [`programs + PIT pass (${pitEntries} entries)`, prog.toFixed(2), runs.filter((x) => x.mode === 'programs').map((x) => x.gbps.toFixed(2)).join(' ')],
    ])}\n`);
    process.stdout.write(`ratio (median of per-round ratios ${pairRatios.map((r) => `${(r * 100).toFixed(0)}%`).join(' ')}): ${(ratio * 100).toFixed(1)} % ` +
      `(ratio of medians ${((prog / base) * 100).toFixed(1)} %; target >= ${target * 100} %): ${ratio >= target ? 'met' : 'NOT met'}\n`);
    const pr = runs.filter((x) => x.mode === 'programs');
    const pps = median(pr.map((x) => x.fastpath_pps ?? 0));
    process.stdout.write(`fast path ran on ${pps.toLocaleString('en-US')} packets/s (avg ${median(pr.map((x) => x.bytes_per_packet ?? 0))} bytes: GSO), ` +
      `load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs during the run\n`);
    const out = resolve(__dirname, '../../bench/results');
    mkdirSync(out, { recursive: true });
    writeFileSync(resolve(out, 'throughput-pass.json'), `${JSON.stringify({
      bench: 'throughput-pass', date: new Date().toISOString(), kernel: release(), cpu: cpus()[0]?.model ?? '?', cpus: cpus().length,
      object: defaultObjectPath(), seconds, rounds, unit: 'gbit_per_second', baseline_gbps: base, programs_gbps: prog, ratio, pair_ratios: pairRatios, ratio_of_medians: prog / base, target, target_met: ratio >= target,
      fastpath_pps: pps, loadavg_1m: loadavg()[0], runs,
    }, null, 2)}\n`);
  } finally {
    g.cleanup();
    topo.cleanupSync();
  }
}

main().catch((e: unknown) => { process.stderr.write(`throughput-pass: ${(e as Error).message}\n`); process.exitCode = 1; });
