/**
 * Issue 11 item 2, no silent downgrade: every plaintext or refused flow says
 * why in its PIT entries and reaches the observer (metric + rate-limited
 * log), and strict mode (requireEncryption) turns a would-be plaintext flow
 * into a refusal, at the start GE and at a relay that requires it. Then the
 * pieces: the entry parser, the name matcher, the rate-limited log, the GMS
 * network definition and the agent configuration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, fig6Nodes, type SimNodeSpec } from './dprp-sim.js';
import { reverseFlow } from '../../controlplane/dprp/pit-entries.js';
import { decide } from '../../controlplane/dprp/decide.js';
import { EncryptionRequired, parseRequiredEntry, withEncryptionRequired } from '../../controlplane/dprp/encryption-required.js';
import { RateLimitedLog } from '../../controlplane/log/rate-limited-log.js';
import { parseNetworkYaml, SpecError } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan } from '../../controlplane/gms/plan.js';
import { buildDelivery, deliveryDigest } from '../../controlplane/gms/delivery.js';
import { parseAgentConfig, ConfigError } from '../../controlplane/config/agent-config.js';
import { pitWhyOf, withPitWhy } from '../../controlplane/maps/vocabulary.js';
import { PIT_F_RST } from '../../controlplane/maps/abi.js';

/** Fig. 6 with GES1 (and optionally GES3) requiring encryption to some destinations. */
function nodes(ges1Req?: string[], ges3Req?: string[]): SimNodeSpec[] {
  return fig6Nodes().map((n) => {
    if (n.name === 'GES1' && ges1Req) return { ...n, ge: { ...n.ge!, requireEncryption: ges1Req } };
    if (n.name === 'GES3' && ges3Req) return { ...n, ge: { ...n.ge!, requireEncryption: ges3Req } };
    return n;
  });
}

test('no GE answers: the flow is plaintext, its entries say no_ge, and the start reports it', () => {
  const sim = new Sim(nodes());
  const { flow, handle } = sim.connect('GES1', 'internet');
  sim.time.run(30_000);
  const st = sim.ge('GES1');
  assert.deepEqual(st.released, [handle]);
  for (const [f, d] of [[flow, 'egress'], [reverseFlow(flow), 'ingress']] as const) {
    const e = sim.pitOf('GES1', f, d)!;
    assert.equal(e.action, 'pass');
    assert.equal(e.why, 'no_ge');
  }
  assert.deepEqual(st.obs.plaintexts, [{ result: 'pass', why: 'no_ge', daddr: flow.daddr }]);
});

test('GEs answer but share no group: plaintext, not_member at the start and at the end GE', () => {
  const sim = new Sim(nodes());
  const { flow, handle } = sim.connect('GES1', 'GES3');
  sim.time.run(30_000);
  assert.deepEqual(sim.ge('GES1').released, [handle]);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.why, 'not_member');
  assert.equal(sim.pitOf('GES3', flow, 'ingress')?.action, 'pass');
  assert.equal(sim.pitOf('GES3', flow, 'ingress')?.why, 'not_member');
  assert.deepEqual(sim.ge('GES1').obs.plaintexts, [{ result: 'pass', why: 'not_member', daddr: flow.daddr }]);
  assert.deepEqual(sim.ge('GES3').obs.plaintexts, [{ result: 'pass', why: 'not_member', daddr: flow.daddr }]);
});

test('a CL GE refuses a plaintext flow: the entries say closed', () => {
  const sim = new Sim(nodes());
  const { flow } = sim.connect('GES1', 'server');
  sim.time.run(30_000);
  const e = sim.pitOf('GES1', flow, 'egress')!;
  assert.equal(e.action, 'drop');
  assert.equal(e.why, 'closed');
  assert.deepEqual(sim.ge('GES1').obs.plaintexts, [{ result: 'refused', why: 'closed', daddr: flow.daddr }]);
});

test('strict mode, no GE answers: refused, stash dropped, entries say encryption_required; nothing released', () => {
  const sim = new Sim(nodes(['198.18.0.0/15']));
  const { flow, handle } = sim.connect('GES1', 'internet');
  sim.time.run(30_000);
  const st = sim.ge('GES1');
  assert.deepEqual(st.released, []);
  assert.deepEqual(st.dropped, [{ handle, reason: 'refused' }]);
  for (const [f, d] of [[flow, 'egress'], [reverseFlow(flow), 'ingress']] as const) {
    assert.equal(sim.pitOf('GES1', f, d)?.action, 'drop');
    assert.equal(sim.pitOf('GES1', f, d)?.why, 'encryption_required');
  }
  assert.deepEqual(st.obs.plaintexts, [{ result: 'refused', why: 'encryption_required', daddr: flow.daddr }]);
  assert.deepEqual(st.obs.completions.map((c) => c.outcome), ['refused']);
});

