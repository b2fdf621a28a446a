/**
 * A flood of new flows cannot exhaust the control plane: the fast path's
 * per-CPU token bucket (configured by the agent from --punt-rate/--punt-burst)
 * refuses most punts and counts them, the agent's stash holds at most its
 * limit, drops the rest with a reason, and expires what it held. Every
 * datagram sent is accounted for by exactly one counter.
 */
import { test } from 'node:test';
import { cpus } from 'node:os';
import assert from 'node:assert/strict';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const FLOWS = 20_000;

const FLOOD = `
const u = require('node:dgram').createSocket('udp4');
const [dst, n] = process.argv.slice(1);
let i = 0, sent = 0;
const t0 = Date.now();
u.bind(0, () => {
  const next = () => {
    if (i >= +n) { u.close(); console.log(JSON.stringify({ sent, ms: Date.now() - t0 })); return; }
    const port = 10000 + i++;
    u.send('flood', port, dst, (e) => { if (!e) sent++; next(); });
  };
  next();
});
setTimeout(() => { console.log(JSON.stringify({ sent, timeout: true })); process.exit(1); }, 30000).unref();
`;

test('a flood of new flows is rate-limited, bounded in the stash, and fully counted', { skip: bpfUnavailable() ?? false, timeout: 120_000 }, async (t) => {
  const topo = new Topology('fl');
  const g = new GscipRunner(topo, 'flood');
  t.after(() => { g.cleanup(); topo.cleanupSync(); });
  topo.addHost('a');
  topo.addHost('b');
  topo.link('a', 'eth0', 'b', 'eth0');
  topo.addr('a', 'eth0', `${A}/24`);
  topo.addr('b', 'eth0', `${B}/24`);
  const mac = (JSON.parse(topo.exec('b', 'ip', ['-j', 'link', 'show', 'eth0']).stdout) as Array<{ address: string }>)[0].address;
  topo.exec('a', 'ip', ['neigh', 'replace', B, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);

  // No handler: every punted packet waits in the stash until it expires.
  const agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'punt', '--punt-rate', '1000', '--punt-burst', '100',
    '--stash-total', '50', '--stash-ttl-ms', '300', '--metrics', '127.0.0.1:9464']);
  t.after(() => agent.stop('SIGKILL'));

  const r = topo.exec('a', process.execPath, ['-e', FLOOD, B, String(FLOWS)], { timeoutMs: 40_000 });
  const { sent, ms } = JSON.parse(r.stdout.trim()) as { sent: number; ms: number };
  assert.equal(sent, FLOWS);

  const stats = (): Record<string, number> => Object.fromEntries(
    (JSON.parse(g.ok('a', ['maps', 'dump', 'stats', '--json', '--all', ...g.instanceArgs()])) as Array<{ name: string; packets: string }>)
      .map((s) => [s.name, Number(s.packets)]));
  const s = stats();
  // Every datagram: punted, or refused by the bucket, or refused by a full ring. Nothing else, nothing lost.
  assert.equal(s.punt_miss + s.punt_rate + s.punt_ringbuf, FLOWS, JSON.stringify(s));
  // Per CPU: at most burst + rate x duration punts (+1 s of slack for scheduling).
  const bound = cpus().length * (100 + Math.ceil(1000 * (ms / 1000 + 1)));
  assert.ok(s.punt_miss >= 100 && s.punt_miss <= bound, `punts ${s.punt_miss} within burst..${bound} (flood took ${ms} ms)`);
  assert.ok(s.punt_rate > 0 && s.punt_rate >= FLOWS - bound, `the rest refused by the token bucket (${s.punt_rate})`);

  const metrics = async (): Promise<string> => topo.exec('a', process.execPath, ['-e', "fetch('http://127.0.0.1:9464/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"]).stdout;
  const val = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  // The agent received every punt record, held at most 50 at a time, refused the rest as stash_full, and
  // expired what it held: 50 per TTL (300 ms) the flood lasted, at most (an agent reading records as they
  // come fills the stash again after each expiry; one that lagged behind the flood read them all at once).
  await waitFor('agent to read every punt record', async () => val(await metrics(), /^gscip_agent_punts_total\{reason="pit_miss"\} (\d+)$/m) === s.punt_miss, 10_000, 100);
  await waitFor('stash to drain by expiry', async () => val(await metrics(), /^gscip_agent_stash_packets (\d+)$/m) === 0, 10_000, 100);
  const m = await metrics();
  const full = val(m, /^gscip_agent_stash_dropped_total\{reason="stash_full"\} (\d+)$/m);
  const expired = val(m, /^gscip_agent_stash_dropped_total\{reason="expired"\} (\d+)$/m);
  assert.ok(expired > 0 && expired <= 50 * (Math.ceil(ms / 300) + 1), `expired ${expired} (flood took ${ms} ms)`);
  assert.equal(full + expired, s.punt_miss, 'every punted packet either refused by the full stash or expired');
  assert.equal(val(m, /^gscip_agent_releases_total\{dir="egress"\} (\d+)$/m), 0);
  assert.equal(agent.exited, false, 'agent still running');
});
