/**
 * Per-group PCCOM cipher end to end: network.yaml `cipher:` -> GMS (real
 * mTLS server) -> enrolled agent -> key sink / the real BPF key map flags.
 * Changing the cipher is a rotation: the new version under the new cipher,
 * the old one keeps its own cipher until its grace ends. A delivered key with
 * a cipher the agent does not know is refused (not installed), counted, and
 * the cache round-trips the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfHarness, bpfUnavailable } from '../lib/bpf-harness.js';
import { agentGmsStatus, formatAgentGmsStatus } from '../../controlplane/gms/agent-status.js';
import { loadCache, saveCache } from '../../controlplane/gms/agent-files.js';
import { fetchGeState, type GmsClientStatus } from '../../controlplane/gms/client.js';
import { keyMapSink } from '../../controlplane/gms/key-map-sink.js';
import type { Cipher } from '../../controlplane/gms/model.js';
import { KEY_F_ROUNDS_12, KEY_F_ROUNDS_8 } from '../../controlplane/maps/abi.js';
import { registry } from '../../controlplane/metrics/metrics.js';
import { enrollGe, FIG6, MemorySink, startAgent, startGms, tempDir, waitFor } from './helpers.js';

const GRACE_S = 2;
/** Fig. 6 with group 1 (GEN, ges1, ges2) on `cipher`, short grace. */
const net = (cipher: Cipher) => ({
  ...FIG6, defaults: { rotation: { graceSeconds: GRACE_S } },
  groups: FIG6.groups.map((g) => (g.id === 1 ? { ...g, cipher } : g)),
});

async function metric(series: string): Promise<number> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('cipher: chacha8 reaches the agent; changing it to chacha12 rotates, old version keeps chacha8 through its grace', async (t) => {
  const gmsDir = tempDir('cipher');
  const agentDir = tempDir('cipher-agent');
  t.after(() => { gmsDir.remove(); agentDir.remove(); });
  const { server, admin } = await startGms(gmsDir.path);
  t.after(() => server.close());
  const first = await admin.apply(net('chacha8'), false);
  assert.match(first.plan, /\+ group 1 \(group-1\) .* new key v1 \(chacha8\)/);
  await enrollGe(server, admin, 'ges2-manager', agentDir.path);
  const sink = new MemorySink();
  const h = await startAgent(agentDir.path, sink);
  t.after(() => h.stop());
  await waitFor('v1 installed', () => sink.ids().join() === '1/1,2/1');
  assert.equal(sink.ciphers.get('1/1'), 'chacha8');
  assert.equal(sink.ciphers.get('2/1'), 'chacha20', 'a group without cipher: is ChaCha20');
  assert.equal(loadCache(agentDir.path)!.keys.find((k) => k.group === 1)!.cipher, 'chacha8', 'the disk cache keeps the cipher');

  // Dry run: the plan says what will happen, nothing changes.
  const rotationsBefore = await metric('gscip_gms_rotations_total{reason="cipher_changed"}');
  const dry = await admin.apply(net('chacha12'), true);
  assert.equal(dry.applied, false);
  assert.match(dry.plan, /~ group 1: cipher chacha8 -> chacha12/);
  assert.match(dry.plan, /! rotate group 1 \(cipher chacha8 -> chacha12\)/);
  assert.deepEqual((await admin.list('keys')).map((k) => `${k.group}/${k.version}:${k.cipher}`), ['1/1:chacha8', '2/1:chacha20', '3/1:chacha20']);

  const r = await admin.apply(net('chacha12'), false);
  assert.deepEqual(r.rotated, [{ groupId: 1, version: 2 }]);
  assert.equal(await metric('gscip_gms_rotations_total{reason="cipher_changed"}'), rotationsBefore + 1);
  await waitFor('v2 installed', () => sink.keys.has('1/2'), 2000);
  assert.equal(sink.ciphers.get('1/2'), 'chacha12', 'new version under the new cipher');
  assert.equal(sink.ciphers.get('1/1'), 'chacha8', 'old version keeps its cipher during the grace');
  const delivered = (await fetchGeState(agentDir.path)).keys.filter((k) => k.group === 1);
  assert.deepEqual(delivered.map((k) => `${k.version}:${k.cipher}:${k.expiresAt === null ? 'current' : 'grace'}`), ['1:chacha8:grace', '2:chacha12:current']);

  // What operators see: gms ls groups / keys, agent status.
  assert.equal((await admin.list('groups')).find((g) => g.id === 1)!.cipher, 'chacha12');
  assert.deepEqual((await admin.list('keys')).filter((k) => k.group === 1).map((k) => `${k.version}:${k.cipher}:${k.state}`), ['1:chacha8:grace', '2:chacha12:current']);
  const st = h.status();
  assert.deepEqual(st.keys.filter((k) => k.group === 1).map((k) => `${k.version}:${k.cipher}:${k.state}`), ['1:chacha8:grace', '2:chacha12:current']);
  const text = formatAgentGmsStatus(agentGmsStatus(agentDir.path, h));
  assert.match(text, /key group 1 v1 chacha8 grace/);
  assert.match(text, /key group 1 v2 chacha12 current/);

  await waitFor('1/1 gone after the grace', () => !sink.keys.has('1/1'), (GRACE_S + 3) * 1000);
  assert.deepEqual(sink.ids(), ['1/2', '2/1']);
  // A later rotation uses the group's current cipher.
  await admin.rotate(1);
  await waitFor('v3 installed', () => sink.keys.has('1/3'), 2000);
  assert.equal(sink.ciphers.get('1/3'), 'chacha12');
});

