/**
 * The fast path outlives its agent:
 *  - an established TCP flow keeps exchanging data while the agent is
 *    SIGKILLed and absent (TC filters hold the programs, maps are pinned);
 *  - a restarted agent adopts the pinned maps: same PIT/XLAT/keys contents,
 *    and the flow never stops;
 *  - a second agent on the same instance, or on the same interface under
 *    another instance, is refused with a clear message and exit code 3;
 *  - stop --detach --unpin removes filters and pins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Topology } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';
import { StreamClient, echoOnce, startEchoServer } from '../lib/net-apps.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const PORT = 7100;
const CPORT = 42000;

const skip = bpfUnavailable();

function tcFilters(topo: Topology, dir: 'ingress' | 'egress'): string {
  return topo.exec('a', 'tc', ['filter', 'show', 'dev', 'eth0', dir], { allowFail: true }).stdout;
}

/** Map contents without the fields the fast path refreshes (last_seen_ns). */
function snapshot(g: GscipRunner): { pit: unknown[]; xlat: unknown; keys: unknown; iface: unknown } {
  const j = (m: string): unknown => JSON.parse(g.ok('a', ['maps', 'dump', m, '--json', ...g.instanceArgs()]));
  const pit = (j('pit') as Array<Record<string, unknown>>).map(({ lastSeenNs: _ignored, ...rest }) => rest);
  return { pit, xlat: j('xlat'), keys: j('keys'), iface: j('iface') };
}

test('established flow survives a killed agent; restart adopts state; second agent refused', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  const topo = new Topology('rs');
  const g = new GscipRunner(topo, 'rs');
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  topo.addHost('a');
  topo.addHost('b');
  topo.link('a', 'eth0', 'b', 'eth0');
  topo.addr('a', 'eth0', `${A}/24`);
  topo.addr('b', 'eth0', `${B}/24`);
  await startEchoServer(topo, 'b', B, PORT, PORT + 1);

  const agentArgs = ['--iface', 'eth0', '--miss', 'drop', '--metrics', 'none'];
  let agent = await g.startAgent('a', agentArgs);
  g.ok('a', ['pit', 'add', ...g.instanceArgs(), '--dir', 'egress', '--proto', 'tcp', '--src', A, '--sport', String(CPORT), '--dst', B, '--dport', String(PORT), '--action', 'pass', '--both']);
  g.ok('a', ['xlat', 'add', ...g.instanceArgs(), '--dir', 'egress', '--proto', 'udp', '--src', A, '--sport', '1', '--dst', '198.18.0.9', '--dport', '2', '--to-dst', B]);
  g.ok('a', ['keys', 'set', ...g.instanceArgs(), '--group', '5', '--version', '1'], `${'5a'.repeat(32)}\n`);
  const before = snapshot(g);
  assert.equal((before.pit as unknown[]).length, 2);

  const stream = new StreamClient(topo, 'a', B, PORT, CPORT, 50);
  await stream.advances(5, 5000);

  // Kill the agent outright: no cleanup code runs.
  assert.equal(await agent.stop('SIGKILL'), null);
  assert.match(tcFilters(topo, 'ingress'), /gscip_tc_ingres/, 'ingress filter still attached');
  assert.match(tcFilters(topo, 'egress'), /gscip_tc_egress/, 'egress filter still attached');
  const st = g.cli('a', ['agent', 'status', '--json', ...g.instanceArgs()]);
  assert.equal((JSON.parse(st.out) as { running: boolean }).running, false);
  // The flow keeps passing with no agent: ~20 round trips in 1 s at a 50 ms period.
  assert.ok(await stream.advances(10, 3000) >= 10, 'echoes continue while no agent runs');
  // And the fast path still enforces: an unknown flow is dropped (miss=drop) while the agent is down.
  assert.equal(echoOnce(topo, 'a', 'tcp', B, PORT, CPORT + 1, 'no entry', 1000).error, 'timeout');
  assert.deepEqual(snapshot(g), before, 'pinned state readable without an agent');

  // Restart: adopts the pins; same contents; the flow never stopped.
  agent = await g.startAgent('a', agentArgs);
  t.after(() => agent.stop('SIGKILL'));
  assert.match(agent.stderr, /adopted pinned state/);
  assert.deepEqual(snapshot(g), before, 'restarted agent shows the same map contents');
  assert.ok(await stream.advances(10, 3000) >= 10, 'echoes continue across the restart');
  const progs = tcFilters(topo, 'ingress').match(/ name gscip_tc_ingres /g) ?? [];
  assert.equal(progs.length, 1, 'the restart replaced our filter instead of stacking a second one');

  // A second agent on the same instance is refused.
  const dup = await g.agentRefused('a', agentArgs);
  assert.equal(dup.code, 3);
  assert.match(dup.err, /instance 'rs' already has a running agent \(pid \d+\)/);
  // Another instance on the same interface is refused too.
  const other = await g.agentRefused('a', agentArgs, 'other');
  assert.equal(other.code, 3);
  assert.match(other.err, /interface eth0 is protected by another running agent \(rs \d+\)/);
  assert.ok(await stream.advances(5, 3000) >= 5, 'refused agents did not disturb the fast path');

  // Orderly stop with detach + unpin removes everything.
  const out = g.ok('a', ['agent', 'stop', '--detach', '--unpin', ...g.instanceArgs()]);
  assert.match(out, /stopped agent pid \d+/);
  assert.match(out, /detached eth0; unpinned \d+ maps/);
  assert.doesNotMatch(tcFilters(topo, 'ingress'), /gscip/);
  assert.doesNotMatch(tcFilters(topo, 'egress'), /gscip/);
  assert.equal(existsSync(`${g.pinRoot}/rs`), false, 'pins removed');
});

test('restart with an interface removed from the configuration detaches it', { skip: skip ?? false, timeout: 60_000 }, async (t) => {
  const topo = new Topology('ri');
  const g = new GscipRunner(topo, 'ri');
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  topo.addHost('a');
  topo.addHost('b');
  topo.link('a', 'eth0', 'b', 'eth0');
  topo.link('a', 'eth1', 'b', 'eth1');
  const filters = (dev: string): number => (topo.exec('a', 'tc', ['filter', 'show', 'dev', dev, 'ingress'], { allowFail: true }).stdout.match(/ name gscip_tc_ingres /g) ?? []).length;
  let agent = await g.startAgent('a', ['--iface', 'eth0', '--iface', 'eth1', '--metrics', 'none']);
  assert.deepEqual([filters('eth0'), filters('eth1')], [1, 1]);
  await agent.stop('SIGTERM');
  assert.deepEqual([filters('eth0'), filters('eth1')], [1, 1], 'a stopped agent leaves both attached');
  agent = await g.startAgent('a', ['--iface', 'eth0', '--metrics', 'none']);
  t.after(() => agent.stop('SIGKILL'));
  assert.deepEqual([filters('eth0'), filters('eth1')], [1, 0], 'eth1 detached, eth0 kept');
  const iface = JSON.parse(g.ok('a', ['maps', 'dump', 'iface', '--json', ...g.instanceArgs()])) as Array<{ name: string }>;
  assert.deepEqual(iface.map((i) => i.name), ['eth0']);
});
