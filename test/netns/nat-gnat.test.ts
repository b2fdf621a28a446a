/**
 * The GNAT's outbound NAPT on the real datapath (namespaces): bob, a private
 * host (100.64.1.10) behind the GNAT, reaches a global host through it.
 *
 *   bob 100.64.1.10 --p0/in0-- gnat (100.64.1.1 | 192.0.2.2) --out0/g0-- glob 192.0.2.1
 *
 * The agent runs on the GNAT's outside interface only (`--handler nat`, a
 * `nat` config section, PIT misses pass: no DPRP here). Checked from outside:
 * a 4 MiB TCP transfer arrives byte-exact; a capture on the global host holds
 * no private address at all, and every bob packet it holds comes from
 * 192.0.2.2 with a port of the NAT range; `gscip maps dump nat` shows the
 * session; an ICMP port unreachable from the global host reaches bob's
 * connected UDP socket as ECONNREFUSED (translated with its quoted headers);
 * ping from bob gets its answers (ICMP echo translated, identifier mapped);
 * the metrics show the session and the fast path's counters. glob has no
 * route to 100.64.0.0/10, so a leaked private source could not be answered.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { Topology, waitFor, waitReady } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { ipv4Records, readPcapFile } from '../../controlplane/lab/pcap.js';
import { exited, sha256 } from './pccom-topology.js';
import { Capture } from '../lib/capture.js';
import { isPrivate } from './nat-topology.js';

const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : null;
const BOB = '100.64.1.10';
const GNAT_IN = '100.64.1.1';
const GNAT_OUT = '192.0.2.2';
const GLOB = '192.0.2.1';
const PORTS = { first: 21000, last: 21999 };
const BYTES = 4 << 20;

const SINK = (out: string, port: number): string => `
const net = require('net'), fs = require('fs');
const out = fs.createWriteStream(${JSON.stringify(out)});
const srv = net.createServer((c) => { console.log('peer ' + c.remoteAddress + ':' + c.remotePort); c.pipe(out); c.on('error', () => {}); c.on('end', () => out.end(() => process.exit(0))); });
srv.listen(${port}, ${JSON.stringify(GLOB)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 60000).unref();`;

const SOURCE = (inp: string, port: number): string => `
const net = require('net'), fs = require('fs');
const s = net.connect({ host: ${JSON.stringify(GLOB)}, port: ${port}, localPort: 40123 });
s.on('connect', () => fs.createReadStream(${JSON.stringify(inp)}).pipe(s));
s.on('close', () => process.exit(0));
s.on('error', (e) => { console.error(e.message); process.exit(2); });
setTimeout(() => process.exit(3), 60000).unref();`;

/** A connected UDP socket to a port nobody listens on: the ICMP port unreachable must come back as ECONNREFUSED. */
const UDP_REFUSED = (port: number): string => `
const d = require('dgram').createSocket('udp4');
d.on('error', (e) => { console.log(e.code); process.exit(0); });
d.connect(${port}, ${JSON.stringify(GLOB)}, () => {
  let n = 0; const t = setInterval(() => { if (n++ > 20) { console.log('NO_ERROR'); process.exit(0); } d.send('hello?'); }, 100);
});
setTimeout(() => { console.log('TIMEOUT'); process.exit(0); }, 8000).unref();`;

