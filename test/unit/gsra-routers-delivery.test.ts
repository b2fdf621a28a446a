/**
 * The GMS tells every GE which addresses are GSRA routers (docs/gsra.md "The
 * EN part", 1. Names): a GSRA GE's `external` (its GGR) becomes the network
 * policy's `gsraRouters` (not `gnats`: NAT-f must not treat it as a GNAT),
 * planned as a policy change, kept by the store across a reopen, delivered
 * to every GE; the EN part virtualises answers naming a delivered router
 * with no router in its own config, and follows a change of the list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { validateNetwork } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan } from '../../controlplane/gms/plan.js';
import { buildDelivery, deliveryDigest, keysByGroup } from '../../controlplane/gms/delivery.js';
import { GmsStore } from '../../controlplane/gms/store.js';
import { agentFilePaths } from '../../controlplane/gms/agent-files.js';
import { GsraEnHandler } from '../../controlplane/gsra/en-handler.js';
import { gsraEnConfigSchema } from '../../controlplane/gsra/en-config.js';
import { logger } from '../../controlplane/log/logger.js';
import { tempDir } from '../gms/helpers.js';

const log = logger('gsra-routers-test').child({}, { level: 'silent' });

function network(ggrs: string[], gnat?: string): unknown {
  return {
    apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 1, name: 'staff' }],
    ges: [
      ...ggrs.map((e, i) => ({ userId: `gsra-${i}`, type: 'GSRA', mode: 'CL', groups: [1], external: e })),
      ...(gnat ? [{ userId: 'gnat-0', type: 'GNAT', mode: 'CL', groups: [1], external: gnat }] : []),
      { userId: 'alice-laptop', type: 'GEN', mode: 'CL', groups: [1] },
    ],
  };
}

test('spec: GSRA GEs\' externals are the policy\'s gsraRouters, apart from the GNATs\' gnats', () => {
  const p = validateNetwork(network(['192.0.2.9', '192.0.2.1'], '198.51.100.2')).policy!;
  assert.deepEqual(p.gsraRouters, ['192.0.2.1', '192.0.2.9']);
  assert.deepEqual(p.gnats, ['198.51.100.2']);
  assert.equal(validateNetwork(network([])).policy?.gsraRouters, undefined);
});

test('plan + store + delivery: a new router address is a policy change, kept across a reopen, delivered to every GE', async (t) => {
  const dir = tempDir('gsra-routers');
  t.after(() => dir.remove());
  const now = Date.UTC(2026, 0, 1);
  let store = await GmsStore.open(dir.path);
  store.tx(() => store.applyPlan(computePlan(store.readNetwork(), validateNetwork(network(['192.0.2.1']))), now));
  const second = validateNetwork(network(['192.0.2.1', '192.0.2.9']));
  const plan = computePlan(store.readNetwork(), second);
  assert.match(formatPlan(plan), /gsraRouters \+192\.0\.2\.9/);
  store.tx(() => store.applyPlan(plan, now + 1));
  store.close();
  store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  assert.deepEqual(store.readPolicy().gsraRouters, ['192.0.2.1', '192.0.2.9']);
  assert.deepEqual(computePlan(store.readNetwork(), second).ops, [], 'nothing left to change');
  const byGroup = keysByGroup(store.allKeys());
  const laptop = buildDelivery(store.getGe('alice-laptop')!, byGroup, now + 2, store.readPolicy());
  assert.deepEqual(laptop.gsraRouters, ['192.0.2.1', '192.0.2.9'], 'a GEN is told');
  const without = buildDelivery(store.getGe('alice-laptop')!, byGroup, now + 2, { requireEncryption: [] });
  assert.equal(without.gsraRouters, undefined);
  assert.notEqual(deliveryDigest(laptop), deliveryDigest(without), 'a change of the list is pushed');
});

test('the EN part: routers from its config and its GMS delivery, re-read when the delivery changes', (t) => {
  const dir = tempDir('gsra-en-routers');
  t.after(() => dir.remove());
  const paths = agentFilePaths(dir.path);
  mkdirSync(paths.cache.replace(/\/[^/]+$/, ''), { recursive: true, mode: 0o700 });
  const write = (routers: string[], mtime: number): void => {
    writeFileSync(paths.cache, JSON.stringify({ userId: 'alice', type: 'GEN', mode: 'CL', groups: [1], keys: [], issuedAt: 0, gsraRouters: routers }), { mode: 0o600 });
    utimesSync(paths.cache, mtime, mtime);
  };
  write(['192.0.2.1'], 1000);
  const en = new GsraEnHandler(log, gsraEnConfigSchema.parse({ routers: ['203.0.113.7'], group: 1 }), dir.path, () => null);
  assert.deepEqual([...en.routerSet()].sort(), ['192.0.2.1', '203.0.113.7']);
  write(['192.0.2.9'], 2000);
  assert.deepEqual([...en.routerSet()].sort(), ['192.0.2.9', '203.0.113.7'], 'the new delivery replaces the old list');
  const bare = new GsraEnHandler(log, gsraEnConfigSchema.parse({ group: 1 }), null, () => null);
  assert.deepEqual([...bare.routerSet()], [], 'no GMS, no config: none');
});

test('an IN\'s service ports in the router\'s ACT (GSRA only): normalised, planned, delivered; on a GNAT refused', () => {
  const net = (ports: number[] | undefined, type = 'GSRA') => ({
    apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 1 }],
    ges: [{ userId: 'r', type, mode: 'CL', groups: [1], act: [{ name: 'ftp.corp.example.net', address: '100.64.1.10', outsideAccess: 'allow', ...(ports ? { ports } : {}) }] }],
  });
  const a = validateNetwork(net([21, 21, 20]));
  assert.deepEqual(a.ges[0].act?.[0].ports, [20, 21]);
  assert.equal(validateNetwork(net(undefined)).ges[0].act?.[0].ports, undefined);
  assert.match(formatPlan(computePlan(validateNetwork(net(undefined)), validateNetwork(net([21])))), /ports \[any\] -> \[21\]/);
  assert.throws(() => validateNetwork(net([21], 'GNAT')), /act\[0\]\.ports: only a GSRA router's INs have service ports/);
  const d = buildDelivery(a.ges[0], new Map(), 0);
  assert.deepEqual(d.act?.[0].ports, [20, 21]);
});
