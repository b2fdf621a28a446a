/**
 * Issue 11 items 3-4 on the pure node (test/unit/dprp-sim.ts, virtual time):
 * no reflection (a DDE answered only to the packet's source, which must be the
 * start GE it names; never a send to multicast, broadcast, loopback, 0/8 or an
 * own address), answers limited per source, DDEs per destination, flows no key
 * authenticated capped and short-lived; each refusal counted. Plus the pure
 * pieces: the token-bucket table and the address classifier. Every send is
 * recorded (the sim's transport wrapped), so "nothing else was sent" is checked
 * on all of it, including what the sim would drop (no such address).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, fig6Nodes } from './dprp-sim.js';
import { encode, MsgType, WireAction, WireRole, type DprpMessage, type Flow } from '../../controlplane/dprp/wire.js';
import { RateLimiter } from '../../controlplane/dprp/rate-limit.js';
import { specialAddress } from '../../controlplane/dprp/addr-guard.js';
import { RouteTable, directedBroadcast } from '../../controlplane/dprp/routes.js';
import type { DprpConfig } from '../../controlplane/dprp/node.js';

const WALL0 = 1_700_000_000_000;
const ATTACKER = '198.18.0.66'; // a non-member host (not a GE of the sim)

interface Sent { from: string; dst: string; src: string; bytes: number; type: number }

/** A sim whose every send (whatever its destination) is recorded. */
function hostileSim(config: Partial<DprpConfig> = {}): { sim: Sim; sent: Sent[] } {
  const sim = new Sim(fig6Nodes(), config);
  const sent: Sent[] = [];
  const s = sim as unknown as { send(from: string, dst: string, icmp: Buffer, src?: string): void };
  const orig = s.send.bind(sim);
  s.send = (from, dst, icmp, src) => {
    sent.push({ from, dst, src: src ?? sim.addr(from), bytes: 20 + icmp.length, type: icmp[9] });
    orig(from, dst, icmp, src);
  };
  return { sim, sent };
}

let negSeq = 0;
function forgedDde(sim: Sim, startGe: string, flow: Flow): Buffer {
  const m: DprpMessage = {
    type: MsgType.DDE, flags: 0, attempt: 1, negId: Buffer.from((0x5100000000000000n + BigInt(negSeq++)).toString(16), 'hex'),
    timestampMs: WALL0 + sim.time.now, flow, status: 0, startGe, endGe: '0.0.0.0',
    records: [{ addr: startGe, geType: 'GES', mode: 'OP', flags: 0, tags: [], options: [] }], actions: [], seal: null, options: [],
  };
  return encode(m);
}

/** The forger's unsigned PASS MPIT for the negotiation its DDE `dde` opened at `endGe`. */
function unsignedPassMpit(sim: Sim, dde: Buffer, flow: Flow, endGe: string): DprpMessage {
  return {
    type: MsgType.MPIT, flags: 0, attempt: 1, negId: Buffer.from(dde.subarray(12, 20)), timestampMs: WALL0 + sim.time.now, flow, status: 0,
    startGe: ATTACKER, endGe, records: [], seal: null, options: [],
    actions: [{ addr: endGe, action: WireAction.PASS, role: WireRole.END, flags: 0, selector: Buffer.alloc(16), mac: Buffer.alloc(16) }],
  };
}

const flowTo = (daddr: string, sport: number, saddr = ATTACKER): Flow => ({ saddr, daddr, sport, dport: 80, proto: 17 });

