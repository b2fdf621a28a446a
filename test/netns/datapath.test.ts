/**
 * The fast path on a real veth between two namespaces, loaded and attached by
 * the real agent (gscip agent run), entries written through the real CLI:
 *  - baseline works; with miss=drop and no entries the same flow fails;
 *  - pass entries: TCP and UDP payloads echoed end to end;
 *  - a drop entry stops exactly one flow, a sibling flow keeps working;
 *  - an XLAT pair lets an application reach a rewritten (virtual) address;
 *  - first packet: miss=punt + install-pass -> fresh TCP connect (both
 *    directions) completes with no SYN retransmission (kernel counters).
 *
 *   a 192.0.2.1 [eth0, agent] ---- veth ---- [eth0] 192.0.2.2 b
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topology } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';
import { echoOnce, startEchoServer } from '../lib/net-apps.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const VIRT_B = '198.18.0.2';
const TCP_PORT = 7000;
const UDP_PORT = 7001;

const skip = bpfUnavailable();

function twoHosts(tag: string): Topology {
  const t = new Topology(tag);
  t.addHost('a');
  t.addHost('b');
  t.link('a', 'eth0', 'b', 'eth0');
  t.addr('a', 'eth0', `${A}/24`);
  t.addr('b', 'eth0', `${B}/24`);
  return t;
}

/** Both directions of a flow from a's point of view (a is the client). */
function pitBoth(g: GscipRunner, proto: 'tcp' | 'udp', cport: number, sport: number, action: string): void {
  g.ok('a', ['pit', 'add', ...g.instanceArgs(), '--dir', 'egress', '--proto', proto, '--src', A, '--sport', String(cport), '--dst', B, '--dport', String(sport), '--action', action, '--both']);
}

/** Sum of one counter from `gscip maps dump stats --json`. */
function stat(g: GscipRunner, name: string): number {
  const rows = JSON.parse(g.ok('a', ['maps', 'dump', 'stats', '--json', '--all', ...g.instanceArgs()])) as Array<{ name: string; packets: string }>;
  const r = rows.find((x) => x.name === name);
  assert.ok(r, `counter ${name} exists`);
  return Number(r.packets);
}

function nstat(t: Topology, host: string): Record<string, number> {
  const out = t.exec(host, 'nstat', ['-az', '--json']).stdout;
  const j = JSON.parse(out) as { kernel: Record<string, number> };
  return j.kernel;
}

