/**
 * GSRA with the EN's agent part (gsra-en) on the real datapath: an
 * unmodified application on the EN reaches an IN of its group BY NAME
 * through the GSRA router (system resolver, BIND 9 answering the router's
 * address GGR; the EN's agent rewrites it to a VIN through NAT-f's DNS
 * rewriter chain, holds the first packet while it runs AUTH -> MAP with the
 * router, writes the VAT and PIT entries and releases it): TCP 4 MiB
 * byte-exact with the IN seeing the router (PGR:t) as its peer, a UDP echo,
 * and an IN of another group refused at once (EHOSTUNREACH from the ICMP
 * unreachable, not a timeout). Without the part the name resolves to GGR
 * and the connect is refused by the router's own stack (the test fails).
 * The EN's agent killed mid-stream (SIGKILL) and restarted: the stream's
 * fast-path state outlives it, every byte arrives, the connection ends cleanly.
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (IN1 100.64.1.10, IN2 100.64.1.20)
 *   en 203.0.113.20 --d0/dns0-- dns 203.0.113.53 (BIND 9: in1, in2.example.net A GGR)
 *
 * Users and INs come from static config on both sides (the LDAP enrollment
 * path to the same router: test/netns/gsra-directory.test.ts). Not here:
 * PCCOM on the Internet leg (not built: the leg is plaintext).
 */
import { runResolverApp, type ResolverJob } from '../lib/resolver-app.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Topology, waitFor, waitReady, sh } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { DnsServer } from './dns-server.js';
import { linkGsraCore } from '../lib/gsra-site.js';
import { gsraInSink, startEnDns, startGsraEnAgents } from '../lib/gsra-en-site.js';
import { Capture } from '../lib/capture.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'needs BIND 9 (named, dig)' : null;
const GEN = '192.0.2.20';
const GGR = '192.0.2.1';
const PGR = '100.64.1.1';
const IN1 = '100.64.1.10';
const IN2 = '100.64.1.20';
const BYTES = 4 << 20;
const GROUP_KEY = randomBytes(32).toString('hex');
const MARKER = Buffer.from('GSRA-PLAINTEXT-MARKER-7f3a');

