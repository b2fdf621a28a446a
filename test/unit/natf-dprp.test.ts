/**
 * NAT-f's extended DPRP in the DPRP simulation (dprp-sim.ts, no root): alice
 * (GES, group 10) opens a flow to a virtual address V1; her start role asks
 * the natf hooks which name and GNAT stand behind V1 and sends the DDE to the
 * GNAT with NATF_NAME; the GNAT's hook checks the ACT (the real actDecide,
 * with the groups alice's record proves) and maps a port; the GNAT's RGI
 * record carries NATF_PORT Z; alice's entries go on the wire flow G1:X ->
 * G2:Z, the GNAT's too, encrypt / decrypt; the VAT is asked for before the
 * release. A denied name, a non-member and a full NAT table are refused in one
 * round trip: the stash dropped (natf_refused), the application told (failed
 * hook), no entry written, no DDE retransmitted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actDecide, type ActEntry } from '../../controlplane/natf/act.js';
import type { NatfDprpHooks, NatfInbound, NatfStartFailure } from '../../controlplane/dprp/natf-hooks.js';
import { decode, encode, MsgType, type Flow } from '../../controlplane/dprp/wire.js';
import { OptionType } from '../../controlplane/dprp/spec-options.js';
import { Sim, testKey, type SimNodeSpec } from './dprp-sim.js';
import { assertFigureB } from './natf-sim-asserts.js';

const G1 = '192.0.2.1';
const G2 = '192.0.2.2';
const P1 = '100.64.1.10';
const V1 = '198.18.0.1';
const Z = 21_345;

const ACT: ActEntry[] = [
  { name: 'bob.example.net', address: P1, outsideAccess: 'allow', groups: [10] },
  { name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'deny', groups: [10] },
];

interface Setup {
  sim: Sim;
  settled: Array<{ flow: Flow; wire: Flow }>;
  failed: Array<{ flow: Flow; why: NatfStartFailure; stashes: readonly unknown[] }>;
  asked: Array<{ name: string; peerGroups: readonly number[]; flow: Flow }>;
  answers: NatfInbound[];
}

function setup(o: { name?: string; aliceGroups?: readonly number[]; tableFull?: boolean } = {}): Setup {
  const s: Omit<Setup, 'sim'> = { settled: [], failed: [], asked: [], answers: [] };
  const start: NatfDprpHooks = {
    virtualTarget: (f) => (f.daddr === V1 ? { name: o.name ?? 'bob.example.net', gnat: G2 } : null),
    settled: (flow, wire) => { s.settled.push({ flow, wire }); },
    failed: (flow, stashes, why) => { s.failed.push({ flow, why, stashes }); },
  };
  const gnat: NatfDprpHooks = {
    inbound: (q): NatfInbound => {
      s.asked.push(q);
      const d = actDecide(ACT, q.name, q.peerGroups);
      const a: NatfInbound = !d.allow ? { ok: false, reason: d.reason } : o.tableFull ? { ok: false, reason: 'table_full' } : { ok: true, port: Z };
      s.answers.push(a);
      return a;
    },
  };
  const nodes: SimNodeSpec[] = [
    { name: 'net', addr: '203.0.113.1' },
    { name: 'alice', addr: G1, parent: 'net', ge: { type: 'GES', mode: 'OP', keys: (o.aliceGroups ?? [10]).map((g) => testKey(g)), natf: start } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'bob', addr: P1, parent: 'gnat' },
  ];
  return { sim: new Sim(nodes), ...s };
}

const vflow: Flow = { saddr: G1, daddr: V1, sport: 40000, dport: 80, proto: 6 };

function ddes(sim: Sim): ReturnType<typeof decode>[] {
  return sim.wire.filter((w) => w.icmp[1] === MsgType.DDE).map((w) => decode(w.icmp));
}

test('allowed: DDE to the GNAT names bob; Z in the RGI; both ends encrypt on G1:X <-> G2:Z; VAT before release', { timeout: 5000 }, () => {
  const x = setup();
  x.sim.ge('alice').node.onPitMiss(vflow, 'h1');
  x.sim.time.run(1000);
  const d = ddes(x.sim);
  assert.equal(d.length, 1, 'one DDE, no retransmission');
  assert.equal(d[0].flow.daddr, G2, 'toward the GNAT');
  assert.equal(d[0].options.find((op) => op.type === OptionType.NATF_NAME)?.value.toString(), 'bob.example.net');
  assert.deepEqual(x.asked.map((q) => [q.name, [...q.peerGroups]]), [['bob.example.net', [10]]], 'the GNAT asked with the groups alice proved');
  const rgi = x.sim.wire.map((w) => w.icmp).filter((b) => b[1] === MsgType.RGI).map((b) => decode(b));
  assert.equal(rgi[0].records[0].options.find((op) => op.type === OptionType.NATF_PORT)?.value.readUInt16BE(0), Z);
  const wire: Flow = { ...vflow, daddr: G2, dport: Z };
  assert.deepEqual(x.settled, [{ flow: vflow, wire }]);
  assert.deepEqual(x.sim.ge('alice').released, ['h1']);
  assert.equal(x.sim.pitOf('alice', wire, 'egress')?.action, 'encrypt');
  assert.equal(x.sim.pitOf('alice', { saddr: G2, daddr: G1, sport: Z, dport: 40000, proto: 6 }, 'ingress')?.action, 'decrypt');
  assert.equal(x.sim.pitOf('gnat', wire, 'ingress')?.action, 'decrypt');
  assert.equal(x.sim.pitOf('gnat', { saddr: G2, daddr: G1, sport: Z, dport: 40000, proto: 6 }, 'egress')?.action, 'encrypt');
  assert.equal(x.sim.pitOf('alice', vflow, 'egress'), undefined, 'nothing keyed on the virtual address');
  assert.deepEqual(x.failed, []);
});

for (const [label, o, reason] of [
  ['a name the ACT denies', { name: 'dave.example.net' }, 'outside_access_denied'],
  ['a name not in the ACT', { name: 'eve.example.net' }, 'unknown_name'],
  ['a non-member', { aliceGroups: [11] }, 'not_member'],
  ['a full NAT table', { tableFull: true }, 'table_full'],
] as const) {
  test(`refused at once: ${label}: stash dropped, the application told, nothing installed, no retransmission`, { timeout: 5000 }, () => {
    const x = setup(o);
    x.sim.ge('alice').node.onPitMiss(vflow, 'h2');
    x.sim.time.run(1000);
    assert.equal(ddes(x.sim).length, 1);
    assert.deepEqual(x.answers, [{ ok: false, reason }], 'the GNAT\'s reason');
    assert.deepEqual(x.sim.ge('alice').dropped, [{ handle: 'h2', reason: 'natf_refused' }]);
    assert.deepEqual(x.failed.map((f) => [f.why, f.stashes]), [['refused_by_gnat', ['h2']]]);
    assert.equal(x.sim.ge('alice').pit.size, 0);
    assert.equal(x.sim.ge('gnat').pit.size, 0);
    assert.deepEqual(x.settled, []);
    assert.ok(x.sim.ge('gnat').obs.rejections.includes('natf_refused'), 'counted at the GNAT');
    assert.ok(x.sim.ge('alice').obs.failures.includes('natf_refused'), 'counted at alice');
  });
}

test('no GNAT answers: no decision alone for a virtual address: the flow fails after the retries, the application told', { timeout: 5000 }, () => {
  const x = setup();
  x.sim.dropIf = (w) => w.to === 'gnat';
  x.sim.ge('alice').node.onPitMiss(vflow, 'h3');
  x.sim.time.run(60_000);
  assert.deepEqual(x.failed.map((f) => f.why), ['no_answer']);
  assert.deepEqual(x.sim.ge('alice').released, []);
  assert.equal(x.sim.ge('alice').pit.size, 0, 'never a plaintext pass to the virtual address');
});

test('a flow to an ordinary address is plain DPRP (the hooks are not in its way)', { timeout: 5000 }, () => {
  const x = setup();
  x.sim.ge('alice').node.onPitMiss({ ...vflow, daddr: G2 }, 'h4');
  x.sim.time.run(1000);
  assert.equal(ddes(x.sim)[0].options.length, 0);
  assert.deepEqual(x.asked, []);
  assert.deepEqual(x.settled, []);
  assert.deepEqual(x.sim.ge('alice').released, ['h4']);
});

test('a GE on the way (a GEN in front of alice) relays the DDE naming bob and keys its entries on the GNAT\'s port Z too', { timeout: 5000 }, () => {
  const settled: Array<{ flow: Flow; wire: Flow }> = [];
  const start: NatfDprpHooks = {
    virtualTarget: (f) => (f.daddr === V1 ? { name: 'bob.example.net', gnat: G2 } : null),
    settled: (flow, wire) => { settled.push({ flow, wire }); },
  };
  const gnat: NatfDprpHooks = { inbound: (q) => (actDecide(ACT, q.name, q.peerGroups).allow ? { ok: true, port: Z } : { ok: false, reason: 'unknown_name' }) };
  const sim = new Sim([
    { name: 'net', addr: '203.0.113.1' },
    { name: 'gen', addr: '198.51.100.1', parent: 'net', ge: { type: 'GEN', mode: 'OP', keys: [testKey(10)] } },
    { name: 'alice', addr: G1, parent: 'gen', ge: { type: 'GES', mode: 'OP', keys: [testKey(10)], natf: start } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'bob', addr: P1, parent: 'gnat' },
  ]);
  sim.ge('alice').node.onPitMiss(vflow, 'h5');
  sim.time.run(1000);
  const wire: Flow = { ...vflow, daddr: G2, dport: Z };
  assert.deepEqual(settled, [{ flow: vflow, wire }]);
  assert.deepEqual(sim.ge('alice').released, ['h5']);
  assert.equal(sim.pitOf('gen', wire, 'egress')?.action, 'pass', 'the GEN passes the flow (alice encrypts) on the wire flow');
  assert.equal(sim.pitOf('gen', { ...vflow, daddr: G2 }, 'egress'), undefined, 'nothing on the pre-mapping port');
  assert.equal(sim.pitOf('gnat', wire, 'ingress')?.action, 'decrypt');
});

/**
 * The seeds' main case (docs/natf.md "A private GE behind the GNAT"): bob is a
 * GE itself (GES, CL, group 10) and the GNAT's hook says so (`inside`). The
 * GNAT relays the DDE inward with its own record (NATF_LIP P1), bob answers
 * as the end GE of G1:X -> P1:Y, the GNAT appends NATF_PORT Z to bob's RGI and
 * relays the MPIT to bob; each installs on its own view.
 */
