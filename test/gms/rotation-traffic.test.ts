/**
 * Key rotation under load, end to end: two GESs (real agent, fast path,
 * PCCOM, DPRP; test/netns/dprp-topology.ts) get their group key only from the
 * GMS (mutual TLS, a GMS client per GE writing into that GE's pinned
 * gscip_keys map). An iperf3 TCP transfer runs encrypted a -> b; the GMS
 * rotates the group key in the middle; the agents install v2 within seconds,
 * DPRP re-negotiates the live flows onto v2, the GMS withdraws v1 after its
 * grace period, and the transfer never stalls: every 0.5 s interval moves
 * data, iperf3 ends without error, no packet is dropped for lack of a key,
 * and not one fails the keyed checksum: DPRP moves both ends' decrypt entries
 * to v2 (still accepting v1 as prev_key_version) before either end encrypts
 * with v2 (docs/dprp.md "Re-keying"); segments still under v1 decrypt as prev.
 * The same scenario with the rotation caused by changing the group's cipher
 * (chacha20 -> chacha8 by `apply`): during the switch one end decrypts v1
 * segments with 20 rounds and v2 segments with 8, per key, and still nothing
 * is lost.
 * And with three GMS replicas on PostgreSQL, the rotation a scheduled one
 * (6-field cron, set to fire 3 s ahead through a follower) during which the
 * leader is SIGKILLed with its rotation transaction open: another replica
 * leads and rotates, ge-a (subscribed to the dead leader) fails over, and
 * the same assertions hold.
 * Needs root, build/bpf/gscip_tc.bpf.o and iperf3 (and PostgreSQL for the third).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor as waitForNs } from '../lib/netns.js';
import { Action, KEY_F_NONE, KEY_F_ROUNDS_8, Stat } from '../../controlplane/maps/abi.js';
import { readStat } from '../../controlplane/maps/accessors.js';
import type { Cipher } from '../../controlplane/gms/model.js';
import type { GmsAdminClient } from '../../controlplane/gms/admin-client.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import { keyMapSink } from '../../controlplane/gms/key-map-sink.js';
import { B, DprpTopo } from '../netns/dprp-topology.js';
import { enroll } from '../../controlplane/gms/client.js';
import { certFingerprint } from '../../controlplane/gms/ca.js';
import { readFileSync } from 'node:fs';
import { postgresUnavailable, TestPostgres } from '../lib/postgres.js';
import { GmsReplicaSet } from '../lib/gms-replicas.js';
import { enrollGe, startAgent, startGms, tempDir, waitFor } from './helpers.js';

const unavailable = bpfUnavailable() ?? (existsSync('/usr/bin/iperf3') ? null : 'iperf3 not installed');
const PORT = 5301;
const GRACE_S = 4;
const DURATION_S = 12;

const stat = (m: GscipMaps, id: number): bigint => readStat(m, id).packets;
const has = (m: GscipMaps, g: number, v: number): boolean => m.keys.get({ group_id: g, version: v }) !== undefined;
/** key_version of every encrypt/decrypt PIT entry of the iperf3 flows (either direction). */
/** prev_key_version of the iperf3 flows' decrypt entries. */
const iperfPrev = (m: GscipMaps): number[] => [...m.pit.entries()]
  .filter(([k, v]) => v.action === Action.DECRYPT && (k.sport === PORT || k.dport === PORT))
  .map(([, v]) => v.prev_key_version ?? 0);
const iperfVersions = (m: GscipMaps): number[] => [...m.pit.entries()]
  .filter(([k, v]) => (v.action === Action.ENCRYPT || v.action === Action.DECRYPT) && (k.sport === PORT || k.dport === PORT))
  .map(([, v]) => v.key_version);

const network = (cipher: Cipher, schedule = '0 3 * * *') => ({
  apiVersion: 'gscip/v1', kind: 'Network',
  groups: [{ id: 1, rotation: { schedule, timezone: 'UTC', graceSeconds: GRACE_S }, cipher }],
  ges: [{ userId: 'ge-a', type: 'GES', mode: 'OP', groups: [1] }, { userId: 'ge-b', type: 'GES', mode: 'OP', groups: [1] }],
});

