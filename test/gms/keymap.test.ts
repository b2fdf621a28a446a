/**
 * Rotation reaches the real BPF key maps (gscip_keys) of several agents: each
 * agent has its own loaded gscip_tc.bpf.o (private, unpinned maps) and a GMS
 * client writing into it. Needs root and build/bpf/gscip_tc.bpf.o.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable } from '../lib/bpf-harness.js';
import { fetchGeState } from '../../controlplane/gms/client.js';
import { keyMapSink } from '../../controlplane/gms/key-map-sink.js';
import { enrollGe, FIG6, startAgent, startGms, tempDir, waitFor } from './helpers.js';

const skip = bpfUnavailable();

test('rotation and grace expiry reach the BPF key maps of three agents', { skip: skip ?? false }, async (t) => {
  const gmsDir = tempDir('kmap');
  t.after(() => gmsDir.remove());
  const { server, admin } = await startGms(gmsDir.path);
  t.after(() => server.close());
  await admin.apply({ ...FIG6, defaults: { rotation: { graceSeconds: 1 } } }, false);

  const members = ['gen-dept', 'ges1-staff', 'ges2-manager'];
  const agents: Array<{ name: string; h: BpfHarness; dir: string }> = [];
  for (const name of members) {
    const d = tempDir(`kmap-${name}`);
    t.after(() => d.remove());
    const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 } });
    t.after(() => h.close());
    await enrollGe(server, admin, name, d.path);
    const c = await startAgent(d.path, keyMapSink(h.maps.keys));
    t.after(() => c.stop());
    agents.push({ name, h, dir: d.path });
  }
  const inMap = (h: BpfHarness, group: number, version: number) => h.maps.keys.get({ group_id: group, version });
  const ids = (h: BpfHarness) => [...h.maps.keys.entries()].map(([k]) => `${k.group_id}/${k.version}`).sort();

  await waitFor('v1 in every map', () => agents.every((a) => inMap(a.h, 1, 1) !== undefined));
  assert.deepEqual(ids(agents[2].h), ['1/1', '2/1']);

  await admin.rotate(1);
  const ms = await waitFor('1/2 in every map', () => agents.every((a) => inMap(a.h, 1, 2) !== undefined), 2000);
  t.diagnostic(`rotation in 3 BPF key maps after ${ms} ms`);
  const delivered = (await fetchGeState(agents[0].dir)).keys.find((k) => k.group === 1 && k.version === 2)!;
  for (const a of agents) {
    const v = inMap(a.h, 1, 2)!;
    assert.deepEqual(v.key, Buffer.from(delivered.key, 'base64'), `${a.name}: map holds the delivered key bytes`);
    assert.ok(v.installed_ns > 0n);
    assert.ok(inMap(a.h, 1, 1) !== undefined, `${a.name}: 1/1 kept during grace`);
  }
  await waitFor('1/1 removed from every map', () => agents.every((a) => inMap(a.h, 1, 1) === undefined), 4000);
  assert.deepEqual(ids(agents[0].h), ['1/2']);
  assert.deepEqual(ids(agents[2].h), ['1/2', '2/1']);
});
