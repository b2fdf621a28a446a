/**
 * `gms migrate` SQLite -> PostgreSQL on a real PostgreSQL (test/lib/postgres.ts):
 * a SQLite GMS that lived a little (groups, GEs, rotations, grace keys,
 * enrolled, revoked and unused tokens) is copied into an empty database;
 * then every table is read back here, from the SQLite file with sql.js and
 * from PostgreSQL with pg, and compared row by row (group keys by their
 * bytes: PostgreSQL holds them sealed under the master key, never in clear,
 * and the CA key too). A PostgreSQL GMS on the copy then serves the agents
 * enrolled before: same CA, same keys, the revoked GE still refused, the
 * unused token still good. A second migrate into the non-empty database is
 * refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import initSqlJs from 'sql.js';
import pg from 'pg';
import { AtRest, groupKeyAad } from '../../controlplane/gms/at-rest.js';
import { enroll, fetchGeState, rawRequest, tlsOf } from '../../controlplane/gms/client.js';
import { loadIdentity } from '../../controlplane/gms/agent-files.js';
import { migrateSqliteToPostgres, MigrateError, TABLE_COLUMNS } from '../../controlplane/gms/migrate.js';
import { postgresUnavailable, TestPostgres } from '../lib/postgres.js';
import { enrollGe, FIG6, startGms, tempDir } from './helpers.js';

const unavailable = postgresUnavailable();
let pgs: TestPostgres;
before(async () => { if (!unavailable) pgs = await TestPostgres.start(); });
after(async () => { await pgs?.destroy(); });

type Row = Record<string, unknown>;
const cell = (v: unknown): unknown => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v ?? null);

test('gms migrate: every table of a SQLite GMS arrives in PostgreSQL, and a GMS on it serves the same agents', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  const gmsDir = tempDir('mig-src');
  const pgDir = tempDir('mig-dst');
  const a = tempDir('mig-a');
  const b = tempDir('mig-b');
  t.after(() => { gmsDir.remove(); pgDir.remove(); a.remove(); b.remove(); });

  // A SQLite GMS with some history.
  const { server, admin } = await startGms(gmsDir.path);
  await admin.apply({ ...FIG6, groups: [{ id: 1, rotation: { graceSeconds: 3600 } }, { id: 2, cipher: 'chacha8' }, { id: 3 }] }, false);
  await admin.rotate(1);
  await admin.rotate(1);
  await enrollGe(server, admin, 'ges2-manager', a.path);
  await enrollGe(server, admin, 'gea-server', b.path);
  await admin.revoke('gea-server');
  const unused = await admin.issueToken('ges3-manager', 3600);
  await admin.apply({ ...FIG6, groups: [{ id: 1, rotation: { graceSeconds: 3600 } }, { id: 2, cipher: 'chacha8' }, { id: 3 }], ges: FIG6.ges.filter((g) => g.userId !== 'gen-dept'),
    policy: { requireEncryption: ['198.51.100.0/24'] } }, false);
  const before = await fetchGeState(a.path);
  await server.close();

  const atRest = AtRest.fromKeys([AtRest.generateKey()]);
  const r = await migrateSqliteToPostgres({ dataDir: gmsDir.path, database: pgs.url(), atRest });
  t.diagnostic(r.tables.map((x) => `${x.table}=${x.target}`).join(' '));
  assert.ok(r.tables.every((x) => x.identical), JSON.stringify(r.tables));
  assert.equal(r.ca, 'copied');

  // Independent read-back: sql.js on the file, pg on the database, every table, every column.
  const SQL = await initSqlJs();
  const lite = new SQL.Database(readFileSync(join(gmsDir.path, 'gms.sqlite')));
  const c = new pg.Client({ connectionString: pgs.url() });
  await c.connect();
  t.after(() => c.end());
  for (const [table, cols] of Object.entries(TABLE_COLUMNS)) {
    const res = lite.exec(`SELECT ${cols.join(', ')} FROM ${table}`)[0];
    const src = (res?.values ?? []).map((v) => Object.fromEntries(cols.map((k, i) => [k, v[i]])) as Row);
    const dst = (await c.query(`SELECT ${cols.join(', ')} FROM ${table}${table === 'meta' ? " WHERE k NOT IN ('ca_cert', 'ca_key')" : ''}`)).rows as Row[];
    if (table === 'group_keys') {
      for (const row of dst) {
        const blob = row.key as Buffer;
        assert.ok(AtRest.isSealed(blob), `group ${row.group_id} v${row.version}: sealed in PostgreSQL`);
        row.key = atRest.open(blob, groupKeyAad(Number(row.group_id), Number(row.version)));
      }
    }
    const norm = (rows: Row[]) => rows.map((x) => JSON.stringify(cols.map((k) => cell(x[k])))).sort();
    assert.deepEqual(norm(dst), norm(src), `table ${table}`);
    if (table !== 'tokens' && table !== 'gnat_reports') assert.ok(src.length > 0, `table ${table} has rows to compare`);
    t.diagnostic(`${table}: ${src.length} rows identical`);
  }
  lite.close();
  const caKey = (await c.query("SELECT v FROM meta WHERE k = 'ca_key'")).rows[0] as { v: string };
  assert.doesNotMatch(caKey.v, /PRIVATE KEY/, 'the CA key is not stored in clear');
  assert.ok(AtRest.isSealed(Buffer.from(caKey.v, 'base64')));

  // A PostgreSQL GMS on the copy: the agents enrolled under SQLite still work.
  const { server: s2, admin: admin2 } = await startGms(pgDir.path, { database: pgs.url(), atRest });
  t.after(() => s2.close());
  assert.equal(s2.ca.fingerprint(), loadIdentity(a.path).caFingerprint, 'same CA');
  const idA = loadIdentity(a.path);
  const got = await rawRequest(new URL(s2.url), '/v1/ge/self', tlsOf(idA));
  assert.equal(got.status, 200, got.body);
  const after1 = JSON.parse(got.body) as typeof before;
  assert.deepEqual(after1.requireEncryption, ['198.51.100.0/24'], 'the network policy (meta) came along');
  assert.deepEqual(after1.keys.map((k) => [k.group, k.version, k.key, k.cipher]), before.keys.map((k) => [k.group, k.version, k.key, k.cipher]), 'same key bytes and versions');
  const revoked = await rawRequest(new URL(s2.url), '/v1/ge/self', tlsOf(loadIdentity(b.path)));
  assert.equal(revoked.status, 403);
  assert.match(revoked.body, /revoked/);
  const c3 = tempDir('mig-c');
  t.after(() => c3.remove());
  await enroll({ gmsUrl: s2.url, token: unused.token, caFingerprint: s2.ca.fingerprint(), dataDir: c3.path });
  assert.deepEqual((await fetchGeState(c3.path)).groups, [3]);
  // group 1: v1 created, v2 and v3 on demand, v4 when gen-dept left it.
  assert.equal((await admin2.rotate(1)).version, 5, 'versions continue from the SQLite history');

  await assert.rejects(migrateSqliteToPostgres({ dataDir: gmsDir.path, database: pgs.url(), atRest }),
    (e: unknown) => e instanceof MigrateError && /not empty/.test(e.message));
});
