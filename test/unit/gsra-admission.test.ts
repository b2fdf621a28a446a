/**
 * The GSRA router's decisions and the whole exchange in memory: an EN of the
 * IN's group is admitted and mapped (directly and behind a home router);
 * every refusal has its reason and reaches the EN MAC'd (so the app fails at
 * once); a replayed or forged request is dropped and counted; tables and
 * ports are bounded; idle mappings expire; a user removed by the GMS loses
 * their mappings (cut) and is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GsraAdmission, type AdmissibleUser, type InternalServer } from '../../controlplane/gsra/admission.js';
import { EnSession, retryDelayMs, RETRY_MAX, type EnFlow } from '../../controlplane/gsra/en-session.js';
import { GsraRouterExchange } from '../../controlplane/gsra/router-exchange.js';
import { encodeGsra, GsraCode } from '../../controlplane/gsra/wire.js';
import { VirtualNames } from '../../controlplane/gsra/virtual-names.js';

const GGR = '192.0.2.1';
const SERVERS: InternalServer[] = [
  { name: 'in1.corp.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1] },
  { name: 'in2.corp.example.net', address: '100.64.1.20', outsideAccess: 'allow', groups: [2] },
  { name: 'nas.corp.example.net', address: '100.64.1.30', outsideAccess: 'deny', groups: [1] },
];
const alice: AdmissibleUser = { userId: 'alice', groups: [1], key: randomBytes(32) };
const bob: AdmissibleUser = { userId: 'bob', groups: [1, 2], key: randomBytes(32) };

function router(limits = {}): GsraRouterExchange {
  const a = new GsraAdmission({ portLo: 40000, portHi: 40009, maxEntries: 8, leaseMs: 5000, idleMs: 60_000, ...limits });
  a.setServers(SERVERS);
  a.setUsers([alice, bob]);
  return new GsraRouterExchange(a);
}

function flow(user: AdmissibleUser, name: string, extra: Partial<EnFlow> = {}): EnFlow {
  return { userId: user.userId, key: user.key, group: user.groups[0], name, vin: '198.18.0.5', ggr: GGR, proto: 6, local: { addr: '198.51.100.20', port: 51000 }, dport: 22, behindNat: false, ...extra };
}

/** Runs the exchange; `nat` maps the EN's (addr, port) as the router sees it. Returns the session and the router outcomes. */
function run(r: GsraRouterExchange, f: EnFlow, now = 1_000_000, nat?: (p: { addr: string; port: number }) => { addr: string; port: number }) {
  const s = new EnSession(f);
  const results: string[] = [];
  let out: ReturnType<EnSession["start"]> | null = s.start(now);
  for (let i = 0; out && i < 10; i++) {
    const src = { addr: f.local.addr, port: out.fromPort ?? 7253 };
    const seen = nat ? nat(src) : src;
    const o = r.onMessage(out.msg, seen, now);
    results.push(`${o.result}`);
    if (!o.reply) break;
    out = s.onReply(o.reply, now);
  }
  return { s, results };
}

test('admitted: AUTH -> t, MAP -> the router translation {GEN:s<->GGR:t} <=> {PGR:t<->PIN:d}; VAT confirmed', () => {
  const r = router();
  const { s, results } = run(r, flow(alice, 'IN1.corp.example.net.'));
  assert.deepEqual(results, ['ok', 'ok']);
  assert.equal(s.state, 'done');
  assert.ok(s.vat?.confirmed);
  assert.deepEqual(s.vat!.router, { addr: GGR, port: 40000 });
  assert.deepEqual(s.vat!.virtual, { addr: '198.18.0.5', port: 22 });
  const [m] = r.admission.mappings();
  assert.deepEqual({ t: m.t, en: m.en, inside: m.inside, user: m.userId }, { t: 40000, en: { addr: '198.51.100.20', port: 51000 }, inside: { addr: '100.64.1.10', port: 22 }, user: 'alice' });
  assert.deepEqual(r.admission.activeUsers(), ['alice']);
});

