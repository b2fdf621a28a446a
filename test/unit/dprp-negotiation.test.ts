/**
 * DPRP negotiation state machine in an in-memory multi-GE simulation: Fig. 6
 * end to end, cascaded GENs, the end-GE choice for Terms, loss and retries,
 * forged / altered / replayed messages, expiry, re-keying.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, fig6Nodes, testKey, type SimNodeSpec } from './dprp-sim.js';
import { decode, encode, MsgType, WireAction } from '../../controlplane/dprp/wire.js';
import { pitEntriesFor, pitEntryKey, reverseFlow } from '../../controlplane/dprp/pit-entries.js';
import { OptionType, PCCOM_CAP_WIRE_CSUM, pccomCapsOf } from '../../controlplane/dprp/spec-options.js';
import { inetChecksum } from '../../controlplane/dprp/ipv4.js';
import { HOLD_CODE, holdFor } from '../../controlplane/dprp/hold.js';

const msgType = (b: Buffer) => b[1];

type Want = { kind: 'enc'; group: number } | { kind: 'plain' } | { kind: 'refused' };
const MATRIX: Array<[string, string, Want]> = [
  ['GES1', 'Term', { kind: 'enc', group: 1 }],
  ['GES1', 'GES2', { kind: 'enc', group: 1 }],
  ['GES2', 'server', { kind: 'enc', group: 2 }],
  ['GES3', 'server', { kind: 'enc', group: 3 }],
  ['GES1', 'server', { kind: 'refused' }],
  ['GES3', 'Term', { kind: 'refused' }],
  ['GES1', 'GES3', { kind: 'plain' }],
];

for (const [a, b, want] of MATRIX) {
  for (const [src, dst] of [[a, b], [b, a]]) {
    test(`sim Fig. 6: ${src} -> ${dst}: ${want.kind}`, () => {
      const sim = new Sim(fig6Nodes());
      const { flow, handle, start } = sim.connect(src, dst);
      sim.time.run(10_000);
      const path = sim.gesOnPath(src, dst);
      const end = path[path.length - 1];
      const st = sim.ge(start);
      assert.equal(st.node.pending, 0, 'negotiation finished');
      if (want.kind === 'refused') {
        assert.deepEqual(st.released, []);
        assert.deepEqual(st.dropped, [{ handle, reason: 'refused' }]);
        for (const g of path) {
          assert.equal(sim.pitOf(g, flow, 'egress')?.action, 'drop', `${g} discards`);
          assert.equal(sim.pitOf(g, reverseFlow(flow), 'ingress')?.action, 'drop', `${g} discards reverse`);
        }
        assert.deepEqual(st.obs.completions.map((c) => c.outcome), ['refused']);
        return;
      }
      assert.deepEqual(st.released, [handle], 'stashed first packet released');
      assert.deepEqual(st.dropped, []);
      if (want.kind === 'plain') {
        for (const g of path) assert.equal(sim.pitOf(g, flow, 'egress')?.action, 'pass');
        return;
      }
      // encrypted start <-> end, both directions, confirmed, with the right group
      const e1 = sim.pitOf(start, flow, 'egress')!;
      const e2 = sim.pitOf(start, reverseFlow(flow), 'ingress')!;
      const d1 = sim.pitOf(end, flow, 'ingress')!;
      const d2 = sim.pitOf(end, reverseFlow(flow), 'egress')!;
      assert.deepEqual([e1.action, e2.action, d1.action, d2.action], ['encrypt', 'decrypt', 'decrypt', 'encrypt']);
      for (const e of [e1, e2, d1, d2]) {
        assert.equal(e.group, want.group);
        assert.equal(e.version, 1);
        assert.equal(e.state, 'confirmed');
      }
      assert.equal(e1.role, 'start');
      assert.equal(d1.role, 'end');
      assert.equal(st.obs.completions[0].outcome, 'encrypted');
      // two round trips: DDE, RGI, MPIT, CDN, nothing else on the wire (GEN's DDE to a Term aside)
      const types = sim.wire.map((w) => msgType(w.icmp));
      assert.deepEqual(types.filter((t) => t !== MsgType.DDE || true).slice(-3), [MsgType.RGI, MsgType.MPIT, MsgType.CDN]);
    });
  }
}

test('GEN answers for a Term after endWaitMs, then immediately once it knows the Term', () => {
  const sim = new Sim(fig6Nodes(), { endWaitMs: 5 });
  const t0 = sim.time.now;
  sim.connect('GES1', 'Term');
  sim.time.run(10_000);
  const first = sim.ge('GES1').obs.completions[0].seconds;
  assert.ok(first * 1000 >= 5, `first negotiation waited for the Term (${first * 1000} ms)`);
  assert.equal(sim.toHosts.filter((w) => w.to === 'Term').length, 1, 'the GEN probed the Term once');
  sim.connect('GES1', 'Term', 6, 50001, 443);
  sim.time.run(20_000);
  const second = sim.ge('GES1').obs.completions[1].seconds;
  assert.ok(second * 1000 < 1, `second negotiation is immediate (${second * 1000} ms)`);
  assert.equal(sim.toHosts.filter((w) => w.to === 'Term').length, 1, 'no second probe');
  assert.ok(sim.time.now > t0);
});

test('no GE toward the destination: OP start decides plaintext after bounded DDE retries, then remembers', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 10, maxSends: 3 });
  const { handle } = sim.connect('GES1', 'internet');
  sim.time.run(10_000);
  const g = sim.ge('GES1');
  assert.deepEqual(g.released, [handle]);
  assert.equal(sim.toHosts.filter((w) => w.to === 'internet').length, 3, 'exactly maxSends DDEs');
  assert.deepEqual(g.obs.completions.map((c) => c.outcome), ['no_end_ge']);
  const before = sim.wire.length + sim.toHosts.length;
  sim.connect('GES1', 'internet', 17, 5353, 53);
  sim.time.run(20_000);
  assert.equal(sim.wire.length + sim.toHosts.length, before, 'second flow decided without a DDE');
  assert.equal(g.released.length, 2);
});

test('a GE slower than the DDE budget still gets its flow encrypted: the late RGI upgrades the lone decision', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, maxSends: 4 }); // DDE budget 20+40+80+160 = 300 ms
  sim.extraDelayMs = (w) => (msgType(w.icmp) === MsgType.RGI ? 400 : 0);
  const { flow, handle } = sim.connect('GES1', 'GES2');
  sim.time.run(310);
  const g = sim.ge('GES1');
  assert.deepEqual(g.released, [handle], 'decided alone in time: the packet is not held longer than the budget');
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'pass');
  sim.time.run(10_000);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'encrypt', 'upgraded by the late answer');
  assert.equal(sim.pitOf('GES2', flow, 'ingress')?.action, 'decrypt');
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.state, 'confirmed');
  assert.deepEqual(g.obs.completions.map((c) => c.outcome), ['no_end_ge', 'upgraded']);
  // the destination is no longer taken for GE-less: the next flow negotiates again
  sim.extraDelayMs = () => 0;
  sim.connect('GES1', 'GES2', 6, 50000, 22);
  sim.time.run(20_000);
  assert.equal(g.obs.completions[2].outcome, 'encrypted');
});

test('a CL start with no GE toward the destination refuses', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 10, maxSends: 2 });
  const { handle } = sim.connect('Term', 'internet');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GEN').dropped, [{ handle, reason: 'refused' }]);
});

function cascade(): SimNodeSpec[] {
  return [
    { name: 'core', addr: '192.0.2.254' },
    { name: 'GES1', addr: '192.0.2.11', parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)] } },
    { name: 'OUT', addr: '198.51.100.1', parent: 'core', ge: { type: 'GEN', mode: 'CL', keys: [testKey(9)] } },
    { name: 'IN', addr: '198.51.100.129', parent: 'OUT', ge: { type: 'GEN', mode: 'CL', keys: [testKey(1)] } },
    { name: 'T2', addr: '100.64.1.10', parent: 'IN' },
    { name: 'GESin', addr: '100.64.2.10', parent: 'IN', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)] } },
  ];
}

test('cascaded GENs: encrypt to the inner GEN, the outer CL GEN of another group relays', () => {
  const sim = new Sim(cascade());
  const { flow, handle } = sim.connect('GES1', 'T2');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GES1').released, [handle]);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'encrypt');
  assert.equal(sim.pitOf('OUT', flow, 'ingress')?.action, 'pass');
  assert.equal(sim.pitOf('OUT', flow, 'ingress')?.role, 'intermediate');
  assert.equal(sim.pitOf('OUT', flow, 'ingress')?.state, 'confirmed');
  assert.equal(sim.pitOf('IN', flow, 'ingress')?.action, 'decrypt');
  assert.equal(sim.ge('OUT').obs.overrides, 0);
});

test('an idle member flow through the outer CL GEN of another group: its transit pass idles out there, and the next packet puts it back (no refusal)', () => {
  const sim = new Sim(cascade());
  const { flow } = sim.connect('GES1', 'T2');
  sim.time.run(10_000);
  const out = sim.ge('OUT');
  assert.equal(sim.pitOf('OUT', flow, 'ingress')?.action, 'pass');
  // Idle past unauthIdleTimeoutMs (OUT holds no key of group 1: its pass is on an unauthenticated word), within idleTimeoutMs.
  sim.time.advance(12_000);
  out.node.sweep();
  assert.equal(sim.pitOf('OUT', flow, 'ingress'), undefined, 'OUT\'s transit entries idled out');
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'encrypt', 'the ends still hold the flow');
  // The flow's next packet misses at OUT (ingress, from outside).
  out.node.onPitMiss(flow, 'next', true);
  sim.time.run(sim.time.now + 10_000);
  assert.deepEqual(out.dropped, [], 'not refused');
  assert.deepEqual(out.released, ['next'], 'released at once');
  for (const [f, dir] of [[flow, 'ingress'], [flow, 'egress'], [reverseFlow(flow), 'ingress'], [reverseFlow(flow), 'egress']] as const) {
    assert.equal(sim.pitOf('OUT', f, dir)?.action, 'pass', `OUT ${dir} passes the flow again`);
  }
  assert.equal(out.obs.starts.length, 0, 'no negotiation of OUT\'s own');
  // Past idleTimeoutMs the ends' entries are gone too: nothing is put back (a fresh flow negotiates).
  sim.time.advance(400_000);
  out.node.sweep();
  out.node.sweep();
  assert.equal(sim.pitOf('OUT', flow, 'ingress'), undefined);
});

test('re-keying whose CDN is lost before an intermediate GEN: the live flow keeps its entries there (a fresh flow\'s would expire)', () => {
  const sim = new Sim(cascade(), { rtoMs: 10, rtoMaxMs: 40, maxSends: 2 });
  const { flow } = sim.connect('GES1', 'T2');
  sim.time.run(10_000);
  const passOut = sim.pitOf('OUT', flow, 'ingress');
  assert.equal(passOut?.action, 'pass');
  for (const g of ['GES1', 'IN']) sim.ge(g).keys.add(testKey(1, 2));
  sim.dropIf = (w) => msgType(w.icmp) === MsgType.CDN && w.to === 'OUT';
  assert.equal(sim.ge('GES1').node.onKeysChanged(), 1);
  sim.time.run(sim.time.now + 1_000);
  assert.deepEqual(sim.ge('GES1').obs.failures, ['cdn_timeout']);
  assert.equal(sim.pitOf('OUT', flow, 'ingress')?.state, 'tentative', 'OUT took the MPIT, never saw the CDN');
  sim.time.advance(6_000);
  // The flow is live: its packets cross OUT (OUT's pass on another group's word idles out after unauthIdleTimeoutMs otherwise).
  for (const [f, dir] of [[flow, 'ingress'], [flow, 'egress'], [reverseFlow(flow), 'ingress'], [reverseFlow(flow), 'egress']] as const) {
    sim.ge('OUT').activity.set(pitEntryKey({ flow: f, dir }), { lastSeenMs: sim.time.now - 100, closed: false });
  }
  sim.ge('OUT').node.sweep();
  for (const [f, dir] of [[flow, 'ingress'], [flow, 'egress'], [reverseFlow(flow), 'ingress'], [reverseFlow(flow), 'egress']] as const) {
    assert.equal(sim.pitOf('OUT', f, dir)?.action, 'pass', `OUT ${dir} still passes the live flow`);
  }
  // both ends still talk: GES1 encrypts v1 (it never switched), IN decrypts v2 with prev v1
  const enc = sim.pitOf('GES1', flow, 'egress')!;
  const dec = sim.pitOf('IN', flow, 'ingress')!;
  assert.ok(enc.version === dec.version || enc.version === dec.prevVersion, `GES1 v${enc.version}, IN v${dec.version}/prev ${dec.prevVersion}`);
  const enc2 = sim.pitOf('IN', reverseFlow(flow), 'egress')!;
  const dec2 = sim.pitOf('GES1', reverseFlow(flow), 'ingress')!;
  assert.ok(enc2.version === dec2.version || enc2.version === dec2.prevVersion, `IN v${enc2.version}, GES1 v${dec2.version}/prev ${dec2.prevVersion}`);
});

test('both ends announce that their receivers take PCCOM\'s TCP wire-valid form: their TCP encrypt entries send it; UDP never', () => {
  const sim = new Sim(fig6Nodes());
  const tcp = sim.connect('GES1', 'GES2', 6);
  const udp = sim.connect('GES1', 'GES2', 17);
  sim.time.run(10_000);
  assert.equal(sim.pitOf('GES1', tcp.flow, 'egress')?.wireCsum, true, 'start -> end');
  assert.equal(sim.pitOf('GES2', reverseFlow(tcp.flow), 'egress')?.wireCsum, true, 'end -> start');
  assert.equal(sim.pitOf('GES2', tcp.flow, 'ingress')?.wireCsum, undefined, 'decrypt entries take both forms anyway');
  assert.equal(sim.pitOf('GES1', udp.flow, 'egress')?.action, 'encrypt');
  assert.equal(sim.pitOf('GES1', udp.flow, 'egress')?.wireCsum, undefined);
  // a record without the capability (an agent older than it): the keyed form
  assert.equal(pccomCapsOf({ options: [] }), 0);
  assert.equal(pccomCapsOf({ options: [{ type: OptionType.PCCOM_CAPS, value: Buffer.from([PCCOM_CAP_WIRE_CSUM]) }] }), PCCOM_CAP_WIRE_CSUM);
  assert.equal(pitEntriesFor(tcp.flow, 'encrypt', 'start', { group: 1, version: 1 }, 'confirmed', { wireCsum: false })[0].wireCsum, undefined);
});

/** The issue 11 cascade: GES - GEN1(CL) - GEN2(CL) - Term, both GENs in the GES's group. */
function sameGroupCascade(): SimNodeSpec[] {
  return [
    { name: 'core', addr: '192.0.2.254' },
    { name: 'GES1', addr: '192.0.2.11', parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)] } },
    { name: 'GEN1', addr: '198.51.100.1', parent: 'core', ge: { type: 'GEN', mode: 'CL', keys: [testKey(1)] } },
    { name: 'GEN2', addr: '198.51.100.129', parent: 'GEN1', ge: { type: 'GEN', mode: 'CL', keys: [testKey(1)] } },
    { name: 'Term', addr: '100.64.1.10', parent: 'GEN2' },
  ];
}

