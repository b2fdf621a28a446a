/**
 * Declarative apply through the running GMS: dry-run changes nothing, apply is
 * idempotent, an invalid file is rejected whole with field paths and changes
 * nothing, a store transaction that fails half-way leaves memory and disk as
 * they were, and the database survives a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdminError } from '../../controlplane/gms/admin-client.js';
import { GmsStore } from '../../controlplane/gms/store.js';
import { computePlan } from '../../controlplane/gms/plan.js';
import { validateNetwork } from '../../controlplane/gms/spec.js';
import { FIG6, startGms, tempDir } from './helpers.js';
import { enroll, GmsRefusedError } from '../../controlplane/gms/client.js';

test('gms apply: dry-run, apply, idempotence, invalid file changes nothing', async (t) => {
  const dir = tempDir('apply');
  t.after(() => dir.remove());
  const { server, admin } = await startGms(dir.path);
  t.after(() => server.close());

  const dry = await admin.apply(FIG6, true);
  assert.equal(dry.applied, false);
  assert.equal(dry.changed, true);
  assert.match(dry.plan, /\+ ge ges2-manager type=GES mode=OP groups=\[1,2\]/);
  assert.match(dry.plan, /8 to add, 0 to change, 0 to remove/);
  assert.deepEqual(await admin.list('ges'), [], 'dry run changed nothing');
  assert.deepEqual(await admin.list('keys'), []);

  const r = await admin.apply(FIG6, false);
  assert.equal(r.applied, true);
  assert.deepEqual((await admin.list('ges')).map((g) => `${g.userId}:${g.mode}:${(g.groups as number[]).join(',')}`),
    ['gea-server:CL:2,3', 'gen-dept:CL:1', 'ges1-staff:OP:1', 'ges2-manager:OP:1,2', 'ges3-manager:OP:3']);
  assert.deepEqual((await admin.list('keys')).map((k) => `${k.group}/${k.version}`), ['1/1', '2/1', '3/1']);

  const again = await admin.apply(FIG6, false);
  assert.equal(again.changed, false);
  assert.match(again.plan, /no changes/);
  assert.deepEqual((await admin.list('keys')).map((k) => `${k.group}/${k.version}`), ['1/1', '2/1', '3/1'], 'no rotation on a no-op apply');

  const bad = structuredClone(FIG6) as { ges: Array<Record<string, unknown>>; groups: unknown[] };
  bad.ges[3].mode = 'CLOSED';
  bad.ges[0].groups = [1, 9];
  bad.ges.push({ userId: 'new-one', type: 'GES', mode: 'OP', groups: [1] }); // valid part must not land either
  await assert.rejects(admin.apply(bad, false), (e: AdminError) => {
    assert.equal(e.status, 422);
    assert.ok(e.problems.some((p) => p.startsWith('ges[3].mode:')), e.problems.join('; '));
    assert.ok(e.problems.some((p) => p.startsWith('ges[0].groups[1]: group 9 is not defined')), e.problems.join('; '));
    return true;
  });
  assert.equal((await admin.list('ges')).length, 5, 'nothing of the bad file was applied');

  // A token outstanding for a GE that is then removed cannot be used any more.
  const tk = await admin.issueToken('ges3-manager', 600);
  const without3 = structuredClone(FIG6);
  without3.ges = without3.ges.filter((g) => g.userId !== 'ges3-manager');
  await admin.apply(without3, false);
  const d = tempDir('apply-enroll');
  try {
    await assert.rejects(enroll({ gmsUrl: server.url, token: tk.token, caFingerprint: server.ca.fingerprint(), dataDir: d.path }),
      (e: GmsRefusedError) => e.status === 403 && e.code === 'token_unknown');
  } finally { d.remove(); }
  await admin.apply(FIG6, false);

  // Change: a mode flip and a new group are a 2-op plan, no rotation.
  const changed = structuredClone(FIG6);
  changed.ges[1].mode = 'CL';
  changed.groups.push({ id: 4 });
  const p = await admin.apply(changed, false);
  assert.match(p.plan, /~ ge ges1-staff: mode OP -> CL/);
  assert.match(p.plan, /\+ group 4/);
  assert.doesNotMatch(p.plan, /rotate/);
});

test('store: a transaction failing half-way leaves memory and the file untouched', async (t) => {
  const dir = tempDir('apply-tx');
  t.after(() => dir.remove());
  const store = await GmsStore.open(dir.path);
  t.after(() => store.close());
  const fig6 = validateNetwork(FIG6);
  store.tx(() => store.applyPlan(computePlan(store.readNetwork(), fig6), Date.now()));
  const fileBefore = readFileSync(join(dir.path, 'gms.sqlite'));
  const netBefore = store.readNetwork();
  // A plan whose second op violates a foreign key (membership of a group that does not exist).
  const plan = { ops: [
    { op: 'add-group' as const, group: { id: 7, name: 'g7', rotation: fig6.groups[0].rotation, cipher: 'chacha20' as const } },
    { op: 'add-ge' as const, ge: { userId: 'x', type: 'GES' as const, mode: 'OP' as const, groups: [99] } },
  ] };
  assert.throws(() => store.tx(() => store.applyPlan(plan, Date.now())), /FOREIGN KEY/);
  assert.deepEqual(store.readNetwork(), netBefore);
  assert.deepEqual(readFileSync(join(dir.path, 'gms.sqlite')), fileBefore);
  assert.equal(store.allKeys().some((k) => k.groupId === 7), false);

  // Reopen from disk: same state.
  const again = await GmsStore.open(dir.path);
  t.after(() => again.close());
  assert.deepEqual(again.readNetwork(), netBefore);
});
