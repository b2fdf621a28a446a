/**
 * IPv6 through a CL GEN (issue 11 item 7): GSCIP guards IPv4 only, so a CL
 * element must not let IPv6 through unguarded. The real agent protects the
 * GEN's outside interface, started as a CL GEN with no --ipv6 (default
 * nd-only), then changed live with `gscip iface set --ipv6`:
 *
 *   o 2001:db8:1::1 [eth0] --- [eth0 *agent*] g 2001:db8:1::fe | 2001:db8:2::fe [eth1] --- [eth0] s 2001:db8:2::1
 *                                        fe80::fe (link-local, on g eth0)
 *
 *  - nd-only (the default on CL): o resolves g by neighbour discovery and
 *    reaches g's link-local address (a TCP echo: no ping binary is assumed); a TCP connect from o to s fails, counted as
 *    ipv6_nd_only; doctor shows the policy (ok); maps dump iface shows it;
 *  - pass: the same connect succeeds, echoed byte-exact; doctor warns (CL passes IPv6);
 *  - drop: even link-local traffic fails, counted as ipv6_policy;
 *  - an agent restarted with --ipv6 eth0:drop writes drop.
 * Addresses: 2001:db8::/32 and link-local only; DAD is off in these namespaces
 * so addresses are usable at once. Every wait is bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';
import type { Check } from '../../controlplane/doctor/checks.js';

const O = '2001:db8:1::1';
const G_OUT = '2001:db8:1::fe';
const G_LL = 'fe80::fe';
const G_IN = '2001:db8:2::fe';
const S = '2001:db8:2::1';
const PORT = 7300;

const skip = bpfUnavailable();

function v6(topo: Topology, host: string, ifname: string, cidr: string): void {
  assert.ok(/^(2001:db8:|fe80:)/i.test(cidr), `${cidr}: only 2001:db8::/32 and link-local in tests`);
  topo.exec(host, 'ip', ['-6', 'addr', 'add', cidr, 'dev', ifname, 'nodad']);
}

interface StatRow { name: string; ingress?: { packets: string }; egress?: { packets: string } }

test('IPv6 through a CL GEN: closed by default (nd-only: ND and link-local work, TCP to the inside fails, counted); pass opens it; drop closes all', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  const topo = new Topology('v6');
  const g = new GscipRunner(topo, 'v6');
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  for (const h of ['o', 'g', 's']) {
    topo.addHost(h);
    // before any link moves in: new interfaces of this namespace skip DAD
    topo.exec(h, 'sysctl', ['-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
  }
  topo.link('o', 'eth0', 'g', 'eth0');
  topo.link('g', 'eth1', 's', 'eth0');
  v6(topo, 'o', 'eth0', `${O}/64`);
  v6(topo, 'g', 'eth0', `${G_OUT}/64`);
  v6(topo, 'g', 'eth0', `${G_LL}/64`);
  v6(topo, 'g', 'eth1', `${G_IN}/64`);
  v6(topo, 's', 'eth0', `${S}/64`);
  topo.exec('g', 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
  topo.exec('o', 'ip', ['-6', 'route', 'add', '2001:db8:2::/64', 'via', G_OUT]);
  topo.exec('s', 'ip', ['-6', 'route', 'add', '2001:db8:1::/64', 'via', G_IN]);

  // TCP echo servers (upper-case what they read): s on its global address, g on its link-local one; a bounded client on o.
  const echo = async (host: string, addr: string, port: number): Promise<void> => {
    const p = topo.spawn(host, process.execPath, ['-e', `require('net').createServer((c) => c.on('data', (d) => c.write(d.toString().toUpperCase())))
      .listen(${port}, '${addr}', () => console.log('ready'))`]);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(`echo server ${addr}`, () => out.includes('ready'), 5000, 20);
  };
  await echo('s', S, PORT);
  await echo('g', `${G_LL}%eth0`, PORT + 1);
  const connect = (msg: string, dst = S, port = PORT, timeoutMs = 1500): { ok: boolean; reply: string } => {
    const js = `const s = require('net').connect({ host: '${dst}', port: ${port} });
const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(3); }, ${timeoutMs});
s.on('connect', () => s.write(${JSON.stringify(msg)}));
s.on('data', (d) => { clearTimeout(t); process.stdout.write(d.toString()); s.destroy(); });
s.on('error', (e) => { clearTimeout(t); console.log('ERR ' + e.message); process.exit(2); });`;
    const r = topo.exec('o', process.execPath, ['-e', js], { allowFail: true, timeoutMs: timeoutMs + 5000 });
    return { ok: r.code === 0, reply: r.stdout.trim() };
  };
  /** TCP to g's link-local address (no ping binary on every host: a TCP echo over link-local is the same proof). */
  const linkLocal = (msg: string): { ok: boolean; reply: string } => connect(msg, `${G_LL}%eth0`, PORT + 1);
  const stat = (name: string, dir: 'ingress' | 'egress'): number => {
    const rows = JSON.parse(g.ok('g', ['maps', 'dump', 'stats', '--json', '--all', ...g.instanceArgs()])) as StatRow[];
    return Number(rows.find((r) => r.name === name)?.[dir]?.packets ?? 0);
  };
  const ifaceRow = (): { ipv6?: string } => (JSON.parse(g.ok('g', ['maps', 'dump', 'iface', '--json', ...g.instanceArgs()])) as Array<{ name: string; ipv6?: string }>)
    .find((r) => r.name === 'eth0') ?? {};
  const doctorIpv6 = (): Check | undefined => (JSON.parse(g.cli('g', ['doctor', '--json', ...g.instanceArgs()]).out) as { checks: Check[] }).checks
    .find((c) => c.id === 'instance.ipv6.eth0');

  // The baseline without GSCIP: IPv6 goes through the GEN.
  assert.equal(connect('baseline').reply, 'BASELINE', 'IPv6 TCP through g before the agent');

  // A CL GEN, no --ipv6: closed (nd-only).
  let agent = await g.startAgent('g', ['--iface', 'eth0', '--miss', 'pass', '--ge-type', 'GEN', '--ge-mode', 'CL', '--metrics', 'none']);
  t.after(() => agent.stop('SIGKILL'));
  assert.equal(ifaceRow().ipv6, 'nd-only', 'maps dump iface shows the default policy of a CL element');
  const d0 = doctorIpv6();
  assert.equal(d0?.status, 'ok', JSON.stringify(d0));
  assert.match(d0?.detail ?? '', /eth0: ipv6 nd-only/);

  topo.exec('o', 'ip', ['-6', 'neigh', 'flush', 'dev', 'eth0']);
  const nd0 = stat('pass_ipv6_nd', 'ingress');
  assert.equal(linkLocal('ll').reply, 'LL', 'o reaches the GEN\'s link-local address under nd-only (TCP echo)');
  const neigh = topo.exec('o', 'ip', ['-6', 'neigh', 'show', 'dev', 'eth0']).stdout;
  assert.match(neigh, new RegExp(`^${G_LL} lladdr [0-9a-f:]{17}`, 'm'), `neighbour discovery resolved g: ${neigh}`);
  assert.ok(stat('pass_ipv6_nd', 'ingress') > nd0, 'ND counted as pass_ipv6_nd');
  assert.ok(stat('pass_ipv6_link_local', 'ingress') >= 3, 'the link-local TCP counted as pass_ipv6_link_local');

  const drop0 = stat('ipv6_nd_only', 'ingress');
  const closed = connect('closed');
  assert.equal(closed.ok, false, `IPv6 TCP through the CL GEN must fail under nd-only (got ${closed.reply})`);
  assert.ok(stat('ipv6_nd_only', 'ingress') > drop0, 'the SYNs are counted as ipv6_nd_only drops');
  // o resolved g's global address by ND too (the connect failed at TCP, not at the neighbour table)
  assert.match(topo.exec('o', 'ip', ['-6', 'neigh', 'show', G_OUT, 'dev', 'eth0']).stdout, /lladdr/);

  // pass: the element is open to IPv6, and doctor says so.
  assert.match(g.ok('g', ['iface', 'set', 'eth0', '--ipv6', 'pass', ...g.instanceArgs()]), /ipv6=pass/);
  const pass0 = stat('pass_ipv6', 'ingress');
  const open = connect('open');
  assert.equal(open.reply, 'OPEN', 'IPv6 TCP through the GEN with policy pass');
  assert.ok(stat('pass_ipv6', 'ingress') > pass0 && stat('pass_ipv6', 'egress') > 0, 'counted as pass_ipv6 both ways');
  const d1 = doctorIpv6();
  assert.equal(d1?.status, 'warn', JSON.stringify(d1));
  assert.match(d1?.detail ?? '', /CL, and IPv6 goes through it unguarded/);
  assert.equal(ifaceRow().ipv6, undefined, 'JSON leaves ipv6 out when it is pass (absent = pass, the previous layout)');
  assert.match(g.ok('g', ['maps', 'dump', 'iface', ...g.instanceArgs()]), /eth0\s.*\spass\s*$/m, 'the table shows pass');

  // drop: nothing IPv6, not even link-local.
  g.ok('g', ['iface', 'set', 'eth0', '--ipv6', 'drop', ...g.instanceArgs()]);
  topo.exec('o', 'ip', ['-6', 'neigh', 'flush', 'dev', 'eth0']);
  const pd0 = stat('ipv6_policy', 'ingress');
  assert.equal(linkLocal('ll').ok, false, 'no link-local traffic under drop');
  assert.equal(connect('dropped').ok, false);
  assert.ok(stat('ipv6_policy', 'ingress') > pd0, 'counted as ipv6_policy');

  // The policy from the command line, on restart.
  await agent.stop('SIGTERM');
  agent = await g.startAgent('g', ['--iface', 'eth0', '--miss', 'pass', '--ge-type', 'GEN', '--ge-mode', 'CL', '--ipv6', 'eth0:pass', '--metrics', 'none']);
  assert.equal(ifaceRow().ipv6, undefined);
  // Under drop, o's neighbour entry for g went FAILED, and the kernel answers EHOSTUNREACH from it for a while:
  // start from an empty neighbour table, as the nd-only phase does.
  topo.exec('o', 'ip', ['-6', 'neigh', 'flush', 'dev', 'eth0']);
  assert.equal(connect('again').reply, 'AGAIN', '--ipv6 eth0:pass opens it from the start');
  await agent.stop('SIGTERM');
  agent = await g.startAgent('g', ['--iface', 'eth0', '--miss', 'pass', '--ge-type', 'GEN', '--ge-mode', 'CL', '--metrics', 'none']);
  assert.equal(ifaceRow().ipv6, 'nd-only', 'a restart without --ipv6 closes it again (the default is not sticky)');
  assert.equal(connect('closed-again').ok, false);
});
