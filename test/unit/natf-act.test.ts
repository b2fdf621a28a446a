/**
 * A GNAT's ACT from the network file to the GNAT (docs/natf.md "ACT"): the
 * spec accepts it on a GNAT only and names every problem; the plan shows its
 * changes; the SQLite store keeps it across a reopen; the delivery carries
 * it to the GNAT (and to no other GE) and its digest changes with it; the
 * agent refuses a malformed delivered ACT; the ACT's decisions; and the DDNS
 * publication of the allowed names (fake sender: each name once, a failed
 * one again next time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpecError, validateNetwork } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan } from '../../controlplane/gms/plan.js';
import { buildDelivery, deliveryDigest, keysByGroup } from '../../controlplane/gms/delivery.js';
import { GmsStore } from '../../controlplane/gms/store.js';
import { actDecide, parseDeliveredAct, publishedNames } from '../../controlplane/natf/act.js';
import { ActDdns, type SendUpdate } from '../../controlplane/natf/act-ddns.js';
import { tempDir } from '../gms/helpers.js';
import { actDdnsFiles } from '../lib/act-ddns-fixture.js';

function network(act: unknown[], extra: object = {}): unknown {
  return {
    apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 10, name: 'home' }, { id: 11, name: 'friends' }, { id: 12, name: 'office' }],
    ges: [
      { userId: 'gnat-home', type: 'GNAT', mode: 'CL', groups: [10, 11], act },
      { userId: 'ges-alice', type: 'GES', mode: 'OP', groups: [10] },
    ],
    ...extra,
  };
}

const BOB = { name: 'Bob.Example.Net.', address: '100.64.1.10', outsideAccess: 'allow' };
const CAROL = { name: 'carol.example.net', address: '100.64.1.11', outsideAccess: 'allow', groups: [11] };
const DAVE = { name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'deny' };

function problems(input: unknown): string[] {
  try { validateNetwork(input); } catch (e) { if (e instanceof SpecError) return e.problems; throw e; }
  return [];
}

test('spec: a GNAT\'s ACT is normalized (lower case, no dot, sorted, groups default to the GNAT\'s)', () => {
  const n = validateNetwork(network([CAROL, BOB, DAVE]));
  const gnat = n.ges.find((g) => g.userId === 'gnat-home')!;
  assert.deepEqual(gnat.act, [
    { name: 'bob.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [10, 11] },
    { name: 'carol.example.net', address: '100.64.1.11', outsideAccess: 'allow', groups: [11] },
    { name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'deny', groups: [10, 11] },
  ]);
  assert.equal(n.ges.find((g) => g.userId === 'ges-alice')!.act, undefined);
});

test('spec: every ACT problem is named with its path', () => {
  const bad = network([
    { name: 'bob', address: '100.64.1.10', outsideAccess: 'allow' },
    { name: 'carol.example.net', address: '100.64.1.300', outsideAccess: 'maybe' },
    { name: 'eve.example.net', address: '100.64.1.20', outsideAccess: 'allow', groups: [12] },
    { name: 'EVE.example.net', address: '100.64.1.20', outsideAccess: 'allow' },
  ]);
  const p = problems(bad);
  assert.ok(p.some((x) => /^ges\[0\]\.act\[0\]\.name: must be a fully qualified DNS name/.test(x)), p.join('\n'));
  assert.ok(p.some((x) => /^ges\[0\]\.act\[1\]\.address/.test(x)));
  assert.ok(p.some((x) => /^ges\[0\]\.act\[1\]\.outsideAccess/.test(x)));
  assert.ok(p.some((x) => x === 'ges[0].act[2].groups[0]: group 12 is not one of this GNAT\'s groups (it could not tell that group\'s members)'));
  assert.ok(p.some((x) => x === 'ges[0].act[3].name: eve.example.net is already in the ACT at ges[0].act[2] (one name, one place in DDNS)'));
  assert.ok(p.some((x) => x === 'ges[0].act[3].address: 100.64.1.20 is already ges[0].act[2]'));
  const onGes = { apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 10 }], ges: [{ userId: 'ges-x', type: 'GES', mode: 'OP', groups: [10], act: [BOB] }] };
  assert.deepEqual(problems(onGes), ['ges[0].act: only a GNAT has an ACT (this GE is GES)']);
});

test('plan: ACT changes of a GNAT are an update of that GE, each named', () => {
  const cur = validateNetwork(network([BOB, CAROL]));
  const des = validateNetwork(network([{ ...BOB, outsideAccess: 'deny' }, DAVE]));
  const plan = computePlan(cur, des);
  assert.deepEqual(plan.ops.map((o) => o.op), ['update-ge']);
  assert.match(formatPlan(plan), /~ ge gnat-home: act ~bob\.example\.net \(outsideAccess allow -> deny\) \+dave\.example\.net -carol\.example\.net/);
  assert.deepEqual(computePlan(des, des).ops, []);
  const fresh = computePlan({ groups: [], ges: [] }, cur);
  assert.match(formatPlan(fresh), /\+ ge gnat-home type=GNAT mode=CL groups=\[10,11\] act=\[bob\.example\.net 100\.64\.1\.10 allow; carol\.example\.net 100\.64\.1\.11 allow\]/);
});

test('store (SQLite): the ACT is kept, changed and read back after a reopen; delivered to the GNAT only', async (t) => {
  const dir = tempDir('act');
  t.after(() => dir.remove());
  const now = Date.UTC(2026, 0, 1);
  let store = await GmsStore.open(dir.path);
  const desired = validateNetwork(network([BOB, CAROL]));
  store.tx(() => store.applyPlan(computePlan(store.readNetwork(), desired), now));
  assert.deepEqual(store.readNetwork().ges.find((g) => g.userId === 'gnat-home')!.act, desired.ges.find((g) => g.userId === 'gnat-home')!.act);
  const changed = validateNetwork(network([DAVE]));
  store.tx(() => store.applyPlan(computePlan(store.readNetwork(), changed), now + 1));
  store.close();
  store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  const gnat = store.getGe('gnat-home')!;
  assert.deepEqual(gnat.act, [{ name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'deny', groups: [10, 11] }]);
  const byGroup = keysByGroup(store.allKeys());
  const d = buildDelivery(gnat, byGroup, now + 2);
  assert.deepEqual(d.act, gnat.act);
  assert.equal(buildDelivery(store.getGe('ges-alice')!, byGroup, now + 2).act, undefined, 'no other GE learns the private names');
  assert.notEqual(deliveryDigest(d), deliveryDigest({ ...d, act: [] }), 'an ACT change is pushed');
  assert.deepEqual(parseDeliveredAct(d.act), gnat.act);
});

test('agent: a malformed delivered ACT is refused naming the entry', () => {
  assert.deepEqual(parseDeliveredAct(undefined), []);
  assert.throws(() => parseDeliveredAct({}), /not a list/);
  assert.throws(() => parseDeliveredAct([{ name: 'Bob.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1] }]), /act\[0\]\.name/);
  assert.throws(() => parseDeliveredAct([{ name: 'bob.example.net', address: '100.64.1', outsideAccess: 'allow', groups: [1] }]), /act\[0\]\.address/);
  assert.throws(() => parseDeliveredAct([{ name: 'bob.example.net', address: '100.64.1.10', outsideAccess: 'yes', groups: [1] }]), /outsideAccess/);
  assert.throws(() => parseDeliveredAct([{ name: 'bob.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: ['1'] }]), /groups/);
});

test('ACT decisions: allowed name and member; unknown name; outside access denied; not a member of its groups', () => {
  const act = validateNetwork(network([BOB, CAROL, DAVE])).ges.find((g) => g.userId === 'gnat-home')!.act!;
  assert.deepEqual(actDecide(act, 'bob.example.net', [10]), { allow: true, address: '100.64.1.10', ge: false });
  assert.deepEqual(actDecide(act, 'BOB.example.net.', [11]), { allow: true, address: '100.64.1.10', ge: false });
  assert.deepEqual(actDecide(act, 'mallory.example.net', [10]), { allow: false, reason: 'unknown_name' });
  assert.deepEqual(actDecide(act, 'dave.example.net', [10, 11]), { allow: false, reason: 'outside_access_denied' });
  assert.deepEqual(actDecide(act, 'carol.example.net', [10]), { allow: false, reason: 'not_member' });
  assert.deepEqual(actDecide(act, 'carol.example.net', [11]), { allow: true, address: '100.64.1.11', ge: false });
  assert.deepEqual(publishedNames(act), ['bob.example.net', 'carol.example.net'], 'a denied name is not advertised');
});

test('ACT `ge` (the host runs a GE: the GNAT relays inward): optional, false by default, kept by the spec, the plan and the agent', () => {
  const act = validateNetwork(network([{ ...BOB, ge: true }, CAROL])).ges.find((g) => g.userId === 'gnat-home')!.act!;
  assert.equal(act[0].ge, true);
  assert.equal(act[1].ge, undefined, 'absent stays absent (today\'s ACTs keep their meaning)');
  assert.deepEqual(actDecide(act, 'bob.example.net', [10]), { allow: true, address: '100.64.1.10', ge: true });
  assert.deepEqual(actDecide(act, 'carol.example.net', [11]), { allow: true, address: '100.64.1.11', ge: false });
  assert.deepEqual(problems(network([{ ...BOB, ge: 'yes' }])).length, 1, 'ge must be a boolean');
  assert.deepEqual(parseDeliveredAct(act), act, 'the agent keeps it');
  const plan = computePlan(validateNetwork(network([BOB, CAROL])), validateNetwork(network([{ ...BOB, ge: true }, CAROL])));
  assert.match(formatPlan(plan), /~ ge gnat-home: act ~bob\.example\.net \(ge false -> true\)/);
  assert.throws(() => parseDeliveredAct([{ name: 'bob.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1], ge: 1 }]), /act\[0\]\.ge/);
  assert.equal(parseDeliveredAct([{ name: 'bob.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1], ge: false }])[0].ge, undefined);
});

test('DDNS: each allowed name is published once with the GNAT\'s address; a failed one is sent again next time', async (t) => {
  const { cfg } = actDdnsFiles(t, 'act-ddns');
  const sent: string[] = [];
  let failCarol = true;
  const send: SendUpdate = async (r, server, port) => {
    sent.push(`${r.name} ${r.addr} ttl=${r.ttl} key=${r.key?.name} @${server}:${port}`);
    return { rcode: r.name.startsWith('carol') && failCarol ? 'REFUSED' : 'NOERROR', tsigError: 'NOERROR', signed: true };
  };
  const act = validateNetwork(network([BOB, CAROL, DAVE])).ges.find((g) => g.userId === 'gnat-home')!.act!;
  const d = new ActDdns(cfg, '192.0.2.2', send);
  assert.deepEqual(await d.publish(act), [{ name: 'bob.example.net', result: 'NOERROR', action: 'published' }, { name: 'carol.example.net', result: 'REFUSED', action: 'published' }]);
  assert.deepEqual(sent, ['bob.example.net 192.0.2.2 ttl=30 key=ge-gnat @198.51.100.53:53', 'carol.example.net 192.0.2.2 ttl=30 key=ge-gnat @198.51.100.53:53']);
  failCarol = false;
  assert.deepEqual(await d.publish(act), [{ name: 'carol.example.net', result: 'NOERROR', action: 'published' }]);
  assert.deepEqual(await d.publish(act), [], 'nothing left to send');
});

test('DDNS: a name that leaves the ACT or loses outside access is withdrawn (retried until NOERROR), also after a restart', async (t) => {
  const { dir, stateFile, cfg } = actDdnsFiles(t, 'act-ddns-withdraw');
  const sent: string[] = [];
  let refuse = '';
  const send: SendUpdate = async (r) => {
    sent.push(`${r.withdraw ? 'withdraw' : 'publish'} ${r.name}`);
    return { rcode: r.name === refuse ? 'REFUSED' : 'NOERROR', tsigError: 'NOERROR', signed: true };
  };
  const actOf = (entries: unknown[]) => validateNetwork(network(entries)).ges.find((g) => g.userId === 'gnat-home')!.act!;
  const d = new ActDdns(cfg, '192.0.2.2', { send, stateFile });
  await d.publish(actOf([BOB, CAROL, DAVE]));
  assert.deepEqual(sent.splice(0), ['publish bob.example.net', 'publish carol.example.net']);
  // carol leaves the ACT, bob's outside access is denied: both withdrawn; the server refuses bob's once
  refuse = 'bob.example.net';
  const now = actOf([{ ...BOB, outsideAccess: 'deny' }, DAVE]);
  assert.deepEqual(await d.publish(now), [{ name: 'bob.example.net', result: 'REFUSED', action: 'withdrawn' }, { name: 'carol.example.net', result: 'NOERROR', action: 'withdrawn' }]);
  refuse = '';
  assert.deepEqual(await d.publish(now), [{ name: 'bob.example.net', result: 'NOERROR', action: 'withdrawn' }], 'retried');
  assert.deepEqual(await d.publish(now), [], 'nothing left');
  // a restart: what the last run published is in the state file; a name removed while stopped goes at the next start
  await d.publish(actOf([BOB, DAVE]));
  assert.deepEqual(sent.splice(0), ['withdraw bob.example.net', 'withdraw carol.example.net', 'withdraw bob.example.net', 'publish bob.example.net']);
  const again = new ActDdns(cfg, '192.0.2.2', { send, stateFile });
  assert.deepEqual(await again.publish(actOf([DAVE])), [{ name: 'bob.example.net', result: 'NOERROR', action: 'withdrawn' }]);
  // another zone or server in the state file: not ours to withdraw
  const other = new ActDdns({ ...cfg, zone: 'example.org' }, '192.0.2.2', { send, stateFile: join(dir.path, 'published.json') });
  writeFileSync(stateFile, JSON.stringify({ server: cfg.server, zone: 'example.net', names: { 'eve.example.net': '192.0.2.2' } }));
  assert.deepEqual(await other.publish(actOf([DAVE])), []);
  // a state file that is not JSON: a clear error, publication goes on
  writeFileSync(stateFile, 'not json');
  const errs: string[] = [];
  const broken = new ActDdns(cfg, '192.0.2.2', { send, stateFile, onStateError: (e) => errs.push(e.message) });
  assert.match(errs[0] ?? '', /published\.json: not JSON/);
  assert.deepEqual((await broken.publish(actOf([BOB]))).map((o) => o.action), ['published']);
});