for (const slowMs of [0, 50, 150]) {
  test(`cascade, first flow, the inner GEN's control plane ${slowMs} ms slow: its fast path HOLDs the outer one, which never answers as the end GE`, () => {
    const sim = new Sim(sameGroupCascade());
    // Everything GEN2's agent sends is late; its fast path's HOLD is not.
    sim.extraDelayMs = (w) => (w.from === 'GEN2' && w.icmp[1] !== HOLD_CODE ? slowMs : 0);
    const { flow, handle } = sim.connect('GES1', 'Term');
    sim.time.run(60_000);
    assert.deepEqual(sim.ge('GES1').released, [handle]);
    assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'encrypt');
    assert.equal(sim.pitOf('GEN1', flow, 'ingress')?.action, 'pass', 'GEN1 relays the ciphertext');
    assert.equal(sim.pitOf('GEN1', flow, 'ingress')?.role, 'intermediate');
    assert.equal(sim.pitOf('GEN2', flow, 'ingress')?.action, 'decrypt', 'GEN2, nearest the Term, decrypts');
    const rgiFromGen1 = sim.wire.filter((w) => w.from === 'GEN1' && msgType(w.icmp) === MsgType.RGI && decode(w.icmp).endGe === sim.addr('GEN1'));
    assert.deepEqual(rgiFromGen1, [], 'GEN1 never answered as the end GE');
    assert.equal(sim.ge('GEN1').obs.completions.length, 0);
  });
}