function insideSetup(): { sim: Sim; settled: Array<{ flow: Flow; wire: Flow }> } {
  const settled: Array<{ flow: Flow; wire: Flow }> = [];
  const start: NatfDprpHooks = {
    virtualTarget: (f) => (f.daddr === V1 ? { name: 'bob.example.net', gnat: G2 } : null),
    settled: (flow, wire) => { settled.push({ flow, wire }); },
  };
  const gnat: NatfDprpHooks = {
    inbound: (q) => { const d = actDecide(ACT, q.name, q.peerGroups); return d.allow ? { ok: true, port: Z, inside: d.address } : { ok: false, reason: d.reason }; },
    // The inbound mapping the GNAT made holds Z for alice:X (a re-keying's DDE names G2:Z, no name).
    mappedInside: (q) => (q.flow.saddr === G1 && q.flow.sport === vflow.sport && q.flow.dport === Z ? { inside: P1, port: vflow.dport } : null),
  };
  const sim = new Sim([
    { name: 'net', addr: '203.0.113.1' },
    { name: 'alice', addr: G1, parent: 'net', ge: { type: 'GES', mode: 'OP', keys: [testKey(10)], natf: start } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'bob', addr: P1, parent: 'gnat', ge: { type: 'GES', mode: 'CL', keys: [testKey(10)] } },
  ]);
  return { sim, settled };
}

