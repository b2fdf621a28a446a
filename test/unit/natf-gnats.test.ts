/**
 * The GMS tells every GE the GNATs' global addresses (NAT-f, docs/natf.md
 * "Recognising an answer"): a GNAT's `external` in the network file becomes
 * the network policy's `gnats`, planned as a policy change, kept by the store
 * across a reopen and delivered to every GE (not only the GNAT); `external` on
 * another GE type is refused with its path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError, validateNetwork } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan } from '../../controlplane/gms/plan.js';
import { buildDelivery, deliveryDigest, keysByGroup } from '../../controlplane/gms/delivery.js';
import { GmsStore } from '../../controlplane/gms/store.js';
import { tempDir } from '../gms/helpers.js';

function network(externals: Array<string | undefined>, extra: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 10, name: 'home' }],
    ges: [
      ...externals.map((e, i) => ({ userId: `gnat-${i}`, type: 'GNAT', mode: 'CL', groups: [10], ...(e ? { external: e } : {}) })),
      { userId: 'ges-alice', type: 'GES', mode: 'OP', groups: [10], ...extra },
    ],
  };
}

test('spec: the GNATs\' externals are the policy\'s gnats (sorted, unique); on a GES it is refused, named', () => {
  assert.deepEqual(validateNetwork(network(['192.0.2.4', '192.0.2.2'])).policy?.gnats, ['192.0.2.2', '192.0.2.4']);
  assert.equal(validateNetwork(network([undefined])).policy?.gnats, undefined);
  let problems: string[] = [];
  try { validateNetwork(network([], { external: '192.0.2.9' })); } catch (e) { if (e instanceof SpecError) problems = e.problems; else throw e; }
  assert.deepEqual(problems, ['ges[0].external: only a GNAT or a GSRA router has an external address (this GE is GES)']);
});

test('plan + store + delivery: a new GNAT address is a policy change, kept across a reopen, delivered to every GE', async (t) => {
  const dir = tempDir('gnats');
  t.after(() => dir.remove());
  const now = Date.UTC(2026, 0, 1);
  let store = await GmsStore.open(dir.path);
  const first = validateNetwork(network(['192.0.2.2']));
  store.tx(() => store.applyPlan(computePlan(store.readNetwork(), first), now));
  const second = validateNetwork(network(['192.0.2.2', '192.0.2.4']));
  const plan = computePlan(store.readNetwork(), second);
  assert.match(formatPlan(plan), /~ policy: gnats \+192\.0\.2\.4/);
  store.tx(() => store.applyPlan(plan, now + 1));
  store.close();
  store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  assert.deepEqual(store.readPolicy().gnats, ['192.0.2.2', '192.0.2.4']);
  assert.deepEqual(computePlan(store.readNetwork(), second).ops, [], 'nothing left to change');
  const byGroup = keysByGroup(store.allKeys());
  const alice = buildDelivery(store.getGe('ges-alice')!, byGroup, now + 2, store.readPolicy());
  assert.deepEqual(alice.gnats, ['192.0.2.2', '192.0.2.4'], 'a GES is told');
  assert.deepEqual(buildDelivery(store.getGe('gnat-0')!, byGroup, now + 2, store.readPolicy()).gnats, ['192.0.2.2', '192.0.2.4']);
  const without = buildDelivery(store.getGe('ges-alice')!, byGroup, now + 2, { requireEncryption: [] });
  assert.equal(without.gnats, undefined);
  assert.notEqual(deliveryDigest(alice), deliveryDigest(without), 'a change of the list is pushed');
});
