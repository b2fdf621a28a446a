/**
 * A GE new on the path of a flow that is already encrypted end to end
 * (docs/dprp.md "A GE new on a protected flow's path"): host GEs a and b
 * encrypt a flow; then b's packets reach a through a router R (a route
 * change, or b moved behind R). R misses and negotiates the flow with a. a,
 * the end GE, says in its RGI record who encrypts the flow with it (option
 * PROTECTED) when that GE is the flow's endpoint (on every path the flow
 * takes) or when another part (Mobile PPC) wrote the entries; a member R
 * then passes the ciphertext and sends no MPIT, and a's entries stay as they
 * were. When the other end was a router (it may be off the path now) nothing
 * is said, and R and a negotiate the flow afresh, as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, testKey, type SimNodeSpec } from './dprp-sim.js';
import { decode, MsgType } from '../../controlplane/dprp/wire.js';
import { reverseFlow } from '../../controlplane/dprp/pit-entries.js';
import { OptionType, protectedOf, SPEC_OPTION_CODECS } from '../../controlplane/dprp/spec-options.js';
import type { Flow } from '../../controlplane/dprp/wire.js';

const A = '192.0.2.11';
const B = '192.0.2.12';

/** a and b host GEs of group 1 under core; R a GEN (of `rGroup`) under core, nobody behind it yet; T a host behind GEN1. */
function nodes(rGroup = 1, aProtectedBy?: (f: Flow) => string | null): SimNodeSpec[] {
  return [
    { name: 'core', addr: '192.0.2.254' },
    { name: 'a', addr: A, parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)], ...(aProtectedBy ? { protectedBy: aProtectedBy } : {}) } },
    { name: 'b', addr: B, parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)] } },
    { name: 'R', addr: '198.51.100.1', parent: 'core', ge: { type: 'GEN', mode: 'OP', keys: [testKey(rGroup)] } },
    { name: 'GEN1', addr: '198.51.100.2', parent: 'core', ge: { type: 'GEN', mode: 'OP', keys: [testKey(1)] } },
    { name: 'T', addr: '203.0.113.10', parent: 'GEN1' },
  ];
}

const snapshot = (sim: Sim, ge: string) => JSON.stringify([...sim.ge(ge).pit.entries()].sort(([x], [y]) => (x < y ? -1 : 1)));

/** The RGIs a sent R, decoded. */
function rgisFromA(sim: Sim): ReturnType<typeof decode>[] {
  return sim.wire.filter((w) => w.from === 'a' && w.to === 'R').map((w) => decode(w.icmp)).filter((m) => m.type === MsgType.RGI);
}

/** Negotiates host `src` -> a, then re-parents `src` under R and lets R miss on the flow's reverse (a's answer path) and forward. */
function moveBehindR(sim: Sim, src: string): { flow: Flow; before: string } {
  const { flow, handle } = sim.connect(src, 'a');
  sim.time.run(30_000);
  assert.ok(sim.ge(sim.protector(src)).released.includes(handle), 'the flow was negotiated first');
  const before = snapshot(sim, 'a');
  sim.specs.get(src)!.parent = 'R';
  sim.ge('R').node.onPitMiss(flow, 'r-fwd');
  sim.time.run(60_000);
  return { flow, before };
}

test('the other end is a host GE: a says PROTECTED b, R passes the ciphertext, sends no MPIT, a\'s entries stay', () => {
  const sim = new Sim(nodes());
  const { flow, before } = moveBehindR(sim, 'b');
  const rgis = rgisFromA(sim);
  assert.ok(rgis.length >= 1, 'a answered R');
  for (const m of rgis) assert.equal(protectedOf(m.records[0]), B, 'a\'s record names b');
  const r = sim.ge('R');
  assert.deepEqual(r.obs.completions.map((c) => c.outcome), ['protected_transit']);
  assert.deepEqual(r.released, ['r-fwd'], 'the stashed packet went on');
  for (const [f, d] of [[flow, 'ingress'], [flow, 'egress'], [reverseFlow(flow), 'ingress'], [reverseFlow(flow), 'egress']] as const) {
    const e = sim.pitOf('R', f, d);
    assert.equal(e?.action, 'pass', `R passes ${d}`);
    assert.equal(e?.role, 'intermediate');
    assert.equal(e?.state, 'confirmed');
  }
  assert.equal(sim.wire.filter((w) => w.from === 'R' && decode(w.icmp).type === MsgType.MPIT).length, 0, 'R sent no MPIT');
  assert.equal(snapshot(sim, 'a'), before, 'a\'s entries are the ones negotiated with b');
  assert.deepEqual(sim.ge('a').obs.rejections, []);
});