test('a private GE behind the GNAT: DDE relayed inward with the GNAT\'s NATF_LIP record; bob the end GE of G1:X -> P1:Y; each PIT on its own view', { timeout: 5000 }, () => {
  const { sim, settled } = insideSetup();
  sim.ge('alice').node.onPitMiss(vflow, 'h6');
  sim.time.run(1000);
  const toBob = sim.wire.filter((w) => w.to === 'bob' && w.icmp[1] === MsgType.DDE).map((w) => decode(w.icmp));
  assert.equal(toBob.length, 1, 'the GNAT relayed the DDE to bob');
  assert.deepEqual(toBob[0].flow, { ...vflow, daddr: G2 }, 'the trigger CID unchanged (alice\'s tags cover it)');
  assert.deepEqual(toBob[0].records.map((r) => r.addr), [G1, G2]);
  const lip = toBob[0].records[1].options.find((op) => op.type === OptionType.NATF_LIP)!.value;
  assert.equal([...lip].join('.'), P1);
  const rgi = sim.wire.filter((w) => w.to === 'alice' && w.icmp[1] === MsgType.RGI).map((w) => decode(w.icmp));
  assert.equal(rgi.length, 1);
  assert.equal(rgi[0].endGe, P1, 'bob is the end GE');
  assert.deepEqual(rgi[0].records.map((r) => r.addr), [P1, G2], 'bob\'s record, then the GNAT\'s');
  assert.equal(rgi[0].records[1].options.find((op) => op.type === OptionType.NATF_PORT)?.value.readUInt16BE(0), Z);
  const wire: Flow = { ...vflow, daddr: G2, dport: Z };
  const back: Flow = { saddr: G2, daddr: G1, sport: Z, dport: vflow.sport, proto: 6 };
  assert.deepEqual(settled, [{ flow: vflow, wire }]);
  assert.deepEqual(sim.ge('alice').released, ['h6']);
  assert.equal(sim.pitOf('alice', wire, 'egress')?.action, 'encrypt', 'alice: G1:X <-> G2:Z');
  assert.equal(sim.pitOf('alice', back, 'ingress')?.action, 'decrypt');
  assert.equal(sim.pitOf('gnat', wire, 'ingress')?.action, 'pass', 'the GNAT relays (transit), on the wire view');
  assert.equal(sim.pitOf('gnat', back, 'egress')?.action, 'pass');
  const cid1: Flow = { ...vflow, daddr: P1 };
  assert.equal(sim.pitOf('bob', cid1, 'ingress')?.action, 'decrypt', 'bob: G1:X <-> P1:Y');
  assert.equal(sim.pitOf('bob', { saddr: P1, daddr: G1, sport: 80, dport: vflow.sport, proto: 6 }, 'egress')?.action, 'encrypt');
  assert.equal(sim.ge('bob').pit.size, 2);
  assert.equal([...sim.ge('gnat').pit.values()].filter((e) => e.action !== 'pass').length, 0, 'the GNAT decrypts nothing');
});