describe('GNAT outbound NAPT in the fast path (namespaces)', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let cfgFile: string;

  before(async () => {
    t = new Topology('natgw');
    try {
      t.addHost('bob'); t.addHost('gnat'); t.addHost('glob');
      t.link('bob', 'p0', 'gnat', 'in0');
      t.link('gnat', 'out0', 'glob', 'g0');
      t.addr('bob', 'p0', `${BOB}/24`);
      t.addr('gnat', 'in0', `${GNAT_IN}/24`);
      t.addr('gnat', 'out0', `${GNAT_OUT}/24`);
      t.addr('glob', 'g0', `${GLOB}/24`);
      t.route('bob', 'default', GNAT_IN);
      t.forwarding('gnat');
      g = new GscipRunner(t, 'gnat');
      cfgFile = t.scratchPath(`/tmp/${t.prefix}-gnat.json`);
      writeFileSync(cfgFile, JSON.stringify({
        interfaces: [{ name: 'out0' }],
        nat: { external: GNAT_OUT, inside: ['100.64.1.0/24'], ports: PORTS, sweepMs: 500 },
      }));
      await g.startAgent('gnat', ['--config', cfgFile, '--iface', 'out0', '--miss', 'pass', '--handler', 'nat', '--metrics', '127.0.0.1:9464']);
    } catch (e) { g?.cleanup(); t.cleanupSync(); throw e; }
  });
  after(() => { g?.cleanup(); t?.cleanupSync(); });

  test('bob -> glob: 4 MiB TCP byte-exact through the NAT; on the global side only 192.0.2.2 with a NAT port, no private address', async () => {
    const data = randomBytes(BYTES);
    const inp = t.scratchPath(`/tmp/${t.prefix}-in`);
    const out = t.scratchPath(`/tmp/${t.prefix}-out`);
    const pcap = t.scratchPath(`/tmp/${t.prefix}-glob.pcap`);
    writeFileSync(inp, data);
    const cap = await Capture.start(t, { host: 'glob', iface: 'g0', file: pcap, snaplen: 128, filter: 'ip' });
    try {
      const sink = t.spawn('glob', 'node', ['-e', SINK(out, 5201)]);
      let sinkOut = '';
      await waitReady(sink, 'TCP sink', (d) => { sinkOut += d; });
      const src = t.spawn('bob', 'node', ['-e', SOURCE(inp, 5201)]);
      assert.equal(await exited(src, 60_000), 0, 'bob\'s connection closed cleanly');
      assert.equal(await exited(sink, 10_000), 0, `the sink saw the stream end: ${sinkOut}`);
      const peer = /peer (\S+):(\d+)/.exec(sinkOut)!;
      assert.equal(peer[1], GNAT_OUT, 'glob\'s application saw the GNAT\'s address');
      const z = Number(peer[2]);
      assert.ok(z >= PORTS.first && z <= PORTS.last, `mapped port ${z} in the NAT range`);
      const got = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await cap.stop(3000);
      rmSync(inp, { force: true }); rmSync(out, { force: true });
    }
    const pf = readPcapFile(cap.pcap());
    const recs = ipv4Records(pf);
    rmSync(pcap, { force: true });
    assert.ok(recs.length > 50, `the capture holds the transfer (${recs.length} packets; GSO/GRO make them large)`);
    assert.deepEqual(recs.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global side');
    const fromBob = recs.filter((r) => r.dport === 5201);
    assert.ok(fromBob.length > 20, `${fromBob.length} packets of bob's flow`);
    assert.ok(fromBob.every((r) => r.src === GNAT_OUT && r.sport >= PORTS.first && r.sport <= PORTS.last), 'every packet of the flow from 192.0.2.2:z');
  });

  test('`gscip maps dump nat` shows bob\'s session with its external port and TCP state', () => {
    const rows = JSON.parse(g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...g.instanceArgs()])) as Array<{ proto: string; inside: string; peer: string; external: string; origin: string; state: string }>;
    const s = rows.find((r) => r.inside === `${BOB}:40123`);
    assert.ok(s, `bob's session is listed: ${JSON.stringify(rows)}`);
    assert.equal(s.proto, 'tcp');
    assert.equal(s.peer, `${GLOB}:5201`);
    assert.match(s.external, new RegExp(`^${GNAT_OUT.replace(/\./g, '\\.')}:21\\d{3}$`));
    assert.equal(s.origin, 'outbound');
    assert.equal(s.state, 'tcp_transitory', 'both FINs seen: the short timeout applies');
    const text = g.ok('gnat', ['maps', 'dump', 'nat', ...g.instanceArgs()]);
    assert.match(text, /external 192\.0\.2\.2, ports 21000-21999, inside 100\.64\.1\.0\/255\.255\.255\.0/);
  });

  test('an ICMP port unreachable from the global side reaches bob\'s UDP socket (ECONNREFUSED): translated with its quote', () => {
    const r = t.exec('bob', 'node', ['-e', UDP_REFUSED(5999)], { timeoutMs: 15_000 });
    assert.equal(r.stdout.trim(), 'ECONNREFUSED');
  });

  test('ping from bob reaches glob through the NAT (ICMP echo): answered, so it left from 192.0.2.2; `dump nat` shows the icmp session', () => {
    // glob has no route to 100.64.0.0/10: only a request from 192.0.2.2 can be answered.
    const r = t.exec('bob', 'ping', ['-c', '3', '-i', '0.2', '-W', '2', GLOB], { allowFail: true, timeoutMs: 15_000 });
    assert.match(r.stdout, /3 packets transmitted, 3 received/, `${r.stdout}${r.stderr}`);
    const rows = JSON.parse(g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...g.instanceArgs()])) as Array<{ proto: string; inside: string; peer: string; external: string }>;
    const s = rows.find((x) => x.proto === 'icmp' && x.inside.startsWith(`${BOB}:`));
    assert.ok(s, `bob's echo session is listed: ${JSON.stringify(rows)}`);
    assert.equal(s.peer, `${GLOB}:0`);
    assert.match(s.external, new RegExp(`^${GNAT_OUT.replace(/\./g, '\\.')}:21\\d{3}$`));
  });

  test('metrics: sessions by state, ports used and the range, the fast path\'s nat counters', async () => {
    const metrics = (): string => t.exec('gnat', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
    await waitFor('a sweep that saw the sessions', () => /gscip_nat_ports_used\{proto="udp"\} [1-9]/.test(metrics()), 5000, 200);
    const m = metrics();
    const val = (re: RegExp): number => Number(re.exec(m)?.[1] ?? NaN);
    assert.equal(val(/gscip_nat_port_range_size (\d+)/), 1000);
    assert.ok(val(/gscip_nat_sessions\{state="tcp_transitory"\} (\d+)/) >= 1);
    assert.ok(val(/gscip_nat_ports_used\{proto="tcp"\} (\d+)/) >= 1);
    assert.ok(val(/gscip_datapath_direction_packets_total\{reason="nat_created",kind="overlay",direction="egress"\} (\d+)/) >= 2);
    assert.ok(val(/gscip_datapath_direction_packets_total\{reason="nat_xlat",kind="overlay",direction="ingress"\} (\d+)/) > 10, "the ACKs, translated back (GRO makes the data few, large packets)");
    assert.ok(val(/gscip_datapath_direction_packets_total\{reason="nat_icmp",kind="verdict",direction="ingress"\} (\d+)/) >= 1);
  });
});
