/**
 * GMS replicas on one real PostgreSQL (test/lib/postgres.ts), each a
 * `gscip gms serve` process (test/lib/gms-replicas.ts), agents knowing every
 * replica's URL:
 *  - the leader is SIGKILLed in the middle of a scheduled rotation (its
 *    transaction open, the new version written but not committed): another
 *    replica takes the lead within seconds and the rotation happens exactly
 *    once (one `scheduled` row, one new version), and every agent, including
 *    the ones that were subscribed to the dead leader, ends on it;
 *  - a change made through one replica reaches the subscribers of every
 *    other (LISTEN/NOTIFY);
 *  - the replica an agent is subscribed to is SIGKILLed and a rotation is
 *    made at that moment through another: the agent moves to another
 *    replica and receives that version, then the next one;
 *  - `gms status` names the replicas, the one leader, the database, and
 *    shows the dead one as dead;
 *  - the database goes away (fast shutdown) while a scheduled rotation
 *    falls due: agents keep their keys, and when it is back the rotation
 *    happens exactly once and reaches every agent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { enroll, startGmsClient, type GmsClientHandle } from '../../controlplane/gms/client.js';
import { postgresUnavailable, TestPostgres } from '../lib/postgres.js';
import { GmsReplicaSet } from '../lib/gms-replicas.js';
import { MemorySink, tempDir, waitFor } from './helpers.js';

const unavailable = postgresUnavailable();
let pgs: TestPostgres;
before(async () => { if (!unavailable) pgs = await TestPostgres.start(); });
after(async () => { await pgs?.destroy(); });

const has = (s: MemorySink, g: number, v: number) => s.keys.has(`${g}/${v}`);

async function agents(t: import('node:test').TestContext, set: GmsReplicaSet, users: string[], urlsFor: (i: number) => string[]) {
  const out: Array<{ userId: string; sink: MemorySink; client: GmsClientHandle }> = [];
  for (const [i, u] of users.entries()) {
    const dir = tempDir(`rep-${u}`);
    const urls = urlsFor(i);
    const tok = await set.admin().issueToken(u, 600);
    await enroll({ gmsUrl: urls[0], moreGmsUrls: urls.slice(1), token: tok.token, caFingerprint: await caFingerprint(set), dataDir: dir.path });
    const sink = new MemorySink();
    const client = await startGmsClient({ dataDir: dir.path, backoff: { baseMs: 100, maxMs: 1000 }, idleTimeoutMs: 5000 }, sink);
    t.after(async () => { await client.stop(); dir.remove(); });
    out.push({ userId: u, sink, client });
  }
  return out;
}

async function caFingerprint(set: GmsReplicaSet): Promise<string> {
  const { readFileSync } = await import('node:fs');
  const { certFingerprint } = await import('../../controlplane/gms/ca.js');
  return certFingerprint(readFileSync(`${set.alive()[0].dataDir}/admin/ca.crt`, 'utf8'));
}

test('kill the leader in the middle of a scheduled rotation: another replica leads, the rotation happens exactly once, every agent gets it', { skip: unavailable ?? false, timeout: 150_000 }, async (t) => {
  const db = pgs.createDb('leaderkill');
  const set = new GmsReplicaSet(db, 'leaderkill');
  t.after(() => set.destroy());
  // r1 first, alone, so it leads; only it holds its rotation transaction open (20 s) before COMMIT.
  await set.add('r1', { GSCIP_GMS_FAILPOINT: 'rotation-hold=20000' });
  const t0 = Date.now();
  while ((await set.status('r1')).leader !== 'r1') { if (Date.now() - t0 > 10_000) throw new Error('r1 never led'); await new Promise((r) => setTimeout(r, 100)); }
  await set.add('r2');
  await set.add('r3');
  const [r1, r2, r3] = set.replicas;

  // Group 1 rotates at one second of the minute, ~14 s from now (6-field cron); once in this test.
  const at = new Date(Date.now() + 14_000);
  const schedule = `${at.getUTCSeconds()} ${at.getUTCMinutes()} * * * *`;
  await set.admin('r2').apply({ apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 1, rotation: { schedule, timezone: 'UTC', graceSeconds: 60 } }],
    ges: ['ge-a', 'ge-b', 'ge-c'].map((userId) => ({ userId, type: 'GES', mode: 'OP', groups: [1] })) }, false);
  const urls = [r1.url, r2.url, r3.url];
  // Each agent starts on a different replica; ge-a on the leader that will die.
  const ags = await agents(t, set, ['ge-a', 'ge-b', 'ge-c'], (i) => [...urls.slice(i), ...urls.slice(0, i)]);
  await waitFor('v1 at every agent', () => ags.every((a) => has(a.sink, 1, 1)), 10_000);
  await waitFor('ge-a subscribed to r1', () => ags[0].client.status().state === 'connected' && ags[0].client.status().gms === r1.url, 5000);

  // The leader reaches the rotation and holds it: kill it there.
  await waitFor('r1 inside the rotation transaction', () => r1.stderr.includes('failpoint rotation-hold: group 1 v2 by r1'), 30_000);
  const tKill = Date.now();
  await set.kill('r1');
  const msAll = await waitFor('v2 at every agent', () => ags.every((a) => has(a.sink, 1, 2)), 15_000);
  t.diagnostic(`leader killed in its rotation transaction; every agent on v2 ${Date.now() - tKill} ms later (wait ${msAll} ms)`);
  const st = await set.status('r2');
  assert.ok(st.leader === 'r2' || st.leader === 'r3', `a live replica leads: ${JSON.stringify(st.leader)}`);
  assert.equal(st.database.kind, 'postgresql');
  assert.ok(st.database.encryptedAtRest);

  // Exactly once: one scheduled row, version 2 only, even after another lease period or two.
  await new Promise((r) => setTimeout(r, 3000));
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  t.after(() => c.end());
  const rot = (await c.query('SELECT version, reason FROM rotations WHERE group_id = 1 ORDER BY version')).rows as Array<{ version: string; reason: string }>;
  assert.deepEqual(rot.map((r) => `${r.version}:${r.reason}`), ['1:group created', '2:scheduled']);
  assert.deepEqual(((await c.query('SELECT version FROM group_keys WHERE group_id = 1 ORDER BY version')).rows as Array<{ version: string }>).map((r) => Number(r.version)), [1, 2]);
  for (const a of ags) {
    assert.deepEqual(a.sink.ids(), ['1/1', '1/2'], `${a.userId}: v1 in grace and v2`);
    assert.deepEqual(a.sink.keys.get('1/2'), ags[1].sink.keys.get('1/2'), `${a.userId}: the same v2 key as the others`);
  }
  assert.notEqual(ags[0].client.status().gms, r1.url, 'ge-a moved off the dead leader');

  // status shows the dead replica as dead, the others alive and caught up.
  await new Promise((r) => setTimeout(r, 5500));
  const st2 = await set.status('r3');
  const by = new Map(st2.replicas.map((r) => [r.id, r]));
  assert.equal(by.get('r1')?.alive, false);
  assert.equal(by.get('r2')?.alive, true);
  assert.equal(by.get('r3')?.alive, true);
  assert.equal(st2.replicas.filter((r) => r.leader && r.alive).length, 1, 'one leader');
  assert.ok(by.get('r2')!.lagChanges === 0 && by.get('r3')!.lagChanges === 0, `no lag: ${JSON.stringify(st2.replicas)}`);
  // The operator's view: gscip gms status through a surviving replica.
  const out = execFileSync(process.execPath, [resolve(__dirname, '../../controlplane/cli/main.js'), 'gms', 'status', '--data-dir', r3.dataDir], { encoding: 'utf8' });
  t.diagnostic(out);
  assert.match(out, /^database: postgresql postgresql:\/\/gscip@.* \(PostgreSQL \d+/m);
  assert.match(out, new RegExp(`^leader: +${st2.leader}$`, 'm'));
  assert.match(out, /^r1 +https:\S+ +follower +DEAD /m);
  assert.match(out, new RegExp(`^${st2.leader} +https:\\S+ +leader +alive +[\\d.]+s ago +0 change\\(s\\)`, 'm'));
});

test('kill the replica an agent is subscribed to while a rotation is made through another: it moves and gets that version and the next', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  const db = pgs.createDb('subkill');
  const set = new GmsReplicaSet(db, 'subkill');
  t.after(() => set.destroy());
  await set.add('r1');
  await set.add('r2');
  await set.add('r3');
  const [r1, r2, r3] = set.replicas;
  await set.admin('r1').apply({ apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 1 }, { id: 2 }],
    ges: [{ userId: 'ge-x', type: 'GES', mode: 'OP', groups: [1, 2] }, { userId: 'ge-y', type: 'GES', mode: 'OP', groups: [1] }] }, false);
  const [x, y] = await agents(t, set, ['ge-x', 'ge-y'], (i) => (i === 0 ? [r2.url, r3.url, r1.url] : [r3.url, r1.url, r2.url]));
  await waitFor('both connected', () => x.client.status().state === 'connected' && y.client.status().state === 'connected', 10_000);
  assert.equal(x.client.status().gms, r2.url);
  assert.equal(y.client.status().gms, r3.url);

  // Fan-out: a rotation through r1 reaches ge-x (on r2) and ge-y (on r3).
  assert.equal((await set.admin('r1').rotate(1)).version, 2);
  await waitFor('v2 through LISTEN/NOTIFY on r2 and r3', () => has(x.sink, 1, 2) && has(y.sink, 1, 2), 5000);

  // Kill ge-x's replica and rotate at once through r1: ge-x is between replicas when v3 is made.
  const tKill = Date.now();
  await set.kill('r2');
  assert.equal((await set.admin('r1').rotate(1)).version, 3);
  await waitFor('ge-x on another replica with v3', () => has(x.sink, 1, 3) && x.client.status().state === 'connected', 10_000);
  t.diagnostic(`ge-x failed over to ${x.client.status().gms} and holds v3 ${Date.now() - tKill} ms after the kill`);
  assert.notEqual(x.client.status().gms, r2.url);
  // ge-y's replica was never killed: its NOTIFY may simply land later on a loaded machine (bounded wait).
  await waitFor('v3 on ge-y too', () => has(y.sink, 1, 3), 5000);
  // ...and the next rotation, through the replica it now uses.
  const now = set.replicas.find((r) => r.url === x.client.status().gms)!;
  assert.equal((await set.admin(now.id).rotate(2)).version, 2);
  await waitFor('ge-x gets group 2 v2 on its new replica', () => has(x.sink, 2, 2), 5000);
  assert.ok(x.client.status().reconnects >= 1);
});

test('the database stops while a scheduled rotation falls due: agents keep their keys; once it is back the rotation happens once and reaches everyone', { skip: unavailable ?? false, timeout: 150_000 }, async (t) => {
  const db = pgs.createDb('dbloss');
  const set = new GmsReplicaSet(db, 'dbloss');
  t.after(() => set.destroy());
  await set.add('r1');
  await set.add('r2');
  const [r1, r2] = set.replicas;
  const at = new Date(Date.now() + 20_000);
  await set.admin('r1').apply({ apiVersion: 'gscip/v1', kind: 'Network',
    groups: [{ id: 1, rotation: { schedule: `${at.getUTCSeconds()} ${at.getUTCMinutes()} * * * *`, timezone: 'UTC', graceSeconds: 60 } }],
    ges: [{ userId: 'ge-p', type: 'GES', mode: 'OP', groups: [1] }, { userId: 'ge-q', type: 'GES', mode: 'OP', groups: [1] }] }, false);
  const ags = await agents(t, set, ['ge-p', 'ge-q'], (i) => (i === 0 ? [r1.url, r2.url] : [r2.url, r1.url]));
  await waitFor('v1 at both agents', () => ags.every((a) => has(a.sink, 1, 1)), 10_000);

  // The database is down from ~5 s before the rotation is due until ~5 s after.
  await new Promise((r) => setTimeout(r, Math.max(0, at.getTime() - 5000 - Date.now())));
  await pgs.stop();
  const tDown = Date.now();
  await new Promise((r) => setTimeout(r, Math.max(0, at.getTime() + 5000 - Date.now())));
  for (const a of ags) assert.deepEqual(a.sink.ids(), ['1/1'], `${a.userId} keeps v1 while the database is down`);
  await pgs.boot();
  t.diagnostic(`database down ${Date.now() - tDown} ms across the due time`);
  const ms = await waitFor('v2 at both agents after the database returned', () => ags.every((a) => has(a.sink, 1, 2)), 20_000);
  t.diagnostic(`v2 at both agents ${ms} ms after the database returned`);
  await new Promise((r) => setTimeout(r, 3000));
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  t.after(() => c.end());
  const rot = (await c.query('SELECT version, reason FROM rotations WHERE group_id = 1 ORDER BY version')).rows as Array<{ version: string; reason: string }>;
  assert.deepEqual(rot.map((r) => `${r.version}:${r.reason}`), ['1:group created', '2:scheduled'], 'rotated once');
  for (const a of ags) assert.deepEqual(a.sink.ids(), ['1/1', '1/2']);
  const st = await set.status('r2');
  assert.equal(st.replicas.filter((r) => r.leader).length, 1, `one leader again: ${JSON.stringify(st.replicas)}`);
});

test('replicas that both believe they lead: concurrent scheduled rotations of a due group make one version', { skip: unavailable ?? false, timeout: 60_000 }, async () => {
  const { PgBackend } = await import('../../controlplane/gms/store-pg.js');
  const { AtRest } = await import('../../controlplane/gms/at-rest.js');
  const { computePlan } = await import('../../controlplane/gms/plan.js');
  const { validateNetwork } = await import('../../controlplane/gms/spec.js');
  const db = pgs.createDb('splitbrain');
  const atRest = AtRest.fromKeys([AtRest.generateKey()]);
  const stores = await Promise.all([0, 1, 2, 3].map(() => PgBackend.open(db, atRest)));
  try {
    const t0 = Date.parse('2026-11-01T02:59:00Z');
    const net = validateNetwork({ apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 1, rotation: { schedule: '0 3 * * *' } }], ges: [] });
    await stores[0].applyPlan(computePlan(await stores[0].readNetwork(), net), t0);
    const due = t0 + 120_000; // 03:01: the 03:00 rotation is due
    assert.equal(await stores[0].rotateIfDue(1, t0 + 30_000), null, 'not due at 02:59:30');
    const got = await Promise.all(stores.flatMap((s) => [s.rotateIfDue(1, due), s.rotateIfDue(1, due + 1)]));
    assert.deepEqual(got.filter((v) => v !== null), [2], `one rotation among ${got.length} concurrent calls: ${JSON.stringify(got)}`);
    assert.equal(await stores[1].rotationCount(), 2);
  } finally {
    for (const s of stores) await s.close();
  }
});
