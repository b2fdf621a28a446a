/**
 * NAT-f private -> global, encrypted (issue 13 item 4; the seeds' figure b,
 * SEEDS section 2.4): bob, a plain Term behind the GNAT (100.64.1.10),
 * connects to alice, a global GES (192.0.2.1) of the GNAT's group. The GNAT is
 * the GEN of its private side: its NAT stage translates bob's flow to
 * 192.0.2.2:Z first, and its DPRP negotiates the flow as it is after the
 * NAPT, so alice's PIT holds 192.0.2.2:Z (the post-NAT view) and the global
 * leg carries ciphertext; bob's leg is plaintext (bob is no GE).
 *
 * Topology and agents: natf-topology.ts (the GNAT runs dprp + nat on its
 * outside interface, both GEs hold group 10). Checked from outside: a 4 MiB
 * TCP stream from bob arrives at alice byte-exact, UDP datagrams come back;
 * a capture on the GNAT's global leg holds neither the plaintext marker nor a
 * private address; `gscip maps dump pit` on alice keys bob's flows on
 * 192.0.2.2:Z with encrypt/decrypt, Z the port `dump nat` shows at the GNAT.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { sh, waitFor } from '../lib/netns.js';
import { ipv4Records, readPcapFile } from '../../controlplane/lab/pcap.js';
import { exited, sha256 } from './pccom-topology.js';
import { ALICE, BOB, GNAT_OUT, NatfTopo, type PitRow } from './natf-topology.js';
import { isPrivate } from './nat-topology.js';
import { Capture } from '../lib/capture.js';
import { markedData, tcpSink, tcpSource } from './natf-apps.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v tcpdump'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'BIND 9 or tcpdump not installed (make deps)' : null;
const MARKER = 'NATF-OUTBOUND-PLAINTEXT-9c1e';
const BYTES = 4 << 20;
const TCP_PORT = 5201;
const UDP_PORT = 5301;



const UDP_ECHO = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => d.send(Buffer.concat([Buffer.from('echo:' + r.address + ':'), m]), r.port, r.address));
d.bind(${UDP_PORT}, ${JSON.stringify(ALICE)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 90000).unref();`;

/** Three datagrams (each with the marker) from bob to alice's echo; prints the replies. */
const UDP_CLIENT = `
const d = require('dgram').createSocket('udp4'); const got = [];
d.on('message', (m) => { got.push(m.toString()); if (got.length === 3) { console.log(JSON.stringify(got)); process.exit(0); } });
d.bind(40500, () => d.connect(${UDP_PORT}, ${JSON.stringify(ALICE)}, () => { for (let i = 0; i < 3; i++) setTimeout(() => d.send(${JSON.stringify(MARKER)} + '-' + i), i * 100); }));
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 10000).unref();`;

