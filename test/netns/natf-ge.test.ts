/**
 * NAT-f, the seeds' main case (SEEDS section 2.3 steps 4-8, figure c of 2.4;
 * docs/natf.md "A private GE behind the GNAT"): bob, the private host behind
 * the GNAT (100.64.1.10), is a GE itself (a GES, CL, group 10's key), and the
 * GNAT's ACT says so (`ge: true`). alice reaches it by name through real
 * BIND 9, and PCCOM runs alice <-> bob END TO END: the GNAT relays the DPRP
 * negotiation inward (its record with NATF_LIP in the DDE, NATF_PORT Z appended
 * to bob's RGI, the MPIT relayed to bob), passes the ciphertext (transit) and
 * translates only the outer addresses (G2:Z <-> P1:Y) in its eBPF NAT.
 *
 *  - curl http://bob.example.net:8080/blob: 6 MiB byte-exact; bob's server
 *    sees alice's own address (the GNAT translates the destination only);
 *  - a capture on the global leg (GNAT out0) and one on the private leg (GNAT
 *    in0, between the GNAT and bob): neither holds the plaintext marker or
 *    plaintext HTTP; the flow is alice <-> 192.0.2.2:Z on the first and alice
 *    <-> 100.64.1.10:8080 on the second;
 *  - the PITs hold the seeds' per-vantage tuples: alice G1:X <-> G2:Z
 *    encrypt/decrypt (no private address), the GNAT G1:X <-> G2:Z pass (it
 *    relays), bob G1:X <-> P1:Y encrypt/decrypt; the GNAT's NAT session is
 *    P1:Y for peer G1:X on G2:Z, origin inbound;
 *  - the other way, bob -> alice (4 MiB TCP, byte-exact): the GNAT maps bob's
 *    flow in its NAPT before the first packet and relays bob's DDE from its
 *    own address with NATF_PORT Z; alice sees 192.0.2.2:Z, ciphertext on both
 *    legs, and the PITs hold figure b's tuples: alice G2:Z <-> G1:Y
 *    encrypt/decrypt, the GNAT the same pass, bob P1:X <-> G1:Y encrypt/decrypt.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sh, waitFor, waitReady } from '../lib/netns.js';
import { ipv4Records, readPcapFile } from '../../controlplane/lab/pcap.js';
import { exited, sha256 } from './pccom-topology.js';
import { ALICE, BOB, GNAT_OUT, HTTP_PORT, NatfTopo, type NatRow, type PitRow } from './natf-topology.js';
import { Capture } from '../lib/capture.js';
import { bobHttpServer, markedData, tcpSink, tcpSource, udpByName, udpEcho } from './natf-apps.js';
import { isPrivate } from './nat-topology.js';

/** The PIT rows of `host`'s agent. */
function pitOf(n: NatfTopo, host: string): PitRow[] {
  return JSON.parse(n.g.ok(host, ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs(host)])) as PitRow[];
}

