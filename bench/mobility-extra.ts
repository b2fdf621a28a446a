/**
 * bench/mobility-extra: the Mobile PPC figures besides the handover gap
 * (bench/mobility.ts), same topology (test/netns/mobility-topology.ts):
 *
 *  1. TCP throughput with the CIT + PCCOM vs PCCOM alone: one iperf3
 *     connection b -> a (b bound to its first address, PCCOM on), `--tput-s`
 *     seconds at home, then b moves and the same connection runs as long
 *     again through the CIT; the mean of the 1 s intervals of each half
 *     (the move's interval and the one after left out) and the ratio.
 *     Target >= 97 %.
 *  2. DDNS update to visible: BIND 9 on rc, `--ddns N` signed updates of b's
 *     name from b's namespace (ddns.ts, alternating two addresses), each timed
 *     from sending the update to the first A query to the server that
 *     answers the new address (dns-query.ts, what `dig` asks), and to the
 *     update's own answer. p50 / p99.
 *
 *   node dist/bench/mobility-extra.js [--tput-s 8] [--ddns 50]
 * Needs root. Writes bench/results/mobility-extra.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { waitFor } from '../test/lib/netns.js';
import { A, B_NEW, B_OLD, MobilityTopo } from '../test/netns/mobility-topology.js';
import { DnsServer } from '../test/netns/dns-server.js';
import { exited } from '../test/netns/pccom-topology.js';
import { intArg } from './args.js';

process.env.GSCIP_LOG_LEVEL ??= 'warn';
const DIST = resolve(__dirname, '..');
const r3 = (x: number) => Math.round(x * 1000) / 1000;
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function throughput(seconds: number): Promise<{ homeMbps: number; citMbps: number; ratio: number }> {
  const p = new MobilityTopo('mbtp');
  try {
    const key = randomBytes(32);
    await p.startGe('a', { keys: [[1, 1, key]] });
    await p.startGe('b', { keys: [[1, 1, key]] });
    const srv = p.topo.spawn('a', 'iperf3', ['-s', '-1', '-B', A, '-p', '7400']);
    await new Promise((r) => setTimeout(r, 500));
    const cli = p.topo.spawn('b', 'iperf3', ['-c', A, '-B', B_OLD, '-p', '7400', '--cport', '40400', '-t', String(2 * seconds + 2), '-i', '1', '-J']);
    let out = '';
    cli.stdout?.setEncoding('utf8');
    cli.stdout?.on('data', (d: string) => { out += d; });
    await new Promise((r) => setTimeout(r, seconds * 1000 + 500));
    p.moveToR2();
    await exited(cli, (2 * seconds + 20) * 1000);
    await exited(srv, 5000);
    const j = JSON.parse(out) as { intervals: Array<{ sum: { bits_per_second: number } }> };
    const bps = j.intervals.map((i) => i.sum.bits_per_second / 1e6);
    const home = bps.slice(1, seconds);
    const cit = bps.slice(seconds + 2);
    const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
    return { homeMbps: r3(mean(home)), citMbps: r3(mean(cit)), ratio: r3(mean(cit) / mean(home)) };
  } finally {
    await p.cleanup();
  }
}

const DDNS_LOOP = (n: number, server: string, keyName: string, secret: string): string => `
const { sendUpdate } = require(${JSON.stringify(resolve(DIST, 'controlplane/mobility/ddns.js'))});
const { queryA } = require(${JSON.stringify(resolve(DIST, 'controlplane/mobility/dns-query.js'))});
const key = { name: ${JSON.stringify(keyName)}, secret: Buffer.from(${JSON.stringify(secret)}, 'base64') };
(async () => {
  const out = [];
  for (let i = 0; i < ${n}; i++) {
    const addr = i % 2 ? ${JSON.stringify(B_OLD)} : ${JSON.stringify(B_NEW)};
    const t0 = performance.now();
    const sent = sendUpdate({ zone: 'example.net', name: 'b.example.net', addr, ttl: 30, key }, ${JSON.stringify(server)}).then((a) => ({ a, t: performance.now() - t0 }));
    let seen = -1;
    for (let k = 0; k < 5000 && seen < 0; k++) {
      const q = await queryA('b.example.net', ${JSON.stringify(server)});
      if (q.addrs.includes(addr)) seen = performance.now() - t0;
    }
    const u = await sent;
    out.push({ visibleMs: seen, answerMs: u.t, rcode: u.a.rcode });
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });`;

async function ddnsVisible(n: number): Promise<{ visibleP50: number; visibleP99: number; answerP50: number; refused: number }> {
  const p = new MobilityTopo('mbdns');
  const dns = new DnsServer(p.topo, 'rc', '203.0.113.254', { b: B_OLD });
  try {
    await dns.start();
    const k = dns.keys.get('b')!;
    const r = p.topo.exec('b', process.execPath, ['-e', DDNS_LOOP(n, '203.0.113.254', k.keyName, k.secret.toString('base64'))], { timeoutMs: 120_000 });
    const rows = JSON.parse(r.stdout.trim().split('\n').pop()!) as Array<{ visibleMs: number; answerMs: number; rcode: string }>;
    const ok = rows.filter((x) => x.rcode === 'NOERROR' && x.visibleMs >= 0);
    await waitFor('dig agrees with the last update', () => dns.lookup('b', 'b') === ((n - 1) % 2 ? B_OLD : B_NEW), 5000, 100);
    return { visibleP50: r3(pct(ok.map((x) => x.visibleMs), 50)), visibleP99: r3(pct(ok.map((x) => x.visibleMs), 99)), answerP50: r3(pct(ok.map((x) => x.answerMs), 50)), refused: rows.length - ok.length };
  } finally {
    await dns.stop();
    await p.cleanup();
  }
}

async function main(): Promise<void> {
  const seconds = intArg('tput-s', 8, 3);
  const n = intArg('ddns', 50);
  const tput = await throughput(seconds);
  console.log(`TCP throughput b -> a, PCCOM on: ${tput.homeMbps} Mbit/s before the move (PCCOM alone), ${tput.citMbps} Mbit/s after it (CIT + PCCOM), ratio ${tput.ratio} (target >= 0.97)`);
  const d = await ddnsVisible(n);
  console.log(`DDNS over ${n} updates: visible to an A query at the server p50 ${d.visibleP50} ms, p99 ${d.visibleP99} ms; the update's answer p50 ${d.answerP50} ms; not applied ${d.refused}`);
  const dir = resolve(__dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'mobility-extra.json'), `${JSON.stringify({ seconds, throughput: tput, ddns: { updates: n, ...d } }, null, 2)}\n`);
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
