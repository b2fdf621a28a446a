/**
 * In-place upgrade from the previous release (layout 1: counters in
 * gscip_stats, no direction) to this build, under traffic:
 *  - the previous release's agent and object (built from git by
 *    test/lib/previous-release.ts) protect a with a TCP stream to b passing;
 *  - doctor of this build calls the old pins migratable, not stale;
 *  - the old agent stops (the fast path stays attached), this build's agent
 *    starts on the same instance: it adopts the PIT, XLAT, keys, iface and cfg
 *    pins unchanged, replaces the programs, logs the old counters and removes
 *    gscip_stats, and counts in gscip_counters by (reason, direction);
 *  - the stream never stops: its echoes advance in every phase and neither end
 *    retransmits a segment from before the old agent stops until after the new
 *    one counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable, defaultObjectPath } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';
import { StreamClient, startEchoServer } from '../lib/net-apps.js';
import { previousRelease, previousReleaseUnavailable, PREVIOUS_RELEASE } from '../lib/previous-release.js';
import type { Check } from '../../controlplane/doctor/checks.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const PORT = 7200;
const CPORT = 42100;

const skip = bpfUnavailable() ?? previousReleaseUnavailable();

interface StatRow { name: string; packets: string; ingress?: { packets: string }; egress?: { packets: string } }

test(`an agent of the previous release (${PREVIOUS_RELEASE.slice(0, 7)}) is upgraded in place: flows and pins kept, counters migrated`, { skip: skip ?? false, timeout: 240_000 }, async (t) => {
  const prev = previousRelease();
  const topo = new Topology('up');
  const g = new GscipRunner(topo, 'up');
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  topo.addHost('a');
  topo.addHost('b');
  topo.link('a', 'eth0', 'b', 'eth0');
  topo.addr('a', 'eth0', `${A}/24`);
  topo.addr('b', 'eth0', `${B}/24`);
  await startEchoServer(topo, 'b', B, PORT, PORT + 1);
  const pinDir = `${g.pinRoot}/up`;

  // The previous release protects a: miss = drop, so only the PIT lets the stream through.
  const agentArgs = ['--iface', 'eth0', '--miss', 'drop', '--metrics', 'none'];
  let agent = await g.startAgent('a', agentArgs, 'up', { build: prev });
  t.after(() => agent.stop('SIGKILL'));
  const old = (args: string[], input?: string): string => g.ok('a', [...args, ...g.instanceArgs()], input, prev.main);
  old(['pit', 'add', '--dir', 'egress', '--proto', 'tcp', '--src', A, '--sport', String(CPORT), '--dst', B, '--dport', String(PORT), '--action', 'pass', '--both']);
  old(['xlat', 'add', '--dir', 'egress', '--proto', 'udp', '--src', A, '--sport', '1', '--dst', '198.18.0.9', '--dport', '2', '--to-dst', B]);
  old(['keys', 'set', '--group', '5', '--version', '1'], `${'5a'.repeat(32)}\n`);
  assert.ok(existsSync(`${pinDir}/gscip_stats`) && !existsSync(`${pinDir}/gscip_counters`), 'pins of layout 1');

  /** Map contents without what the fast path refreshes (last_seen_ns), as a given build's CLI prints them. */
  const snapshot = (main?: string): unknown => {
    const j = (m: string): unknown => JSON.parse(g.ok('a', ['maps', 'dump', m, '--json', ...g.instanceArgs()], undefined, main));
    // `why` (flags bits 4-7) is shown by this build's CLI only; the previous release's entries have none.
    const pit = (j('pit') as Array<Record<string, unknown>>).map(({ lastSeenNs: _ignored, why, ...rest }) => {
      assert.ok(why === undefined || why === 'none', `an entry of the previous release says why=${String(why)}`);
      return rest;
    });
    return { pit, xlat: j('xlat'), keys: j('keys'), iface: j('iface') };
  };

  const stream = new StreamClient(topo, 'a', B, PORT, CPORT, 50);
  await stream.advances(5, 5000);
  const before = snapshot(prev.main);
  assert.equal((before as { pit: unknown[] }).pit.length, 2);
  const oldStats = JSON.parse(old(['maps', 'dump', 'stats', '--json'])) as StatRow[];
  assert.ok(Number(oldStats.find((r) => r.name === 'pit_pass')?.packets ?? 0) > 0, 'the previous release counted the stream');

  // From here on no segment of the stream may be lost: a packet dropped in either direction would be
  // retransmitted by a or b (the test's own spawnSync calls block its event loop, so gaps in echo
  // arrival times measured here would say nothing; the kernel's retransmission counters do).
  const retrans = (h: 'a' | 'b'): number => {
    const j = JSON.parse(topo.exec(h, 'nstat', ['-az', '--json']).stdout) as { kernel: Record<string, number> };
    return j.kernel.TcpRetransSegs ?? 0;
  };
  const retrans0 = { a: retrans('a'), b: retrans('b') };
  const echoes0 = stream.echoed();

  await agent.stop('SIGTERM');
  assert.ok(await stream.advances(5, 3000) >= 5, 'the previous release\'s fast path keeps the stream passing with no agent');

  // This build's doctor on the old pins: migratable, said so, never "stale".
  const d = g.cli('a', ['doctor', '--json', ...g.instanceArgs(), '--bpf-object', defaultObjectPath()]);
  const checks = (JSON.parse(d.out) as { checks: Check[] }).checks;
  const pinRows = checks.filter((c) => c.id.startsWith('instance.pin'));
  const row = (id: string): Check | undefined => pinRows.find((c) => c.id === id);
  assert.equal(row('instance.pin.gscip_stats')?.status, 'warn', JSON.stringify(pinRows));
  assert.match(row('instance.pin.gscip_stats')?.detail ?? '', /previous layout's gscip_stats \(not stale\): the agent of this build migrates these pins in place/);
  assert.equal(row('instance.pin.gscip_counters')?.status, 'warn');
  assert.match(row('instance.pin.gscip_counters')?.fix ?? '', /gscip agent run/);
  assert.deepEqual(pinRows.filter((c) => c.status === 'fail' || /stale,/.test(c.detail)), [], 'no pin called stale or failed');

  // Upgrade: this build's agent on the same instance.
  agent = await g.startAgent('a', agentArgs, 'up');
  assert.match(agent.stderr, /adopted pinned state/);
  const log = (): string => agent.stdout + agent.stderr;  // pino logs to stdout
  await waitFor('the migration log line', () => /migrated the previous layout's counters: removed gscip_stats/.test(log()), 3000, 20);
  assert.match(log(), /"pit_pass":\{"packets":"\d+"/, 'the old totals are in the log line');
  assert.ok(!existsSync(`${pinDir}/gscip_stats`), 'gscip_stats unpinned');
  assert.ok(existsSync(`${pinDir}/gscip_counters`), 'gscip_counters pinned');
  assert.deepEqual(snapshot(), before, 'PIT, XLAT, keys and iface are the ones the previous release left');
  assert.ok(await stream.advances(10, 3000) >= 10, 'echoes continue across the upgrade');

  // Counters keep counting, now with a direction.
  const stats = (): StatRow[] => JSON.parse(g.ok('a', ['maps', 'dump', 'stats', '--json', '--all', ...g.instanceArgs()])) as StatRow[];
  const pass1 = stats().find((r) => r.name === 'pit_pass');
  await stream.advances(5, 3000);
  const pass2 = stats().find((r) => r.name === 'pit_pass');
  assert.ok(pass1 && pass2);
  assert.ok(Number(pass2.egress?.packets) > Number(pass1.egress?.packets ?? 0), 'egress pit_pass counts');
  assert.ok(Number(pass2.ingress?.packets) > Number(pass1.ingress?.packets ?? 0), 'ingress pit_pass counts');

  const lost = { a: retrans('a') - retrans0.a, b: retrans('b') - retrans0.b };
  t.diagnostic(`echoes across stop + doctor + upgrade: ${stream.echoed() - echoes0}; retransmitted segments a=${lost.a} b=${lost.b}`);
  assert.deepEqual(lost, { a: 0, b: 0 }, 'the stream never lost a segment across stop and upgrade');

  // A second start finds nothing left to migrate.
  await agent.stop('SIGTERM');
  agent = await g.startAgent('a', agentArgs, 'up');
  assert.doesNotMatch(agent.stdout + agent.stderr, /migrated the previous layout/);
  assert.ok(await stream.advances(5, 3000) >= 5);
});
