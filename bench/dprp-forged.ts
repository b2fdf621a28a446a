/**
 * bench/dprp-forged: bytes a GES sends per byte a non-member sends it, under a
 * sustained stream of forged and mutated DPRP messages (issue 11 item 4's
 * "worst-case bytes out per unauthenticated byte in", target <= 1):
 *
 *   a (192.0.2.1, no GSCIP: the forger) --- r --- (203.0.113.2) b (GES, OP, default limits)
 *
 * a sends `--rate` packets/s for `--seconds`, the mix of test/netns/dprp-hostile
 * (test/lib/forged-dprp.ts) repeated with fresh negotiation ids and flows:
 * per round of 20, 2 DDEs whose bodies name a special address, 1 naming a
 * victim, 10 consistent DDEs (answerable), 2 unsigned PASS MPITs for them, 5
 * mutants of a consistent DDE. Bytes in and out are b's interface counters
 * (IP bytes: frame bytes less 14 per frame), so nothing is lost to a capture;
 * that no packet goes to an address named only in a body is the test's
 * assertion. Printed: the amplification over the run, per second, the worst
 * second, and b's rejections by reason. Also the first second alone: the
 * per-source answer limit's burst (64) lets the first answers through.
 *
 *   node dist/bench/dprp-forged.js [--rate 2000] [--seconds 10]
 * Needs root. Writes bench/results/dprp-forged.json. Bounded: rate x seconds packets.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { A, B, DprpTopo, metricsText } from '../test/netns/dprp-topology.js';
import { waitFor } from '../test/lib/netns.js';
import { prng } from '../test/lib/prng.js';
import { ForgedDprp, specialAddresses, VICTIM } from '../test/lib/forged-dprp.js';
import { encode } from '../controlplane/dprp/wire.js';
import { intArg } from './args.js';

process.env.GSCIP_LOG_LEVEL ??= 'warn';
const DIST = resolve(__dirname, '..');

/** One round of the mix (20 packets). */
function round(f: ForgedDprp, k: number, rnd: () => number): Buffer[] {
  const specials = specialAddresses('203.0.113.255');
  const s = specials[k % specials.length];
  const sport = (n: number) => 1024 + ((k * 20 + n) % 60000);
  const consistent = Array.from({ length: 10 }, (_, i) => f.dde(A, f.flowTo(B, sport(i))));
  const base = encode(f.dde(A, f.flowTo(B, sport(10))));
  return [
    f.packet(f.dde(s, f.flowTo(B, sport(11)))), f.packet(f.dde(A, f.flowTo(s, sport(12)))),
    f.packet(f.dde(VICTIM, f.flowTo(B, sport(13)))),
    ...consistent.map((m) => f.packet(m)),
    ...consistent.slice(0, 2).map((m) => f.packet(f.unsignedPassMpit(m))),
    ...Array.from({ length: 5 }, (_, i) => f.packet(ForgedDprp.mutant(base, rnd, i % 2 === 0))),
  ];
}

/** The sender in a: length-prefixed packets from a file, paced per 10 ms, over a raw socket. */
function senderScript(file: string, rate: number): string {
  const libc = resolve(DIST, 'controlplane/bpf/libc.js');
  return `
const l = require(${JSON.stringify(libc)}); const b = require('node:fs').readFileSync(${JSON.stringify(file)});
const pk = []; for (let o = 0; o < b.length; o += 2 + b.readUInt16BE(o)) pk.push(b.subarray(o + 2, o + 2 + b.readUInt16BE(o)));
const fd = l.socket(l.AF_INET, l.SOCK_RAW, l.IPPROTO_RAW); l.setsockoptU32(fd, l.IPPROTO_IP, l.IP_HDRINCL, 1);
const a = Buffer.alloc(16); a.writeUInt16LE(l.AF_INET, 0); Buffer.from([203, 0, 113, 2]).copy(a, 4);
let sent = 0; const t0 = Date.now();
function tick() {
  const due = Math.min(pk.length, Math.round(((Date.now() - t0) / 1000) * ${rate}) + Math.ceil(${rate} / 100));
  while (sent < due) { try { l.sendto(fd, pk[sent], a); } catch {} sent++; }
  if (sent < pk.length) setTimeout(tick, 10); else { l.closeFd(fd); process.stdout.write(String(sent)); }
}
tick();`;
}

