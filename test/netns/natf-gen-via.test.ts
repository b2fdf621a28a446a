/**
 * NAT-f with a GEN inside the GNAT's network in front of a plain Term (ACT
 * `via`; docs/natf.md "A GEN inside the GNAT's network"): bob (100.64.2.10) is
 * a Term behind P-GEN (a CL GEN of group 10, outside 100.64.1.2 on the GNAT's
 * in0), and the GNAT's ACT entry for bob says `via: 100.64.1.2`. alice reaches
 * bob by name through real BIND 9; PCCOM runs alice <-> P-GEN, so the leg
 * between the GNAT and P-GEN is encrypted too, and P-GEN forwards to bob in
 * the clear (bob is a Term).
 *
 *  - curl http://bob.example.net:8080/blob: 6 MiB byte-exact (sha256);
 *  - captures on the global leg (GNAT out0) and on the GNAT - P-GEN leg (GNAT
 *    in0): no plaintext marker, no plaintext HTTP; the flows alice:X <->
 *    192.0.2.2:Z and alice:X <-> 100.64.2.10:8080;
 *  - a capture on the P-GEN - bob leg (P-GEN i0): the marker and HTTP in the
 *    clear, and nothing else reached bob (no control message: bob is a Term);
 *  - the GNAT's fast path encrypted or decrypted not one packet (its
 *    counters), P-GEN did;
 *  - PITs: alice G1:X <-> G2:Z encrypt/decrypt, the GNAT the same tuple pass
 *    (nothing encrypted or decrypted), P-GEN G1:X <-> P1:Y decrypt/encrypt;
 *    the GNAT's NAT session is P1:Y for peer G1:X, origin inbound;
 *  - the other way, bob -> alice (4 MiB TCP, byte-exact): P-GEN starts the
 *    negotiation for its Term, the GNAT maps the flow in its NAPT first and
 *    relays the DDE from its own address with NATF_PORT Z; alice sees
 *    192.0.2.2:Z; ciphertext on the global and the GNAT - GEN leg; PITs alice
 *    G2:Z <-> G1:Y enc/dec, the GNAT pass, P-GEN P1:X <-> G1:Y enc/dec.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sh, waitFor, waitReady } from '../lib/netns.js';
import { ipv4Records, readPcapFile } from '../../controlplane/lab/pcap.js';
import { exited, sha256 } from './pccom-topology.js';
import { ALICE, BOB_BEHIND_GEN, GNAT_OUT, HTTP_PORT, NatfTopo, type NatRow, type PitRow } from './natf-topology.js';
import { Capture } from '../lib/capture.js';
import { bobHttpServer, markedData, tcpSink, tcpSource, udpByName, udpEcho } from './natf-apps.js';
import { isPrivate } from './nat-topology.js';

const TOOLS = sh('sh', ['-c', 'command -v named && command -v dig && command -v curl && command -v tcpdump'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !TOOLS ? 'BIND 9, dig, curl or tcpdump not installed (make deps)' : null;
const MARKER = 'NATF-GENVIA-PLAINTEXT-MARKER-7e3a';
const BYTES = 6 << 20;
const VIRTUAL = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;
const P1 = BOB_BEHIND_GEN;


const TCP_PORT = 5201;
const UDP_PORT = 5300;
const BOB_PORT = 40124;


describe('NAT-f: a Term behind a GEN inside the GNAT\'s network (ACT via), reached by name; PCCOM alice <-> that GEN (BIND 9, namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let n: NatfTopo;
  let blob: string;
  let data: Buffer;
  let x = 0;
  let z = 0;

  before(async () => {
    n = new NatfTopo('natfvia', { genInside: true });
    try {
      await n.start();
      data = markedData(BYTES, MARKER);
      blob = n.t.scratchPath(`/tmp/${n.t.prefix}-blob`);
      writeFileSync(blob, data);
      await waitReady(n.t.spawn('bob', 'node', ['-e', bobHttpServer(blob, P1, HTTP_PORT, 150000)]), 'bob\'s HTTP server');
      await waitReady(n.t.spawn('bob', 'node', ['-e', udpEcho(P1, UDP_PORT, 150000)]), 'bob\'s UDP echo');
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await n?.stop(); n?.cleanupSync(); if (blob) rmSync(blob, { force: true }); });

  test('curl http://bob.example.net: 6 MiB byte-exact; ciphertext on the global and the GNAT - GEN leg, plaintext only GEN - bob', async () => {
    const files = ['global', 'gnatgen', 'genbob'].map((l) => n.t.scratchPath(`/tmp/${n.t.prefix}-${l}.pcap`));
    const caps = [
      await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: files[0], filter: 'ip' }),
      await Capture.start(n.t, { host: 'gnat', iface: 'in0', file: files[1], filter: 'ip' }),
      await Capture.start(n.t, { host: 'pgen', iface: 'i0', file: files[2], filter: 'ip' }),
    ];
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-got`);
    let raws: Buffer[] = [];
    try {
      const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '60', '-o', out, '-w', '%{remote_ip} %{local_port}', `http://bob.example.net:${HTTP_PORT}/blob`]);
      let w = '';
      let err = '';
      curl.stdout?.on('data', (d: Buffer) => { w += d.toString(); });
      curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      assert.equal(await exited(curl, 70_000), 0, `curl: ${err}\n${n.diag(['alice', 'gnat', 'pgen'])}`);
      const [remote, lport] = w.trim().split(' ');
      assert.match(remote, VIRTUAL, 'curl connected to the virtual address');
      x = Number(lport);
      const got = readFileSync(out);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all(caps.map((c) => c.stop(3000)));
      raws = caps.map((c) => c.pcap());
      for (const f of files) rmSync(f, { force: true });
      rmSync(out, { force: true });
    }
    // Not one packet decrypted or encrypted at the GNAT, not even the first (the PIT dump shows only the end state).
    const cipherAt = (h: 'gnat' | 'pgen'): number => n.metrics(h).split('\n').filter((l) => l.startsWith('gscip_datapath_direction_packets_total') && /reason="pit_(encrypt|decrypt)"/.test(l))
      .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    assert.equal(cipherAt('gnat'), 0, `the GNAT's fast path encrypted or decrypted nothing\n${n.diag(['alice', 'gnat', 'pgen'])}`);
    assert.ok(cipherAt('pgen') > 100, 'the GEN did');
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as NatRow[];
    const s = nat.find((r) => r.proto === 'tcp' && r.inside === `${P1}:${HTTP_PORT}` && r.peer === `${ALICE}:${x}`);
    assert.ok(s, `the GNAT's session for bob and alice's port ${x}: ${JSON.stringify(nat)}`);
    assert.equal(s.origin, 'inbound');
    z = Number(s.external.split(':')[1]);

    const [gl, gg, gb] = raws.map((r) => ipv4Records(readPcapFile(r)));
    const tcp = (l: typeof gl) => l.filter((r) => r.proto === 6);
    assert.ok(tcp(gl).length > 20 && tcp(gg).length > 20 && tcp(gb).length > 20, `the three captures hold the transfer (${tcp(gl).length} / ${tcp(gg).length} / ${tcp(gb).length})`);
    assert.equal(gl.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global leg');
    assert.ok(tcp(gl).every((r) => (r.src === ALICE && r.sport === x && r.dst === GNAT_OUT && r.dport === z) || (r.src === GNAT_OUT && r.sport === z && r.dst === ALICE && r.dport === x)),
      `the global leg is alice:${x} <-> ${GNAT_OUT}:${z}`);
    const isFlow = (r: (typeof gl)[number]): boolean => (r.proto === 6 && r.src === ALICE && r.sport === x && r.dst === P1 && r.dport === HTTP_PORT)
      || (r.proto === 6 && r.src === P1 && r.sport === HTTP_PORT && r.dst === ALICE && r.dport === x);
    assert.ok(tcp(gg).every(isFlow), `the GNAT - GEN leg is alice:${x} <-> ${P1}:${HTTP_PORT}`);
    assert.ok(gb.every(isFlow), `nothing but the flow reached bob, no control message (a Term): ${JSON.stringify(gb.filter((r) => !isFlow(r)).map((r) => [r.proto, r.src, r.dst]))}`);
    for (const [leg, raw] of [['global', raws[0]], ['GNAT - GEN', raws[1]]] as const) {
      assert.ok(!raw.includes(Buffer.from(MARKER)), `no plaintext marker on the ${leg} leg (PCCOM alice <-> GEN)`);
      assert.ok(!raw.includes(Buffer.from('HTTP/1.1')), `no plaintext HTTP on the ${leg} leg`);
    }
    assert.ok(raws[2].includes(Buffer.from(MARKER)), 'the GEN - bob leg is plaintext (the GEN decrypts for its Term)');
    assert.ok(raws[2].includes(Buffer.from('HTTP/1.1')), 'plaintext HTTP between the GEN and bob');
  });

  test('the PITs on each view: alice G1:X <-> G2:Z enc/dec, the GNAT pass, the GEN G1:X <-> P1:Y dec/enc', () => {
    assert.ok(x > 0 && z > 0, 'the transfer ran');
    const pit = (host: string): PitRow[] => JSON.parse(n.g.ok(host, ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs(host)])) as PitRow[];
    const one = (rows: PitRow[], dir: string, src: string, sport: number, dst: string, dport: number): PitRow | undefined =>
      rows.find((r) => r.proto === 'tcp' && r.dir === dir && r.src === src && r.sport === sport && r.dst === dst && r.dport === dport);

    const a = pit('alice');
    assert.equal(one(a, 'egress', ALICE, x, GNAT_OUT, z)?.action, 'encrypt', `alice G1:X -> G2:Z: ${JSON.stringify(a)}`);
    assert.equal(one(a, 'ingress', GNAT_OUT, z, ALICE, x)?.action, 'decrypt');
    assert.equal(a.filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no entry at alice names a private address');

    const g = pit('gnat');
    assert.equal(one(g, 'ingress', ALICE, x, GNAT_OUT, z)?.action, 'pass', `the GNAT G1:X -> G2:Z: ${JSON.stringify(g)}`);
    assert.equal(one(g, 'egress', GNAT_OUT, z, ALICE, x)?.action, 'pass');
    assert.equal(g.filter((r) => r.action === 'encrypt' || r.action === 'decrypt').length, 0, 'the GNAT decrypts nothing');

    const p = pit('pgen');
    assert.equal(one(p, 'ingress', ALICE, x, P1, HTTP_PORT)?.action, 'decrypt', `the GEN G1:X -> P1:Y: ${JSON.stringify(p)}`);
    assert.equal(one(p, 'egress', P1, HTTP_PORT, ALICE, x)?.action, 'encrypt');
    assert.equal(p.filter((r) => r.src === GNAT_OUT || r.dst === GNAT_OUT).length, 0, 'the GEN keys nothing on the GNAT\'s address');
  });

  test('UDP by name to bob: three datagrams echoed from the virtual address, bob sees alice, ciphertext on the GNAT - GEN leg, the GEN decrypts', async () => {
    const files = ['gnatgen', 'genbob'].map((l) => n.t.scratchPath(`/tmp/${n.t.prefix}-udp-${l}.pcap`));
    const caps = [
      await Capture.start(n.t, { host: 'gnat', iface: 'in0', file: files[0], filter: ['udp', 'port', String(UDP_PORT)] }),
      await Capture.start(n.t, { host: 'pgen', iface: 'i0', file: files[1], filter: ['udp', 'port', String(UDP_PORT)] }),
    ];
    let out = '';
    let raws: Buffer[] = [];
    try {
      const p = n.appSpawn('alice', 'node', ['-e', udpByName('bob.example.net', UDP_PORT, MARKER)]);
      p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      assert.equal(await exited(p, 15_000), 0, out);
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all(caps.map((c) => c.stop(3000)));
      raws = caps.map((c) => c.pcap());
      for (const f of files) rmSync(f, { force: true });
    }
    const got = JSON.parse(out.trim()) as string[];
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    assert.deepEqual(got.sort(), [0, 1, 2].map((i) => `${v} echo:${ALICE}:${MARKER}-${i}`), `${out}\n${n.diag(['alice', 'gnat', 'pgen'])}`);
    assert.ok(ipv4Records(readPcapFile(raws[0])).length >= 6, 'the datagrams crossed the GNAT - GEN leg');
    assert.ok(!raws[0].includes(Buffer.from(MARKER)), 'no plaintext marker on the GNAT - GEN leg');
    assert.ok(raws[1].includes(Buffer.from(MARKER)), 'the GEN - bob leg carries them in the clear (bob is a Term)');
    const g = JSON.parse(n.g.ok('pgen', ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs('pgen')])) as PitRow[];
    assert.ok(g.some((r) => r.proto === 'udp' && r.dir === 'ingress' && r.src === ALICE && r.dst === P1 && r.dport === UDP_PORT && r.action === 'decrypt'), JSON.stringify(g));
  });

  test('bob\'s service sees alice\'s own address (only the destination is translated)', () => {
    const r = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://bob.example.net:${HTTP_PORT}/`], { allowFail: true });
    assert.equal(r.code, 0, `${r.stderr}\n${n.diag(['alice', 'gnat', 'pgen'])}`);
    assert.equal(r.stdout.trim(), `hello from bob, you are ${ALICE}`);
  });

  test('bob -> alice through the GEN and the GNAT\'s NAPT: 4 MiB byte-exact, ciphertext on the global and the GNAT - GEN leg, PITs on each view', async () => {
    const bytes = 4 << 20;
    const sent = markedData(bytes, MARKER);
    const inp = n.t.scratchPath(`/tmp/${n.t.prefix}-in`);
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-out`);
    const files = ['global2', 'gnatgen2'].map((l) => n.t.scratchPath(`/tmp/${n.t.prefix}-${l}.pcap`));
    writeFileSync(inp, sent);
    const caps = [
      await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: files[0], filter: 'ip' }),
      await Capture.start(n.t, { host: 'gnat', iface: 'in0', file: files[1], filter: 'ip' }),
    ];
    let raws: Buffer[] = [];
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
      assert.equal(await exited(src, 80_000), 0, `bob's connection closed cleanly: ${srcErr}\n${n.diag(['alice', 'gnat', 'pgen'])}`);
      assert.equal(await exited(sink, 10_000), 0, `the sink saw the stream end: ${sinkOut}`);
      peer = /peer (\S+):(\d+)/.exec(sinkOut);
      assert.ok(peer, sinkOut);
      assert.equal(peer[1], GNAT_OUT, 'alice\'s application saw the GNAT\'s address');
      assert.equal(sha256(readFileSync(out)), sha256(sent), 'byte-exact');
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all(caps.map((c) => c.stop(3000)));
      raws = caps.map((c) => c.pcap());
      for (const f of [...files, inp, out]) rmSync(f, { force: true });
    }
    const zz = Number(peer![2]);
    for (const [leg, raw] of [['global', raws[0]], ['GNAT - GEN', raws[1]]] as const) {
      assert.ok(ipv4Records(readPcapFile(raw)).filter((r) => r.proto === 6).length > 20, `the ${leg} capture holds the transfer`);
      assert.ok(!raw.includes(Buffer.from(MARKER)), `no plaintext marker on the ${leg} leg`);
    }
    assert.equal(ipv4Records(readPcapFile(raws[0])).filter((r) => isPrivate(r.src) || isPrivate(r.dst)).length, 0, 'no private address on the global leg (control messages included)');
    const pit = (host: string): PitRow[] => JSON.parse(n.g.ok(host, ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs(host)])) as PitRow[];
    const one = (rows: PitRow[], dir: string, src: string, sport: number, dst: string, dport: number): PitRow | undefined =>
      rows.find((r) => r.proto === 'tcp' && r.dir === dir && r.src === src && r.sport === sport && r.dst === dst && r.dport === dport);
    const a = pit('alice');
    assert.equal(one(a, 'ingress', GNAT_OUT, zz, ALICE, TCP_PORT)?.action, 'decrypt', `alice G2:Z -> G1:Y: ${JSON.stringify(a)}`);
    assert.equal(one(a, 'egress', ALICE, TCP_PORT, GNAT_OUT, zz)?.action, 'encrypt');
    const g = pit('gnat');
    assert.equal(one(g, 'egress', GNAT_OUT, zz, ALICE, TCP_PORT)?.action, 'pass', `the GNAT G2:Z -> G1:Y: ${JSON.stringify(g)}`);
    assert.equal(one(g, 'ingress', ALICE, TCP_PORT, GNAT_OUT, zz)?.action, 'pass');
    assert.equal(g.filter((r) => r.action === 'encrypt' || r.action === 'decrypt').length, 0, 'the GNAT decrypts nothing');
    const p = pit('pgen');
    assert.equal(one(p, 'egress', P1, BOB_PORT, ALICE, TCP_PORT)?.action, 'encrypt', `the GEN P1:X -> G1:Y: ${JSON.stringify(p)}`);
    assert.equal(one(p, 'ingress', ALICE, TCP_PORT, P1, BOB_PORT)?.action, 'decrypt');
  });

  test('a key rotation mid-transfer re-keys the flow between alice and the GEN: byte-exact, the GNAT still only passes, both on version 2', async () => {
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-got-rekey`);
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    const cipherAtGnat = (): number => n.metrics('gnat').split('\n').filter((l) => l.startsWith('gscip_datapath_direction_packets_total') && /reason="pit_(encrypt|decrypt)"/.test(l))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const gnat0 = cipherAtGnat();
    const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '60', '--limit-rate', '1M', '-o', out, '-w', '%{local_port}', `http://${v}:${HTTP_PORT}/blob`]);
    let w = '';
    let err = '';
    curl.stdout?.on('data', (d: Buffer) => { w += d.toString(); });
    curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const key2 = randomBytes(32).toString('hex');
      for (const h of ['alice', 'gnat', 'pgen', 'glob']) n.g.ok(h, ['keys', 'set', '--group', '10', '--version', '2', ...n.g.instanceArgs(h)], `${key2}\n`);
      assert.equal(await exited(curl, 70_000), 0, `curl: ${err}\n${n.diag(['alice', 'gnat', 'pgen'])}`);
      assert.equal(sha256(readFileSync(out)), sha256(data), 'byte-exact across the re-key');
    } finally {
      rmSync(out, { force: true });
    }
    const xp = Number(w.trim());
    const ver = (r: PitRow): number | undefined => r.version ?? r.keyVersion;
    const rows = (h: string): PitRow[] => (JSON.parse(n.g.ok(h, ['maps', 'dump', 'pit', '--json', ...n.g.instanceArgs(h)])) as PitRow[])
      .filter((r) => r.proto === 'tcp' && ((r.src === ALICE && r.sport === xp) || (r.dst === ALICE && r.dport === xp)));
    const a = rows('alice');
    const g = rows('pgen');
    assert.ok(a.length === 2 && a.every((r) => (r.action === 'encrypt' || r.action === 'decrypt') && ver(r) === 2 && (r.src === GNAT_OUT || r.dst === GNAT_OUT)), `alice on G2:Z, version 2: ${JSON.stringify(a)}`);
    assert.ok(g.length === 2 && g.every((r) => (r.action === 'encrypt' || r.action === 'decrypt') && ver(r) === 2 && (r.src === P1 || r.dst === P1)), `the GEN on P1:Y, version 2: ${JSON.stringify(g)}`);
    assert.ok(rows('gnat').every((r) => r.action === 'pass'), 'the GNAT passes the flow');
    assert.equal(cipherAtGnat() - gnat0, 0, 'the GNAT\'s fast path encrypted or decrypted nothing during the re-key');
  });
});