test('cascade without the fast path\'s HOLD (the old race): a slow inner GEN loses to the outer one\'s timer, which decrypts', () => {
  const sim = new Sim(sameGroupCascade());
  sim.fastPathHold = false;
  sim.extraDelayMs = (w) => (w.from === 'GEN2' ? 50 : 0);
  const { flow } = sim.connect('GES1', 'Term');
  sim.time.run(60_000);
  assert.equal(sim.pitOf('GEN1', flow, 'ingress')?.action, 'decrypt', 'the race this fixes: GEN1 took itself for the end GE');
});

test('a HOLD changes nothing unless it comes from behind the GEN, for a negotiation it is a candidate in', () => {
  const sim = new Sim(sameGroupCascade());
  sim.fastPathHold = false;
  const { flow } = sim.connect('GES1', 'Term');
  // forged: the same negotiation id, but from outside GEN1 (GES1's side)
  sim.extraDelayMs = (w) => (w.from === 'GEN2' ? 50 : 0);
  const dde = () => sim.wire.find((w) => w.to === 'GEN2' && msgType(w.icmp) === MsgType.DDE);
  sim.time.run(sim.time.now + 1);
  const relayed = dde();
  assert.ok(relayed, 'GEN1 relayed the DDE inward');
  sim.inject('GEN1', holdFor(relayed.icmp), { src: '192.0.2.99', dst: sim.addr('GES1') });
  sim.inject('GEN1', holdFor(Buffer.alloc(60)), { src: sim.addr('Term'), dst: sim.addr('GES1') });
  sim.time.run(60_000);
  assert.deepEqual(sim.ge('GEN1').obs.rejections.filter((r) => r === 'bad_path' || r === 'unknown_negotiation'), ['bad_path', 'unknown_negotiation']);
  assert.equal(sim.pitOf('GEN1', flow, 'ingress')?.action, 'decrypt', 'the forged HOLD did not hold it');
});

test('GES behind a GEN answers itself; the GEN becomes intermediate', () => {
  const sim = new Sim(cascade());
  const { flow, handle } = sim.connect('GES1', 'GESin');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GES1').released, [handle]);
  assert.equal(sim.pitOf('GESin', flow, 'ingress')?.action, 'decrypt');
  assert.equal(sim.pitOf('GESin', flow, 'ingress')?.role, 'end');
  assert.equal(sim.pitOf('IN', flow, 'ingress')?.action, 'pass');
  assert.equal(sim.pitOf('IN', flow, 'ingress')?.role, 'intermediate');
});

test('a relay sends the CDN on before it confirms its own entries (the start\'s release waits for the CDN, not for the relay\'s write); they end confirmed', () => {
  const sim = new Sim(cascade());
  const { flow, handle } = sim.connect('GES1', 'GESin');
  // What IN's entry is when the CDN leaves IN (the simulated wire takes the bytes at the send).
  const atSend: Array<string | undefined> = [];
  const s = sim as unknown as { send: (from: string, dst: string, icmp: Buffer, src?: string) => void };
  const orig = s.send.bind(sim);
  s.send = (from, dst, icmp, src) => {
    if (from === 'IN' && icmp[1] === MsgType.CDN) atSend.push(sim.pitOf('IN', flow, 'ingress')?.state);
    orig(from, dst, icmp, src);
  };
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GES1').released, [handle]);
  assert.deepEqual(atSend, ['tentative']);
  assert.equal(sim.pitOf('IN', flow, 'ingress')?.state, 'confirmed');
  assert.equal(sim.pitOf('IN', flow, 'egress')?.state, 'confirmed');
});