test('static entries: pass TCP/UDP, drop one flow only, XLAT to a rewritten address', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  const topo = twoHosts('dp');
  const g = new GscipRunner(topo);
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  await startEchoServer(topo, 'b', B, TCP_PORT, UDP_PORT);

  // Baseline (no programs): the applications work.
  let r = echoOnce(topo, 'a', 'tcp', B, TCP_PORT, 40000, 'baseline');
  assert.equal(r.reply, `peer=${A}:40000|baseline`);

  const agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'drop', '--metrics', 'none']);
  t.after(() => agent.stop('SIGKILL'));

  // Half configured: attached, no entry -> the same kind of flow fails, counted as a miss drop.
  const missBefore = stat(g, 'miss_policy');
  r = echoOnce(topo, 'a', 'tcp', B, TCP_PORT, 40001, 'no entry', 1500);
  assert.equal(r.error, 'timeout');
  assert.ok(stat(g, 'miss_policy') > missBefore, 'SYNs counted as miss-policy drops');

  // Pass entries, both directions: TCP and UDP data end to end.
  pitBoth(g, 'tcp', 40002, TCP_PORT, 'pass');
  pitBoth(g, 'udp', 40003, UDP_PORT, 'pass');
  const passBefore = stat(g, 'pit_pass');
  r = echoOnce(topo, 'a', 'tcp', B, TCP_PORT, 40002, 'tcp through the fast path');
  assert.equal(r.reply, `peer=${A}:40002|tcp through the fast path`);
  r = echoOnce(topo, 'a', 'udp', B, UDP_PORT, 40003, 'udp through the fast path');
  assert.equal(r.reply, `peer=${A}:40003|udp through the fast path`);
  assert.ok(stat(g, 'pit_pass') >= passBefore + 4, 'TCP and UDP packets counted as PIT pass');

  // A drop entry stops one flow only.
  pitBoth(g, 'udp', 40004, UDP_PORT, 'pass');
  pitBoth(g, 'udp', 40005, UDP_PORT, 'pass');
  assert.equal(echoOnce(topo, 'a', 'udp', B, UDP_PORT, 40004, 'x').reply, `peer=${A}:40004|x`);
  g.ok('a', ['pit', 'add', ...g.instanceArgs(), '--dir', 'egress', '--proto', 'udp', '--src', A, '--sport', '40004', '--dst', B, '--dport', String(UDP_PORT), '--action', 'drop']);
  const dropBefore = stat(g, 'policy');
  assert.equal(echoOnce(topo, 'a', 'udp', B, UDP_PORT, 40004, 'dropped', 1000).error, 'timeout');
  assert.equal(echoOnce(topo, 'a', 'udp', B, UDP_PORT, 40005, 'sibling').reply, `peer=${A}:40005|sibling`);
  assert.equal(stat(g, 'policy'), dropBefore + 1, 'exactly the one datagram dropped by policy');

  // XLAT: the application on a talks to 198.18.0.2 (virtual); the wire carries 192.0.2.2.
  topo.exec('a', 'ip', ['route', 'add', `${VIRT_B}/32`, 'via', B]);
  const x = (dir: string, src: string, sport: number, dst: string, dport: number, to: string[]): void => {
    g.ok('a', ['xlat', 'add', ...g.instanceArgs(), '--dir', dir, '--proto', 'tcp', '--src', src, '--sport', String(sport), '--dst', dst, '--dport', String(dport), ...to]);
  };
  x('egress', A, 40006, VIRT_B, TCP_PORT, ['--to-dst', B]);        // stack view -> wire view
  x('ingress', B, TCP_PORT, A, 40006, ['--to-src', VIRT_B]);       // wire view -> stack view
  pitBoth(g, 'tcp', 40006, TCP_PORT, 'pass');                      // PIT is in the wire view
  const xlatBefore = stat(g, 'xlat');
  r = echoOnce(topo, 'a', 'tcp', VIRT_B, TCP_PORT, 40006, 'via virtual address');
  assert.equal(r.reply, `peer=${A}:40006|via virtual address`, 'b saw the real client; a got the reply on its virtual-address socket');
  assert.ok(stat(g, 'xlat') >= xlatBefore + 3, 'translations counted');
  // Without the ingress half, the reply no longer matches the socket: the connection fails.
  g.ok('a', ['xlat', 'del', ...g.instanceArgs(), '--dir', 'ingress', '--proto', 'tcp', '--src', B, '--sport', String(TCP_PORT), '--dst', A, '--dport', '40006']);
  assert.ok(echoOnce(topo, 'a', 'tcp', VIRT_B, TCP_PORT, 40006, 'half', 1500).error);

  const dump = g.ok('a', ['maps', 'dump', 'pit', ...g.instanceArgs()]);
  assert.match(dump, /egress\s+udp\s+192\.0\.2\.1\s+40004\s+192\.0\.2\.2\s+7001\s+drop/);
});

