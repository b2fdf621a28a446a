/**
 * ACT `via` in the PostgreSQL store (controlplane/gms/store-pg.ts, the `act`
 * column through act-column.ts): written by a plan, read back by another
 * connection after the first is closed, changed by the next plan, delivered
 * to the GNAT with it. A real PostgreSQL (test/lib/postgres.ts); skipped
 * without one. The SQLite store: test/unit/natf-act-via.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { postgresUnavailable, TestPostgres } from '../lib/postgres.js';
import { PgBackend } from '../../controlplane/gms/store-pg.js';
import { AtRest } from '../../controlplane/gms/at-rest.js';
import { computePlan } from '../../controlplane/gms/plan.js';
import { validateNetwork } from '../../controlplane/gms/spec.js';
import { buildDelivery, keysByGroup } from '../../controlplane/gms/delivery.js';

const unavailable = postgresUnavailable();
let pgs: TestPostgres;
before(async () => { if (!unavailable) pgs = await TestPostgres.start(); });
after(async () => { await pgs?.destroy(); });

const network = (via: string): unknown => ({
  apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 10 }],
  ges: [{ userId: 'gnat-home', type: 'GNAT', mode: 'CL', groups: [10], act: [{ name: 'bob.example.net', address: '100.64.2.10', outsideAccess: 'allow', via }] }],
});

test('PostgreSQL: an ACT entry\'s via is stored, read back by a new connection, changed, and delivered to the GNAT', { skip: unavailable ?? false, timeout: 60_000 }, async () => {
  const db = pgs.createDb('actvia');
  const atRest = AtRest.fromKeys([AtRest.generateKey()]);
  const now = Date.UTC(2026, 0, 1);
  let s = await PgBackend.open(db, atRest);
  try {
    await s.applyPlan(computePlan(await s.readNetwork(), validateNetwork(network('100.64.1.2'))), now);
  } finally { await s.close(); }
  s = await PgBackend.open(db, atRest);
  try {
    assert.equal((await s.getGe('gnat-home'))?.act?.[0].via, '100.64.1.2', 'read back by a new connection');
    await s.applyPlan(computePlan(await s.readNetwork(), validateNetwork(network('100.64.1.3'))), now + 1);
    const gnat = (await s.getGe('gnat-home'))!;
    assert.equal(gnat.act?.[0].via, '100.64.1.3', 'changed by the next plan');
    assert.equal(buildDelivery(gnat, keysByGroup(await s.allKeys()), now + 2).act?.[0].via, '100.64.1.3', 'delivered with the ACT');
  } finally { await s.close(); }
});