test('a private GE behind the GNAT: the GNAT sends the MPIT inward before writing its own entries, which are there before it relays the CDN back', { timeout: 5000 }, () => {
  const { sim } = insideSetup();
  const wire: Flow = { ...vflow, daddr: G2, dport: Z };
  const seen: string[] = [];
  const s = sim as unknown as { send: (from: string, dst: string, icmp: Buffer, src?: string) => void };
  const orig = s.send.bind(sim);
  s.send = (from, dst, icmp, src) => {
    if (from === 'gnat' && (icmp[1] === MsgType.MPIT || icmp[1] === MsgType.CDN)) seen.push(`${MsgType.MPIT === icmp[1] ? 'MPIT' : 'CDN'} ${sim.pitOf('gnat', wire, 'ingress')?.action ?? 'none'}`);
    orig(from, dst, icmp, src);
  };
  sim.ge('alice').node.onPitMiss(vflow, 'h9');
  sim.time.run(1000);
  assert.deepEqual(sim.ge('alice').released, ['h9']);
  assert.deepEqual(seen, ['MPIT none', 'CDN pass'], 'MPIT on its way first; the entries written before the CDN goes back to alice');
  assert.equal(sim.pitOf('gnat', wire, 'ingress')?.state, 'confirmed');
});

test('a private GE behind the GNAT: a DDE whose trigger CID was rewritten to P1 on the way sets nothing up', { timeout: 5000 }, () => {
  const { sim, settled } = insideSetup();
  // What a GNAT rewriting the CID (instead of appending its record) would send: the tags no longer match.
  sim.tamper = (w) => {
    if (w.to !== 'bob' || w.icmp[1] !== MsgType.DDE) return w.icmp;
    const m = decode(w.icmp);
    return encode({ ...m, flow: { ...m.flow, daddr: P1 } });
  };
  sim.ge('alice').node.onPitMiss(vflow, 'h7');
  sim.time.run(60_000);
  assert.deepEqual(settled, []);
  assert.deepEqual(sim.ge('alice').released, []);
  assert.equal(sim.ge('alice').pit.size, 0);
  assert.equal([...sim.ge('bob').pit.values()].filter((e) => e.action === 'decrypt' || e.action === 'encrypt').length, 0, 'bob keys nothing');
});