test('strict mode at the start, GEs without a shared group: every GE on the path discards', () => {
  const sim = new Sim(nodes(['192.0.2.13']));
  const { flow, handle } = sim.connect('GES1', 'GES3');
  sim.time.run(30_000);
  assert.deepEqual(sim.ge('GES1').dropped, [{ handle, reason: 'refused' }]);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.why, 'encryption_required');
  assert.equal(sim.pitOf('GES3', flow, 'ingress')?.action, 'drop');
});

test('strict mode at the end GE only: the start\'s plaintext word is refused there (fails closed at the end)', () => {
  const sim = new Sim(nodes(undefined, ['192.0.2.13/32']));
  const { flow } = sim.connect('GES1', 'GES3');
  sim.time.run(30_000);
  assert.equal(sim.pitOf('GES1', flow, 'egress')?.action, 'pass');
  const end = sim.pitOf('GES3', flow, 'ingress')!;
  assert.equal(end.action, 'drop');
  assert.equal(end.why, 'encryption_required');
  assert.deepEqual(sim.ge('GES3').obs.plaintexts, [{ result: 'refused', why: 'encryption_required', daddr: flow.daddr }]);
});

test('strict mode leaves encrypted flows alone', () => {
  const sim = new Sim(nodes(['192.0.2.0/24']));
  const { flow, handle } = sim.connect('GES1', 'GES2');
  sim.time.run(30_000);
  assert.deepEqual(sim.ge('GES1').released, [handle]);
  const e = sim.pitOf('GES1', flow, 'egress')!;
  assert.equal(e.action, 'encrypt');
  assert.equal(e.why, undefined);
  assert.deepEqual(sim.ge('GES1').obs.plaintexts, []);
});

test('decide() says why; withEncryptionRequired turns only plaintext into a refusal by the start', () => {
  const alone = decide([{ addr: '192.0.2.1', type: 'GES', mode: 'OP', keys: [] }]);
  assert.equal(alone.verdict === 'plaintext' && alone.why, 'no_ge');
  const two = decide([{ addr: '192.0.2.1', type: 'GES', mode: 'OP', keys: [{ group: 1, version: 1 }] }, { addr: '192.0.2.2', type: 'GES', mode: 'OP', keys: [] }]);
  assert.equal(two.verdict === 'plaintext' && two.why, 'not_member');
  const strict = withEncryptionRequired(two, true);
  assert.equal(strict.verdict, 'refused');
  assert.equal(strict.verdict === 'refused' && strict.why, 'encryption_required');
  assert.equal(strict.verdict === 'refused' && strict.refusedBy, '192.0.2.1');
  assert.deepEqual(strict.actions.map((a) => [a.addr, a.action, a.role]), [['192.0.2.1', 'discard', 'start'], ['192.0.2.2', 'discard', 'end']]);
  assert.equal(withEncryptionRequired(two, false), two);
  const enc = decide([{ addr: '192.0.2.1', type: 'GES', mode: 'OP', keys: [{ group: 1, version: 1 }] }, { addr: '192.0.2.2', type: 'GES', mode: 'OP', keys: [{ group: 1, version: 1 }] }]);
  assert.equal(withEncryptionRequired(enc, true), enc);
});

test('requireEncryption entries: prefixes, bare addresses, names; anything else is refused naming the field', () => {
  assert.deepEqual(parseRequiredEntry('203.0.113.0/24', 'f'), { kind: 'prefix', prefix: '203.0.113.0/24' });
  assert.deepEqual(parseRequiredEntry('192.0.2.7', 'f'), { kind: 'prefix', prefix: '192.0.2.7/32' });
  assert.deepEqual(parseRequiredEntry('DB.Example.NET.', 'f'), { kind: 'name', name: 'db.example.net' });
  assert.throws(() => parseRequiredEntry('192.0.2.0/33', 'policy.requireEncryption[2]'), /policy\.requireEncryption\[2\]: prefix length 33/);
  assert.throws(() => parseRequiredEntry('300.1.1.1', 'x[0]'), /x\[0\]: '300\.1\.1\.1' is not an IPv4 prefix/);
  assert.throws(() => parseRequiredEntry('a b', 'x[1]'), /x\[1\]: 'a b' is neither/);
  assert.throws(() => parseRequiredEntry(7, 'x[3]'), /x\[3\]: must be an IPv4 prefix or a DNS name/);
});

