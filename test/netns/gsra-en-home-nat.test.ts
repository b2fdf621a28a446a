/**
 * The GSRA EN part behind a home router it does not control (docs/gsra.md
 * "Binding" and "The EN part"): the laptop has a private address PEN, a
 * home router does plain nftables masquerade to the Internet, BIND 9
 * answers the IN's name with the GSRA router's address GGR. The EN's agent
 * (dprp, natf, gsra-en) sees its source is private (behindNat auto), so the
 * admission is AUTH -> BIND (from the flow's own port s; the answer comes
 * back to s and is taken from the miss chain) -> MAP naming GHR:m.
 *
 *   enh PEN 100.64.9.2 --e0/h0-- hr (nftables masquerade, GHR 192.0.2.30) --h1/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (IN1 100.64.1.10)
 *   enh 203.0.113.20 --d0/dns0-- dns 203.0.113.53 (BIND 9: in1.example.net A GGR)
 *
 * The home router verifies checksums (nf_conntrack_checksum=1, software
 * checksums on the EN and the router): conntrack would mark PCCOM's keyed
 * checksum INVALID and not translate it, so both ends encrypt TCP in the
 * wire-valid form across the NAT (docs/pccom.md); UDP goes in PCCOM's UDP
 * wire-valid form under per-flow keys (the salt from the router's MAP_OK),
 * with the home router verifying checksums and dropping what it marks
 * INVALID (GSRA_HOME_TEST_UDP_KEYED=1: gsraEn.udpWireValid false, the keyed
 * form: every datagram dropped as INVALID, no echo).
 *
 * Without BIND (GSRA_HOME_TEST_NO_BIND=1: gsraEn.behindNat false) MAP names
 * PEN:s, the router sees GHR and refuses `bad_session`: the connect fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Topology, waitFor, waitReady, sh } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { DnsServer } from './dns-server.js';
import { SITE } from '../lib/gsra-site.js';
import { gsraInSink, startEnDns, startGsraEnAgents } from '../lib/gsra-en-site.js';
import { runResolverApp, type ResolverJob } from '../lib/resolver-app.js';
import { Capture } from '../lib/capture.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig && command -v nft'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'needs BIND 9 (named, dig) and nft' : null;
const { GGR, PGR, IN1 } = SITE;
const PEN = '100.64.9.2';
const GHR = '192.0.2.30';
const BYTES = 4 << 20;
const GROUP_KEY = randomBytes(32).toString('hex');
const MARKER = Buffer.from('GSRA-HOME-NAT-MARKER-9d2e');
const NO_BIND = !!process.env.GSRA_HOME_TEST_NO_BIND;
const UDP_KEYED = !!process.env.GSRA_HOME_TEST_UDP_KEYED;


describe('GSRA EN part behind a home router doing nftables masquerade (namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let dnsSrv: DnsServer;
  let sink: ReturnType<Topology['spawn']>;
  let sinkOut = '';
  let sinkFile = '';
  let resolvConf = '';
  let dir = '';

  before(async () => {
    t = new Topology('gsrahnat');
    try {
      t.addHost('enh'); t.addHost('hr'); t.addHost('router'); t.addHost('in'); t.addHost('dns');
      t.link('enh', 'e0', 'hr', 'h0');
      t.link('hr', 'h1', 'router', 'out0');
      t.link('router', 'in0', 'in', 'l0');
      t.addr('enh', 'e0', `${PEN}/24`);
      t.addr('hr', 'h0', '100.64.9.1/24');
      t.addr('hr', 'h1', `${GHR}/24`);
      t.addr('router', 'out0', `${GGR}/24`);
      t.addr('router', 'in0', `${PGR}/24`);
      t.addr('in', 'l0', `${IN1}/24`);
      t.route('enh', 'default', '100.64.9.1');
      t.forwarding('hr');
      t.forwarding('router');
      // The home router the project does not configure beyond this: plain masquerade, checksums verified.
      t.exec('hr', 'nft', ['add', 'table', 'ip', 'home']);
      t.exec('hr', 'nft', ['add', 'chain', 'ip', 'home', 'post', '{ type nat hook postrouting priority 100 ; }']);
      t.exec('hr', 'nft', ['add', 'rule', 'ip', 'home', 'post', 'oifname', 'h1', 'masquerade']);
      t.exec('hr', 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_checksum=1']);
      // Software checksums where PCCOM sends, so the home router's conntrack really checks them.
      for (const [h, d] of [['enh', 'e0'], ['router', 'out0'], ['hr', 'h0'], ['hr', 'h1']]) t.exec(h, 'ethtool', ['-K', d, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      g = new GscipRunner(t, 'gsra-out');
      dir = t.scratchPath(`/tmp/gscip-test-${t.prefix}-gsrahnat`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      ({ dns: dnsSrv, resolvConf } = await startEnDns(t, dir, { in1: GGR, www: '203.0.113.80' }, 'enh'));
      await startGsraEnAgents(g, {
        dir, enHost: 'enh', groupKey: GROUP_KEY,
        servers: [{ name: 'in1.example.net', address: IN1, groups: [1] }],
        gsraEn: { ...(NO_BIND ? { behindNat: false } : {}), ...(UDP_KEYED ? { udpWireValid: false } : {}) },
      });
      sinkFile = `${dir}/sink`;
      sink = t.spawn('in', 'node', ['-e', gsraInSink(sinkFile, 200000)]);
      await waitReady(sink, 'IN server', (d) => { sinkOut += d; });
    } catch (e) { await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); throw e; }
  });
  after(async () => { sink?.kill(); await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); });

  const app = (job: ResolverJob): Promise<Record<string, any>> => runResolverApp(t, 'enh', resolvConf, job);
  const metrics = (host: string, port: number): string =>
    t.exec(host, 'node', ['-e', `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))`]).stdout;

  test('by name through the home NAT and the router: BIND learnt GHR:m, 4 MiB TCP byte-exact, IN sees PGR:t, no plaintext on the Internet leg', async () => {
    const data = randomBytes(BYTES);
    for (let o = 0; o + MARKER.length < BYTES; o += 1000) MARKER.copy(data, o);
    const inp = `${dir}/in-data`;
    writeFileSync(inp, data);
    const capOut = `${dir}/internet.pcap`;
    const c1 = await Capture.start(t, { host: 'router', iface: 'out0', file: capOut, count: 400, filter: 'tcp' });
    let r: Record<string, any>;
    try { r = await app({ kind: 'tcp', name: 'in1.example.net', file: inp }); } finally { await c1.stop(5000); }
    assert.match(String(r.addr), /^198\.19\./, `the application got a VIN: ${JSON.stringify(r)}`);
    assert.equal(r.error, undefined, JSON.stringify(r));
    await waitFor('the IN got the stream', () => sinkOut.includes('done 1'), 20_000);
    const peer = /peer (\S+):(\d+) conn 1/.exec(sinkOut)!;
    assert.equal(peer[1], PGR, 'the IN saw the router as its peer');
    const got = existsSync(`${sinkFile}.1`) ? readFileSync(`${sinkFile}.1`) : Buffer.alloc(0);
    assert.equal(got.length, BYTES);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'), 'byte-exact');
    const internet = c1.pcap();
    assert.ok(internet.length > 100_000, `the Internet leg capture holds the stream (${internet.length} bytes)`);
    assert.ok(!internet.includes(MARKER), 'no plaintext on the Internet leg');
    assert.ok(internet.includes(Buffer.from(GHR.split('.').map(Number))), 'the Internet leg carries GHR (the home router translated the flow)');
    assert.ok(!internet.includes(Buffer.from(PEN.split('.').map(Number))), 'no packet left the home with the private source (none marked INVALID by its conntrack)');
    const m = metrics('router', 9465);
    assert.match(m, /gscip_gsra_requests_total\{message="bind",result="ok"\} [1-9]/, 'the EN bound first');
    assert.match(metrics('enh', 9464), /gscip_gsraen_flows_total\{result="admitted"\} [1-9]/);
  });

  test('by name, UDP through the home NAT verifying checksums, invalid dropped: 40 datagrams echoed byte-exact in PCCOM\'s UDP wire-valid form', async () => {
    // What conntrack marks INVALID (a checksum it does not take) is dropped, counted: the keyed form would be.
    t.exec('hr', 'nft', ['add', 'chain', 'ip', 'home', 'filterfw', '{ type filter hook forward priority 0 ; }']);
    t.exec('hr', 'nft', ['add', 'rule', 'ip', 'home', 'filterfw', 'ct', 'state', 'invalid', 'counter', 'drop']);
    assert.equal(t.exec('hr', 'sysctl', ['-n', 'net.netfilter.nf_conntrack_checksum']).stdout.trim(), '1');
    const capOut = `${dir}/internet-udp.pcap`;
    const c1 = await Capture.start(t, { host: 'router', iface: 'out0', file: capOut, count: 400, filter: 'udp and not port 7253' });
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.concat([MARKER, randomBytes(16 + i * 31)]).toString('hex'));
    let r: Record<string, any>;
    try { r = await app({ kind: 'udpMany', name: 'in1.example.net', payloads }); } finally { await c1.stop(5000); }
    const invalid = t.exec('hr', 'nft', ['list', 'chain', 'ip', 'home', 'filterfw']).stdout;
    const flowKeyUse = t.exec('enh', 'node', ['-e', `fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))`]).stdout
      .split('\n').filter((l) => /reason="pit_(encrypt|decrypt)"/.test(l) && l.startsWith('gscip_datapath_direction_packets_total')).join(' ');
    assert.equal(r.error, undefined, `${JSON.stringify(r).slice(0, 400)}\nhome router: ${invalid}\nEN: ${flowKeyUse}`);
    assert.equal(r.echoes.length, payloads.length);
    for (let i = 0; i < payloads.length; i++) assert.equal(r.echoes[i], Buffer.concat([Buffer.from('echo: '), Buffer.from(payloads[i], 'hex')]).toString('hex'), `datagram ${i} byte-exact`);
    assert.match(sinkOut, new RegExp(`udp peer ${PGR.replace(/\./g, '\\.')}:4\\d{4}`), 'the IN saw the router as its peer');
    assert.match(invalid, /counter packets 0 bytes 0 drop/, `the home router marked nothing INVALID: ${invalid}`);
    const internet = c1.pcap();
    assert.ok(!internet.includes(MARKER), 'no plaintext on the Internet leg');
    assert.ok(internet.includes(Buffer.from(GHR.split('.').map(Number))), 'translated by the home router (GHR on the leg)');
    assert.ok(!internet.includes(Buffer.from(PEN.split('.').map(Number))), 'nothing left the home untranslated');
  });
});
