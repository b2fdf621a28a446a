/**
 * Key lifecycle across several running agents: rotation on demand reaches
 * every member's key sink within seconds; the previous version stays for the
 * grace period and is then deleted everywhere; a member leaving a group
 * triggers a rotation it does not receive; a GE removed from the network is
 * refused and loses its keys; a cron schedule rotates by itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchGeState, GmsRefusedError, type GmsClientHandle } from '../../controlplane/gms/client.js';
import { enrollGe, FIG6, MemorySink, startAgent, startGms, tempDir, waitFor } from './helpers.js';

const GRACE_S = 2;
const net = (over: Partial<typeof FIG6> = {}) => ({ ...FIG6, defaults: { rotation: { graceSeconds: GRACE_S } }, ...over });

test('rotation reaches every running agent, grace then removal, member leave, GE removal', async (t) => {
  const gmsDir = tempDir('rot');
  t.after(() => gmsDir.remove());
  const { server, admin } = await startGms(gmsDir.path);
  t.after(() => server.close());
  await admin.apply(net(), false);

  const names = ['gen-dept', 'ges1-staff', 'ges2-manager', 'gea-server'] as const;
  const agents = new Map<string, { sink: MemorySink; handle: GmsClientHandle; dir: string }>();
  for (const n of names) {
    const d = tempDir(`rot-${n}`);
    t.after(() => d.remove());
    await enrollGe(server, admin, n, d.path);
    const sink = new MemorySink();
    const handle = await startAgent(d.path, sink);
    t.after(() => handle.stop());
    agents.set(n, { sink, handle, dir: d.path });
  }
  const a = (n: string) => agents.get(n)!;
  await waitFor('initial keys', () => a('gen-dept').sink.ids().join() === '1/1' && a('ges2-manager').sink.ids().join() === '1/1,2/1'
    && a('gea-server').sink.ids().join() === '2/1,3/1' && a('ges1-staff').sink.ids().join() === '1/1');
  await waitFor('connected', () => server.connectedCount() === 4);

  await t.test('on-demand rotation of group 1 reaches its three members within 2 s, others untouched', async () => {
    const oldKey = a('ges1-staff').sink.keys.get('1/1')!;
    const r = await admin.rotate(1);
    assert.equal(r.version, 2);
    const ms = await waitFor('v2 everywhere', () => ['gen-dept', 'ges1-staff', 'ges2-manager'].every((n) => a(n).sink.keys.has('1/2')), 2000);
    t.diagnostic(`rotation reached 3 agents in ${ms} ms`);
    const k2 = a('ges1-staff').sink.keys.get('1/2')!;
    assert.equal(k2.length, 32);
    assert.notDeepEqual(k2, oldKey);
    for (const n of ['gen-dept', 'ges2-manager']) assert.deepEqual(a(n).sink.keys.get('1/2'), k2, `${n} got the same new key`);
    // previous version still installed during the grace period
    for (const n of ['gen-dept', 'ges1-staff', 'ges2-manager']) assert.ok(a(n).sink.keys.has('1/1'), `${n} keeps 1/1 in grace`);
    assert.deepEqual(a('gea-server').sink.ids(), ['2/1', '3/1']);
    const st = a('ges1-staff').handle.status();
    assert.equal(st.state, 'connected');
    assert.deepEqual(st.keys.map((k) => `${k.group}/${k.version}:${k.state}`), ['1/1:grace', '1/2:current']);
  });

  await t.test('after the grace period the old version is deleted from every agent', async () => {
    await waitFor('1/1 gone', () => ['gen-dept', 'ges1-staff', 'ges2-manager'].every((n) => !a(n).sink.keys.has('1/1')), (GRACE_S + 3) * 1000);
    assert.ok(a('ges1-staff').sink.log.includes('del 1/1'));
    const keys = await admin.list('keys');
    assert.deepEqual(keys.filter((k) => k.group === 1).map((k) => k.version), [2]);
    for (const k of keys) assert.equal(Object.keys(k).some((f) => f === 'key'), false, 'ls keys never shows key material');
  });

  await t.test('a member leaving a group triggers a rotation it does not receive', async () => {
    // ges2-manager leaves group 2: only the GEA remains
    const ges = net().ges.map((g) => (g.userId === 'ges2-manager' ? { ...g, groups: [1] } : g));
    const r = await admin.apply(net({ ges }), false);
    assert.match(r.plan, /! rotate group 2 \(ges2-manager left\)/);
    assert.deepEqual(r.rotated, [{ groupId: 2, version: 2 }]);
    await waitFor('GEA gets 2/2', () => a('gea-server').sink.keys.has('2/2'), 2000);
    await waitFor('leaver drops group 2', () => a('ges2-manager').sink.ids().every((id) => !id.startsWith('2/')), 2000);
    const d = await fetchGeState(a('ges2-manager').dir);
    assert.deepEqual(d.groups, [1]);
    assert.equal(d.keys.some((k) => k.group === 2), false);
  });

  await t.test('a GE removed from the network is refused and loses every key', async () => {
    const ges = net().ges.filter((g) => g.userId !== 'ges1-staff');
    const r = await admin.apply(net({ ges }), false);
    assert.match(r.plan, /- ge ges1-staff/);
    assert.match(r.plan, /! rotate group 1 \(ges1-staff left\)/);
    await assert.rejects(fetchGeState(a('ges1-staff').dir), (e: GmsRefusedError) => e.status === 403);
    await waitFor('removed agent wiped', () => a('ges1-staff').sink.keys.size === 0, 3000);
    assert.equal(a('ges1-staff').handle.status().state, 'refused');
    await waitFor('others get 1/3', () => a('gen-dept').sink.keys.has('1/3') && a('ges2-manager').sink.keys.has('1/3'), 2000);
  });

  await t.test('a schedule rotates by itself (every 2 s here; default is daily 03:00)', async () => {
    const groups = net().groups.map((g) => (g.id === 3 ? { id: 3, rotation: { schedule: '*/2 * * * * *' } } : g));
    await admin.apply(net({ groups, ges: net().ges.filter((g) => g.userId !== 'ges1-staff').map((g) => (g.userId === 'ges2-manager' ? { ...g, groups: [1] } : g)) }), false);
    const v3 = () => Math.max(...a('gea-server').sink.ids().filter((i) => i.startsWith('3/')).map((i) => Number(i.split('/')[1])));
    const before = v3();
    // The change itself may trigger a catch-up rotation (last one is older than 2 s);
    // two more increments can only come from the timer firing on schedule.
    await waitFor('two scheduled rotations of group 3', () => v3() >= before + 3, 8000);
    const groups3 = (await admin.list('groups')).find((g) => g.id === 3)!;
    assert.ok(Number(groups3.currentVersion) >= before + 3);
    // group 1 keeps the daily default and did not move
    assert.equal(a('gen-dept').handle.status().keys.filter((k) => k.state === 'current').map((k) => k.version)[0], 3);
  });
});