describe('NAT-f: a private Term behind the GNAT reaches a global GES, encrypted after the NAPT (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let n: NatfTopo;
  let pcap: string;
  let cap: Capture;

  before(async () => {
    n = new NatfTopo('natfo');
    try {
      await n.start();
      pcap = n.t.scratchPath(`/tmp/${n.t.prefix}-global.pcap`);
      cap = await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: pcap, filter: 'ip' });
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await cap?.stop(3000); await n?.stop(); n?.cleanupSync(); if (pcap) rmSync(pcap, { force: true }); });

  test('bob -> alice: 4 MiB TCP byte-exact; alice sees 192.0.2.2:Z', async () => {
    const data = markedData(BYTES, MARKER);
    const inp = n.t.scratchPath(`/tmp/${n.t.prefix}-in`);
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-out`);
    writeFileSync(inp, data);
    try {
      const sink = n.t.spawn('alice', 'node', ['-e', tcpSink(out, ALICE, TCP_PORT)]);
      let sinkOut = '';
      sink.stdout?.setEncoding('utf8');
      sink.stdout?.on('data', (d: string) => { sinkOut += d; });
      await waitFor('TCP sink on alice', () => sinkOut.includes('ready'), 5000);
      const src = n.t.spawn('bob', 'node', ['-e', tcpSource(inp, ALICE, TCP_PORT, 40123)]);
      let srcErr = '';
      src.stderr?.on('data', (d: Buffer) => { srcErr += d.toString(); });
      assert.equal(await exited(src, 80_000), 0, `bob's connection closed cleanly: ${srcErr}`);
      assert.equal(await exited(sink, 10_000), 0, `the sink saw the stream end: ${sinkOut}`);
      const peer = /peer (\S+):(\d+)/.exec(sinkOut)!;
      assert.equal(peer[1], GNAT_OUT, 'alice\'s application saw the GNAT\'s address');
      const got = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally {
      rmSync(inp, { force: true }); rmSync(out, { force: true });
    }
  });

  test('bob -> alice over UDP: three datagrams echoed, alice saw them from 192.0.2.2', async () => {
    const echo = n.t.spawn('alice', 'node', ['-e', UDP_ECHO]);
    let eo = '';
    echo.stdout?.on('data', (d: Buffer) => { eo += d.toString(); });
    await waitFor('alice\'s UDP echo', () => eo.includes('ready'), 5000);
    const p = n.t.spawn('bob', 'node', ['-e', UDP_CLIENT]);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    assert.equal(await exited(p, 15_000), 0, out);
    const got = (JSON.parse(out.trim()) as string[]).sort();
    assert.deepEqual(got, [0, 1, 2].map((i) => `echo:${GNAT_OUT}:${MARKER}-${i}`));
    echo.kill();
  });

  test('alice\'s PIT keys bob\'s flows on the post-NAT addresses 192.0.2.2:Z (the GNAT\'s mapped ports), encrypted', () => {
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as Array<{ proto: string; inside: string; external: string; origin: string }>;
    const pit = JSON.parse(n.g.ok('alice', ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs('alice')])) as PitRow[];
    for (const [proto, inside, port] of [['tcp', `${BOB}:40123`, TCP_PORT], ['udp', `${BOB}:40500`, UDP_PORT]] as const) {
      const s = nat.find((x) => x.proto === proto && x.inside === inside);
      assert.ok(s, `the GNAT's ${proto} session for ${inside}: ${JSON.stringify(nat)}`);
      assert.equal(s.origin, 'outbound');
      const z = Number(s.external.split(':')[1]);
      const ing = pit.find((r) => r.proto === proto && r.dir === 'ingress' && r.src === GNAT_OUT && r.sport === z && r.dst === ALICE && r.dport === port);
      const eg = pit.find((r) => r.proto === proto && r.dir === 'egress' && r.src === ALICE && r.sport === port && r.dst === GNAT_OUT && r.dport === z);
      assert.ok(ing && eg, `alice's ${proto} entries on ${GNAT_OUT}:${z}: ${JSON.stringify(pit.filter((r) => r.proto === proto))}`);
      assert.equal(ing.action, 'decrypt');
      assert.equal(eg.action, 'encrypt');
      assert.equal(pit.filter((r) => r.src === BOB || r.dst === BOB).length, 0, 'no PIT entry names the private address');
    }
  });

  test('the global leg: ciphertext only, no private address, the flows are alice <-> 192.0.2.2', async () => {
    await new Promise((r) => setTimeout(r, 200));
    await cap.stop(3000);
    const raw = cap.pcap();
    const recs = ipv4Records(readPcapFile(raw));
        assert.ok(recs.length > 50, `the capture holds the transfer (${recs.length} packets)`);
    assert.equal(recs.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global leg');
    assert.ok(!raw.includes(Buffer.from(MARKER)), 'no plaintext marker on the global leg (PCCOM after the NAPT)');
    const data = recs.filter((r) => (r.proto === 6 && (r.dport === TCP_PORT || r.sport === TCP_PORT)) || (r.proto === 17 && (r.dport === UDP_PORT || r.sport === UDP_PORT)));
    assert.ok(data.length > 20, `${data.length} packets of bob's flows`);
    assert.ok(data.every((r) => (r.src === GNAT_OUT && r.dst === ALICE) || (r.src === ALICE && r.dst === GNAT_OUT)), 'alice <-> the GNAT only');
  });
});
