/**
 * The DPRP handler takes this GE's type and mode from the GMS: `gscip agent run
 * --handler dprp --gms-data-dir DIR` on an enrolled GEN (gen-dept: GEN, CL in
 * deploy/examples/fig6-network.yaml) starts with no --ge-type/--ge-mode and
 * logs the identity the GMS defines; flags that contradict the GMS are refused
 * (before anything is attached). The first run has no cached delivery (one GET
 * to the GMS), the second uses the cache the agent's GMS client wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';


test('agent run --handler dprp: GE type/mode from the GMS; contradicting flags refused', { skip: bpfUnavailable() ?? false, timeout: 120_000 }, async (t) => {
  const topo = new Topology('gmsid');
  const g = new GscipRunner(topo, 'gmsid');
  const dir = mkdtempSync(join(tmpdir(), 'gscip-dprp-gms-id-'));
  t.after(() => { g.cleanup(); topo.cleanupSync(); rmSync(dir, { recursive: true, force: true }); });
  topo.addHost('a');
  topo.exec('a', 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  topo.exec('a', 'ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'eth0']);
  topo.exec('a', 'ip', ['link', 'set', 'eth0', 'up']);
  const { agentDir } = await g.gmsWithEnrolledGe('a', 'gen-dept', dir);

  const common = ['--iface', 'eth0', '--handler', 'dprp', '--metrics', 'none', '--detach-on-exit', '--gms-data-dir', agentDir];
  // 1. The GMS says CL: --ge-mode OP is refused, naming the flag, and nothing is attached.
  const refused = await g.agentRefused('a', [...common, '--ge-type', 'GEN', '--ge-mode', 'OP']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.err, /--ge-mode \(ge\.mode\): OP disagrees with the GMS, which defines this GE as CL/);
  assert.equal(topo.exec('a', 'tc', ['filter', 'show', 'dev', 'eth0', 'egress']).stdout.trim(), '', 'nothing attached');

  // 2. No flags: the identity comes from the GMS (no cache yet: one request).
  const prevLevel = process.env.GSCIP_LOG_LEVEL;
  process.env.GSCIP_LOG_LEVEL = 'info';
  try {
    for (const run of ['first (GET /v1/ge/self)', 'second (cached delivery)']) {
      assert.equal(existsSync(join(agentDir, 'cache', 'state.json')), !run.startsWith('first'), `${run}: cached delivery present?`);
      const agent = await g.startAgent('a', common);
      const logs = (): string => `${agent.stdout}${agent.stderr}`;
      const line = await waitFor(`${run}: GE identity logged`, () => logs().split('\n').find((l) => l.includes('"GE identity"')), 10_000, 50);
      const rec = JSON.parse(line!) as { type: string; mode: string; source: string };
      assert.deepEqual([rec.type, rec.mode, rec.source], ['GEN', 'CL', 'gms'], `${run}: ${line}`);
      // The running agent's GMS client caches the delivery when it arrives, which may be
      // after the identity line: the second run depends on that cache, so wait for it.
      await waitFor(`${run}: the agent's GMS client cached its delivery`, () => existsSync(join(agentDir, 'cache', 'state.json')), 10_000, 50);
      assert.equal(await agent.stop('SIGTERM'), 0);
    }
  } finally {
    if (prevLevel === undefined) delete process.env.GSCIP_LOG_LEVEL; else process.env.GSCIP_LOG_LEVEL = prevLevel;
  }
});
