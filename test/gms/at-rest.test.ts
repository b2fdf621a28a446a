/**
 * Secrets at rest: group keys and the CA key are sealed under the replicas'
 * master key (AES-256-GCM, bound to their row), so the database alone gives
 * neither; the master key is rotated with a key ring and `gms rekey`.
 * Pure AtRest cases, then on a real PostgreSQL (test/lib/postgres.ts) and on
 * SQLite with a master key.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { AtRest, AtRestError, groupKeyAad, parseKeyRing } from '../../controlplane/gms/at-rest.js';
import { fetchGeState } from '../../controlplane/gms/client.js';
import { GmsServer } from '../../controlplane/gms/server.js';
import { postgresUnavailable, TestPostgres } from '../lib/postgres.js';
import { freePort } from '../lib/gms-replicas.js';
import { enrollGe, FIG6, startGms, tempDir } from './helpers.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const K1 = Buffer.alloc(32, 0x11);
const K2 = Buffer.alloc(32, 0x22);

test('AtRest: seals and opens, binds a blob to its row, names a key it lacks, passes plaintext through without a key', () => {
  const r = AtRest.fromKeys([K1]);
  const key = Buffer.alloc(32, 7);
  const blob = r.seal(key, groupKeyAad(1, 2));
  assert.ok(AtRest.isSealed(blob));
  assert.equal(blob.includes(key), false, 'no plaintext inside');
  assert.deepEqual(r.open(blob, groupKeyAad(1, 2)), key);
  assert.throws(() => r.open(blob, groupKeyAad(1, 3)), (e: unknown) => e instanceof AtRestError && /moved from another row/.test(e.message));
  const tampered = Buffer.from(blob); tampered[20] ^= 1;
  assert.throws(() => r.open(tampered, groupKeyAad(1, 2)), AtRestError);
  assert.throws(() => AtRest.fromKeys([K2]).open(blob, groupKeyAad(1, 2)), new RegExp(`sealed under master key ${AtRest.sealedBy(blob)}, which is not in this replica's key ring`));
  assert.throws(() => AtRest.none().open(blob, groupKeyAad(1, 2)), /start the GMS with --master-key-file/);
  assert.deepEqual(AtRest.none().seal(key, 'x'), key);
  // A ring: the first key seals, every key opens.
  const ring = AtRest.fromKeys([K2, K1]);
  assert.deepEqual(ring.open(blob, groupKeyAad(1, 2)), key);
  assert.equal(AtRest.sealedBy(ring.seal(key, 'x')), AtRest.fromKeys([K2]).currentKeyId);
  assert.equal(ring.isCurrent(blob), false);
  assert.throws(() => parseKeyRing(`${K1.toString('hex')}\nnot-a-key\n`, 'f'), /f: entry 2 is not a 32-byte key/);
  assert.throws(() => parseKeyRing('# only a comment\n', 'f'), /f: no key/);
  assert.equal(parseKeyRing(`# new\n${K2.toString('hex')}\n${K1.toString('base64')}  # old\n`, 'f').length, 2);
});

const unavailable = postgresUnavailable();
let pgs: TestPostgres;
before(async () => { if (!unavailable) pgs = await TestPostgres.start(); });
after(async () => { await pgs?.destroy(); });

function keyFile(dir: string, keys: Buffer[]): string {
  const f = join(dir, `ring-${keys.length}-${keys[0][0]}.key`);
  writeFileSync(f, keys.map((k) => `${k.toString('hex')}\n`).join(''), { mode: 0o600 });
  return f;
}

test('PostgreSQL: no key in clear in the database; master key rotated with a ring and gms rekey', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  const db = pgs.createDb('atrest');
  const gmsDir = tempDir('atrest');
  const ge = tempDir('atrest-ge');
  t.after(() => { gmsDir.remove(); ge.remove(); });
  const f1 = keyFile(gmsDir.path, [K1]);
  const f21 = keyFile(gmsDir.path, [K2, K1]);
  const f2 = keyFile(gmsDir.path, [K2]);

  await assert.rejects(GmsServer.start({ dataDir: gmsDir.path, host: '127.0.0.1', port: 0, database: db, atRest: AtRest.none() }),
    (e: unknown) => e instanceof AtRestError && /a master key is required/.test(e.message));

  const port = await freePort(); // restarts keep the URL the agent enrolled with
  let live: GmsServer | null = null;
  t.after(() => live?.close());
  const start = async (f: string) => { const g = await startGms(gmsDir.path, { database: db, masterKeyFile: f, port }); live = g.server; return g; };
  let { server, admin } = await start(f1);
  await admin.apply(FIG6, false);
  await enrollGe(server, admin, 'ges2-manager', ge.path);
  const delivered = await fetchGeState(ge.path);
  assert.equal(delivered.keys.length, 2);
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  t.after(() => c.end());
  const rawKeys = async () => (await c.query('SELECT group_id, version, key FROM group_keys')).rows as Array<{ group_id: string; version: string; key: Buffer }>;
  const everything = async () => Buffer.concat([...(await rawKeys()).map((r) => r.key),
    ...((await c.query('SELECT v FROM meta')).rows as Array<{ v: string }>).map((r) => Buffer.from(r.v))]);
  const dump = await everything();
  for (const k of delivered.keys) assert.equal(dump.includes(Buffer.from(k.key, 'base64')), false, `group ${k.group} v${k.version}: not in clear`);
  assert.equal(dump.includes('PRIVATE KEY'), false, 'no CA key in clear');
  const id1 = AtRest.fromKeys([K1]).currentKeyId;
  assert.ok((await rawKeys()).every((r) => AtRest.sealedBy(r.key) === id1));
  await server.close();

  // Rotate: new key first in the ring, restart, rekey, drop the old key.
  ({ server, admin } = await start(f21));
  assert.equal((await admin.rotate(1)).version, 2, 'the ring opens old blobs and seals new ones');
  const out = execFileSync(process.execPath, [MAIN, 'gms', 'rekey', '--data-dir', gmsDir.path, '--database', db, '--master-key-file', f21], { encoding: 'utf8' });
  assert.match(out, /re-sealed 3 group key\(s\) and the CA key under master key/);
  const id2 = AtRest.fromKeys([K2]).currentKeyId;
  assert.ok((await rawKeys()).every((r) => AtRest.sealedBy(r.key) === id2), 'every key under K2');
  assert.match(execFileSync(process.execPath, [MAIN, 'gms', 'rekey', '--data-dir', gmsDir.path, '--database', db, '--master-key-file', f21], { encoding: 'utf8' }), /re-sealed 0 group key/);
  const before2 = await fetchGeState(ge.path);
  await server.close();

  ({ server } = await start(f2));
  const after2 = await fetchGeState(ge.path);
  assert.deepEqual(after2.keys.map((k) => k.key), before2.keys.map((k) => k.key), 'same key bytes under the new master key alone');
  await server.close();
  await assert.rejects(start(f1),
    (e: unknown) => e instanceof AtRestError && new RegExp(`sealed under master key ${id2}, which is not in this replica's key ring`).test(e.message));
});

test('SQLite with a master key: group keys sealed in gms.sqlite; without the key the GMS refuses to start', { timeout: 60_000 }, async (t) => {
  const gmsDir = tempDir('atrest-lite');
  const ge = tempDir('atrest-lite-ge');
  t.after(() => { gmsDir.remove(); ge.remove(); });
  const f1 = keyFile(gmsDir.path, [K1]);
  const port = await freePort();
  const { server, admin } = await startGms(gmsDir.path, { masterKeyFile: f1, port });
  t.after(() => server.close());
  await admin.apply(FIG6, false);
  await enrollGe(server, admin, 'ges2-manager', ge.path);
  const d = await fetchGeState(ge.path);
  await server.close();
  const file = readFileSync(join(gmsDir.path, 'gms.sqlite'));
  for (const k of d.keys) assert.equal(file.includes(Buffer.from(k.key, 'base64')), false, `group ${k.group} v${k.version}: not in clear in the file`);
  await assert.rejects(startGms(gmsDir.path, { atRest: AtRest.none(), port }), (e: unknown) => e instanceof AtRestError && /start the GMS with --master-key-file/.test(e.message));
  const s2 = await startGms(gmsDir.path, { masterKeyFile: f1, port });
  t.after(() => s2.server.close());
  assert.deepEqual((await fetchGeState(ge.path)).keys.map((k) => k.key), d.keys.map((k) => k.key));
});
