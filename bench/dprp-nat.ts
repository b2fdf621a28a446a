/**
 * bench/dprp-nat: what an unconfigured NAT on the path costs a GSCIP flow
 * (issue 11 item 1), in one run, the same two GES agents and path
 * (test/netns/nat-topology.ts) with and without the NAT:
 *
 *   direct  a (198.51.100.10) -> plain router n ("drop invalid") -> b
 *   nat     a (100.64.1.10)   -> nftables masquerade n (nf_conntrack_checksum=1,
 *                                "drop invalid", private sources counted) -> b
 *
 * Both with "drop invalid" host firewalls on a and b, software checksums on
 * every link. For each: first-connect latency of --flows fresh TCP
 * connections (each negotiates: new source port; p50/p99 ms), then iperf3,
 * one TCP stream for --seconds, PCCOM (ChaCha20) on, median of --rounds. The
 * figures are the ratios nat/direct, alternating the two topologies per round
 * so machine noise hits both. Also printed: whether anything leaked (private
 * sources at the NAT's leak rule, which must stay 0).
 *
 *   node dist/bench/dprp-nat.js [--flows 300] [--seconds 5] [--rounds 3]
 * Needs root. Writes bench/results/dprp-nat.json.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { waitFor } from '../test/lib/netns.js';
import { echoServer, runClients, waitReady } from '../test/netns/dprp-topology.js';
import { B, NatTopo } from '../test/netns/nat-topology.js';
import { exited } from '../test/netns/pccom-topology.js';
import { intArg } from './args.js';

process.env.GSCIP_LOG_LEVEL ??= 'warn';

const FLOWS = intArg('flows', 300);
const SECONDS = intArg('seconds', 5);
const ROUNDS = intArg('rounds', 3);
const ECHO_PORT = 7401;
const IPERF_PORT = 5201;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const median = (xs: number[]) => pct(xs, 50);

interface Side { name: 'direct' | 'nat'; p: NatTopo; connectMs: number[]; gbps: number[]; failures: number }

async function firstConnects(s: Side, cport: number): Promise<void> {
  const r = await runClients(s.p.topo, 'a', 'tcp', B, ECHO_PORT, FLOWS, cport, 'ping', 120_000);
  if (!r.ok) s.failures++;
  s.connectMs.push(...r.connectMs);
}

async function iperf(s: Side, cport: number): Promise<void> {
  const t = s.p.topo;
  const srv = t.spawn('b', 'iperf3', ['-s', '-1', '-p', String(IPERF_PORT)]);
  await waitFor('iperf3 server', () => t.exec('b', 'ss', ['-Hltn', `sport = :${IPERF_PORT}`]).stdout.includes('LISTEN'), 5000, 50);
  const r = t.exec('a', 'iperf3', ['-c', B, '-p', String(IPERF_PORT), '--cport', String(cport), '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 });
  await exited(srv, 5000);
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  s.gbps.push(j.end.sum_received.bits_per_second / 1e9);
}

async function main(): Promise<void> {
  const key = randomBytes(32);
  const sides: Side[] = [];
  try {
    for (const name of ['direct', 'nat'] as const) {
      const p = new NatTopo(`bnat${name[0]}`, { nat: name === 'nat' });
      sides.push({ name, p, connectMs: [], gbps: [], failures: 0 });
      await waitReady(echoServer(p.topo, 'b', 'tcp', ECHO_PORT), 'tcp echo');
      await p.ges.start('a', ['va'], { keys: [[1, 1, key]] });
      await p.ges.start('b', ['vb'], { keys: [[1, 1, key]] });
    }
    // Warm-up: one flow each (JIT, first route and neighbour lookups).
    for (const s of sides) await runClients(s.p.topo, 'a', 'tcp', B, ECHO_PORT, 20, 10_000, 'warm', 60_000);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) await firstConnects(s, 20_000 + round * FLOWS);
      for (const s of order) await iperf(s, 50_000 + round);
    }
    const [d, n] = sides;
    const leaked = n.p.nftCounter('n', 'saddr 100.64.0.0/10');
    const res = {
      machine: 'this VM (2 vCPUs), other work running; ratios from one run',
      flowsPerRound: FLOWS, rounds: ROUNDS, seconds: SECONDS,
      direct: { connectP50Ms: r3(pct(d.connectMs, 50)), connectP99Ms: r3(pct(d.connectMs, 99)), gbps: d.gbps.map(r3), failures: d.failures },
      nat: { connectP50Ms: r3(pct(n.connectMs, 50)), connectP99Ms: r3(pct(n.connectMs, 99)), gbps: n.gbps.map(r3), failures: n.failures, leakedPrivateSources: leaked },
      ratio: {
        connectP50: r3(pct(n.connectMs, 50) / pct(d.connectMs, 50)),
        connectP99: r3(pct(n.connectMs, 99) / pct(d.connectMs, 99)),
        throughput: r3(median(n.gbps) / median(d.gbps)),
      },
    };
    console.log(`first connect through GSCIP (${FLOWS} fresh TCP flows x ${ROUNDS} rounds, each negotiates):`);
    console.log(`  direct p50 ${res.direct.connectP50Ms} ms  p99 ${res.direct.connectP99Ms} ms   failures ${d.failures}`);
    console.log(`  nat    p50 ${res.nat.connectP50Ms} ms  p99 ${res.nat.connectP99Ms} ms   failures ${n.failures}`);
    console.log(`  nat/direct: p50 ${res.ratio.connectP50}x, p99 ${res.ratio.connectP99}x`);
    console.log(`iperf3 one TCP stream, PCCOM ChaCha20, ${SECONDS} s x ${ROUNDS} (Gbit/s): direct ${res.direct.gbps.join(' ')}  nat ${res.nat.gbps.join(' ')}`);
    console.log(`  nat/direct (medians): ${res.ratio.throughput}x`);
    console.log(`private sources that reached the NAT's leak rule: ${leaked} (must be 0)`);
    const out = resolve(__dirname, '../../bench/results/dprp-nat.json');
    writeFileSync(out, `${JSON.stringify(res, null, 2)}\n`);
    console.log(`wrote ${out}`);
  } finally {
    for (const s of sides) await s.p.cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