test('the matcher: prefixes at once, names once resolved, a removed name stops matching', async () => {
  const answers: Record<string, string[]> = { 'db.example.net': ['203.0.113.5', '203.0.113.6'] };
  const m = new EncryptionRequired({ resolve4: async (n) => { if (!answers[n]) throw new Error('ENOTFOUND'); return answers[n]; } });
  m.set([parseRequiredEntry('192.0.2.0/24', 'a'), parseRequiredEntry('db.example.net', 'b'), parseRequiredEntry('gone.example.net', 'c')]);
  assert.equal(m.matches('192.0.2.200'), true);
  assert.equal(m.matches('198.51.100.1'), false);
  await m.refresh();
  assert.equal(m.matches('203.0.113.6'), true);
  assert.equal(m.matches('203.0.113.7'), false);
  m.set([parseRequiredEntry('192.0.2.0/24', 'a')]);
  assert.equal(m.matches('203.0.113.5'), false);
});

test('the rate-limited log: once per key per period, at most N per window, held-back lines counted on the next', () => {
  let t = 0;
  const lines: Array<Record<string, unknown>> = [];
  const l = new RateLimitedLog((f) => lines.push(f), { perKeyMs: 1000, windowMs: 1000, maxPerWindow: 2, now: () => t });
  assert.equal(l.note('a', { n: 1 }, 'x'), true);
  assert.equal(l.note('a', { n: 2 }, 'x'), false);
  assert.equal(l.note('b', { n: 3 }, 'x'), true);
  assert.equal(l.note('c', { n: 4 }, 'x'), false, 'window full');
  t = 1500;
  assert.equal(l.note('a', { n: 5 }, 'x'), true);
  assert.deepEqual(lines, [{ n: 1 }, { n: 3, suppressed: 1 }, { n: 5, suppressed: 1 }], 'each line reports what was held back since the one before');
});

test('PIT flags: the why bits keep the fast path\'s FIN/RST bits and read back by name', () => {
  const f = withPitWhy(PIT_F_RST, 'encryption_required');
  assert.equal(f & PIT_F_RST, PIT_F_RST);
  assert.equal(pitWhyOf(f), 'encryption_required');
  assert.equal(pitWhyOf(withPitWhy(f, 'none')), 'none');
  assert.equal(pitWhyOf(0xf0), '15', 'an undefined why reads as its number');
});

const NET = (req: string) => `apiVersion: gscip/v1
kind: Network
groups: [{ id: 1 }]
ges: [{ userId: a, type: GES, mode: OP, groups: [1] }]
policy:
  requireEncryption: ${req}
`;

test('network definition: policy.requireEncryption is validated, planned, stored and delivered', () => {
  assert.throws(() => parseNetworkYaml(NET('["192.0.2.0/24", "bad prefix!"]')), (e: unknown) => e instanceof SpecError && /policy\.requireEncryption\[1\]: 'bad prefix!' is neither/.test(e.message));
  const want = parseNetworkYaml(NET('["db.example.net", "192.0.2.0/24", "192.0.2.0/24"]'));
  assert.deepEqual(want.policy, { requireEncryption: ['192.0.2.0/24', 'db.example.net'] });
  const cur = { ...want, policy: { requireEncryption: ['198.51.100.0/24'] } };
  const plan = computePlan(cur, want);
  assert.deepEqual(plan.ops.map((o) => o.op), ['set-policy']);
  assert.match(formatPlan(plan), /~ policy: requireEncryption \+192\.0\.2\.0\/24 \+db\.example\.net -198\.51\.100\.0\/24/);
  assert.equal(computePlan(want, want).ops.length, 0);
  const d = buildDelivery(want.ges[0], new Map(), 1, want.policy);
  assert.deepEqual(d.requireEncryption, ['192.0.2.0/24', 'db.example.net']);
  assert.notEqual(deliveryDigest(d), deliveryDigest(buildDelivery(want.ges[0], new Map(), 1)), 'a policy change is pushed');
});

test('agent config: requireEncryption entries are checked, a bad one named', () => {
  const base = { interfaces: [{ name: 'eth0' }] };
  assert.deepEqual(parseAgentConfig({ ...base, requireEncryption: ['203.0.113.0/24'] }).requireEncryption, ['203.0.113.0/24']);
  assert.deepEqual(parseAgentConfig(base).requireEncryption, []);
  assert.throws(() => parseAgentConfig({ ...base, requireEncryption: ['203.0.113.0/24', '1.2.3/8'] }),
    (e: unknown) => e instanceof ConfigError && /requireEncryption\[1\]: '1\.2\.3\/8' is not an IPv4 prefix/.test(e.message));
});
