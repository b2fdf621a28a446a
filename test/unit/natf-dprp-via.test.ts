/**
 * NAT-f with a GEN inside the GNAT's network in front of a plain Term (ACT
 * `via`; docs/natf.md "A GEN inside the GNAT's network"), in the DPRP
 * simulation (dprp-sim.ts, no root): alice (GES, G1) -> bob.example.net, bob a
 * Term at P1 behind P-GEN (a CL GEN of group 10 at 100.64.1.2) behind the GNAT
 * (G2). The GNAT's hook answers with the real actDecide and relayTarget on an
 * ACT entry `via: 100.64.1.2`; the GNAT relays the DDE to P-GEN with its
 * record (NATF_LIP P1), P-GEN answers as bob's end GE of G1:X -> P1:Y, the
 * GNAT appends NATF_PORT Z, relays MPIT and CDN and passes; PCCOM runs alice
 * <-> P-GEN. Each PIT on its own view; nothing reaches bob.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actDecide, relayTarget, type ActEntry } from '../../controlplane/natf/act.js';
import type { NatfDprpHooks } from '../../controlplane/dprp/natf-hooks.js';
import { decode, encode, MsgType, type Flow } from '../../controlplane/dprp/wire.js';
import { OptionType } from '../../controlplane/dprp/spec-options.js';
import { Sim, testKey } from './dprp-sim.js';
import { assertFigureB } from './natf-sim-asserts.js';

const G1 = '192.0.2.1';
const G2 = '192.0.2.2';
const PGEN = '100.64.1.2';
const P1 = '100.64.2.10';
const V1 = '198.18.0.1';
const Z = 21_345;

const ACT: ActEntry[] = [{ name: 'bob.example.net', address: P1, outsideAccess: 'allow', groups: [10], via: PGEN }];
const vflow: Flow = { saddr: G1, daddr: V1, sport: 40000, dport: 80, proto: 6 };
const wire: Flow = { ...vflow, daddr: G2, dport: Z };
const back: Flow = { saddr: G2, daddr: G1, sport: Z, dport: vflow.sport, proto: 6 };
const cid1: Flow = { ...vflow, daddr: P1 };
const cid1Back: Flow = { saddr: P1, daddr: G1, sport: vflow.dport, dport: vflow.sport, proto: 6 };

function viaSetup(pgenKeys = [testKey(10)], bobParent = 'pgen'): { sim: Sim; settled: Array<{ flow: Flow; wire: Flow }> } {
  const settled: Array<{ flow: Flow; wire: Flow }> = [];
  const start: NatfDprpHooks = {
    virtualTarget: (f) => (f.daddr === V1 ? { name: 'bob.example.net', gnat: G2 } : null),
    settled: (flow, w) => { settled.push({ flow, wire: w }); },
  };
  const gnat: NatfDprpHooks = {
    inbound: (q) => { const d = actDecide(ACT, q.name, q.peerGroups); return d.allow ? { ok: true, port: Z, ...relayTarget(d) } : { ok: false, reason: d.reason }; },
    // The inbound mapping holds Z for alice:X to P1:Y (a re-keying's DDE names G2:Z, no name): as NatHandler.mappedInside.
    mappedInside: (q) => (q.flow.saddr === G1 && q.flow.sport === vflow.sport && q.flow.dport === Z ? { ...relayTarget(ACT[0])!, port: vflow.dport } : null),
  };
  const sim = new Sim([
    { name: 'net', addr: '203.0.113.1' },
    { name: 'alice', addr: G1, parent: 'net', ge: { type: 'GES', mode: 'OP', keys: [testKey(10)], natf: start } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'pgen', addr: PGEN, parent: 'gnat', ge: { type: 'GEN', mode: 'CL', keys: pgenKeys } },
    { name: 'bob', addr: P1, parent: bobParent },
  ]);
  return { sim, settled };
}

test('ACT via: the GNAT relays the DDE to the GEN with NATF_LIP P1; the GEN is bob\'s end GE of G1:X -> P1:Y; Z after its record', { timeout: 5000 }, () => {
  const { sim, settled } = viaSetup();
  sim.ge('alice').node.onPitMiss(vflow, 'h1');
  sim.time.run(1000);
  const toGen = sim.wire.filter((w) => w.to === 'pgen' && w.icmp[1] === MsgType.DDE);
  assert.equal(toGen.length, 1, 'the GNAT relayed the DDE to the GEN');
  assert.equal(toGen[0].dst, PGEN, 'addressed to the GEN the ACT names');
  const d = decode(toGen[0].icmp);
  assert.deepEqual(d.flow, { ...vflow, daddr: G2 }, 'the trigger CID unchanged (alice\'s tags cover it)');
  assert.deepEqual(d.records.map((r) => r.addr), [G1, G2]);
  assert.equal([...d.records[1].options.find((op) => op.type === OptionType.NATF_LIP)!.value].join('.'), P1, 'NATF_LIP names the Term, not the GEN');
  const rgi = sim.wire.filter((w) => w.to === 'alice' && w.icmp[1] === MsgType.RGI).map((w) => decode(w.icmp));
  assert.equal(rgi.length, 1);
  assert.equal(rgi[0].endGe, PGEN, 'the GEN is the end GE');
  assert.deepEqual(rgi[0].records.map((r) => r.addr), [PGEN, G2], 'the GEN\'s record, then the GNAT\'s');
  assert.equal(rgi[0].records[1].options.find((op) => op.type === OptionType.NATF_PORT)?.value.readUInt16BE(0), Z);
  const mpits = sim.wire.filter((w) => w.icmp[1] === MsgType.MPIT);
  assert.deepEqual(mpits.map((w) => [w.to, w.dst]), [['gnat', G2], ['pgen', PGEN]], 'alice\'s MPIT to the GNAT, relayed to the GEN');
  assert.deepEqual(settled, [{ flow: vflow, wire }]);
  assert.deepEqual(sim.ge('alice').released, ['h1']);
});

test('ACT via: each PIT on its view: alice G1:X <-> G2:Z enc/dec, the GNAT pass, the GEN G1:X <-> P1:Y dec/enc, nothing at the Term', { timeout: 5000 }, () => {
  const { sim } = viaSetup();
  sim.ge('alice').node.onPitMiss(vflow, 'h2');
  sim.time.run(1000);
  assert.equal(sim.pitOf('alice', wire, 'egress')?.action, 'encrypt', 'alice: G1:X -> G2:Z encrypt');
  assert.equal(sim.pitOf('alice', back, 'ingress')?.action, 'decrypt', 'alice: G2:Z -> G1:X decrypt');
  assert.equal(sim.pitOf('gnat', wire, 'ingress')?.action, 'pass', 'the GNAT passes (transit) on the wire view');
  assert.equal(sim.pitOf('gnat', back, 'egress')?.action, 'pass');
  assert.equal([...sim.ge('gnat').pit.values()].filter((e) => e.action !== 'pass').length, 0, 'the GNAT decrypts nothing');
  assert.equal(sim.pitOf('pgen', cid1, 'ingress')?.action, 'decrypt', 'the GEN: G1:X -> P1:Y decrypt');
  assert.equal(sim.pitOf('pgen', cid1Back, 'egress')?.action, 'encrypt', 'the GEN: P1:Y -> G1:X encrypt');
  assert.equal(sim.ge('pgen').pit.size, 2, 'two entries at the GEN, both on CID1');
  assert.equal(sim.pitOf('alice', wire, 'egress')?.group, 10);
  assert.equal(sim.pitOf('pgen', cid1, 'ingress')?.group, 10, 'alice and the GEN share group 10');
  assert.deepEqual(sim.toHosts.filter((w) => w.to === 'bob'), [], 'no control message reached the Term');
  assert.deepEqual(sim.ge('pgen').obs.rejections, []);
});

test('ACT via: a GEN that does not hold the GNAT\'s group refuses the relayed DDE (its record proves nothing to it); nothing installed', { timeout: 5000 }, () => {
  const { sim, settled } = viaSetup([testKey(11)]);
  sim.ge('alice').node.onPitMiss(vflow, 'h3');
  sim.time.run(60_000);
  assert.ok(sim.ge('pgen').obs.rejections.includes('destination_mismatch'), JSON.stringify(sim.ge('pgen').obs.rejections));
  assert.deepEqual(settled, []);
  assert.equal(sim.ge('pgen').pit.size, 0);
  assert.equal([...sim.ge('alice').pit.values()].filter((e) => e.action === 'encrypt' || e.action === 'decrypt').length, 0);
});

test('ACT via naming a GEN the host is not behind: that GEN refuses the relayed DDE (destination_mismatch), answers nothing', { timeout: 5000 }, () => {
  // bob hangs off the GNAT directly; the ACT still says via P-GEN (a wrong network file).
  const { sim, settled } = viaSetup([testKey(10)], 'gnat');
  sim.ge('alice').node.onPitMiss(vflow, 'h4');
  sim.time.run(60_000);
  assert.ok(sim.wire.some((w) => w.to === 'pgen' && w.icmp[1] === MsgType.DDE), 'the GNAT relayed to the GEN it was told');
  assert.ok(sim.ge('pgen').obs.rejections.includes('destination_mismatch'), JSON.stringify(sim.ge('pgen').obs.rejections));
  assert.equal(sim.wire.filter((w) => w.icmp[1] === MsgType.RGI).length, 0, 'no RGI from anyone');
  assert.deepEqual(settled, []);
  assert.equal(sim.ge('pgen').pit.size, 0);
});

test('ACT via: a re-keying started by alice alone (G1:X -> G2:Z, no name) is relayed to the GEN again; the GNAT never becomes the end GE', { timeout: 5000 }, () => {
  const { sim } = viaSetup();
  sim.ge('alice').node.onPitMiss(vflow, 'h5');
  sim.time.run(1000);
  for (const g of ['alice', 'gnat', 'pgen']) sim.ge(g).keys.add(testKey(10, 2));
  assert.equal(sim.ge('alice').node.onKeysChanged(), 1, 'alice re-negotiates the flow');
  sim.time.run(5000);
  assert.equal(sim.pitOf('alice', wire, 'egress')?.version, 2, 'alice encrypts under version 2');
  assert.equal([...sim.ge('gnat').pit.values()].filter((e) => e.action !== 'pass').length, 0, 'the GNAT decrypts nothing');
  assert.equal(sim.pitOf('pgen', cid1, 'ingress')?.version, 2, 'the GEN decrypts version 2 on G1:X -> P1:Y');
  assert.equal(sim.pitOf('pgen', cid1Back, 'egress')?.version, 2);
});

test('a Term behind the GEN inside opens a flow to a global GE: the GEN starts, the GNAT maps it first and relays the DDE as itself with NATF_PORT Z; each PIT on its view', { timeout: 5000 }, () => {
  const mapped: Flow[] = [];
  const gnat: NatfDprpHooks = { outbound: (q) => { mapped.push(q.flow); return { ok: true, port: Z }; } };
  const sim = new Sim([
    { name: 'net', addr: '203.0.113.1' },
    { name: 'alice', addr: G1, parent: 'net', ge: { type: 'GES', mode: 'OP', keys: [testKey(10)] } },
    { name: 'gnat', addr: G2, parent: 'net', ge: { type: 'GNAT', mode: 'CL', keys: [testKey(10)], natf: gnat } },
    { name: 'pgen', addr: PGEN, parent: 'gnat', ge: { type: 'GEN', mode: 'CL', keys: [testKey(10)] } },
    { name: 'bob', addr: P1, parent: 'pgen' },
  ]);
  const flow: Flow = { saddr: P1, daddr: G1, sport: 40123, dport: 5201, proto: 6 };
  sim.ge('pgen').node.onPitMiss(flow, 'h6');
  sim.time.run(1000);
  assert.deepEqual(mapped, [flow], 'the GNAT mapped the Term\'s flow once, before its first packet');
  const atAlice = sim.wire.filter((w) => w.to === 'alice' && w.icmp[1] === MsgType.DDE).map((w) => decode(w.icmp));
  assert.equal(atAlice.length, 1);
  assert.deepEqual(atAlice[0].flow, flow, 'the trigger CID as the GEN sent it (its tags cover it)');
  assert.deepEqual(atAlice[0].records.map((r) => r.addr), [PGEN, G2]);
  assert.equal(atAlice[0].records[1].options.find((op) => op.type === OptionType.NATF_PORT)?.value.readUInt16BE(0), Z);
  assert.deepEqual(sim.ge('pgen').released, ['h6']);
  assertFigureB(sim, 'pgen', flow, G2, Z, P1);
});
