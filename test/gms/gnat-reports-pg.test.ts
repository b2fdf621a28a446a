/**
 * The GNATs' reported external addresses in the PostgreSQL store
 * (controlplane/gms/store-pg.ts, migration 4; gnat-reports.ts): saved by one
 * connection, read back by another after the first is closed (a restarted or
 * another replica), a newer report replacing the GNAT's row, lapsed rows
 * removed on the next save. A real PostgreSQL (test/lib/postgres.ts); skipped
 * without one. The SQLite store: test/unit/natf-gnat-report.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { postgresUnavailable, TestPostgres } from '../lib/postgres.js';
import { PgBackend } from '../../controlplane/gms/store-pg.js';
import { AtRest } from '../../controlplane/gms/at-rest.js';
import { GnatReports } from '../../controlplane/gms/gnat-reports.js';

const unavailable = postgresUnavailable();
let pgs: TestPostgres;
before(async () => { if (!unavailable) pgs = await TestPostgres.start(); });
after(async () => { await pgs?.destroy(); });

test('PostgreSQL: a GNAT\'s report is kept across connections, replaced by its next one, and lapsed rows go', { skip: unavailable ?? false, timeout: 60_000 }, async () => {
  const db = pgs.createDb('gnatreports');
  const atRest = AtRest.fromKeys([AtRest.generateKey()]);
  const ttl = 600_000;
  let s = await PgBackend.open(db, atRest);
  try {
    await s.saveGnatReport({ userId: 'gnat-old', addr: '198.51.100.9', atMs: 1_000 }, 1_000 - ttl);
    await s.saveGnatReport({ userId: 'gnat-home', addr: '192.0.2.22', atMs: 2_000 }, 2_000 - ttl);
  } finally { await s.close(); }
  s = await PgBackend.open(db, atRest);
  try {
    assert.deepEqual(await s.gnatReports(), [
      { userId: 'gnat-home', addr: '192.0.2.22', atMs: 2_000 },
      { userId: 'gnat-old', addr: '198.51.100.9', atMs: 1_000 },
    ], 'read back by a new connection');
    const later = 1_000 + ttl + 1;
    await s.saveGnatReport({ userId: 'gnat-home', addr: '192.0.2.23', atMs: later }, later - ttl);
    const rows = await s.gnatReports();
    assert.deepEqual(rows, [
      { userId: 'gnat-home', addr: '192.0.2.23', atMs: later },
    ], 'one row per GNAT, the newer address; gnat-old\'s lapsed row removed');
    const g = new GnatReports(ttl);
    g.load(rows);
    assert.deepEqual(g.gnats(['192.0.2.2'], later, { 'gnat-home': '192.0.2.2' }), ['192.0.2.23'], 'what a replica loading them delivers');
  } finally { await s.close(); }
});
