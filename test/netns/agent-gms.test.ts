/**
 * `gscip agent run --gms-data-dir`: an enrolled agent receives its groups'
 * keys from the GMS into its pinned gscip_keys, and a rotation reaches the
 * fast path while the agent runs. Everything through the real CLI, the GMS on
 * loopback inside the test's own namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';


test('an enrolled agent installs its group keys from the GMS and follows a rotation', { skip: bpfUnavailable() ?? false, timeout: 120_000 }, async (t) => {
  const topo = new Topology('gk');
  const g = new GscipRunner(topo, 'gk');
  const dir = mkdtempSync(join(tmpdir(), 'gscip-agent-gms-'));
  t.after(() => { g.cleanup(); topo.cleanupSync(); rmSync(dir, { recursive: true, force: true }); });
  topo.addHost('a');
  topo.exec('a', 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  topo.exec('a', 'ip', ['link', 'set', 'eth0', 'up']);
  const { gmsDir, agentDir } = await g.gmsWithEnrolledGe('a', 'ges2-manager', dir);

  const agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'drop', '--metrics', 'none', '--gms-data-dir', agentDir]);
  t.after(() => agent.stop('SIGKILL'));
  const keys = (): Array<{ group: number; version: number }> => JSON.parse(g.ok('a', ['keys', 'ls', '--json', ...g.instanceArgs()])) as Array<{ group: number; version: number }>;
  const ids = (): string => keys().map((k) => `${k.group}/${k.version}`).sort().join(' ');
  // ges2-manager is in groups 1 and 2 (fig6-network.yaml).
  await waitFor('keys of groups 1 and 2 in gscip_keys', () => keys().some((k) => k.group === 1) && keys().some((k) => k.group === 2), 20_000, 100);
  assert.deepEqual([...new Set(keys().map((k) => k.group))].sort(), [1, 2], 'only the groups this GE belongs to');
  const v1 = Math.max(...keys().filter((k) => k.group === 1).map((k) => k.version));

  const rot = g.ok('a', ['gms', 'rotate', '--data-dir', gmsDir, '--group', '1']);
  const v2 = Number(/key version (\d+)/.exec(rot)?.[1]);
  assert.ok(v2 > v1, rot);
  await waitFor(`group 1 version ${v2} installed`, () => keys().some((k) => k.group === 1 && k.version === v2), 20_000, 100);
  assert.match(ids(), new RegExp(`\\b1/${v2}\\b`));
  const listing = g.ok('a', ['keys', 'ls', ...g.instanceArgs()]);
  assert.doesNotMatch(listing, /[0-9a-f]{32}/i, 'keys ls prints no key material');
});