test('a private GE behind the GNAT: a forged NATF_LIP record (no group key) is refused by bob', { timeout: 5000 }, () => {
  const { sim } = insideSetup();
  sim.ge('alice').node.onPitMiss(vflow, 'h8');
  sim.time.run(1000);
  const dde = sim.wire.find((w) => w.to === 'bob' && w.icmp[1] === MsgType.DDE)!;
  const m = decode(dde.icmp);
  // The GNAT's record with its tags stripped: it proves nothing, so bob must not act on it.
  const forged = encode({ ...m, negId: Buffer.alloc(8, 9), records: [m.records[0], { ...m.records[1], tags: [] }] });
  const before = sim.ge('bob').obs.rejections.length;
  sim.inject('bob', forged, { src: G1, dst: P1 });
  assert.ok(sim.ge('bob').obs.rejections.slice(before).includes('destination_mismatch'), JSON.stringify(sim.ge('bob').obs.rejections.slice(before)));
});

test('a private GE behind the GNAT opens a flow to a global GE: the GNAT maps it first and relays the DDE as itself with NATF_PORT Z; each PIT on its own view', { timeout: 5000 }, () => {
  const mapped: Flow[] = [];
  const gnat: NatfDprpHooks = { outbound: (q) => { mapped.push(q.flow); return { ok: true, port: Z }; } };
  const sim = new Sim([
    { name: 'net', addr: '203.0.113.1' },
    { name: 'alice', addr: G1, parent: 'net', ge: { type: 'GES', mode: 'OP', keys: [testKey(10)] } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'bob', addr: P1, parent: 'gnat', ge: { type: 'GES', mode: 'CL', keys: [testKey(10)] } },
  ]);
  const flow: Flow = { saddr: P1, daddr: G1, sport: 40123, dport: 5201, proto: 6 };
  sim.ge('bob').node.onPitMiss(flow, 'h9');
  sim.time.run(1000);
  assert.deepEqual(mapped, [flow], 'the GNAT mapped the flow once, before its first packet');
  const atAlice = sim.wire.filter((w) => w.to === 'alice' && w.icmp[1] === MsgType.DDE);
  assert.equal(atAlice.length, 1);
  const d = decode(atAlice[0].icmp);
  assert.deepEqual(d.flow, flow, 'the trigger CID as bob sent it (his tags cover it)');
  assert.deepEqual(d.records.map((r) => r.addr), [P1, G2]);
  assert.equal(d.records[1].options.find((op) => op.type === OptionType.NATF_PORT)?.value.readUInt16BE(0), Z);
  assert.deepEqual(sim.ge('bob').released, ['h9']);
  assertFigureB(sim, 'bob', flow, G2, Z, P1);
});