test('GEN decrypting for the GES inside it: the forward flow leaves on EGRESS, so egress fwd decrypt, ingress rev encrypt', () => {
  const sim = new Sim([
    { name: 'core', addr: '192.0.2.254' },
    { name: 'GESout', addr: '192.0.2.21', parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(5)] } },
    { name: 'GEN', addr: '198.51.100.1', parent: 'core', ge: { type: 'GEN', mode: 'CL', keys: [testKey(1)] } },
    { name: 'GESin', addr: '100.64.2.10', parent: 'GEN', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)] } },
  ]);
  const { flow, handle } = sim.connect('GESin', 'GESout');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GESin').released, [handle]);
  assert.equal(sim.pitOf('GESin', flow, 'egress')?.action, 'encrypt');
  assert.equal(sim.pitOf('GEN', flow, 'egress')?.action, 'decrypt', 'forward packets come from inside and leave on egress');
  assert.equal(sim.pitOf('GEN', flow, 'ingress'), undefined);
  assert.equal(sim.pitOf('GEN', reverseFlow(flow), 'ingress')?.action, 'encrypt', 'replies from outside are encrypted on ingress');
  assert.equal(sim.pitOf('GESout', flow, 'ingress')?.action, 'pass');
  // the other way the CL GEN refuses a plaintext flow from a non-member
  const back = sim.connect('GESout', 'GESin');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GESout').dropped, [{ handle: back.handle, reason: 'refused' }]);
});

for (const lost of [MsgType.DDE, MsgType.RGI, MsgType.MPIT, MsgType.CDN]) {
  test(`a lost ${['', 'DDE', 'RGI', 'MPIT', 'CDN'][lost]} is retried and the flow completes`, () => {
    const sim = new Sim(fig6Nodes(), { rtoMs: 10 });
    let dropped = 0;
    sim.dropIf = (w) => msgType(w.icmp) === lost && dropped++ === 0;
    const { flow, handle } = sim.connect('GES1', 'GES2');
    sim.time.run(10_000);
    assert.equal(dropped >= 1, true);
    assert.deepEqual(sim.ge('GES1').released, [handle]);
    assert.equal(sim.pitOf('GES1', flow, 'egress')?.state, 'confirmed');
    assert.equal(sim.pitOf('GES2', flow, 'ingress')?.state, 'confirmed');
    assert.ok(sim.ge('GES1').obs.completions[0].seconds * 1000 >= 10, 'completed after one RTO');
  });
}

test('all CDNs lost: bounded retries, then a clear failure; stash dropped, start entries removed', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 10, rtoMaxMs: 40, maxSends: 4 });
  sim.dropIf = (w) => msgType(w.icmp) === MsgType.CDN;
  const { flow, handle } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const g = sim.ge('GES1');
  assert.deepEqual(g.obs.failures, ['cdn_timeout']);
  assert.deepEqual(g.dropped, [{ handle, reason: 'cdn_timeout' }]);
  assert.equal(sim.pitOf('GES1', flow, 'egress'), undefined);
  assert.equal(sim.wire.filter((w) => msgType(w.icmp) === MsgType.MPIT).length, 4, 'exactly maxSends MPITs');
  assert.ok(sim.time.now <= 10 + 20 + 40 + 40 + 5, `gave up in bounded time (${sim.time.now} ms)`);
  // the end GE confirmed when it answered; a tentative intermediate would expire by sweep
  sim.time.advance(6_000);
  sim.ge('GES2').node.sweep();
});

test('an altered MPIT (action flipped in flight) is rejected by its addressee', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 10, maxSends: 2 });
  sim.tamper = (w) => {
    if (msgType(w.icmp) !== MsgType.MPIT) return w.icmp;
    const m = decode(w.icmp);
    m.actions[0].action = WireAction.PASS; // try to make GES2 accept plaintext
    return encode(m);
  };
  const { flow, handle } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  assert.ok(sim.ge('GES2').obs.rejections.includes('bad_mac'));
  assert.equal(sim.pitOf('GES2', flow, 'ingress'), undefined, 'nothing installed from a forged decision');
  assert.deepEqual(sim.ge('GES1').dropped, [{ handle, reason: 'cdn_timeout' }]);
});

test('a non-member cannot claim a group: wrong key under the same group id is not trusted', () => {
  const nodes = fig6Nodes();
  // GEA claims group 1 with a key it does not really hold
  const gea = nodes.find((n) => n.name === 'GEA')!;
  gea.ge!.keys = [testKey(1, 1, 'forged'), testKey(2), testKey(3)];
  const sim = new Sim(nodes);
  const { flow, handle } = sim.connect('GES1', 'server');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GES1').dropped, [{ handle, reason: 'refused' }]);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'drop');
});

test('replayed DPRP messages change nothing and are counted', () => {
  const sim = new Sim(fig6Nodes());
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const before2 = new Map(sim.ge('GES2').pit);
  const before1 = new Map(sim.ge('GES1').pit);
  for (const w of [...sim.wire]) sim.inject(w.to, w.icmp);
  sim.time.run(20_000);
  assert.deepEqual(sim.ge('GES2').pit, before2);
  assert.deepEqual(sim.ge('GES1').pit, before1);
  const rej = [...sim.ge('GES1').obs.rejections, ...sim.ge('GES2').obs.rejections];
  assert.ok(rej.every((r) => r === 'replay' || r === 'unknown_negotiation'), rej.join(','));
  assert.equal(rej.length, 4, 'all four replays rejected');
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.state, 'confirmed');
  // much later, out of the window: stale
  sim.time.advance(60_000);
  for (const w of sim.wire.slice(0, 4)) sim.inject(w.to, w.icmp);
  assert.ok(sim.ge('GES2').obs.rejections.includes('stale'));
});

test('a forged MPIT from someone who never saw the negotiation is ignored', () => {
  const sim = new Sim(fig6Nodes());
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const mpit = decode(sim.wire.find((w) => msgType(w.icmp) === MsgType.MPIT)!.icmp);
  mpit.negId = Buffer.alloc(8, 7);
  mpit.attempt = 9;
  mpit.timestampMs += 1;
  mpit.actions[0].action = WireAction.DISCARD;
  sim.inject('GES2', encode(mpit));
  assert.ok(sim.ge('GES2').obs.rejections.includes('unknown_negotiation'));
  assert.equal(sim.pitOf('GES2', flow, 'ingress')?.action, 'decrypt');
});