describe('GSRA EN part: an unmodified application reaches an IN by name (namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let dnsSrv: DnsServer;
  let sink: ReturnType<Topology['spawn']>;
  let sinkOut = '';
  let sinkFile = '';
  let resolvConf = '';
  let dir = '';
  let restartEn: (signal: NodeJS.Signals) => Promise<void>;

  before(async () => {
    t = new Topology('gsraen');
    try {
      t.addHost('en'); t.addHost('router'); t.addHost('in'); t.addHost('dns');
      linkGsraCore(t, { in2: true });
      g = new GscipRunner(t, 'gsra-out');
      dir = t.scratchPath(`/tmp/gscip-test-${t.prefix}-gsraen`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      ({ dns: dnsSrv, resolvConf } = await startEnDns(t, dir, { in1: GGR, in2: GGR, www: '203.0.113.80' }));
      ({ restartEn } = await startGsraEnAgents(g, {
        dir, groupKey: GROUP_KEY,
        servers: [{ name: 'in1.example.net', address: IN1, groups: [1] }, { name: 'in2.example.net', address: IN2, groups: [2] }],
        // GSRA_EN_TEST_PLAINTEXT_LEG=1 shows the capture check failing without PCCOM on the leg
        gsra: process.env.GSRA_EN_TEST_PLAINTEXT_LEG ? { legEncryption: 'none' } : {},
        gsraEn: process.env.GSRA_EN_TEST_WITHOUT_PART ? null : process.env.GSRA_EN_TEST_PLAINTEXT_LEG ? { requireEncryption: false } : {},
        routerMetrics: 'none',
      }));
      sinkFile = `${dir}/sink`;
      sink = t.spawn('in', 'node', ['-e', gsraInSink(sinkFile, 150000)]);
      await waitReady(sink, 'IN server', (d) => { sinkOut += d; });
    } catch (e) { await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); throw e; }
  });
  after(async () => { sink?.kill(); await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); });

  const app = (job: ResolverJob): Promise<Record<string, any>> => runResolverApp(t, 'en', resolvConf, job);

  test('by name through the router: 4 MiB TCP byte-exact, the IN sees PGR:t; the name resolved to a VIN', async () => {
    const data = randomBytes(BYTES);
    for (let o = 0; o + MARKER.length < BYTES; o += 1000) MARKER.copy(data, o);   // in every segment
    const inp = `${dir}/in-data`;
    writeFileSync(inp, data);
    const capOut = `${dir}/internet.pcap`, capIn = `${dir}/inside.pcap`;
    const c1 = await Capture.start(t, { host: 'router', iface: 'out0', file: capOut, count: 400, filter: 'tcp' });
    const c2 = await Capture.start(t, { host: 'in', iface: 'l0', file: capIn, count: 400, filter: 'tcp' });
    let r: Record<string, any>;
    try { r = await app({ kind: 'tcp', name: 'in1.example.net', file: inp }); } finally { await Promise.all([c1.stop(5000), c2.stop(5000)]); }
    assert.match(String(r.addr), /^198\.19\./, `the application got a VIN: ${JSON.stringify(r)}`);
    assert.equal(r.error, undefined, JSON.stringify(r));
    await waitFor('the IN got the stream', () => sinkOut.includes('done 1'), 20_000);
    const peer = /peer (\S+):(\d+) conn 1/.exec(sinkOut)!;
    assert.equal(peer[1], PGR, 'the IN saw the router as its peer');
    assert.ok(Number(peer[2]) >= 40000 && Number(peer[2]) <= 40999, 'from a reserved port t');
    const got = existsSync(`${sinkFile}.1`) ? readFileSync(`${sinkFile}.1`) : Buffer.alloc(0);
    assert.equal(got.length, BYTES);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'), 'byte-exact');
    const internet = c1.pcap(), inside = c2.pcap();
    assert.ok(internet.length > 100_000, `the Internet leg capture holds the stream (${internet.length} bytes)`);
    assert.ok(inside.includes(MARKER), 'plaintext inside (the IN needs nothing installed)');
    assert.ok(!internet.includes(MARKER), 'no plaintext on the Internet leg (PCCOM under the group key)');
  });

  test('by name, UDP: the datagram echoed through the router', async () => {
    const payload = Buffer.concat([MARKER, randomBytes(64)]).toString('hex');
    const capOut = `${dir}/internet-udp.pcap`;
    const c1 = await Capture.start(t, { host: 'router', iface: 'out0', file: capOut, count: 20, filter: 'udp and not port 7253' });
    let r: Record<string, any>;
    try { r = await app({ kind: 'udp', name: 'in1.example.net', payload }); } finally { await new Promise((res) => setTimeout(res, 300)); await c1.stop(5000); }
    const internet = c1.pcap();
    assert.ok(internet.length > 24 + 2 * 100, `both datagrams captured on the Internet leg (${internet.length} bytes)`);
    assert.ok(!internet.includes(MARKER), 'no plaintext UDP on the Internet leg');
    assert.equal(r.echo, Buffer.concat([Buffer.from('echo: '), Buffer.from(payload, 'hex')]).toString('hex'), JSON.stringify(r));
    assert.match(sinkOut, new RegExp(`udp peer ${PGR.replace(/\./g, '\\.')}:4\\d{4}`));
  });

  test('an IN of another group: the application fails at once (EHOSTUNREACH), nothing reaches the IN', async () => {
    const before = (sinkOut.match(/peer /g) ?? []).length;
    const r = await app({ kind: 'connect', name: 'in2.example.net' });
    assert.equal(r.error, 'EHOSTUNREACH', JSON.stringify(r));
    assert.ok(r.ms < 3000, `prompt: ${r.ms} ms`);
    assert.equal((sinkOut.match(/peer /g) ?? []).length, before);
    const m = t.exec('en', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
    assert.match(m, /gscip_gsraen_flows_total\{result="admitted"\} [2-9]/);
    assert.match(m, /gscip_gsraen_flows_total\{result="(no_shared_group|not_member)"\} 1/);
  });

  test('the EN\'s agent killed mid-stream and restarted: the stream goes on and ends cleanly, every byte at the IN', async () => {
    const conns = (sinkOut.match(/ conn \d+/g) ?? []).length;
    const stream = app({ kind: 'stream', name: 'in1.example.net', maxMs: 6000 });
    await waitFor('the stream reached the IN', () => (sinkOut.match(/ conn \d+/g) ?? []).length > conns, 10_000);
    const n = (sinkOut.match(/ conn \d+/g) ?? []).length;
    await new Promise((res) => setTimeout(res, 1000));
    await restartEn('SIGKILL');
    const r = await stream;
    assert.equal(r.end, 'ended', `the application's connection: ${JSON.stringify(r)}`);
    await waitFor('the IN got the end', () => sinkOut.includes(`done ${n}`), 10_000);
    const got = existsSync(`${sinkFile}.${n}`) ? readFileSync(`${sinkFile}.${n}`).length : 0;
    assert.equal(got, r.sent, `the IN got every byte the application wrote across the crash (${got} of ${r.sent})`);
    const again = await app({ kind: 'connect', name: 'in1.example.net' });
    assert.equal(again.error, undefined, `a new connection by name after the restart: ${JSON.stringify(again)}`);
  });
});