const TOOLS = sh('sh', ['-c', 'command -v named && command -v dig && command -v curl && command -v tcpdump'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !TOOLS ? 'BIND 9, dig, curl or tcpdump not installed (make deps)' : null;
const MARKER = 'NATF-GE-PLAINTEXT-MARKER-5c21';
const BYTES = 6 << 20;
const VIRTUAL = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;


const TCP_PORT = 5201;
const BOB_PORT = 40124;



const UDP_PORT = 5300;

const ALICE_UDP = 5301;
const ALICE_ECHO = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => d.send(Buffer.concat([Buffer.from('echo:' + r.address + ':'), m]), r.port, r.address));
d.bind(${ALICE_UDP}, ${JSON.stringify(ALICE)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 60000).unref();`;
/** Three datagrams (each with the marker) from bob to alice's echo; prints the replies. */
const BOB_UDP_CLIENT = `
const d = require('dgram').createSocket('udp4'); const got = [];
d.on('message', (m) => { got.push(m.toString()); if (got.length === 3) { console.log(JSON.stringify(got)); process.exit(0); } });
d.bind(40500, () => d.connect(${ALICE_UDP}, ${JSON.stringify(ALICE)}, () => { for (let i = 0; i < 3; i++) setTimeout(() => d.send(${JSON.stringify(MARKER)} + '-' + i), i * 100); }));
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 10000).unref();`;


describe('NAT-f: a private GE behind the GNAT, reached by name, encrypted end to end (BIND 9, namespaces)', { skip: unavailable ?? false, timeout: 200_000 }, () => {
  let n: NatfTopo;
  let blob: string;
  let data: Buffer;
  /** The blob transfer's ports: alice's X, the GNAT's Z. */
  let x = 0;
  let z = 0;

  before(async () => {
    n = new NatfTopo('natfge', { bobGe: true });
    try {
      await n.start();
      data = markedData(BYTES, MARKER);
      blob = n.t.scratchPath(`/tmp/${n.t.prefix}-blob`);
      writeFileSync(blob, data);
      await waitReady(n.t.spawn('bob', 'node', ['-e', bobHttpServer(blob, BOB, HTTP_PORT, 170000)]), 'bob\'s HTTP server');
      await waitReady(n.t.spawn('bob', 'node', ['-e', udpEcho(BOB, UDP_PORT, 170000)]), 'bob\'s UDP echo');
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await n?.stop(); n?.cleanupSync(); rmSync(blob, { force: true }); });

  test('curl http://bob.example.net: 6 MiB byte-exact; ciphertext on the global AND the private leg', async () => {
    const pcapOut = n.t.scratchPath(`/tmp/${n.t.prefix}-global.pcap`);
    const pcapIn = n.t.scratchPath(`/tmp/${n.t.prefix}-private.pcap`);
    const capOut = await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: pcapOut, filter: 'ip' });
    const capIn = await Capture.start(n.t, { host: 'gnat', iface: 'in0', file: pcapIn, filter: 'ip' });
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-got`);
    try {
      const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '60', '-o', out, '-w', '%{remote_ip} %{local_port}', `http://bob.example.net:${HTTP_PORT}/blob`]);
      let w = '';
      let err = '';
      curl.stdout?.on('data', (d: Buffer) => { w += d.toString(); });
      curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      assert.equal(await exited(curl, 70_000), 0, `curl: ${err}\n${n.diag(['alice', 'gnat', 'bob'])}`);
      const [remote, lport] = w.trim().split(' ');
      assert.match(remote, VIRTUAL, 'curl connected to the virtual address');
      x = Number(lport);
      const got = readFileSync(out);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all([capOut.stop(3000), capIn.stop(3000)]);
      rmSync(out, { force: true });
    }
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as NatRow[];
    const s = nat.find((r) => r.proto === 'tcp' && r.inside === `${BOB}:${HTTP_PORT}` && r.peer === `${ALICE}:${x}`);
    assert.ok(s, `the GNAT's session for bob and alice's port ${x}: ${JSON.stringify(nat)}`);
    assert.equal(s.origin, 'inbound');
    z = Number(s.external.split(':')[1]);

    const rawOut = capOut.pcap();
    const rawIn = capIn.pcap();
    rmSync(pcapOut, { force: true }); rmSync(pcapIn, { force: true });
    const gl = ipv4Records(readPcapFile(rawOut)).filter((r) => r.proto === 6);
    const pl = ipv4Records(readPcapFile(rawIn)).filter((r) => r.proto === 6);
    assert.ok(gl.length > 20 && pl.length > 20, `both captures hold the transfer (${gl.length} / ${pl.length} TCP packets)`);
    // Global leg: alice <-> G2:Z only, no private address.
    assert.equal(gl.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global leg');
    assert.ok(gl.every((r) => (r.src === ALICE && r.sport === x && r.dst === GNAT_OUT && r.dport === z) || (r.src === GNAT_OUT && r.sport === z && r.dst === ALICE && r.dport === x)),
      `the global leg is alice:${x} <-> ${GNAT_OUT}:${z}`);
    // Private leg: alice (her own address: only the destination is translated) <-> P1:Y.
    assert.ok(pl.every((r) => (r.src === ALICE && r.sport === x && r.dst === BOB && r.dport === HTTP_PORT) || (r.src === BOB && r.sport === HTTP_PORT && r.dst === ALICE && r.dport === x)),
      `the private leg is alice:${x} <-> ${BOB}:${HTTP_PORT}`);
    for (const [leg, raw] of [['global', rawOut], ['private', rawIn]] as const) {
      assert.ok(!raw.includes(Buffer.from(MARKER)), `no plaintext marker on the ${leg} leg (PCCOM end to end)`);
      assert.ok(!raw.includes(Buffer.from('HTTP/1.1')), `no plaintext HTTP on the ${leg} leg`);
    }
  });

  test('the PITs hold the seeds\' per-vantage tuples: alice G1:X <-> G2:Z, the GNAT G1:X <-> G2:Z pass, bob G1:X <-> P1:Y', () => {
    assert.ok(x > 0 && z > 0, 'the transfer ran');
    const pit = (host: string): PitRow[] => JSON.parse(n.g.ok(host, ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs(host)])) as PitRow[];
    const pair = (rows: PitRow[], a: string, ap: number, b: string, bp: number): { ing?: PitRow; eg?: PitRow } => ({
      ing: rows.find((r) => r.proto === 'tcp' && r.dir === 'ingress' && r.src === b && r.sport === bp && r.dst === a && r.dport === ap)
        ?? rows.find((r) => r.proto === 'tcp' && r.dir === 'ingress' && r.src === a && r.sport === ap && r.dst === b && r.dport === bp),
      eg: rows.find((r) => r.proto === 'tcp' && r.dir === 'egress' && r.src === a && r.sport === ap && r.dst === b && r.dport === bp)
        ?? rows.find((r) => r.proto === 'tcp' && r.dir === 'egress' && r.src === b && r.sport === bp && r.dst === a && r.dport === ap),
    });

    const a = pit('alice');
    const pa = pair(a, ALICE, x, GNAT_OUT, z);
    assert.ok(pa.ing && pa.eg, `alice's entries on ${ALICE}:${x} <-> ${GNAT_OUT}:${z}: ${JSON.stringify(a)}`);
    assert.equal(pa.eg.action, 'encrypt');
    assert.equal(pa.ing.action, 'decrypt');
    assert.equal(a.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no entry at alice names a private address');

    const g = pit('gnat');
    const pg = pair(g, ALICE, x, GNAT_OUT, z);
    assert.ok(pg.ing && pg.eg, `the GNAT's entries on ${ALICE}:${x} <-> ${GNAT_OUT}:${z}: ${JSON.stringify(g)}`);
    assert.equal(pg.ing.action, 'pass', 'the GNAT relays the ciphertext (figure c: relay, not enc/dec)');
    assert.equal(pg.eg.action, 'pass');
    assert.equal(g.filter((r) => r.action === 'encrypt' || r.action === 'decrypt').length, 0, 'the GNAT decrypts nothing');

    const b = pit('bob');
    const pb = pair(b, BOB, HTTP_PORT, ALICE, x);
    assert.ok(pb.ing && pb.eg, `bob's entries on ${ALICE}:${x} <-> ${BOB}:${HTTP_PORT}: ${JSON.stringify(b)}`);
    assert.equal(pb.ing.action, 'decrypt');
    assert.equal(pb.eg.action, 'encrypt');
    assert.equal(b.filter((r) => r.src === GNAT_OUT || r.dst === GNAT_OUT).length, 0, 'bob keys nothing on the GNAT\'s address');
  });

  test('bob\'s service sees alice\'s own address; a second request by name is negotiated end to end again', () => {
    const r = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://bob.example.net:${HTTP_PORT}/`], { allowFail: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `hello from bob, you are ${ALICE}`);
    assert.match(n.metrics('gnat'), /gscip_nat_inbound_mappings_total\{result="created"\} [2-9]/);
  });

  test('bob -> alice (private GE to global GE) through the NAPT: 4 MiB byte-exact, ciphertext on both legs, figure b\'s PIT tuples', async () => {
    const bytes = 4 << 20;
    const sent = markedData(bytes, MARKER);
    const inp = n.t.scratchPath(`/tmp/${n.t.prefix}-in`);
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-out`);
    const pcapOut = n.t.scratchPath(`/tmp/${n.t.prefix}-global2.pcap`);
    const pcapIn = n.t.scratchPath(`/tmp/${n.t.prefix}-private2.pcap`);
    writeFileSync(inp, sent);
    const capOut = await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: pcapOut, filter: 'ip' });
    const capIn = await Capture.start(n.t, { host: 'gnat', iface: 'in0', file: pcapIn, filter: 'ip' });
    let peer: RegExpExecArray | null = null;
    try {
      const sink = n.t.spawn('alice', 'node', ['-e', tcpSink(out, ALICE, TCP_PORT)]);
      let sinkOut = '';
      sink.stdout?.setEncoding('utf8');
      sink.stdout?.on('data', (d: string) => { sinkOut += d; });
      await waitFor('TCP sink on alice', () => sinkOut.includes('ready'), 5000);
      const src = n.t.spawn('bob', 'node', ['-e', tcpSource(inp, ALICE, TCP_PORT, BOB_PORT)]);
      let srcErr = '';
      src.stderr?.on('data', (d: Buffer) => { srcErr += d.toString(); });
      assert.equal(await exited(src, 80_000), 0, `bob's connection closed cleanly: ${srcErr}\n${n.diag(['alice', 'gnat', 'bob'])}`);
      assert.equal(await exited(sink, 10_000), 0, `the sink saw the stream end: ${sinkOut}`);
      peer = /peer (\S+):(\d+)/.exec(sinkOut);
      assert.ok(peer, sinkOut);
      assert.equal(peer[1], GNAT_OUT, 'alice\'s application saw the GNAT\'s address');
      const got = readFileSync(out);
      assert.equal(got.length, bytes);
      assert.equal(sha256(got), sha256(sent), 'byte-exact');
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all([capOut.stop(3000), capIn.stop(3000)]);
      rmSync(inp, { force: true }); rmSync(out, { force: true });
    }
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as NatRow[];
    const s = nat.find((r) => r.proto === 'tcp' && r.inside === `${BOB}:${BOB_PORT}` && r.peer === `${ALICE}:${TCP_PORT}`);
    assert.ok(s, `the GNAT's session for bob's flow: ${JSON.stringify(nat)}`);
    assert.equal(s.origin, 'outbound');
    const z2 = Number(s.external.split(':')[1]);
    assert.equal(Number(peer![2]), z2, 'alice saw the port the GNAT mapped');

    const rawOut = capOut.pcap();
    const rawIn = capIn.pcap();
    rmSync(pcapOut, { force: true }); rmSync(pcapIn, { force: true });
    const gl = ipv4Records(readPcapFile(rawOut)).filter((r) => r.proto === 6);
    const pl = ipv4Records(readPcapFile(rawIn)).filter((r) => r.proto === 6);
    assert.ok(gl.length > 50 && pl.length > 50, `both captures hold the transfer (${gl.length} / ${pl.length} TCP packets)`);
    assert.equal(ipv4Records(readPcapFile(rawOut)).filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global leg (control messages included)');
    assert.ok(gl.every((r) => (r.src === GNAT_OUT && r.sport === z2 && r.dst === ALICE && r.dport === TCP_PORT) || (r.src === ALICE && r.sport === TCP_PORT && r.dst === GNAT_OUT && r.dport === z2)),
      `the global leg is ${GNAT_OUT}:${z2} <-> alice:${TCP_PORT}`);
    assert.ok(pl.every((r) => (r.src === BOB && r.sport === BOB_PORT && r.dst === ALICE && r.dport === TCP_PORT) || (r.src === ALICE && r.sport === TCP_PORT && r.dst === BOB && r.dport === BOB_PORT)),
      `the private leg is bob:${BOB_PORT} <-> alice:${TCP_PORT}`);
    for (const [leg, raw] of [['global', rawOut], ['private', rawIn]] as const) {
      assert.ok(!raw.includes(Buffer.from(MARKER)), `no plaintext marker on the ${leg} leg (PCCOM end to end)`);
    }

    const pit = (host: string): PitRow[] => JSON.parse(n.g.ok(host, ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs(host)])) as PitRow[];
    const find = (rows: PitRow[], dir: string, src: string, sport: number, dst: string, dport: number): PitRow | undefined =>
      rows.find((r) => r.proto === 'tcp' && r.dir === dir && r.src === src && r.sport === sport && r.dst === dst && r.dport === dport);
    const a = pit('alice');
    assert.equal(find(a, 'ingress', GNAT_OUT, z2, ALICE, TCP_PORT)?.action, 'decrypt', `alice: G2:Z -> G1:Y decrypt: ${JSON.stringify(a)}`);
    assert.equal(find(a, 'egress', ALICE, TCP_PORT, GNAT_OUT, z2)?.action, 'encrypt');
    assert.equal(a.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no entry at alice names a private address');
    const g = pit('gnat');
    assert.equal(find(g, 'egress', GNAT_OUT, z2, ALICE, TCP_PORT)?.action, 'pass', `the GNAT: G2:Z <-> G1:Y pass: ${JSON.stringify(g)}`);
    assert.equal(find(g, 'ingress', ALICE, TCP_PORT, GNAT_OUT, z2)?.action, 'pass');
    assert.equal(g.filter((r) => r.action === 'encrypt' || r.action === 'decrypt').length, 0, 'the GNAT decrypts nothing');
    const b = pit('bob');
    assert.equal(find(b, 'egress', BOB, BOB_PORT, ALICE, TCP_PORT)?.action, 'encrypt', `bob: P1:X -> G1:Y encrypt: ${JSON.stringify(b)}`);
    assert.equal(find(b, 'ingress', ALICE, TCP_PORT, BOB, BOB_PORT)?.action, 'decrypt');
    assert.match(n.metrics('gnat'), /gscip_nat_outbound_mappings_total\{result="created"\} 1/);
  });

  test('UDP by name to the private GE: three datagrams echoed from the virtual address, bob sees alice, ciphertext on the private leg', async () => {
    const pcapIn = n.t.scratchPath(`/tmp/${n.t.prefix}-private3.pcap`);
    const capIn = await Capture.start(n.t, { host: 'gnat', iface: 'in0', file: pcapIn, filter: ['udp', 'port', String(UDP_PORT)] });
    let out = '';
    try {
      const p = n.appSpawn('alice', 'node', ['-e', udpByName('bob.example.net', UDP_PORT, MARKER)]);
      p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      assert.equal(await exited(p, 15_000), 0, out);
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await capIn.stop(3000);
    }
    const got = JSON.parse(out.trim()) as string[];
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    assert.deepEqual(got.sort(), [0, 1, 2].map((i) => `${v} echo:${ALICE}:${MARKER}-${i}`), `${out}\n${n.diag(['alice', 'gnat', 'bob'])}`);
    const raw = capIn.pcap();
    rmSync(pcapIn, { force: true });
    assert.ok(ipv4Records(readPcapFile(raw)).length >= 6, 'the datagrams crossed the private leg');
    assert.ok(!raw.includes(Buffer.from(MARKER)), 'no plaintext marker on the private leg');
    const b = JSON.parse(n.g.ok('bob', ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs('bob')])) as PitRow[];
    assert.ok(b.some((r) => r.proto === 'udp' && r.dir === 'ingress' && r.src === ALICE && r.dst === BOB && r.dport === UDP_PORT && r.action === 'decrypt'), JSON.stringify(b));
  });

  test('UDP from the private GE to alice through the NAPT: three datagrams echoed, alice saw them from 192.0.2.2, ciphertext on the global leg', async () => {
    const pcapOut = n.t.scratchPath(`/tmp/${n.t.prefix}-global4.pcap`);
    const capOut = await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: pcapOut, filter: ['udp', 'port', String(ALICE_UDP)] });
    const echo = n.t.spawn('alice', 'node', ['-e', ALICE_ECHO]);
    let out = '';
    try {
      await waitReady(echo, 'alice\'s UDP echo');
      const p = n.t.spawn('bob', 'node', ['-e', BOB_UDP_CLIENT]);
      p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      assert.equal(await exited(p, 15_000), 0, out);
    } finally {
      echo.kill();
      await new Promise((r) => setTimeout(r, 200));
      await capOut.stop(3000);
    }
    assert.deepEqual((JSON.parse(out.trim()) as string[]).sort(), [0, 1, 2].map((i) => `echo:${GNAT_OUT}:${MARKER}-${i}`), `${out}\n${n.diag(['alice', 'gnat', 'bob'])}`);
    const raw = capOut.pcap();
    rmSync(pcapOut, { force: true });
    const recs = ipv4Records(readPcapFile(raw));
    assert.ok(recs.length >= 6, 'the datagrams crossed the global leg');
    assert.equal(recs.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global leg');
    assert.ok(!raw.includes(Buffer.from(MARKER)), 'no plaintext marker on the global leg');
  });

  test('a key rotation mid-transfer re-keys the flow end to end: byte-exact, the GNAT still passes, alice and bob on version 2', async () => {
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-got5`);
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '60', '--limit-rate', '1M', '-o', out, '-w', '%{local_port}', `http://${v}:${HTTP_PORT}/blob`]);
    let w = '';
    let err = '';
    curl.stdout?.on('data', (d: Buffer) => { w += d.toString(); });
    curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const key2 = randomBytes(32).toString('hex');
      for (const h of ['alice', 'gnat', 'bob', 'glob']) n.g.ok(h, ['keys', 'set', '--group', '10', '--version', '2', ...n.g.instanceArgs(h)], `${key2}\n`);
      assert.equal(await exited(curl, 70_000), 0, `curl: ${err}\n${n.diag(['alice', 'gnat', 'bob'])}`);
      assert.equal(sha256(readFileSync(out)), sha256(data), 'byte-exact across the re-key');
    } finally {
      rmSync(out, { force: true });
    }
    const xp = Number(w.trim());
    const ver = (r: PitRow | undefined): number | undefined => r?.version ?? r?.keyVersion;
    const a = pitOf(n, 'alice').filter((r) => r.proto === 'tcp' && ((r.src === ALICE && r.sport === xp) || (r.dst === ALICE && r.dport === xp)));
    const g = pitOf(n, 'gnat').filter((r) => r.proto === 'tcp' && ((r.src === ALICE && r.sport === xp) || (r.dst === ALICE && r.dport === xp)));
    const b = pitOf(n, 'bob').filter((r) => r.proto === 'tcp' && ((r.src === ALICE && r.sport === xp) || (r.dst === ALICE && r.dport === xp)));
    assert.ok(a.length === 2 && a.every((r) => (r.action === 'encrypt' || r.action === 'decrypt') && ver(r) === 2 && (r.src === GNAT_OUT || r.dst === GNAT_OUT)), `alice on G2:Z, version 2: ${JSON.stringify(a)}`);
    assert.ok(g.length > 0 && g.every((r) => r.action === 'pass'), `the GNAT passes, decrypts nothing: ${JSON.stringify(g)}`);
    assert.ok(b.length === 2 && b.every((r) => (r.action === 'encrypt' || r.action === 'decrypt') && ver(r) === 2 && (r.src === BOB || r.dst === BOB)), `bob on P1:Y, version 2: ${JSON.stringify(b)}`);
  });
});