describe('issue 11: no reflection, bounded state (pure node)', { timeout: 30_000 }, () => {
  test('address classifier: multicast, broadcast/reserved, loopback, 0/8 are never destinations; unicast is', () => {
    for (const a of ['224.0.0.1', '239.255.255.250', '255.255.255.255', '240.0.0.1', '127.0.0.1', '127.9.9.9', '0.0.0.0', '0.1.2.3']) assert.notEqual(specialAddress(a), null, a);
    for (const a of ['192.0.2.1', '198.51.100.10', '203.0.113.255', '100.64.0.1', '198.18.0.1', '223.255.255.255']) assert.equal(specialAddress(a), null, a);
    assert.equal(directedBroadcast('192.0.2.11', 24), '192.0.2.255');
    assert.equal(directedBroadcast('100.64.1.2', 10), '100.127.255.255');
    const rt = new RouteTable({ routes: [], addrs: [{ dev: 'eth0', addr: '192.0.2.11', len: 24 }, { dev: 'eth1', addr: '198.51.100.1', len: 32 }] });
    assert.ok(rt.isOwnOrBroadcast('192.0.2.255') && rt.isOwnOrBroadcast('198.51.100.1') && rt.isOwnOrBroadcast('192.0.2.11'));
    assert.ok(!rt.isOwnOrBroadcast('192.0.2.12'));
  });

  test('token buckets: burst then rate per key; a full table refuses new keys until buckets idle back to full are pruned', () => {
    const l = new RateLimiter({ burst: 3, ratePerSec: 2, maxKeys: 2 });
    assert.deepEqual([0, 0, 0, 0].map(() => l.take('a', 0)), ['ok', 'ok', 'ok', 'limited']);
    assert.equal(l.take('a', 499), 'limited');
    assert.equal(l.take('a', 500), 'ok'); // one token per 500 ms
    assert.equal(l.take('b', 500), 'ok');
    assert.equal(l.take('c', 500), 'full'); // a and b are not back to full: neither is forgotten
    assert.equal(l.take('c', 2_000), 'ok'); // both refilled by now: pruned, room for c
    assert.equal(l.size, 1);
  });

  test('token buckets: the prune runs at most every 100 ms, and frees only buckets back to full', () => {
    const l = new RateLimiter({ burst: 2, ratePerSec: 1, maxKeys: 2 });
    l.take('a', 0);
    l.take('b', 0);
    assert.equal(l.take('c', 0), 'full');
    assert.equal(l.take('c', 50), 'full'); // no prune within 100 ms
    assert.equal(l.take('c', 1_000), 'ok'); // a and b back to 2 of 2 at t = 1 s: pruned
    assert.equal(l.size, 1);
  });

  test('a forged DDE naming a start GE that is not the packet source is refused (source_mismatch): nothing is sent', () => {
    const { sim, sent } = hostileSim();
    const ges2 = sim.addr('GES2');
    for (const victim of ['198.51.100.10', sim.addr('GES1'), '203.0.113.10']) {
      sim.inject('GES2', forgedDde(sim, victim, flowTo(ges2, 1000)), { src: ATTACKER, dst: ges2 });
    }
    sim.time.advance(1_000);
    assert.deepEqual(sent, []);
    assert.deepEqual(sim.ge('GES2').obs.rejections, ['source_mismatch', 'source_mismatch', 'source_mismatch']);
  });

  test('multicast, broadcast, loopback, 0/8 and own addresses inside a body are refused (forbidden_address) before anything is sent', () => {
    const { sim, sent } = hostileSim();
    const gen = sim.addr('GEN');
    for (const bad of ['224.0.0.1', '255.255.255.255', '127.0.0.1', '0.0.0.0', '239.1.2.3']) {
      // as the start GE (the RGI would go there), spoofed consistently in the IP header too
      sim.inject('GEN', forgedDde(sim, bad, flowTo(gen, 2000, bad)), { src: bad, dst: gen });
      // as the flow's destination (a relay would forward there)
      sim.inject('GEN', forgedDde(sim, ATTACKER, flowTo(bad, 2001)), { src: ATTACKER, dst: bad });
    }
    sim.time.advance(1_000);
    assert.deepEqual(sent, []);
    const rej = sim.ge('GEN').obs.rejections;
    assert.equal(rej.length, 10);
    assert.ok(rej.every((r) => r === 'forbidden_address'), rej.join(','));
  });

  test('a DDE sent to the GE itself naming another destination is refused (destination_mismatch), not forwarded', () => {
    const { sim, sent } = hostileSim();
    const gen = sim.addr('GEN');
    sim.inject('GEN', forgedDde(sim, ATTACKER, flowTo('203.0.113.10', 3000)), { src: ATTACKER, dst: gen });
    sim.time.advance(100);
    assert.deepEqual(sent, []);
    assert.deepEqual(sim.ge('GEN').obs.rejections, ['destination_mismatch']);
  });

  test('answers are limited per source: a flood of consistent DDEs from one source gets burst + rate x t RGIs, the rest counted; bytes out < bytes in', () => {
    const burst = 8;
    const { sim, sent } = hostileSim({ answerLimit: { burst, ratePerSec: 4, maxKeys: 16 } });
    const ges2 = sim.addr('GES2');
    let bytesIn = 0;
    const n = 200;
    for (let i = 0; i < n; i++) {
      const b = forgedDde(sim, ATTACKER, flowTo(ges2, 10_000 + i));
      bytesIn += 20 + b.length;
      sim.inject('GES2', b, { src: ATTACKER, dst: ges2 });
      sim.time.advance(10); // 2 s in all
    }
    const rgis = sent.filter((s) => s.type === MsgType.RGI);
    assert.ok(rgis.every((s) => s.dst === ATTACKER), 'answers only to the packet source');
    assert.ok(rgis.length <= burst + 4 * 2 + 1, `${rgis.length} RGIs`);
    const limited = sim.ge('GES2').obs.rejections.filter((r) => r === 'answer_rate_limited').length;
    assert.equal(limited + rgis.length, n);
    const out = sent.reduce((a, s) => a + s.bytes, 0);
    const one = sent[0].bytes / (bytesIn / n);
    console.log(`# sim: ${n} forged DDEs in (${bytesIn} B), ${rgis.length} RGIs out (${out} B): amplification ${(out / bytesIn).toFixed(3)} overall, ${one.toFixed(3)} for one answered DDE`);
    assert.ok(out / bytesIn <= 1);
  });

  test('a member-to-member negotiation through a GEN still completes: the relayed DDE keeps the start GE as its source', () => {
    const { sim, sent } = hostileSim();
    sim.connect('GES1', 'Term', 6, 40000, 80);
    sim.time.advance(500);
    assert.deepEqual(sim.ge('GES1').obs.completions.map((c) => c.outcome), ['encrypted']);
    const dde = sent.filter((s) => s.type === MsgType.DDE);
    assert.ok(dde.length >= 2 && dde.every((s) => s.src === sim.addr('GES1')), JSON.stringify(dde));
    assert.deepEqual(sim.ge('GEN').obs.rejections, []);
  });

  test('DDEs for flows a remote host starts are limited per destination: burst + rate x t DDEs, the rest decided as if unanswered (counted); local flows are not', () => {
    const burst = 10;
    const { sim, sent } = hostileSim({ ddeLimit: { burst, ratePerSec: 5, maxKeys: 16 } });
    const g = sim.ge('GES1');
    const internet = sim.addr('internet');
    for (let i = 0; i < 300; i++) {
      // an ingress miss: internet -> GES1, negotiated from GES1 toward internet
      g.node.onPitMiss({ saddr: sim.addr('GES1'), daddr: internet, sport: 53, dport: 20_000 + i, proto: 17 }, `in${i}`, true);
      sim.time.advance(10); // 3 s
    }
    sim.time.advance(1_000);
    const dde = sent.filter((s) => s.type === MsgType.DDE && s.dst === internet);
    // each negotiation sends up to maxSends (4) DDEs, all from the same bucket
    assert.ok(dde.length <= burst + 5 * 4 + 1, `${dde.length} DDEs`);
    assert.ok(g.obs.suppressions.filter((r) => r === 'dde_rate_limited').length >= 250, `${g.obs.suppressions.length} suppressed`);
    assert.equal(g.obs.completions.filter((c) => c.outcome === 'no_end_ge').length, 300, 'every flow decided (OP: plaintext), none failed');
    // A local host's flows to one destination are not limited (bounded by maxNegotiations).
    const before = sent.length;
    for (let i = 0; i < 100; i++) sim.connect('GES1', 'GES2', 17, 30_000 + i, 53);
    sim.time.advance(500);
    const local = sent.filter((s, i) => i >= before && s.type === MsgType.DDE);
    assert.equal(local.filter((s) => s.from === 'GES1' && s.dst === sim.addr('GES2')).length, 100, 'one DDE each: the members\' DDEs are answered beyond the answer limit too');
    assert.equal(g.obs.completions.filter((c) => c.outcome === 'encrypted').length, 100);
  });

  test('a PIT miss toward a multicast or broadcast destination sends no DDE (no GE answers there): decided alone', () => {
    const { sim, sent } = hostileSim();
    const g = sim.ge('GES1');
    g.node.onPitMiss({ saddr: sim.addr('GES1'), daddr: '224.0.0.251', sport: 5353, dport: 5353, proto: 17 }, 'h-m');
    g.node.onPitMiss({ saddr: sim.addr('GES1'), daddr: '255.255.255.255', sport: 68, dport: 67, proto: 17 }, 'h-b');
    sim.time.advance(1_000);
    assert.deepEqual(sent, []);
    assert.deepEqual(g.obs.completions.map((c) => c.outcome), ['no_end_ge', 'no_end_ge']);
  });

  test('flows no key authenticated: capped (refused beyond, counted), and gone after unauthIdleTimeoutMs, not idleTimeoutMs', () => {
    const cap = 5;
    const { sim } = hostileSim({ maxUnauthFlows: cap, unauthIdleTimeoutMs: 3_000, maxSends: 1 });
    const g = sim.ge('GES1');
    const internet = sim.addr('internet');
    // New flows the remote (internet) started: ingress misses, negotiated from GES1 toward it.
    for (let i = 0; i < 12; i++) g.node.onPitMiss({ saddr: sim.addr('GES1'), daddr: internet, sport: 53, dport: 30_000 + i, proto: 17 }, `in${i}`, true);
    sim.time.advance(1_000); // DDEs unanswered: decided alone (OP: plaintext)
    assert.equal(g.node.flowRecords().length, cap);
    assert.equal(g.obs.failures.filter((r) => r === 'unauth_flows_full').length, 12 - cap);
    // A local host's plaintext flows are not on a peer's behalf: neither capped nor short-lived.
    sim.connect('GES1', 'internet', 6, 45000, 443);
    sim.time.advance(1_000);
    assert.equal(g.node.flowRecords().length, cap + 1);
    // An authenticated flow is not held back by the cap.
    sim.connect('GES1', 'GES2', 6, 40000, 443);
    sim.time.advance(500);
    assert.ok(g.node.flowRecords().some((r) => r.decision === 'encrypt'));
    for (let s = 0; s < 4; s++) {
      sim.time.advance(1_000);
      g.node.sweep();
    }
    const left = g.node.flowRecords();
    assert.deepEqual(left.map((r) => `${r.decision}:${r.flow.dport}`).sort(), ['encrypt:443', 'pass:443'], 'the remote\'s plaintext flows expired after 3 s idle; the encrypted one and the local host\'s stay');
  });

  test('a forged DDE + unsigned PASS MPIT for a flow two members encrypt never downgrades it: the end GE keeps its entries, answers, counts it', () => {
    const { sim, sent } = hostileSim();
    const ges1 = sim.addr('GES1');
    const ges2 = sim.addr('GES2');
    sim.connect('GES1', 'GES2', 6, 40000, 443);
    sim.time.advance(500);
    const flow: Flow = { saddr: ges1, daddr: ges2, sport: 40000, dport: 443, proto: 6 };
    const g = sim.ge('GES2');
    const before = ['ingress', 'egress'].map((d) => sim.pitOf('GES2', flow, d as 'ingress')?.action).join(',');
    assert.ok(before.startsWith('decrypt'), `GES2 decrypts the members' flow on its ingress: ${before}`);
    const back = ['ingress', 'egress'].map((d) => sim.pitOf('GES2', { saddr: ges2, daddr: ges1, sport: 443, dport: 40000, proto: 6 }, d as 'ingress')?.action).join(',');
    // The attacker (or a GE of another group on the path) negotiates the same CID and says PASS, unsigned.
    const dde = forgedDde(sim, ATTACKER, flow);
    sim.inject('GES2', dde, { src: ATTACKER, dst: ges2 });
    const mpit = unsignedPassMpit(sim, dde, flow, ges2);
    const sentBefore = sent.length;
    sim.inject('GES2', encode(mpit), { src: ATTACKER, dst: ges2 });
    assert.equal(['ingress', 'egress'].map((d) => sim.pitOf('GES2', flow, d as 'ingress')?.action).join(','), before, 'the members\' flow is still decrypted');
    assert.equal(['ingress', 'egress'].map((d) => sim.pitOf('GES2', { saddr: ges2, daddr: ges1, sport: 443, dport: 40000, proto: 6 }, d as 'ingress')?.action).join(','), back, 'and encrypted back');
    assert.equal(g.obs.downgradesRefused, 1, 'counted');
    assert.ok(sent.slice(sentBefore).some((x) => x.type === MsgType.CDN && x.dst === ATTACKER), `the MPIT is answered (a GE of another group on the path completes its own negotiation): ${JSON.stringify(sent.slice(sentBefore))}`);
    // The same word for a flow GES2 does not encrypt is still taken (a non-member's plaintext flow, capped).
    const other = flowTo(ges2, 5999);
    const dde2 = forgedDde(sim, ATTACKER, other);
    sim.inject('GES2', dde2, { src: ATTACKER, dst: ges2 });
    sim.inject('GES2', encode({ ...mpit, negId: Buffer.from(dde2.subarray(12, 20)), flow: other }), { src: ATTACKER, dst: ges2 });
    assert.equal(sim.pitOf('GES2', other, 'ingress')?.action, 'pass');
    assert.equal(g.obs.downgradesRefused, 1);
  });

  test('an end GE holds at most maxUnauthFlows flows made by forged DDE + unsigned PASS MPIT pairs; the rest are refused (unauth_flows_full)', () => {
    const cap = 4;
    const { sim } = hostileSim({ maxUnauthFlows: cap });
    const ges2 = sim.addr('GES2');
    for (let i = 0; i < 10; i++) {
      const flow = flowTo(ges2, 5000 + i);
      const dde = forgedDde(sim, ATTACKER, flow);
      sim.inject('GES2', dde, { src: ATTACKER, dst: ges2 });
      const mpit = unsignedPassMpit(sim, dde, flow, ges2);
      sim.inject('GES2', encode(mpit), { src: ATTACKER, dst: ges2 });
    }
    const g = sim.ge('GES2');
    assert.equal(g.node.flowRecords().length, cap);
    assert.equal(g.obs.rejections.filter((r) => r === 'unauth_flows_full').length, 10 - cap);
  });
});