test('behind a home router: BIND from s to GGR:t learns GHR:m, and the mapping is the translated end', () => {
  const r = router();
  const nat = (p: { addr: string; port: number }) => ({ addr: '203.0.113.7', port: p.port + 10000 });
  const { s, results } = run(r, flow(alice, 'in1.corp.example.net', { local: { addr: '100.64.9.2', port: 51000 }, behindNat: true }), 1_000_000, nat);
  assert.deepEqual(results, ['ok', 'ok', 'ok']);
  assert.equal(s.state, 'done');
  assert.deepEqual(s.vat!.seenAs, { addr: '203.0.113.7', port: 61000 });
  assert.deepEqual(r.admission.mappings()[0].en, { addr: '203.0.113.7', port: 61000 });
});

test('refusals: each with its reason, answered MAC\'d so the EN fails at once', () => {
  const r = router();
  const cases: Array<[EnFlow, string]> = [
    [flow(alice, 'in2.corp.example.net'), 'no_shared_group'],
    [flow(alice, 'in1.corp.example.net', { group: 2 }), 'not_member'],
    [flow(alice, 'nope.corp.example.net'), 'unknown_in'],
    [flow(alice, 'nas.corp.example.net'), 'in_denied'],
  ];
  for (const [f, reason] of cases) {
    const { s, results } = run(r, f);
    assert.deepEqual(results, [reason]);
    assert.equal(s.state, 'failed');
    assert.equal(s.failure, reason);
  }
  assert.equal(r.admission.mappings().length + r.admission.reservations().length, 0, 'nothing reserved for a refused flow');
});