function ifStats(p: DprpTopo): { rxBytes: number; rxPackets: number; txBytes: number; txPackets: number } {
  const j = JSON.parse(p.topo.exec('b', 'ip', ['-j', '-s', 'link', 'show', 'vb']).stdout) as Array<{ stats64: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } } }>;
  const s = j[0].stats64;
  return { rxBytes: s.rx.bytes, rxPackets: s.rx.packets, txBytes: s.tx.bytes, txPackets: s.tx.packets };
}

async function main(): Promise<void> {
  const rate = intArg('rate', 2_000);
  const seconds = intArg('seconds', 10);
  const p = new DprpTopo('forged');
  const file = `/tmp/${p.topo.prefix}-forged.bin`;
  try {
    await p.startGe('b', 'vb', { keys: [[1, 1, randomBytes(32)], [2, 1, randomBytes(32)]], metrics: true });
    await waitFor('metrics in b', () => metricsText(p.topo, 'b').includes('gscip_dprp'), 10_000);
    const f = new ForgedDprp(A, B);
    const rnd = prng(0xf0e);
    const pkts: Buffer[] = [];
    for (let k = 0; pkts.length < rate * seconds; k++) pkts.push(...round(f, k, rnd));
    pkts.length = rate * seconds;
    writeFileSync(file, Buffer.concat(pkts.flatMap((x) => { const h = Buffer.alloc(2); h.writeUInt16BE(x.length); return [h, x]; })));
    await new Promise((r) => setTimeout(r, 500));
    const s0 = ifStats(p);
    const sender = p.topo.spawn('a', 'node', ['-e', senderScript(file, rate)]);
    let done = false;
    sender.once('exit', () => { done = true; });
    const perSecond: Array<{ t: number; inBytes: number; outBytes: number; amp: number }> = [];
    let prev = s0;
    for (let t = 1; t <= seconds * 3 + 2 && (!done || t <= seconds + 2); t++) {
      await new Promise((r) => setTimeout(r, 1_000));
      const s = ifStats(p);
      const inB = (s.rxBytes - prev.rxBytes) - 14 * (s.rxPackets - prev.rxPackets);
      const outB = (s.txBytes - prev.txBytes) - 14 * (s.txPackets - prev.txPackets);
      perSecond.push({ t, inBytes: inB, outBytes: outB, amp: inB > 0 ? outB / inB : 0 });
      console.log(`t=${String(t).padStart(3)} s  in ${String(inB).padStart(9)} B  out ${String(outB).padStart(8)} B  ${inB > 0 ? (outB / inB).toFixed(4) : '-'}`);
      prev = s;
      if (done && t > seconds + 1) break;
    }
    const s1 = ifStats(p);
    const inBytes = (s1.rxBytes - s0.rxBytes) - 14 * (s1.rxPackets - s0.rxPackets);
    const outBytes = (s1.txBytes - s0.txBytes) - 14 * (s1.txPackets - s0.txPackets);
    const sentBytes = pkts.reduce((a, x) => a + x.length, 0);
    const busy = perSecond.filter((x) => x.inBytes > 10_000);
    const worst = Math.max(...busy.map((x) => x.amp));
    const m = metricsText(p.topo, 'b');
    const rejected = m.split('\n').filter((l) => l.startsWith('gscip_dprp_messages_rejected_total{')).map((l) => l.replace('gscip_dprp_messages_rejected_total', '')).join(', ');
    const result = {
      rate, seconds, packetsSent: pkts.length, ipBytesSent: sentBytes, ipBytesIn: inBytes, ipBytesOut: outBytes, packetsOut: s1.txPackets - s0.txPackets,
      amplification: outBytes / inBytes, worstSecond: worst, firstSecond: perSecond[0]?.amp ?? null, perSecond, rejected,
    };
    console.log(`\n${pkts.length} forged packets (${sentBytes} B IP) at ${rate}/s for ${seconds} s; b received ${inBytes} B and sent ${outBytes} B in ${result.packetsOut} packets: `
      + `amplification ${result.amplification.toFixed(4)} (worst second ${worst.toFixed(4)}, first second ${result.firstSecond?.toFixed(4)}); target <= 1`);
    console.log(`b's rejections: ${rejected}`);
    const dir = resolve(__dirname, '../../bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, 'dprp-forged.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(file, { force: true });
    await p.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