test('garbage and corrupted control packets are rejected with a counted reason', () => {
  const sim = new Sim(fig6Nodes());
  sim.inject('GES2', Buffer.from('not a control message at all, but long enough to be parsed .....'));
  const corrupt = Buffer.from(sim.wire.length ? sim.wire[0].icmp : Buffer.alloc(0));
  assert.equal(corrupt.length, 0);
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const dde = Buffer.from(sim.wire[0].icmp);
  dde[30] ^= 0xff;
  sim.inject('GES2', dde);
  assert.deepEqual(sim.ge('GES2').obs.rejections, ['wire_not_gscip_icmp', 'wire_bad_checksum']);
  assert.equal(sim.pitOf('GES2', flow, 'ingress')?.state, 'confirmed');
  assert.equal(inetChecksum(sim.wire[0].icmp), 0);
});

test('idle flows expire from every PIT; closed flows sooner', () => {
  const sim = new Sim(fig6Nodes(), { idleTimeoutMs: 1_000, closedTimeoutMs: 100 });
  const a = sim.connect('GES1', 'GES2');
  const b = sim.connect('GES1', 'Term', 6, 41000, 22);
  sim.time.run(10_000);
  sim.time.advance(500);
  // flow b saw a FIN at GES1 just now; flow a was active 200 ms ago
  const now = sim.time.now;
  for (const [k, e] of sim.ge('GES1').pit) {
    const isB = e.flow.dport === 22 || e.flow.sport === 22;
    sim.ge('GES1').activity.set(k, { lastSeenMs: now - (isB ? 150 : 200), closed: isB });
  }
  assert.equal(sim.ge('GES1').node.sweep(), 1, 'closed flow b expired');
  assert.equal(sim.pitOf('GES1', b.flow, 'egress'), undefined);
  assert.equal(sim.pitOf('GES1', a.flow, 'egress')?.action, 'encrypt');
  sim.time.advance(1_000);
  assert.equal(sim.ge('GES1').node.sweep(), 1, 'idle flow a expired');
  assert.equal(sim.ge('GES1').pit.size, 0);
  sim.ge('GES2').node.sweep();
  assert.equal(sim.ge('GES2').pit.size, 0, 'the end GE expired its entries too');
});

test('a FIN each way closes a flow (closedTimeoutMs); a half-close keeps the idle timeout, and a closed flow still sending stays', () => {
  const sim = new Sim(fig6Nodes(), { idleTimeoutMs: 1_000, closedTimeoutMs: 100 });
  const both = sim.connect('GES1', 'GES2');                      // FIN seen each way, silent 150 ms
  const half = sim.connect('GES1', 'Term', 6, 41000, 22);        // FIN only from the client, silent 150 ms
  const busy = sim.connect('GES1', 'GES2', 6, 41001, 443);       // FIN each way but a packet 50 ms ago
  sim.time.run(10_000);
  sim.time.advance(500);
  const now = sim.time.now;
  const same = (a: { sport: number; dport: number }, b: { sport: number; dport: number }) => a.sport === b.sport && a.dport === b.dport;
  for (const [k, e] of sim.ge('GES1').pit) {
    const fwd = same(e.flow, both.flow) || same(e.flow, half.flow) || same(e.flow, busy.flow);
    const isHalf = same(e.flow, half.flow) || same(e.flow, { sport: half.flow.dport, dport: half.flow.sport });
    const isBusy = same(e.flow, busy.flow) || same(e.flow, { sport: busy.flow.dport, dport: busy.flow.sport });
    sim.ge('GES1').activity.set(k, { lastSeenMs: now - (isBusy ? 50 : 150), closed: false, finSeen: isHalf ? fwd : true });
  }
  assert.equal(sim.ge('GES1').node.sweep(), 1, 'only the flow closed both ways and silent expired');
  assert.equal(sim.pitOf('GES1', both.flow, 'egress'), undefined);
  assert.equal(sim.pitOf('GES1', half.flow, 'egress')?.action, 'encrypt', 'half-closed flow cut');
  assert.equal(sim.pitOf('GES1', busy.flow, 'egress')?.action, 'encrypt', 'closed flow still sending cut');
  sim.time.advance(100);
  assert.equal(sim.ge('GES1').node.sweep(), 1, 'the closed flow expires closedTimeoutMs after its last packet');
  assert.equal(sim.pitOf('GES1', busy.flow, 'egress'), undefined);
  assert.equal(sim.pitOf('GES1', half.flow, 'egress')?.action, 'encrypt');
  sim.time.advance(1_000);
  assert.equal(sim.ge('GES1').node.sweep(), 1, 'the half-closed flow expires at the idle timeout');
  assert.equal(sim.ge('GES1').pit.size, 0);
});

test('key rotation: live flows are re-negotiated onto the new key version', () => {
  const sim = new Sim(fig6Nodes());
  const { flow, handle } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  assert.deepEqual(sim.ge('GES1').released, [handle]);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.version, 1);
  // GMS rotates group 1: GES2 gets v2 first (it cannot move alone), then GES1
  sim.ge('GES2').keys.add(testKey(1, 2));
  assert.equal(sim.ge('GES2').node.onKeysChanged(), 1);
  sim.time.run(20_000);
  assert.equal(sim.pitOf('GES2', flow, 'ingress')?.version, 1, 'still v1: GES1 lacks v2');
  sim.ge('GES1').keys.add(testKey(1, 2));
  assert.equal(sim.ge('GES1').node.onKeysChanged(), 1);
  sim.time.run(30_000);
  for (const [g, f, dir] of [['GES1', flow, 'egress'], ['GES2', flow, 'ingress'], ['GES1', reverseFlow(flow), 'ingress'], ['GES2', reverseFlow(flow), 'egress']] as const) {
    const e = sim.pitOf(g, f, dir)!;
    assert.equal(e.version, 2, `${g} ${dir}`);
    assert.equal(e.state, 'confirmed');
  }
  assert.equal(sim.ge('GES1').pit.size, 2, 'no stale entries left behind');
  assert.equal(sim.ge('GES2').pit.size, 2);
});

/**
 * Every PIT write on either end is checked: whatever each encrypting entry
 * uses, the peer's decrypt entry accepts it (its version or its prevVersion),
 * so no packet in flight fails the keyed checksum during the switch.
 */
