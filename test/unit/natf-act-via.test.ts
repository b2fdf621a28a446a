/**
 * ACT `via` (docs/natf.md "A GEN inside the GNAT's network"): the GEN in front
 * of a plain Term behind a GNAT. The spec keeps it and names every misuse by
 * its path (not on a GNAT, with `ge: true`, the host's own address, the GNAT's
 * external one, not an IPv4 address); the plan shows its changes; the SQLite
 * store keeps it across a reopen and the delivery carries it (its digest
 * changes with it); the agent keeps it and refuses a malformed one; the ACT
 * decision and relayTarget name the GEN to relay to and the host for NATF_LIP.
 * (PostgreSQL: test/gms/act-via-pg.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError, validateNetwork } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan } from '../../controlplane/gms/plan.js';
import { buildDelivery, deliveryDigest, keysByGroup } from '../../controlplane/gms/delivery.js';
import { actFromColumn, actToColumn } from '../../controlplane/gms/act-column.js';
import { GmsStore } from '../../controlplane/gms/store.js';
import { actDecide, parseDeliveredAct, relayTarget } from '../../controlplane/natf/act.js';
import { tempDir } from '../gms/helpers.js';

function network(act: unknown[], gnat: object = {}): unknown {
  return {
    apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 10, name: 'home' }],
    ges: [
      { userId: 'gnat-home', type: 'GNAT', mode: 'CL', groups: [10], external: '192.0.2.2', act, ...gnat },
      { userId: 'gen-inside', type: 'GEN', mode: 'CL', groups: [10] },
    ],
  };
}

const BOB = { name: 'bob.example.net', address: '100.64.2.10', outsideAccess: 'allow', via: '100.64.1.2' };

function problems(input: unknown): string[] {
  try { validateNetwork(input); } catch (e) { if (e instanceof SpecError) return e.problems; throw e; }
  return [];
}

test('spec: via is kept on a GNAT\'s ACT entry, absent stays absent', () => {
  const act = validateNetwork(network([BOB, { name: 'carol.example.net', address: '100.64.1.11', outsideAccess: 'allow' }])).ges.find((g) => g.userId === 'gnat-home')!.act!;
  assert.deepEqual(act[0], { name: 'bob.example.net', address: '100.64.2.10', outsideAccess: 'allow', groups: [10], via: '100.64.1.2' });
  assert.equal(act[1].via, undefined);
});

test('spec: every misuse of via is refused, naming the field', () => {
  assert.deepEqual(problems(network([{ ...BOB, ge: true }])),
    ['ges[0].act[0].via: a host that is its own GE (ge: true) has no GEN in front of it: give ge or via, not both']);
  assert.deepEqual(problems(network([{ ...BOB, via: BOB.address }])),
    ['ges[0].act[0].via: 100.64.2.10 is the host\'s own address; via names the GEN in front of it (a host that is a GE: ge: true)']);
  assert.deepEqual(problems(network([{ ...BOB, via: '192.0.2.2' }])),
    ['ges[0].act[0].via: 192.0.2.2 is the GNAT\'s external address; via names a GEN inside its network']);
  const p = problems(network([{ ...BOB, via: '100.64.1' }]));
  assert.equal(p.length, 1);
  assert.match(p[0], /^ges\[0\]\.act\[0\]\.via: /);
  const gsra = { apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 10 }], ges: [{ userId: 'gsra-1', type: 'GSRA', mode: 'CL', groups: [10], act: [BOB] }] };
  assert.deepEqual(problems(gsra), ['ges[0].act[0].via: only a GNAT\'s ACT names a GEN in front of a host (this GE is GSRA)']);
});

test('plan: a via change is an update of the GNAT, named', () => {
  const cur = validateNetwork(network([{ ...BOB, via: undefined }]));
  const des = validateNetwork(network([BOB]));
  assert.match(formatPlan(computePlan(cur, des)), /~ ge gnat-home: act ~bob\.example\.net \(via none -> 100\.64\.1\.2\)/);
  const moved = validateNetwork(network([{ ...BOB, via: '100.64.1.3' }]));
  assert.match(formatPlan(computePlan(des, moved)), /~bob\.example\.net \(via 100\.64\.1\.2 -> 100\.64\.1\.3\)/);
  assert.deepEqual(computePlan(des, des).ops, []);
});

test('store (SQLite): via is kept across a reopen and delivered to the GNAT; the digest changes with it', async (t) => {
  const dir = tempDir('act-via');
  t.after(() => dir.remove());
  const now = Date.UTC(2026, 0, 1);
  let store = await GmsStore.open(dir.path);
  store.tx(() => store.applyPlan(computePlan(store.readNetwork(), validateNetwork(network([BOB]))), now));
  store.close();
  store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  const gnat = store.getGe('gnat-home')!;
  assert.equal(gnat.act?.[0].via, '100.64.1.2');
  const d = buildDelivery(gnat, keysByGroup(store.allKeys()), now + 1);
  assert.equal(d.act?.[0].via, '100.64.1.2');
  assert.notEqual(deliveryDigest(d), deliveryDigest({ ...d, act: [{ ...d.act![0], via: '100.64.1.3' }] }), 'a via change is pushed');
  assert.deepEqual(parseDeliveredAct(d.act), gnat.act, 'the agent keeps it');
});

test('act column: via read back; a via that is not a string is a broken row, named', () => {
  const act = validateNetwork(network([BOB])).ges.find((g) => g.userId === 'gnat-home')!.act!;
  assert.deepEqual(actFromColumn(actToColumn(act), 'gnat-home'), act);
  assert.throws(() => actFromColumn(JSON.stringify([{ ...act[0], via: 7 }]), 'gnat-home'), /GE gnat-home has an act entry of an unknown shape/);
});

test('agent: a malformed delivered via is refused naming the entry', () => {
  const e = { name: 'bob.example.net', address: '100.64.2.10', outsideAccess: 'allow', groups: [10] };
  assert.throws(() => parseDeliveredAct([{ ...e, via: '100.64.1' }]), /delivered act\[0\]\.via: not an IPv4 address/);
  assert.throws(() => parseDeliveredAct([{ ...e, via: '100.64.1.2', ge: true }]), /delivered act\[0\]\.via: a host that is its own GE/);
  assert.throws(() => parseDeliveredAct([{ ...e, via: e.address }]), /delivered act\[0\]\.via: the host's own address/);
});

test('decision: an allowed host with via is relayed to the GEN, NATF_LIP the host; a GE to itself; a Term answered by the GNAT', () => {
  const act = validateNetwork(network([BOB, { name: 'carol.example.net', address: '100.64.1.11', outsideAccess: 'allow', ge: true },
    { name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'allow' }])).ges.find((g) => g.userId === 'gnat-home')!.act!;
  const bob = actDecide(act, 'bob.example.net', [10]);
  assert.deepEqual(bob, { allow: true, address: '100.64.2.10', ge: false, via: '100.64.1.2' });
  assert.deepEqual(relayTarget(bob as { address: string; via?: string }), { inside: '100.64.1.2', host: '100.64.2.10' });
  assert.deepEqual(relayTarget(act[1]), { inside: '100.64.1.11' });
  assert.equal(relayTarget(act[2]), null);
});