/** The GMS side: an admin, and enrollment of a GE's agent into a data dir. */
interface GmsUnderTest { admin: GmsAdminClient; enroll(userId: string, dataDir: string): Promise<void> }

/** Which flags v1 and v2 must carry in both key maps, what makes v2, and (default: one SQLite GMS) which GMS. */
interface Scenario {
  tag: string; flagsV1: number; flagsV2: number;
  rotate(admin: GmsAdminClient): Promise<number>;
  gms?(t: import('node:test').TestContext, gmsDir: string): Promise<GmsUnderTest>;
}

async function sqliteGms(t: import('node:test').TestContext, gmsDir: string): Promise<GmsUnderTest> {
  const { server, admin } = await startGms(gmsDir);
  t.after(() => server.close());
  return { admin, enroll: (u, d) => enrollGe(server, admin, u, d) };
}

test('GMS rotation under iperf3 load: flows move to the new key, nothing stalls or drops', { skip: unavailable ?? false, timeout: 90_000 }, (t) =>
  rotationUnderLoad(t, { tag: 'rotload', flagsV1: KEY_F_NONE, flagsV2: KEY_F_NONE, rotate: async (admin) => (await admin.rotate(1)).version }));

test('GMS cipher change chacha20 -> chacha8 under iperf3 load: flows move to the ChaCha8 version, nothing stalls or drops', { skip: unavailable ?? false, timeout: 90_000 }, (t) =>
  rotationUnderLoad(t, { tag: 'cipherload', flagsV1: KEY_F_NONE, flagsV2: KEY_F_ROUNDS_8, rotate: async (admin) => {
    const r = await admin.apply(network('chacha8'), false);
    assert.match(r.plan, /! rotate group 1 \(cipher chacha20 -> chacha8\)/);
    return r.rotated![0].version;
  } }));

