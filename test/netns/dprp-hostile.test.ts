/**
 * Issue 11 items 3-4 on the real agent: a non-member host (a, no GSCIP) sends
 * forged and mutated DDEs, and unsigned PASS MPITs, to a GES (b: the real
 * agent, fast path and DPRP, one group key) across a plain router:
 *
 *   a (192.0.2.1, attacker) --- r --- (203.0.113.2) b (GES, OP)
 *
 * The bodies name multicast, broadcast (limited and b's directed broadcast),
 * loopback, 0.0.0.0, b itself and a victim (198.51.100.77) that exists
 * nowhere; as real packet destinations only b is ever used. A capture in b's
 * namespace of everything b sends out of its interface asserts: every IPv4
 * packet goes to a (the packet source), none to an address named only in a
 * body; bytes out / bytes in <= 1 (printed); the refusals are counted on
 * /metrics (forbidden_address, source_mismatch, destination_mismatch,
 * answer_rate_limited, unauth_flows_full, wire_*). Bounded: a fixed number of
 * packets, a time limit on the file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { prng } from '../lib/prng.js';
import { encode, MsgType } from '../../controlplane/dprp/wire.js';
import { IPPROTO_ICMP, parseIpv4 } from '../../controlplane/dprp/ipv4.js';
import { A, B, DprpTopo, injectFrom, RouterCapture } from './dprp-topology.js';
import { waitFor } from '../lib/netns.js';
import { ForgedDprp, specialAddresses, VICTIM } from '../lib/forged-dprp.js';

const unavailable = bpfUnavailable();
const B_BCAST = '203.0.113.255';
const SPECIALS = specialAddresses(B_BCAST);
const CONSISTENT = 300; // well-formed DDEs from a about b: answered up to the per-source limit
const MPITS = 40; // unsigned PASS MPITs for the first of them (beyond maxUnauthFlows: refused)
const MAX_UNAUTH = 12;
const MUTANTS = 300;

const forged = new ForgedDprp(A, B);
const dde = forged.dde.bind(forged);
const flowTo = forged.flowTo.bind(forged);
const ip = (m: Parameters<ForgedDprp['packet']>[0], dst = B): Buffer => forged.packet(m, dst);

function metricsOf(p: DprpTopo): string {
  return p.topo.exec('b', process.execPath, ['-e', "fetch('http://127.0.0.1:9464/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"]).stdout;
}
function counter(text: string, name: string, reason: string): number {
  const m = new RegExp(`^${name}\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('DPRP under forged and mutated DDEs from a non-member (namespaces): no reflection, no amplification, counted', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let p: DprpTopo;

  before(async () => {
    p = new DprpTopo('hostile');
    await p.startGe('b', 'vb', {
      keys: [[1, 1, randomBytes(32)], [2, 1, randomBytes(32)]], metrics: true,
      dprp: { maxUnauthFlows: MAX_UNAUTH, answerLimit: { burst: 16, ratePerSec: 8, maxKeys: 64 } },
    });
    await waitFor('metrics in b', () => metricsOf(p).includes('gscip_dprp'), 10_000);
  });

  after(async () => {
    await p?.cleanup();
  });

  test('every packet b sends goes to the packet source; none to a body address; bytes out / bytes in <= 1; refusals counted', async () => {
    const cap = await RouterCapture.start(p.topo, 'vb', 'b');
    const sent: Buffer[] = [];
    const send = (pkts: Buffer[]) => {
      for (let i = 0; i < pkts.length; i += 50) injectFrom(p.topo, 'a', pkts.slice(i, i + 50));
      sent.push(...pkts);
    };
    // 1. bodies naming addresses no GE sends to (as start GE, and as the flow's destination)
    send(SPECIALS.flatMap((s, i) => [ip(dde(s, flowTo(B, 1000 + i))), ip(dde(A, flowTo(s, 1100 + i)))]));
    // 2. a victim named only in the body: as start GE (the RGI would go there), as the destination (a relay would forward there)
    send([ip(dde(VICTIM, flowTo(B, 1200))), ip(dde(A, flowTo(VICTIM, 1201))), ip(dde(B, flowTo(B, 1202)))]);
    // 3. consistent DDEs (a about b): answered to a, up to the per-source limit
    const consistent = Array.from({ length: CONSISTENT }, (_, i) => dde(A, flowTo(B, 2000 + i)));
    send(consistent.slice(0, MPITS).map((m) => ip(m)));
    // 4. unsigned PASS MPITs for the first of them: flows no key authenticates, capped
    send(consistent.slice(0, MPITS).map((d) => ip(forged.unsignedPassMpit(d))));
    send(consistent.slice(MPITS).map((m) => ip(m)));
    // 5. mutants of a consistent DDE (half with the ICMP checksum fixed up, so they reach past it)
    const rnd = prng(0x11b);
    const base = encode(dde(A, flowTo(B, 3000)));
    const mutants: Buffer[] = [];
    for (let i = 0; i < MUTANTS; i++) mutants.push(ip(ForgedDprp.mutant(base, rnd, i % 2 === 0)));
    send(mutants);
    await new Promise((r) => setTimeout(r, 1_500));
    const frames = await cap.stop();

    // What b sent: the capture on vb holds both directions; b's packets are those with its source.
    const out = frames.map((f) => ({ f, ip: f.length > 14 && f.readUInt16BE(12) === 0x0800 ? parseIpv4(f.subarray(14)) : null }))
      .filter((x) => x.ip && x.ip.src !== A);
    const dsts = new Map<string, number>();
    for (const x of out) dsts.set(x.ip!.dst, (dsts.get(x.ip!.dst) ?? 0) + 1);
    assert.deepEqual([...dsts.keys()], [A], `b sent only to a, the packets' source: ${JSON.stringify(Object.fromEntries(dsts))}`);
    const srcs = new Set(out.map((x) => x.ip!.src));
    assert.deepEqual([...srcs], [B]);
    const bytesIn = sent.reduce((a, b) => a + b.length, 0);
    const bytesOut = out.reduce((a, x) => a + x.f.length - 14, 0);
    const amp = bytesOut / bytesIn;
    const rgis = out.filter((x) => x.ip!.proto === IPPROTO_ICMP && x.ip!.payload[0] === 253 && x.ip!.payload[1] === MsgType.RGI).length;
    const cdns = out.filter((x) => x.ip!.proto === IPPROTO_ICMP && x.ip!.payload[0] === 253 && x.ip!.payload[1] === MsgType.CDN).length;
    const oneRgi = out.find((x) => x.ip!.proto === IPPROTO_ICMP && x.ip!.payload[0] === 253 && x.ip!.payload[1] === MsgType.RGI);
    const oneDde = ip(consistent[0]).length;
    if (oneRgi) console.log(`# one answered DDE: ${oneDde} B in, ${oneRgi.f.length - 14} B out (RGI with b's 2 tags): ${((oneRgi.f.length - 14) / oneDde).toFixed(3)} per message, the worst case before the per-source limit`);
    console.log(`# ${sent.length} packets in (${bytesIn} B IP), ${out.length} out (${bytesOut} B IP: ${rgis} RGIs, ${cdns} CDNs): amplification ${amp.toFixed(3)}`);
    assert.ok(amp <= 1, `amplification ${amp}`);
    assert.ok(rgis >= 1, 'consistent DDEs are still answered (the limit lets a burst through)');
    assert.ok(cdns <= MAX_UNAUTH, `${cdns} CDNs: at most one per flow the cap admitted`);

    const m = metricsOf(p);
    const rej = (r: string) => counter(m, 'gscip_dprp_messages_rejected_total', r);
    console.log(`# rejected: ${m.split('\n').filter((l) => l.startsWith('gscip_dprp_messages_rejected_total{')).join(', ')}`);
    assert.ok(rej('forbidden_address') >= SPECIALS.length * 2, `forbidden_address ${rej('forbidden_address')}`);
    assert.ok(rej('source_mismatch') >= 2, 'the victim, and b itself, as start GE (neither is the packet source)');
    assert.ok(rej('destination_mismatch') >= 1, 'victim as destination');
    assert.ok(rej("answer_rate_limited") >= CONSISTENT / 2, `answer_rate_limited ${rej('answer_rate_limited')}`);
    assert.ok(rej('unauth_flows_full') >= 1, `unauth_flows_full ${rej('unauth_flows_full')}`);
    const wire = m.split('\n').filter((l) => l.startsWith('gscip_dprp_messages_rejected_total{reason="wire_')).reduce((a, l) => a + Number(l.split(' ')[1]), 0);
    assert.ok(wire >= MUTANTS / 4, `wire_* ${wire}`);
  });

  test('the flows the forged MPITs made are within maxUnauthFlows and gone after unauthIdleTimeoutMs (5 s)', async () => {
    const pitSize = () => {
      const maps = p.maps('b');
      try { return [...maps.pit.entries()].length; } finally { maps.close(); }
    };
    const n0 = pitSize();
    assert.ok(n0 <= MAX_UNAUTH * 4, `${n0} PIT entries (4 per flow at most)`);
    await waitFor('forged flows expire', () => pitSize() === 0, 20_000);
  });
});