test('replayed and forged requests are dropped, counted, unanswered', () => {
  const r = router();
  const auth = encodeGsra({ userId: 'alice', msgId: randomBytes(8), timestampMs: 1_000_000, body: { code: GsraCode.AUTH, group: 1, proto: 6, dport: 22, name: 'in1.corp.example.net' } }, alice.key);
  assert.equal(r.onMessage(auth, { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'ok');
  const again = r.onMessage(auth, { addr: '198.51.100.99', port: 7253 }, 1_000_100);
  assert.deepEqual([again.result, again.reply], ['replay', null]);
  const forged = encodeGsra({ userId: 'alice', msgId: randomBytes(8), timestampMs: 1_000_000, body: { code: GsraCode.AUTH, group: 1, proto: 6, dport: 22, name: 'in1.corp.example.net' } }, randomBytes(32));
  assert.equal(r.onMessage(forged, { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'bad_mac');
  const old = encodeGsra({ userId: 'alice', msgId: randomBytes(8), timestampMs: 1_000_000 - 60_000, body: { code: GsraCode.CLOSE, t: 1 } }, alice.key);
  assert.equal(r.onMessage(old, { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'stale');
  assert.equal(r.onMessage(Buffer.from([253, 32, 0, 0]), { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'malformed_too_short');
  const mallory = encodeGsra({ userId: 'mallory', msgId: randomBytes(8), timestampMs: 1_000_000, body: { code: GsraCode.CLOSE, t: 1 } }, randomBytes(32));
  assert.equal(r.onMessage(mallory, { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'unknown_user');
});

test('a MAP for a port not reserved, or reserved for another user, or another session: refused', () => {
  const r = router();
  const a = run(r, flow(alice, 'in1.corp.example.net'));
  assert.equal(a.s.state, 'done');
  const mapFor = (user: AdmissibleUser, t: number, dport = 22) => encodeGsra({ userId: user.userId, msgId: randomBytes(8), timestampMs: 1_000_000, body: { code: GsraCode.MAP, proto: 6, t, en: { addr: '198.51.100.20', port: 51000 }, dport } }, user.key);
  assert.equal(r.onMessage(mapFor(alice, 40009), { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'unknown_port');
  const auth = encodeGsra({ userId: 'bob', msgId: randomBytes(8), timestampMs: 1_000_000, body: { code: GsraCode.AUTH, group: 1, proto: 6, dport: 22, name: 'in1.corp.example.net' } }, bob.key);
  assert.equal(r.onMessage(auth, { addr: '198.51.100.30', port: 7253 }, 1_000_000).result, 'ok');
  assert.equal(r.onMessage(mapFor(alice, 40001), { addr: '198.51.100.20', port: 7253 }, 1_000_000).result, 'wrong_user');
  assert.equal(r.onMessage(mapFor(bob, 40001, 23), { addr: '198.51.100.30', port: 7253 }, 1_000_000).result, 'bad_session');
});

test('bounded: ports and table refuse when full (counted), reservations lapse, idle mappings expire', () => {
  const r = router({ portLo: 40000, portHi: 40002, maxEntries: 100 });
  for (let i = 0; i < 3; i++) assert.equal(run(r, flow(bob, 'in1.corp.example.net', { local: { addr: '198.51.100.20', port: 51000 + i } })).s.state, 'done');
  assert.equal(run(r, flow(bob, 'in1.corp.example.net')).s.failure, 'ports_exhausted');
  const r2 = router({ maxEntries: 2 });
  for (let i = 0; i < 2; i++) run(r2, flow(bob, 'in1.corp.example.net', { local: { addr: '198.51.100.20', port: 51000 + i } }));
  assert.equal(run(r2, flow(bob, 'in1.corp.example.net')).s.failure, 'table_full');
  // A reservation never mapped is freed after its lease; a mapping idle for idleMs expires.
  const r3 = router({ leaseMs: 1000, idleMs: 5000 });
  const auth = encodeGsra({ userId: 'bob', msgId: randomBytes(8), timestampMs: 1_000_000, body: { code: GsraCode.AUTH, group: 1, proto: 6, dport: 22, name: 'in1.corp.example.net' } }, bob.key);
  r3.onMessage(auth, { addr: '198.51.100.20', port: 7253 }, 1_000_000);
  run(r3, flow(alice, 'in1.corp.example.net'), 1_000_000);
  assert.equal(r3.admission.reservations().length, 1);
  r3.admission.expire(1_001_000);
  assert.equal(r3.admission.reservations().length, 0);
  r3.admission.touch(r3.admission.mappings()[0].t, 1_003_000);
  assert.equal(r3.admission.expire(1_007_999).length, 0, 'seen 4.999 s ago: kept');
  assert.equal(r3.admission.expire(1_008_000).length, 1, 'idle 5 s: expired');
});

test('a user removed by the GMS: mappings cut at once, later requests refused with a MAC (app fails promptly)', () => {
  const r = router();
  run(r, flow(alice, 'in1.corp.example.net'));
  run(r, flow(bob, 'in1.corp.example.net'));
  const cut = r.admission.setUsers([bob]);
  assert.deepEqual(cut.map((m) => m.userId), ['alice']);
  assert.deepEqual(r.admission.mappings().map((m) => m.userId), ['bob']);
  const { s, results } = run(r, flow(alice, 'in1.corp.example.net', { local: { addr: '198.51.100.20', port: 52000 } }));
  assert.deepEqual(results, ['unknown_user']);
  assert.equal(s.failure, 'unknown_user');
  // bob leaves group 1 but stays a user (group 2): his group-1 mapping is cut too.
  assert.deepEqual(r.admission.setUsers([{ ...bob, groups: [2] }]).map((m) => m.userId), ['bob']);
});

test('EN retries with bounded backoff, then fails with timeout', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map(retryDelayMs), [250, 500, 1000, 2000, null]);
  const s = new EnSession(flow(alice, 'in1.corp.example.net'));
  const ids = new Set<string>();
  let out: ReturnType<EnSession["start"]> | null = s.start(0);
  let n = 0;
  while (out && n < 10) { ids.add(out.msg.subarray(8).toString('hex')); n++; out = s.onTimer(n * 1000); }
  assert.equal(n, RETRY_MAX);
  assert.equal(ids.size, RETRY_MAX, 'every retry is a new message (the replay cache would drop a copy)');
  assert.equal(s.failure, 'timeout');
});

test('virtual names: VINs from 198.18.0.0/15, one per name, registrations from NAT-f or the config', () => {
  const v = new VirtualNames(3);
  const a = v.resolve('IN1.corp.example.net.', GGR);
  assert.equal(a.vin, '198.18.0.1');
  assert.equal(v.resolve('in1.corp.example.net', GGR).vin, '198.18.0.1');
  assert.equal(v.register('in2.corp.example.net', '198.19.255.1', GGR).vin, '198.19.255.1');
  assert.throws(() => v.register('in3.corp.example.net', '10.0.0.1', GGR), /not in 198.18.0.0\/15/);
  assert.throws(() => v.register('in3.corp.example.net', '198.18.0.1', GGR), /already in1/);
  v.resolve('in3.corp.example.net', GGR);
  assert.throws(() => v.resolve('in4.corp.example.net', GGR), /table full/);
  assert.equal(v.byAddress('198.19.255.1')?.name, 'in2.corp.example.net');
});