test('cipher in the BPF key map: flags ROUNDS_8, then a new version with ROUNDS_12 while the old keeps ROUNDS_8 until its grace ends',
  { skip: bpfUnavailable() ?? false }, async (t) => {
    const gmsDir = tempDir('cipher-bpf');
    const agentDir = tempDir('cipher-bpf-agent');
    t.after(() => { gmsDir.remove(); agentDir.remove(); });
    const { server, admin } = await startGms(gmsDir.path);
    t.after(() => server.close());
    await admin.apply(net('chacha8'), false);
    const hb = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 } });
    t.after(() => hb.close());
    await enrollGe(server, admin, 'ges1-staff', agentDir.path);
    const c = await startAgent(agentDir.path, keyMapSink(hb.maps.keys));
    t.after(() => c.stop());
    const entry = (v: number) => hb.maps.keys.get({ group_id: 1, version: v });

    await waitFor('1/1 in the map', () => entry(1) !== undefined);
    assert.equal(entry(1)!.flags, KEY_F_ROUNDS_8);
    const d1 = (await fetchGeState(agentDir.path)).keys.find((k) => k.version === 1)!;
    assert.deepEqual(entry(1)!.key, Buffer.from(d1.key, 'base64'));

    await admin.apply(net('chacha12'), false);
    await waitFor('1/2 in the map', () => entry(2) !== undefined, 2000);
    assert.equal(entry(2)!.flags, KEY_F_ROUNDS_12, 'new version: ChaCha12');
    assert.equal(entry(1)!.flags, KEY_F_ROUNDS_8, 'old version still ChaCha8 during its grace');
    await waitFor('1/1 removed at the end of its grace', () => entry(1) === undefined, (GRACE_S + 3) * 1000);
    assert.equal(entry(2)!.flags, KEY_F_ROUNDS_12);
    assert.deepEqual([...hb.maps.keys.keys()].map((k) => `${k.group_id}/${k.version}`), ['1/2']);
  });

test('agent: a key with an unknown cipher is refused and counted; a key without the field (older GMS) is ChaCha20', async (t) => {
  const gmsDir = tempDir('cipher-refuse');
  const agentDir = tempDir('cipher-refuse-agent');
  t.after(() => { gmsDir.remove(); agentDir.remove(); });
  const { server, admin } = await startGms(gmsDir.path);
  t.after(() => server.close());
  await admin.apply(net('chacha8'), false);
  await enrollGe(server, admin, 'gea-server', agentDir.path);
  await server.close(); // the agent works from its cache only from here on

  // A cache as an older GMS (no cipher) and a newer one (a cipher this agent does not know) would leave it.
  const key = (b: number) => Buffer.alloc(32, b).toString('base64');
  saveCache(agentDir.path, { userId: 'gea-server', type: 'GEA', mode: 'CL', groups: [2, 3], issuedAt: Date.now(), keys: [
    { group: 2, version: 1, key: key(1), createdAt: Date.now(), expiresAt: null },
    { group: 3, version: 1, key: key(2), createdAt: Date.now(), expiresAt: null, cipher: 'chacha6' as Cipher },
    { group: 3, version: 2, key: key(3), createdAt: Date.now(), expiresAt: null, cipher: 'chacha8' },
  ] });
  const before = await metric('gscip_gms_client_keys_refused_total{reason="unknown_cipher"}');
  const sink = new MemorySink();
  sink.keys.set('3/1', Buffer.alloc(32, 9)); // left in a pinned map by a previous run: must go, not stay with wrong rounds
  const h = await startAgent(agentDir.path, sink);
  t.after(() => h.stop());
  assert.deepEqual(sink.ids(), ['2/1', '3/2']);
  assert.equal(sink.ciphers.get('2/1'), 'chacha20');
  assert.equal(sink.ciphers.get('3/2'), 'chacha8');
  assert.equal(await metric('gscip_gms_client_keys_refused_total{reason="unknown_cipher"}'), before + 1);
  assert.match(h.status().lastError ?? '', /group 3 v1: cipher "chacha6" is not one of chacha20, chacha12, chacha8/);
  // Reconciling the same delivery again (here: the expiry/reconnect path) does not count it twice.
  await waitFor('retrying while the GMS is down', () => h.status().reconnects >= 1, 3000);
  assert.equal(await metric('gscip_gms_client_keys_refused_total{reason="unknown_cipher"}'), before + 1);
  const cached = JSON.parse(readFileSync(join(agentDir.path, 'cache', 'state.json'), 'utf8')) as { keys: Array<{ cipher?: string }> };
  assert.deepEqual(cached.keys.map((k) => k.cipher), [undefined, 'chacha6', 'chacha8'], 'cache left as delivered');
  assert.deepEqual((agentGmsStatus(agentDir.path, h) as GmsClientStatus).keys.map((k) => `${k.group}/${k.version}:${k.cipher}`), ['2/1:chacha20', '3/2:chacha8']);
});