function watchLossless(sim: Sim, a: string, b: string, flow: ReturnType<Sim['connect']>['flow']): { checks: number; violations: string[] } {
  const seen = { checks: 0, violations: [] as string[] };
  const check = (why: string) => {
    for (const [encGe, f, decGe] of [[a, flow, b], [b, reverseFlow(flow), a]] as const) {
      const enc = sim.pitOf(encGe, f, 'egress');
      const dec = sim.pitOf(decGe, f, 'ingress');
      if (!enc || !dec) continue;
      seen.checks++;
      if (enc.version !== dec.version && enc.version !== dec.prevVersion) {
        seen.violations.push(`${why}: ${encGe} encrypts v${enc.version}, ${decGe} decrypts v${dec.version} prev ${dec.prevVersion ?? '-'}`);
      }
      // Per-flow keys: the key sent under (version, salt, leg) is the receiver's current or previous one.
      const id = (v: number | undefined, k: { salt: string; leg: string } | undefined) => `v${v}/${k?.salt}/${k?.leg}`;
      const sent = id(enc.version, enc.flowKey);
      if (sent !== id(dec.version, dec.flowKey) && sent !== id(dec.prevVersion ?? dec.version, dec.prevFlowKey)) {
        seen.violations.push(`${why}: ${encGe} encrypts ${sent}, ${decGe} decrypts ${id(dec.version, dec.flowKey)} prev ${id(dec.prevVersion, dec.prevFlowKey)}`);
      }
    }
  };
  for (const g of [a, b]) {
    const pit = sim.ge(g).pit;
    const set = pit.set.bind(pit);
    pit.set = (k, v) => { const r = set(k, v); check(`${g} wrote ${k}`); return r; };
  }
  return seen;
}

// [source host, destination host, encrypting GE at each end, group]
const REKEY_PAIRS = [
  ['GES1', 'GES2', 'GES1', 'GES2', 1],
  ['GES1', 'Term', 'GES1', 'GEN', 1],
  ['Term', 'GES1', 'GEN', 'GES1', 1],
  ['GES2', 'server', 'GES2', 'GEA', 2],
] as const;
for (const [src, dst, a, b, group] of REKEY_PAIRS) {
  for (const [first, second] of [[a, b], [b, a]] as const) {
    for (const both of [false, true]) {
      test(`lossless re-keying ${src} -> ${dst}: ${first} gets v2 first${both ? ', both re-negotiate at once' : ''}; the peer always decrypts what is sent`, () => {
        const sim = new Sim(fig6Nodes());
        const { flow } = sim.connect(src, dst);
        sim.time.run(10_000);
        assert.equal(sim.pitOf(a, flow, 'egress')?.action, 'encrypt');
        const w = watchLossless(sim, a, b, flow);
        sim.ge(first).keys.add(testKey(group, 2));
        assert.equal(sim.ge(first).node.onKeysChanged(), 1);
        if (!both) sim.time.run(20_000);
        sim.ge(second).keys.add(testKey(group, 2));
        assert.equal(sim.ge(second).node.onKeysChanged(), 1);
        sim.time.run(30_000);
        assert.deepEqual(w.violations, []);
        assert.ok(w.checks >= 4, `checked ${w.checks} PIT states`);
        const dec1 = sim.pitOf(b, flow, 'ingress')!;
        const dec2 = sim.pitOf(a, reverseFlow(flow), 'ingress')!;
        for (const d of [dec1, dec2]) {
          assert.equal(d.action, 'decrypt');
          assert.equal(d.version, 2);
          assert.equal(d.prevVersion, 1, 'the old version is still accepted right after the switch');
        }
        assert.equal(sim.pitOf(a, flow, 'egress')!.version, 2);
        assert.equal(sim.pitOf(b, reverseFlow(flow), 'egress')!.version, 2);
        // the GMS withdraws v1: the next sweep stops accepting it
        for (const g of [a, b]) {
          sim.ge(g).keys.remove(group, 1);
          sim.ge(g).node.sweep();
        }
        assert.equal(sim.pitOf(b, flow, 'ingress')!.prevVersion, undefined);
        assert.equal(sim.pitOf(a, reverseFlow(flow), 'ingress')!.prevVersion, undefined);
        assert.deepEqual(w.violations, []);
      });
    }
  }
}

test('lossless re-keying: prevVersion is cleared after prevGraceMs even if the old key stays', () => {
  const sim = new Sim(fig6Nodes(), { prevGraceMs: 2_000 });
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  for (const g of ['GES1', 'GES2']) sim.ge(g).keys.add(testKey(1, 2));
  sim.ge('GES1').node.onKeysChanged();
  sim.time.run(11_000);
  assert.equal(sim.pitOf('GES2', flow, 'ingress')!.prevVersion, 1);
  sim.ge('GES2').node.sweep();
  assert.equal(sim.pitOf('GES2', flow, 'ingress')!.prevVersion, 1, 'within the grace');
  sim.time.advance(2_000);
  for (const g of ['GES1', 'GES2']) sim.ge(g).node.sweep();
  assert.equal(sim.pitOf('GES2', flow, 'ingress')!.prevVersion, undefined);
  assert.equal(sim.pitOf('GES1', reverseFlow(flow), 'ingress')!.prevVersion, undefined);
  assert.equal(sim.pitOf('GES2', flow, 'ingress')!.version, 2);
});

test('relay state of a finished negotiation is dropped after relayLingerMs, so a small relay table sustains a steady rate', () => {
  // 40 negotiations, one every 250 ms (10 s), with room for 12 relays at the end GE:
  // kept tentativeTtlMs (5 s) that is 20 at once and the table overflows.
  const sim = new Sim(fig6Nodes(), { maxRelays: 12, relayLingerMs: 1_000, tentativeTtlMs: 5_000 });
  const handles: string[] = [];
  for (let i = 0; i < 40; i++) {
    handles.push(sim.connect('GES1', 'GES2', 17, 30_000 + i).handle);
    sim.time.advance(250);
    if (i % 4 === 3) for (const g of ['GES1', 'GES2']) sim.ge(g).node.sweep();
  }
  sim.time.run(sim.time.now + 10_000);
  assert.deepEqual(sim.ge('GES2').obs.rejections.filter((r) => r === 'relay_table_full'), []);
  assert.deepEqual(sim.ge('GES1').released, handles, 'every flow negotiated');
  assert.deepEqual(sim.ge('GES1').obs.failures, []);
  assert.deepEqual(sim.ge('GES1').obs.completions.map((c) => c.outcome), handles.map(() => 'encrypted'));
});

test('concurrent misses on one flow share one negotiation; the stash is bounded', () => {
  const sim = new Sim(fig6Nodes(), { maxStashPerFlow: 3 });
  const { flow } = sim.connect('GES1', 'GES2');
  const g = sim.ge('GES1');
  for (let i = 0; i < 4; i++) g.node.onPitMiss(flow, `extra${i}`);
  sim.time.run(10_000);
  assert.deepEqual(g.obs.starts, ['miss']);
  assert.equal(g.released.length, 3);
  assert.deepEqual(g.dropped.map((d) => d.reason), ['stash_full', 'stash_full']);
});

