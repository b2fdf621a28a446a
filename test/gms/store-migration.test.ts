/**
 * A GMS database written by the release before per-group ciphers (no cipher
 * column in groups or group_keys) opens under this release: the columns are
 * added on open with chacha20 (what every key of that release was), nothing
 * else changes, the file on disk is migrated, and a cipher change afterwards
 * rotates the group to a new version under the new cipher.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import initSqlJs from 'sql.js';
import { GmsStore } from '../../controlplane/gms/store.js';
import { computePlan } from '../../controlplane/gms/plan.js';
import { validateNetwork } from '../../controlplane/gms/spec.js';
import { tempDir } from './helpers.js';

// The previous release's schema, verbatim (controlplane/gms/store.ts before the cipher columns).
const OLD_SCHEMA = `
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE groups (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  schedule TEXT NOT NULL, timezone TEXT NOT NULL, grace_s INTEGER NOT NULL);
CREATE TABLE ges (
  user_id TEXT PRIMARY KEY, type TEXT NOT NULL, mode TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE memberships (
  user_id TEXT NOT NULL REFERENCES ges(user_id) ON DELETE CASCADE,
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, group_id));
CREATE TABLE key_versions (group_id INTEGER PRIMARY KEY, last_version INTEGER NOT NULL);
CREATE TABLE group_keys (
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  version INTEGER NOT NULL, key BLOB NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER,
  PRIMARY KEY (group_id, version));
CREATE TABLE rotations (
  group_id INTEGER NOT NULL, version INTEGER NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE certs (
  serial TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('ge','admin')), user_id TEXT NOT NULL,
  issued_at INTEGER NOT NULL, not_after INTEGER NOT NULL, revoked_at INTEGER);
CREATE TABLE tokens (
  hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, used_at INTEGER);
`;

const T0 = Date.parse('2026-11-01T03:00:00Z');
const K = (b: number) => Buffer.alloc(32, b);

/** An old-release gms.sqlite: groups 1 and 2, ges2 in both, group 1 at v2 with v1 in grace. */
async function writeOldDb(file: string): Promise<void> {
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  db.exec(OLD_SCHEMA);
  db.run(`INSERT INTO groups VALUES (1, 'dept', '0 3 * * *', 'UTC', 3600), (2, 'mgmt', '0 3 * * *', 'UTC', 600)`);
  db.run(`INSERT INTO ges VALUES ('ges2-manager', 'GES', 'OP', ?)`, [T0]);
  db.run(`INSERT INTO memberships VALUES ('ges2-manager', 1), ('ges2-manager', 2)`);
  db.run('INSERT INTO group_keys VALUES (1, 1, ?, ?, ?), (1, 2, ?, ?, NULL), (2, 1, ?, ?, NULL)',
    [K(1), T0, T0 + 86_400_000 + 3_600_000, K(2), T0 + 86_400_000, K(3), T0]);
  db.run('INSERT INTO key_versions VALUES (1, 2), (2, 1)');
  db.run(`INSERT INTO rotations VALUES (1, 1, ?, 'group created'), (1, 2, ?, 'scheduled'), (2, 1, ?, 'group created')`, [T0, T0 + 86_400_000, T0]);
  writeFileSync(file, db.export(), { mode: 0o600 });
  db.close();
}

async function columns(file: string, table: string): Promise<string[]> {
  const SQL = await initSqlJs();
  const db = new SQL.Database(readFileSync(file));
  try { return db.exec(`PRAGMA table_info(${table})`)[0].values.map((r) => String(r[1])); } finally { db.close(); }
}

test('a database from the previous release is migrated on open: missing cipher = chacha20', async (t) => {
  const dir = tempDir('migrate');
  t.after(() => dir.remove());
  const file = join(dir.path, 'gms.sqlite');
  await writeOldDb(file);
  assert.equal((await columns(file, 'group_keys')).includes('cipher'), false, 'the fixture really is the old schema');

  const store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  const net = store.readNetwork();
  assert.deepEqual(net.groups.map((g) => `${g.id}:${g.name}:${g.cipher}:${g.rotation.graceSeconds}`), ['1:dept:chacha20:3600', '2:mgmt:chacha20:600']);
  assert.deepEqual(net.ges, [{ userId: 'ges2-manager', type: 'GES', mode: 'OP', groups: [1, 2] }]);
  const keys = store.allKeys();
  assert.deepEqual(keys.map((k) => `${k.groupId}/${k.version}:${k.cipher}:${k.expiresAt === null ? 'current' : 'grace'}`),
    ['1/1:chacha20:grace', '1/2:chacha20:current', '2/1:chacha20:current']);
  assert.deepEqual(keys.map((k) => k.key), [K(1), K(2), K(3)], 'key bytes untouched');
  assert.equal(store.rotationCount(), 3);
  // Migrated on disk too (not only in memory).
  assert.ok((await columns(file, 'groups')).includes('cipher'));
  assert.ok((await columns(file, 'group_keys')).includes('cipher'));

  // The admin now switches group 1 to ChaCha8: v3 under chacha8, v2 keeps chacha20 in its grace.
  const now = T0 + 2 * 86_400_000;
  const desired = validateNetwork({ apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 1, name: 'dept', cipher: 'chacha8' }, { id: 2, name: 'mgmt', rotation: { graceSeconds: 600 } }],
    ges: [{ userId: 'ges2-manager', type: 'GES', mode: 'OP', groups: [1, 2] }] });
  const plan = computePlan(store.readNetwork(), desired);
  assert.deepEqual(plan.ops.map((o) => o.op), ['update-group', 'rotate']);
  assert.deepEqual(store.tx(() => store.applyPlan(plan, now)), [{ groupId: 1, version: 3 }]);
  const g1 = store.allKeys().filter((k) => k.groupId === 1);
  assert.deepEqual(g1.map((k) => `${k.version}:${k.cipher}`), ['1:chacha20', '2:chacha20', '3:chacha8']);
  assert.equal(g1.find((k) => k.version === 2)!.expiresAt, now + 3600 * 1000, 'old version keeps the usual grace');
  // A later on-demand/scheduled rotation uses the group's current cipher.
  store.tx(() => store.rotate(1, now + 1, 'on demand'));
  assert.equal(store.allKeys().find((k) => k.groupId === 1 && k.version === 4)!.cipher, 'chacha8');
  store.close();

  // Reopening the migrated file is a no-op migration and keeps everything.
  const again = await GmsStore.open(dir.path);
  t.after(() => again.close());
  assert.deepEqual(again.allKeys().filter((k) => k.groupId === 1).map((k) => `${k.version}:${k.cipher}`), ['1:chacha20', '2:chacha20', '3:chacha8', '4:chacha8']);
  assert.equal(again.readNetwork().groups[0].cipher, 'chacha8');
});

test('a cipher name this release does not know in the database is an error, not ChaCha20', async (t) => {
  const dir = tempDir('migrate-bad');
  t.after(() => dir.remove());
  const file = join(dir.path, 'gms.sqlite');
  await writeOldDb(file);
  const SQL = await initSqlJs();
  const db = new SQL.Database(readFileSync(file));
  db.run(`ALTER TABLE group_keys ADD COLUMN cipher TEXT NOT NULL DEFAULT 'chacha20'`);
  db.run(`UPDATE group_keys SET cipher = 'chacha6' WHERE group_id = 2`);
  writeFileSync(file, db.export(), { mode: 0o600 });
  db.close();
  const store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  assert.throws(() => store.allKeys(), /group 2 key v1 has cipher "chacha6", not one this release knows/);
});