test('the other end was a router (GEN1 for T): nothing said, R and a negotiate the flow afresh', () => {
  const sim = new Sim(nodes());
  const { flow, before } = moveBehindR(sim, 'T');
  for (const m of rgisFromA(sim)) assert.equal(protectedOf(m.records[0]), null);
  assert.deepEqual(sim.ge('R').obs.completions.map((c) => c.outcome), ['encrypted']);
  assert.equal(sim.pitOf('R', flow, 'egress')?.action, 'encrypt', 'R encrypts T\'s packets now, leaving its outside (GEN1 is off the path)');
  assert.notEqual(snapshot(sim, 'a'), before, 'a re-installed its entries with R');
  assert.equal(sim.pitOf('a', flow, 'ingress')?.action, 'decrypt');
  const salt = sim.pitOf('R', flow, 'egress')?.flowKey?.salt;
  assert.ok(salt);
  assert.equal(sim.pitOf('a', flow, 'ingress')?.flowKey?.salt, salt, 'a decrypts under the new pair\'s per-flow key (it kept GEN1\'s salt before)');
});

test('the start re-negotiates toward a new end GE (T now behind R): both take the new negotiation\'s per-flow key', () => {
  const sim = new Sim(nodes());
  const { flow } = sim.connect('a', 'T');
  sim.time.run(30_000);
  const old = sim.pitOf('a', flow, 'egress')?.flowKey?.salt;
  assert.ok(old, 'encrypted with GEN1 first');
  sim.specs.get('T')!.parent = 'R';
  sim.ge('a').node.onPitMiss(flow, 'again');
  sim.time.run(60_000);
  const salt = sim.pitOf('a', flow, 'egress')?.flowKey?.salt;
  const atR = [...sim.ge('R').pit.values()].find((e) => e.action === 'decrypt');
  assert.ok(atR, 'R decrypts the flow');
  assert.notEqual(salt, old, 'a took a new salt');
  assert.equal(atR.flowKey?.salt, salt, 'a and R agree on it');
});

test('another part\'s entries (Mobile PPC\'s moved flow): its protectedBy is said, R passes', () => {
  let asked = 0;
  const sim = new Sim(nodes(1, (f) => { asked++; return f.saddr === B || f.daddr === B ? B : null; }));
  // No DPRP flow at a: R's miss is the flow's first negotiation there, yet a says the part's word.
  const flow: Flow = { saddr: B, daddr: A, sport: 40100, dport: 7000, proto: 6 };
  sim.specs.get('b')!.parent = 'R';
  sim.ge('R').node.onPitMiss(flow, 'r-fwd');
  sim.time.run(60_000);
  assert.ok(asked >= 1, 'a asked the part');
  assert.deepEqual(sim.ge('R').obs.completions.map((c) => c.outcome), ['protected_transit']);
  assert.equal(sim.pitOf('R', flow, 'ingress')?.action, 'pass');
  assert.equal(sim.pitOf('a', flow, 'ingress'), undefined, 'a installed nothing: the part\'s entries stay');
});

test('R of another group cannot check a\'s record: the option is ignored, its pass for a refused, the flow stays encrypted', () => {
  const sim = new Sim(nodes(2));
  const { flow, before } = moveBehindR(sim, 'b');
  assert.ok(rgisFromA(sim).some((m) => protectedOf(m.records[0]) === B), 'a said it (skippable: harmless to R)');
  assert.deepEqual(sim.ge('R').obs.completions.map((c) => c.outcome), ['plaintext']);
  assert.equal(sim.pitOf('R', flow, 'ingress')?.action, 'pass');
  assert.equal(sim.ge('a').obs.downgradesRefused, 1, 'a refused R\'s unauthenticated pass');
  assert.equal(snapshot(sim, 'a'), before);
});

test('re-keying by the same start says nothing: PROTECTED is only for a GE other than the start and its path', () => {
  const sim = new Sim(nodes());
  const { flow } = sim.connect('b', 'a');
  sim.time.run(30_000);
  const n0 = sim.wire.length;
  sim.ge('b').node.onPitMiss(flow, 'again');
  sim.time.run(60_000);
  const rgis = sim.wire.slice(n0).filter((w) => w.from === 'a').map((w) => decode(w.icmp)).filter((m) => m.type === MsgType.RGI);
  assert.ok(rgis.length >= 1);
  for (const m of rgis) assert.equal(protectedOf(m.records[0]), null);
});

test('option PROTECTED: 4 bytes, an IPv4 address; anything else is refused by its codec and read as absent', () => {
  const codec = SPEC_OPTION_CODECS.find((c) => c.type === OptionType.PROTECTED)!;
  assert.equal(codec.skippable, true);
  const v = codec.encode(B);
  assert.deepEqual([...v], [192, 0, 2, 12]);
  assert.equal(codec.decode(v), B);
  assert.throws(() => codec.decode(Buffer.alloc(3)));
  assert.equal(protectedOf({ options: [{ type: OptionType.PROTECTED, value: Buffer.alloc(5) }] }), null);
  assert.equal(protectedOf({ options: [] }), null);
});