test('a private GE behind the GNAT with a GEN in front of alice: the GEN takes the MPIT on its way to the GNAT and keys on Z', { timeout: 5000 }, () => {
  const start: NatfDprpHooks = { virtualTarget: (f) => (f.daddr === V1 ? { name: 'bob.example.net', gnat: G2 } : null) };
  const gnat: NatfDprpHooks = { inbound: () => ({ ok: true, port: Z, inside: P1 }) };
  const sim = new Sim([
    { name: 'net', addr: '203.0.113.1' },
    { name: 'gen', addr: '198.51.100.1', parent: 'net', ge: { type: 'GEN', mode: 'OP', keys: [testKey(10)] } },
    { name: 'alice', addr: G1, parent: 'gen', ge: { type: 'GES', mode: 'OP', keys: [testKey(10)], natf: start } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'bob', addr: P1, parent: 'gnat', ge: { type: 'GES', mode: 'CL', keys: [testKey(10)] } },
  ]);
  sim.ge('alice').node.onPitMiss(vflow, 'h10');
  sim.time.run(1000);
  const wire: Flow = { ...vflow, daddr: G2, dport: Z };
  assert.deepEqual(sim.ge('alice').released, ['h10']);
  assert.equal(sim.pitOf('gen', wire, 'egress')?.action, 'pass', 'the GEN on the wire flow');
  assert.equal(sim.pitOf('gnat', wire, 'ingress')?.action, 'pass');
  assert.equal(sim.pitOf('bob', { ...vflow, daddr: P1 }, 'ingress')?.action, 'decrypt');
  assert.ok(!sim.ge('gen').obs.rejections.includes('destination_mismatch'), JSON.stringify(sim.ge('gen').obs.rejections));
});

test('a private GE behind the GNAT: a re-keying started by alice alone (G1:X -> G2:Z, no name) is relayed inward again; the GNAT never becomes the end GE', { timeout: 5000 }, () => {
  const { sim } = insideSetup();
  sim.ge('alice').node.onPitMiss(vflow, 'h11');
  sim.time.run(1000);
  for (const g of ['alice', 'gnat', 'bob']) sim.ge(g).keys.add(testKey(10, 2));
  assert.equal(sim.ge('alice').node.onKeysChanged(), 1, 'alice re-negotiates the flow');
  sim.time.run(5000);
  const wire: Flow = { ...vflow, daddr: G2, dport: Z };
  const back: Flow = { saddr: G2, daddr: G1, sport: Z, dport: vflow.sport, proto: 6 };
  assert.equal(sim.pitOf('alice', wire, 'egress')?.version, 2, 'alice encrypts under version 2');
  assert.equal(sim.pitOf('alice', back, 'ingress')?.action, 'decrypt');
  assert.equal([...sim.ge('gnat').pit.values()].filter((e) => e.action !== 'pass').length, 0, 'the GNAT decrypts nothing');
  const cid1: Flow = { ...vflow, daddr: P1 };
  assert.equal(sim.pitOf('bob', cid1, 'ingress')?.action, 'decrypt');
  assert.equal(sim.pitOf('bob', cid1, 'ingress')?.version, 2, 'bob decrypts version 2 on G1:X -> P1:Y');
  assert.equal(sim.pitOf('bob', { saddr: P1, daddr: G1, sport: 80, dport: vflow.sport, proto: 6 }, 'egress')?.version, 2);
});