test('the start GE installs its entries before it releases the stash (a released packet must hit them)', () => {
  const sim = new Sim(fig6Nodes());
  const g = sim.ge('GES1');
  const seenAtRelease: Array<string | undefined> = [];
  const { flow } = sim.connect('GES1', 'GES2');
  const origRelease = g.released.push.bind(g.released);
  g.released.push = (...hs: unknown[]) => { seenAtRelease.push(sim.pitOf('GES1', flow, 'egress')?.action); return origRelease(...hs); };
  sim.time.run(10_000);
  assert.deepEqual(seenAtRelease, ['encrypt']);
  // and nothing was in the PIT while the negotiation ran (later packets join the stash instead)
  const sim2 = new Sim(fig6Nodes());
  const c = sim2.connect('GES1', 'GES2');
  const states: Array<string | undefined> = [];
  for (let i = 0; i < 40; i++) { sim2.time.advance(0.05); states.push(sim2.pitOf('GES1', c.flow, 'egress')?.state); }
  assert.equal(states[0], undefined);
  assert.equal(states[states.length - 1], 'confirmed');
  assert.ok(!states.includes('tentative'), 'the start never shows a tentative entry');
});

test('a GE without any group key yet refuses to decide (keys_missing), then negotiates once keys arrive', () => {
  const sim = new Sim(fig6Nodes());
  const g = sim.ge('GES1');
  const saved = [...g.keys.all()];
  g.keys.set([]);
  const first = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  assert.deepEqual(g.dropped, [{ handle: first.handle, reason: 'keys_missing' }]);
  assert.deepEqual(g.obs.failures, ['keys_missing']);
  assert.equal(sim.wire.length, 0, 'nothing sent');
  assert.equal(sim.pitOf('GES1', first.flow, 'egress'), undefined, 'nothing settled for the flow');
  g.keys.set(saved);
  const again = sim.connect('GES1', 'GES2', 6, first.flow.sport, 80); // the application's retry
  sim.time.run(20_000);
  assert.deepEqual(g.released, [again.handle]);
  assert.equal(sim.pitOf('GES1', first.flow, 'egress')?.action, 'encrypt');
});

test('negotiations decided alone and waiting for a late RGI do not count against maxNegotiations', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 5, maxSends: 1, maxNegotiations: 1, noEndCacheMs: 0 });
  sim.connect('GES1', 'internet', 6, 41000, 80);
  sim.time.run(6); // decided alone; listening for a late answer
  assert.equal(sim.ge('GES1').node.pending, 0);
  sim.connect('GES1', 'internet', 6, 41001, 80);
  sim.time.run(20_000);
  assert.deepEqual(sim.ge('GES1').obs.failures, []);
  assert.equal(sim.ge('GES1').released.length, 2);
});

test('downgrade: an RGI rewritten to hide the end GE\'s membership does not make the end GE accept plaintext', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 10, maxSends: 2 });
  // an on-path attacker strips the end GE's tags (claims it holds no group)
  sim.tamper = (w) => {
    if (msgType(w.icmp) !== MsgType.RGI) return w.icmp;
    const m = decode(w.icmp);
    m.records[0].tags = [];
    return encode(m);
  };
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  assert.ok(sim.ge('GES2').obs.rejections.includes('downgrade'));
  assert.equal(sim.pitOf('GES2', flow, 'ingress'), undefined, 'the end GE installed no plaintext entry');
  assert.equal(sim.pitOf('GES1', flow, 'egress'), undefined, 'no CDN: the start GE did not settle the flow either');
  assert.deepEqual(sim.ge('GES1').obs.failures, ['cdn_timeout']);
});

// PCCOM's re-key signal (a per-flow key wants a new one): the flow is negotiated again under the same
// version with a new salt (the new negotiation id), switched in the same order as a rotation.
for (const [src, dst, a, b] of [['GES1', 'GES2', 'GES1', 'GES2'], ['GES1', 'Term', 'GES1', 'GEN']] as const) {
  for (const signaller of [a, b]) {
    test(`re-key signal at ${signaller} (${src} -> ${dst}): new per-flow keys under the same version, the peer always decrypts what is sent`, () => {
      const sim = new Sim(fig6Nodes());
      const { flow } = sim.connect(src, dst);
      sim.time.run(10_000);
      const before = sim.pitOf(a, flow, 'egress')!;
      assert.ok(before.flowKey, 'per-flow keys in use');
      const w = watchLossless(sim, a, b, flow);
      assert.equal(sim.ge(signaller).node.onRekeyWanted(flow), 'started');
      assert.equal(sim.ge(signaller).node.onRekeyWanted(reverseFlow(flow)), 'running', 'one re-key at a time per flow');
      sim.time.run(20_000);
      assert.deepEqual(w.violations, []);
      const after = sim.pitOf(a, flow, 'egress')!;
      assert.equal(after.version, before.version);
      assert.notEqual(after.flowKey!.salt, before.flowKey!.salt, 'a new salt: a new key, its counter from 0');
      assert.equal(sim.pitOf(b, flow, 'ingress')!.flowKey!.salt, after.flowKey!.salt, 'both ends agree');
      assert.equal(sim.pitOf(b, flow, 'ingress')!.prevFlowKey!.salt, before.flowKey!.salt, 'the old key is still accepted');
      assert.equal(sim.ge(signaller).node.onRekeyWanted(flow), 'too_soon', 'at most one signalled re-key per rekeyMinIntervalMs');
    });
  }
}

test('re-keying whose DDEs go unanswered (a peer agent stalled under load): the live encrypted flow keeps its entries, never plaintext, and is re-keyed once the peer answers', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 10, rtoMaxMs: 40, maxSends: 2 });
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  assert.equal(sim.pitOf('GES2', flow, 'ingress')?.action, 'decrypt');
  // The GMS rotates; GES2 (the end) re-negotiates from its side, but GES1's agent does not answer in time.
  for (const g of ['GES1', 'GES2']) sim.ge(g).keys.add(testKey(1, 2));
  sim.dropIf = (w) => w.to === 'GES1' && msgType(w.icmp) === MsgType.DDE;
  assert.equal(sim.ge('GES2').node.onKeysChanged(), 1);
  sim.time.run(20_000);
  for (const [f, dir, action] of [[flow, 'ingress', 'decrypt'], [reverseFlow(flow), 'egress', 'encrypt']] as const) {
    const e = sim.pitOf('GES2', f, dir);
    assert.equal(e?.action, action, `GES2 ${dir}: still ${action} (a pass entry here sends plaintext to a GE that decrypts, and hands ciphertext to the host)`);
    assert.equal(e?.version, 1);
  }
  assert.deepEqual(sim.ge('GES2').obs.plaintexts, [], 'no plaintext decision for a flow between two members');
  // The peer answers again: the next sweep re-keys the flow onto v2 (not blocked by a "no GE there" cache).
  sim.dropIf = () => false;
  sim.ge('GES2').node.sweep();
  sim.time.run(30_000);
  for (const [g, f, dir] of [['GES1', flow, 'egress'], ['GES2', flow, 'ingress'], ['GES1', reverseFlow(flow), 'ingress'], ['GES2', reverseFlow(flow), 'egress']] as const) {
    assert.equal(sim.pitOf(g, f, dir)?.version, 2, `${g} ${dir} on v2`);
  }
});