const pgUnavailable = unavailable ?? postgresUnavailable();
let replicas: GmsReplicaSet | null = null;
test('GMS replicas on PostgreSQL: the leader SIGKILLed inside a scheduled rotation under iperf3 load: rotated once, flows move, nothing stalls or drops', { skip: pgUnavailable ?? false, timeout: 150_000 }, (t) =>
  rotationUnderLoad(t, {
    tag: 'rotpg', flagsV1: KEY_F_NONE, flagsV2: KEY_F_NONE,
    gms: async (tt) => {
      const pgs = await TestPostgres.start();
      tt.after(() => pgs.destroy());
      const set = new GmsReplicaSet(pgs.url(), 'rotpg');
      replicas = set;
      tt.after(() => set.destroy());
      await set.add('r1', { GSCIP_GMS_FAILPOINT: 'rotation-hold=20000' }); // alone first: it leads
      for (let i = 0; (await set.status('r1')).leader !== 'r1'; i++) { if (i > 100) throw new Error('r1 never led'); await new Promise((r) => setTimeout(r, 100)); }
      await set.add('r2');
      await set.add('r3');
      const urls = set.replicas.map((r) => r.url);
      const fp = certFingerprint(readFileSync(`${set.get('r1').dataDir}/admin/ca.crt`, 'utf8'));
      const order: Record<string, string[]> = { 'ge-a': urls, 'ge-b': [urls[1], urls[2], urls[0]] }; // ge-a on the leader
      const admin = set.admin('r2');
      return { admin, enroll: async (u, d) => {
        const tok = await admin.issueToken(u, 600);
        await enroll({ gmsUrl: order[u][0], moreGmsUrls: order[u].slice(1), token: tok.token, caFingerprint: fp, dataDir: d });
      } };
    },
    rotate: async (admin) => {
      const set = replicas!;
      // Through a follower: the schedule now fires 3 s ahead (no rotation by itself); the leader hears it by NOTIFY.
      const at = new Date(Date.now() + 3000);
      await admin.apply(network('chacha20', `${at.getUTCSeconds()} ${at.getUTCMinutes()} * * * *`), false);
      const r1 = set.get('r1');
      await waitFor('the leader inside its rotation transaction', () => r1.stderr.includes('failpoint rotation-hold: group 1 v2 by r1'), 10_000);
      await set.kill('r1');
      for (let i = 0; ; i++) {
        const cur = (await set.admin('r3').list('keys')).find((k) => k.state === 'current')?.version;
        if (cur === 2) break;
        if (i > 100) throw new Error(`no v2 from another replica within 10 s (current v${String(cur)})`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const rot = (await set.admin('r3').list('groups'))[0];
      assert.equal(rot.currentVersion, 2, 'one rotation, to v2');
      return 2;
    },
  }));

async function rotationUnderLoad(t: import('node:test').TestContext, sc: Scenario): Promise<void> {
  const gmsDir = tempDir(sc.tag);
  const dirA = tempDir(`${sc.tag}-a`);
  const dirB = tempDir(`${sc.tag}-b`);
  t.after(() => { gmsDir.remove(); dirA.remove(); dirB.remove(); });
  const gms = await (sc.gms ?? sqliteGms)(t, gmsDir.path);
  const admin = gms.admin;
  await admin.apply(network('chacha20'), false);
  await gms.enroll('ge-a', dirA.path);
  await gms.enroll('ge-b', dirB.path);

  const p = new DprpTopo(({ rotload: 'gmsrot', cipherload: 'gmscph', rotpg: 'gmspg' } as Record<string, string>)[sc.tag]);
  t.after(() => p.cleanup());
  await p.startGe('a', 'va', { keys: [] }); // no static key: everything comes from the GMS
  await p.startGe('b', 'vb', { keys: [] });
  const ma = p.maps('a');
  const mb = p.maps('b');
  t.after(() => { ma.close(); mb.close(); });
  const ca = await startAgent(dirA.path, keyMapSink(ma.keys));
  const cb = await startAgent(dirB.path, keyMapSink(mb.keys));
  t.after(async () => { await ca.stop(); await cb.stop(); });
  await waitFor('v1 in both key maps', () => has(ma, 1, 1) && has(mb, 1, 1), 5000);
  await new Promise((r) => setTimeout(r, 1200)); // the DPRP handlers re-read the key map every second

  p.topo.spawn('b', 'iperf3', ['-s', '-1', '-p', String(PORT)]);
  await waitForNs('iperf3 server', () => p.topo.exec('b', 'ss', ['-Hltn', `sport = :${PORT}`]).stdout.includes(String(PORT)), 5000, 100);
  const noKey0 = stat(ma, Stat.DROP_NO_KEY) + stat(mb, Stat.DROP_NO_KEY);
  const enc0 = stat(ma, Stat.STAT_PIT_ENCRYPT);
  const cli = p.topo.spawn('a', 'iperf3', ['-c', B, '-p', String(PORT), '-t', String(DURATION_S), '-i', '0.5', '-J']);
  let out = '';
  cli.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exited = new Promise<number | null>((r) => cli.once('exit', (c) => r(c)));

  await waitFor('iperf3 flow encrypted with v1', () => iperfVersions(ma).length >= 2 && iperfVersions(ma).every((v) => v === 1), 5000);
  await new Promise((r) => setTimeout(r, 2500));
  const badCsum = (): bigint => stat(ma, Stat.DROP_BAD_KEYED_CSUM) + stat(mb, Stat.DROP_BAD_KEYED_CSUM);
  const bad0 = badCsum();
  const tRot = Date.now();
  assert.equal(await sc.rotate(admin), 2);
  const msKeys = await waitFor('v2 in both key maps', () => has(ma, 1, 2) && has(mb, 1, 2), 3000);
  for (const m of [ma, mb]) {
    assert.equal(m.keys.get({ group_id: 1, version: 1 })!.flags, sc.flagsV1, 'v1 keeps its cipher through the grace');
    assert.equal(m.keys.get({ group_id: 1, version: 2 })!.flags, sc.flagsV2, 'v2 under the group\'s cipher');
  }
  const msFlows = await waitFor('iperf3 flows re-negotiated onto v2 on both GEs',
    () => [ma, mb].every((m) => { const v = iperfVersions(m); return v.length >= 2 && v.every((x) => x === 2); }), 5000);
  const bad1 = badCsum();
  // Right after the switch the decrypt entries still accept v1.
  const prevAfterSwitch = [...iperfPrev(ma), ...iperfPrev(mb)];
  const prevSeen = stat(ma, Stat.STAT_PIT_DECRYPT_PREV) + stat(mb, Stat.STAT_PIT_DECRYPT_PREV);
  await new Promise((r) => setTimeout(r, 1000));
  const bad2 = badCsum();
  await waitFor('v1 withdrawn from both key maps after the grace', () => !has(ma, 1, 1) && !has(mb, 1, 1), (GRACE_S + 3) * 1000);
  const msGone = Date.now() - tRot;
  // ...and stop accepting it once v1 left the key ring (next key refresh + sweep).
  const msPrev = await waitFor('prev_key_version cleared on both GEs', () => [ma, mb].every((m) => iperfPrev(m).every((v) => v === 0)), 4000);
  t.diagnostic(`keyed-checksum drops: ${bad0} before the rotation, +${bad1 - bad0} during the switch to v2, +${bad2 - bad1} in the second after`);
  t.diagnostic(`segments decrypted under prev_key_version (v1) during the switch: ${prevSeen}`);
  t.diagnostic(`decrypt entries' prev_key_version right after the switch: ${prevAfterSwitch.join(',')}; cleared +${msPrev} ms after v1 left`);
  t.diagnostic(`after rotate: keys in maps +${msKeys} ms, flows on v2 +${msFlows} ms later, v1 gone +${msGone} ms (grace ${GRACE_S} s)`);

  const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), (DURATION_S + 15) * 1000))]);
  assert.equal(code, 0, `iperf3 client exit ${code}: ${out.slice(-1500)}`);
  const j = JSON.parse(out) as { error?: string; intervals: Array<{ sum: { bytes: number; start: number } }>; end: { sum_received: { bytes: number } } };
  assert.equal(j.error, undefined);
  t.diagnostic(`intervals (start s: bytes): ${j.intervals.map((i) => `${i.sum.start.toFixed(1)}:${i.sum.bytes}`).join(' ')}`);
  for (const [n, m] of [['a', ma], ['b', mb]] as const) {
    t.diagnostic(`stats ${n}: ${Object.entries(Stat).filter(([, id]) => stat(m, id) > 0n).map(([k, id]) => `${k}=${stat(m, id)}`).join(' ')}`);
  }
  const stalled = j.intervals.filter((i) => i.sum.bytes === 0).map((i) => i.sum.start);
  if (stalled.length) {
    // What each end's PIT says about the iperf3 flow, and which key versions each holds (a stall's first question).
    for (const [n, m] of [['a', ma], ['b', mb]] as const) {
      const pit = [...m.pit.entries()].filter(([k]) => k.sport === PORT || k.dport === PORT)
        .map(([k, v]) => `${k.sport}->${k.dport} ${Object.entries(Action).find(([, x]) => x === v.action)?.[0] ?? v.action} v${v.key_version} prev ${v.prev_key_version ?? 0}`);
      t.diagnostic(`stall: ${n} PIT ${pit.join('; ')}; keys ${[...m.keys.keys()].map((k) => `${k.group_id}/${k.version}`).join(',')}`);
    }
  }
  assert.deepEqual(stalled, [], 'no 0.5 s interval without data');
  assert.ok(j.end.sum_received.bytes > 1_000_000, `received ${j.end.sum_received.bytes} bytes`);
  t.diagnostic(`iperf3: ${(j.end.sum_received.bytes / 1e6).toFixed(1)} MB received in ${DURATION_S} s across the rotation`);
  assert.equal(stat(ma, Stat.DROP_NO_KEY) + stat(mb, Stat.DROP_NO_KEY) - noKey0, 0n, 'no packet dropped for lack of a key');
  assert.equal(bad0, 0n, 'no keyed-checksum failures before the rotation');
  assert.equal(badCsum() - bad0, 0n, 'no keyed-checksum failures across the rotation (lossless re-keying)');
  assert.ok(prevAfterSwitch.length >= 2 && prevAfterSwitch.every((v) => v === 1), `prev_key_version 1 on the decrypt entries after the switch: ${prevAfterSwitch.join(',')}`);
  assert.ok(stat(ma, Stat.STAT_PIT_ENCRYPT) - enc0 > 1000n, 'the transfer was encrypted by the fast path');
  assert.deepEqual([...ma.keys.keys()].map((k) => `${k.group_id}/${k.version}`), ['1/2']);
}