test('first packet: punt + install-pass -> connect without SYN retransmission, both directions', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  const topo = twoHosts('fp');
  const g = new GscipRunner(topo);
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  await startEchoServer(topo, 'b', B, TCP_PORT, UDP_PORT);
  await startEchoServer(topo, 'a', A, TCP_PORT, UDP_PORT);
  // Static neighbours, so the only thing a first packet can wait for is the punt path.
  const mac = (h: string): string => (JSON.parse(topo.exec(h, 'ip', ['-j', 'link', 'show', 'eth0']).stdout) as Array<{ address: string }>)[0].address;
  topo.exec('a', 'ip', ['neigh', 'replace', B, 'lladdr', mac('b'), 'dev', 'eth0', 'nud', 'permanent']);
  topo.exec('b', 'ip', ['neigh', 'replace', A, 'lladdr', mac('a'), 'dev', 'eth0', 'nud', 'permanent']);
  const agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'punt', '--handler', 'install-pass', '--metrics', '127.0.0.1:9464']);
  t.after(() => agent.stop('SIGKILL'));

  const before = { a: nstat(topo, 'a'), b: nstat(topo, 'b') };
  // Outbound: SYN punted on a's egress, released with the egress mark.
  const out = echoOnce(topo, 'a', 'tcp', B, TCP_PORT, 41000, 'first out');
  // Inbound: SYN punted on a's ingress, released with the ingress mark (redirected to ingress).
  const inb = echoOnce(topo, 'b', 'tcp', A, TCP_PORT, 41001, 'first in');
  // UDP: the first datagram itself is delivered (released), not just later ones.
  const udp = echoOnce(topo, 'a', 'udp', B, UDP_PORT, 41002, 'first datagram');
  const after = { a: nstat(topo, 'a'), b: nstat(topo, 'b') };

  assert.equal(out.reply, `peer=${A}:41000|first out`);
  assert.equal(inb.reply, `peer=${B}:41001|first in`);
  assert.equal(udp.reply, `peer=${A}:41002|first datagram`);
  for (const h of ['a', 'b'] as const) {
    assert.equal((after[h].TcpExtTCPSynRetrans ?? 0) - (before[h].TcpExtTCPSynRetrans ?? 0), 0, `${h}: no SYN retransmission`);
    assert.equal((after[h].TcpRetransSegs ?? 0) - (before[h].TcpRetransSegs ?? 0), 0, `${h}: no retransmitted segment`);
  }
  assert.ok((out.connectMs ?? 1e9) < 500, `outbound connect took ${out.connectMs} ms (a SYN retransmission takes >= 1000)`);
  assert.ok((inb.connectMs ?? 1e9) < 500, `inbound connect took ${inb.connectMs} ms`);
  assert.ok(stat(g, 'punt_miss') >= 3, 'three flows punted');
  assert.ok(stat(g, 'released') >= 3, 'three released packets took their PIT hit');
  assert.equal(stat(g, 'release_miss'), 0);
  // The same, as Prometheus sees it (the agent's /metrics inside a's namespace).
  const metrics = topo.exec('a', process.execPath, ['-e', "fetch('http://127.0.0.1:9464/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"]).stdout;
  const metric = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? NaN);
  assert.ok(metric(/^gscip_agent_punts_total\{reason="pit_miss"\} (\d+)$/m) >= 3, 'punts counted');
  assert.ok(metric(/^gscip_agent_releases_total\{dir="egress"\} (\d+)$/m) >= 2, 'egress releases counted');
  assert.ok(metric(/^gscip_agent_releases_total\{dir="ingress"\} (\d+)$/m) >= 1, 'ingress release counted');
  assert.equal(metric(/^gscip_map_entries\{map="gscip_pit"\} (\d+)$/m), 6, 'three flows, two entries each');
  assert.ok(metric(/^gscip_datapath_packets_total\{reason="pit_pass",kind="verdict"\} (\d+)$/m) > 0);
  assert.equal(metric(/^gscip_datapath_packets_total\{reason="release_miss",kind="drop"\} (\d+)$/m), 0);
  const pit = JSON.parse(g.ok('a', ['maps', 'dump', 'pit', '--json', ...g.instanceArgs()])) as Array<{ dir: string; sport: number; dport: number; action: string }>;
  assert.ok(pit.some((e) => e.dir === 'egress' && e.sport === 41000 && e.action === 'pass'));
  assert.ok(pit.some((e) => e.dir === 'ingress' && e.dport === 41000 && e.action === 'pass'));
  assert.ok(pit.some((e) => e.dir === 'ingress' && e.sport === 41001 && e.action === 'pass'));
});

test('first packet too big to stash: dropped and counted, its CID installed, the next packet passes', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  const topo = twoHosts('tr');
  const g = new GscipRunner(topo);
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  for (const h of ['a', 'b']) topo.exec(h, 'ip', ['link', 'set', 'eth0', 'mtu', '9000']);
  await startEchoServer(topo, 'b', B, TCP_PORT, UDP_PORT);
  const agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'punt', '--handler', 'install-pass', '--metrics', 'none']);
  t.after(() => agent.stop('SIGKILL'));
  const big = 'x'.repeat(4000); // one 4 KB datagram: larger than GSCIP_PUNT_MAX_BYTES, not fragmented at MTU 9000
  assert.equal(echoOnce(topo, 'a', 'udp', B, UDP_PORT, 41100, big, 1000).error, 'timeout', 'the too-big first datagram is dropped');
  assert.equal(stat(g, 'punt_truncated'), 1);
  const r = echoOnce(topo, 'a', 'udp', B, UDP_PORT, 41100, big);
  assert.equal(r.reply, `peer=${A}:41100|${big}`, 'the entry learned from the truncated punt lets the next datagram through');
  assert.equal(stat(g, 'punt_truncated'), 1);
  assert.equal(stat(g, 'released'), 0, 'nothing to release: the packet was never stashed');
});