/** Each direction of `flow` at both ends: [GE, flow, dir, PIT action] (undefined: no entry). */
function bothEnds(sim: Sim, flow: ReturnType<Sim['connect']>['flow'], start: string, end: string) {
  return [
    [start, 'fwd egress', sim.pitOf(start, flow, 'egress')?.action],
    [start, 'rev ingress', sim.pitOf(start, reverseFlow(flow), 'ingress')?.action],
    [end, 'fwd ingress', sim.pitOf(end, flow, 'ingress')?.action],
    [end, 'rev egress', sim.pitOf(end, reverseFlow(flow), 'egress')?.action],
  ];
}

test('a late RGI after the lone decision (its pass entries written, the destination cached GE-less) upgrades BOTH ends to encrypted, confirmed', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, rtoMaxMs: 200, maxSends: 4 });
  sim.extraDelayMs = (w) => (msgType(w.icmp) === MsgType.RGI ? 400 : 0);
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(320);
  // The lone decision: pass written and remembered at the start, nothing yet at the end GE.
  assert.deepEqual(bothEnds(sim, flow, 'GES1', 'GES2'), [['GES1', 'fwd egress', 'pass'], ['GES1', 'rev ingress', 'pass'], ['GES2', 'fwd ingress', undefined], ['GES2', 'rev egress', undefined]]);
  sim.time.run(10_000);
  assert.deepEqual(bothEnds(sim, flow, 'GES1', 'GES2'), [['GES1', 'fwd egress', 'encrypt'], ['GES1', 'rev ingress', 'decrypt'], ['GES2', 'fwd ingress', 'decrypt'], ['GES2', 'rev egress', 'encrypt']]);
  for (const [g, f, dir] of [['GES1', flow, 'egress'], ['GES1', reverseFlow(flow), 'ingress'], ['GES2', flow, 'ingress'], ['GES2', reverseFlow(flow), 'egress']] as const) {
    assert.equal(sim.pitOf(g, f, dir)?.state, 'confirmed', `${g} ${dir} confirmed`);
    assert.equal(sim.pitOf(g, f, dir)?.group, 1, `${g} ${dir} on group 1`);
  }
  assert.equal(sim.wire.filter((w) => msgType(w.icmp) === MsgType.CDN && w.to === 'GES1').length, 1, 'MPIT/CDN completed once');
  assert.deepEqual(sim.ge('GES1').obs.completions.map((c) => c.outcome), ['no_end_ge', 'upgraded']);
  assert.deepEqual(sim.ge('GES1').obs.failures, []);
});

test('a late RGI whose upgrade\'s CDNs are all lost: the ends never disagree (the start no longer keeps pass while the end GE encrypts); the next packet re-negotiates', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, rtoMaxMs: 200, maxSends: 4 });
  sim.extraDelayMs = (w) => (msgType(w.icmp) === MsgType.RGI ? 400 : 0);
  sim.dropIf = (w) => msgType(w.icmp) === MsgType.CDN;
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const g = sim.ge('GES1');
  assert.deepEqual(g.obs.completions.map((c) => c.outcome), ['no_end_ge']);
  assert.deepEqual(g.obs.failures, ['cdn_timeout'], 'the upgrade failed, counted');
  // The end GE installed confirmed on the MPIT: a pass entry left at the start would send plaintext into its decrypt entry.
  assert.equal(sim.pitOf('GES2', flow, 'ingress')?.action, 'decrypt');
  assert.equal(sim.pitOf('GES1', flow, 'egress'), undefined, 'the lone pass entries are gone: the next packet misses');
  assert.equal(sim.pitOf('GES1', reverseFlow(flow), 'ingress'), undefined);
  // The next packet misses and negotiates afresh (the destination is no longer cached GE-less): both ends agree.
  sim.extraDelayMs = () => 0;
  sim.dropIf = () => false;
  const h = 'again';
  g.node.onPitMiss(flow, h);
  sim.time.run(20_000);
  assert.ok(g.released.includes(h));
  assert.deepEqual(bothEnds(sim, flow, 'GES1', 'GES2'), [['GES1', 'fwd egress', 'encrypt'], ['GES1', 'rev ingress', 'decrypt'], ['GES2', 'fwd ingress', 'decrypt'], ['GES2', 'rev egress', 'encrypt']]);
  assert.equal(g.obs.completions.at(-1)?.outcome, 'encrypted');
});

test('a late RGI after the end GE dropped its unanswered state (tentativeTtlMs, its sweep): the MPIT is refused there, counted; the start drops its lone entries, and the next packet negotiates both ends to encrypted', () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, rtoMaxMs: 200, maxSends: 4, tentativeTtlMs: 1_000, lateRgiGraceMs: 5_000 });
  sim.extraDelayMs = (w) => (msgType(w.icmp) === MsgType.RGI ? 2_000 : 0);
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(1_500);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'pass', 'decided alone');
  sim.ge('GES2').node.sweep(); // its RGIs unanswered for longer than tentativeTtlMs: the end GE forgets the negotiation
  sim.time.run(10_000);
  const g = sim.ge('GES1');
  assert.ok(sim.ge('GES2').obs.rejections.includes('unknown_negotiation'), 'the upgrade\'s MPIT is refused at the end GE, counted');
  assert.deepEqual(g.obs.failures, ['cdn_timeout']);
  assert.deepEqual(bothEnds(sim, flow, 'GES1', 'GES2'), [['GES1', 'fwd egress', undefined], ['GES1', 'rev ingress', undefined], ['GES2', 'fwd ingress', undefined], ['GES2', 'rev egress', undefined]]);
  sim.extraDelayMs = () => 0;
  g.node.onPitMiss(flow, 'again');
  sim.time.run(20_000);
  assert.ok(g.released.includes('again'));
  assert.deepEqual(bothEnds(sim, flow, 'GES1', 'GES2'), [['GES1', 'fwd egress', 'encrypt'], ['GES1', 'rev ingress', 'decrypt'], ['GES2', 'fwd ingress', 'decrypt'], ['GES2', 'rev egress', 'encrypt']]);
});
