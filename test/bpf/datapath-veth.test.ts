/**
 * The datapath on a real veth pair, for what BPF_PROG_TEST_RUN cannot show:
 *
 * 1. XLAT on CHECKSUM_PARTIAL / GSO skbs. TCP always hands TC egress
 *    CHECKSUM_PARTIAL skbs (the L4 field holds the pseudo-header seed), GSO
 *    super-packets for bulk data. With tx checksumming off on the sending veth
 *    the kernel completes the checksum in software AFTER our egress program
 *    (validate_xmit_skb), and with rx checksumming off on the receiving veth
 *    the receiver verifies every checksum in software. So a wrong
 *    pseudo-header fix-up shows as InCsumErrors and a broken transfer, and a
 *    capture on the receiver holds the final bytes, verified here again by
 *    test/lib/packets.ts.
 * 2. Release marks on the real kernel path: a frame sent through an AF_PACKET
 *    socket with SO_MARK = GSCIP_MARK_RELEASE_INGRESS meets the egress program,
 *    is redirected to the interface's ingress, and the ingress program (not
 *    the egress one) processes it: it takes its ingress PIT hit, is counted
 *    released, and reaches a socket in that namespace.
 *
 * 3. XLAT on CHECKSUM_PARTIAL skbs on INGRESS, as a GNAT / GSRA router does
 *    it: a peer's offloaded packets arrive partial, are translated by the
 *    ingress program (destination NAT) and forwarded out of a device that
 *    completes checksums in software; the far end verifies them.
 *
 * Topology: <prefix>-a (va 192.0.2.1) <-veth-> <prefix>-b (vb 192.0.2.2);
 * programs on va (egress + ingress), loaded by the test without map pins,
 * programs pinned under /sys/fs/bpf/gscip-test-<prefix>/ for `tc ... pinned`.
 * The router case adds <prefix>-c (vc 198.51.100.2) behind a's va2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { mkdirP } from '../../controlplane/bpf/bpffs.js';
import { resolve } from 'node:path';
import { type ChildProcess } from 'node:child_process';
import { BpfHarness, bpfUnavailable } from '../lib/bpf-harness.js';
import { Topology, sh, waitFor } from '../lib/netns.js';
import { IPPROTO_TCP, IPPROTO_UDP, parseFrame, readPcap, udpFrame } from '../lib/packets.js';
import { objPin } from '../../controlplane/bpf/libbpf.js';
import { Action, Dir, MissAction, PitState, Role, XlatKind } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';
import { Capture } from '../lib/capture.js';

const A = '192.0.2.1';
const B = '192.0.2.2';
const V = '198.18.0.9'; // the address the application in a uses for b

const PACKET_SENDER = resolve(__dirname, '../../controlplane/agent/packet-sender.js');

const unavailable = bpfUnavailable();

function pass(): PitVal {
  return { action: Action.PASS, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n };
}

/** /proc/net/snmp of a namespace as { 'Tcp.InCsumErrors': n, ... }. */
function snmp(topo: Topology, host: string): Record<string, number> {
  const lines = topo.exec(host, 'cat', ['/proc/net/snmp']).stdout.trim().split('\n');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/);
    const vals = lines[i + 1].split(/\s+/);
    const proto = names[0].replace(':', '');
    for (let j = 1; j < names.length; j++) out[`${proto}.${names[j]}`] = Number(vals[j]);
  }
  return out;
}

/** First line a child prints on stdout (bounded wait). */
async function firstLine(child: ChildProcess, what: string, timeoutMs = 5000): Promise<string> {
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => { buf += d; });
  return waitFor(what, () => (buf.includes('\n') ? buf.split('\n')[0] : ''), timeoutMs);
}

const TCP_ECHO_SERVER = `
const net = require('net');
const srv = net.createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
srv.listen(9090, '${B}', () => console.log('ready'));`;

const UDP_ECHO_SERVER = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(9091, '${B}', () => console.log('ready'));`;

const TCP_CLIENT = `
const net = require('net'), crypto = require('crypto');
const data = crypto.randomBytes(4 << 20);
const h = (b) => crypto.createHash('sha256').update(b).digest('hex');
const got = [];
const s = net.connect({ host: '${V}', port: 8080, localAddress: '${A}', localPort: 40100 }, () => s.end(data));
s.on('data', (d) => got.push(d));
s.on('end', () => { const b = Buffer.concat(got); console.log(JSON.stringify({ sent: h(data), got: h(b), len: b.length })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(0); });
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, 15000);`;

const UDP_CLIENT = `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => { console.log(JSON.stringify({ msg: m.toString(), from: r.address, port: r.port })); process.exit(0); });
s.bind(40101, '${A}', () => s.send(Buffer.from('udp through a virtual address'), 8081, '${V}'));
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, 5000);`;

const UDP_LISTEN = (addr: string, port: number): string => `
const s = require('dgram').createSocket('udp4');
s.on('message', (m, r) => { console.log(JSON.stringify({ msg: m.toString(), from: r.address })); process.exit(0); });
s.bind(${port}, '${addr}', () => console.log('ready'));
setTimeout(() => process.exit(3), 10000);`;

const RELEASE = (ifindex: number, dir: number, frameHex: string): string => `
const { PacketSender } = require(${JSON.stringify(PACKET_SENDER)});
const s = new PacketSender();
s.release(${ifindex}, ${dir}, Buffer.from('${frameHex}', 'hex'));
s.close();`;

describe('TC datapath on a veth pair', { skip: unavailable ?? false }, () => {
  let topo: Topology;
  let h: BpfHarness;
  let pinDir = '';
  let va = 0;

  before(() => {
    topo = new Topology('dpveth');
    pinDir = topo.scratchPinRoot();
    topo.addHost('a');
    topo.addHost('b');
    topo.link('a', 'va', 'b', 'vb');
    topo.addr('a', 'va', `${A}/24`);
    topo.addr('b', 'vb', `${B}/24`);
    topo.route('a', `${V}/32`, B);
    // checksums completed in software after TC egress, verified in software on receive
    topo.exec('a', 'ethtool', ['-K', 'va', 'tx', 'off', 'rx', 'off']);
    topo.exec('b', 'ethtool', ['-K', 'vb', 'tx', 'off', 'rx', 'off']);
    va = topo.ifindex('a', 'va');

    h = BpfHarness.open();
    mkdirP(pinDir);
    const netns = `--net=/run/netns/${topo.ns('a')}`;
    sh('nsenter', [netns, 'tc', 'qdisc', 'add', 'dev', 'va', 'clsact']);
    for (const dir of ['ingress', 'egress'] as const) {
      const pin = `${pinDir}/${dir}`;
      objPin(h.obj.progFd(`gscip_tc_${dir}`), pin);
      sh('nsenter', [netns, 'tc', 'filter', 'add', 'dev', 'va', dir, 'bpf', 'direct-action', 'pinned', pin]);
    }
  });

  after(() => {
    topo?.cleanupSync(); // deleting the namespace removes va, its clsact qdisc and filters
    if (pinDir) rmSync(pinDir, { recursive: true, force: true });
    h?.close();
  });

  test('XLAT on CHECKSUM_PARTIAL/GSO TCP and UDP: the app reaches a virtual address, every checksum on the wire is right', async (t) => {
    h.maps.iface.set(va, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 1 });
    const x = (c: Cid, to: { saddr: string; daddr: string; sport: number; dport: number }): void =>
      h.maps.xlat.set(c, { ...to, kind: XlatKind.VAT, created_ns: 0n });
    x({ saddr: A, daddr: V, sport: 40100, dport: 8080, proto: IPPROTO_TCP, dir: Dir.EGRESS }, { saddr: A, daddr: B, sport: 40100, dport: 9090 });
    x({ saddr: B, daddr: A, sport: 9090, dport: 40100, proto: IPPROTO_TCP, dir: Dir.INGRESS }, { saddr: V, daddr: A, sport: 8080, dport: 40100 });
    x({ saddr: A, daddr: V, sport: 40101, dport: 8081, proto: IPPROTO_UDP, dir: Dir.EGRESS }, { saddr: A, daddr: B, sport: 40101, dport: 9091 });
    x({ saddr: B, daddr: A, sport: 9091, dport: 40101, proto: IPPROTO_UDP, dir: Dir.INGRESS }, { saddr: V, daddr: A, sport: 8081, dport: 40101 });
    h.resetStats();
    const before = { a: snmp(topo, 'a'), b: snmp(topo, 'b') };

    const pcap = `/tmp/${topo.prefix}-vb.pcap`;
    t.after(() => rmSync(pcap, { force: true }));
    const cap = await Capture.start(topo, { host: 'b', iface: 'vb', file: pcap, immediate: false, filter: 'tcp port 9090 or udp port 9091' });
    try {
      const tsrv = topo.spawn('b', 'node', ['-e', TCP_ECHO_SERVER]);
      const usrv = topo.spawn('b', 'node', ['-e', UDP_ECHO_SERVER]);
      await firstLine(tsrv, 'TCP echo server');
      await firstLine(usrv, 'UDP echo server');

      const tcp = JSON.parse(topo.exec('a', 'node', ['-e', TCP_CLIENT], { timeoutMs: 30_000 }).stdout.trim()) as Record<string, unknown>;
      assert.equal(tcp.error, undefined, `TCP client: ${String(tcp.error)}`);
      assert.equal(tcp.len, 4 << 20);
      assert.equal(tcp.got, tcp.sent, '4 MiB echoed through the translation, bytes identical');

      const udp = JSON.parse(topo.exec('a', 'node', ['-e', UDP_CLIENT], { timeoutMs: 10_000 }).stdout.trim()) as Record<string, unknown>;
      assert.deepEqual(udp, { msg: 'udp through a virtual address', from: V, port: 8081 });
    } finally {
      await cap.stop(3000);
    }

    let frames: Buffer[];
    try { frames = readPcap(cap.pcap()); } finally { rmSync(pcap, { force: true }); }
    let toB = 0;
    for (const f of frames) {
      const p = parseFrame(f);
      assert.ok(p.ip?.checksumOk, 'IPv4 header checksum on the wire');
      assert.ok(p.l4?.checksumOk, `L4 checksum on the wire (${p.ip?.src}:${p.l4?.sport} -> ${p.ip?.dst}:${p.l4?.dport})`);
      assert.notEqual(p.ip?.dst, V, 'a virtual address leaked onto the wire');
      if (p.ip?.dst === B) toB++;
    }
    assert.ok(toB > 10, `only ${toB} translated packets captured`);

    const now = { a: snmp(topo, 'a'), b: snmp(topo, 'b') };
    for (const hst of ['a', 'b'] as const) {
      for (const k of ['Tcp.InCsumErrors', 'Udp.InCsumErrors', 'Ip.InHdrErrors']) {
        assert.equal(now[hst][k] - before[hst][k], 0, `${k} in ${hst}`);
      }
    }
    const s = h.nonZeroStats();
    assert.ok((s.xlat ?? 0n) >= 20n, `xlat counted ${s.xlat}`);
    assert.equal(s.xlat_rewrite, undefined);
  });

  test('release marks on the kernel path: ingress release is redirected and processed by the INGRESS program; egress release leaves', async () => {
    // misses drop, so only a PIT hit taken by the right program lets a frame through
    h.maps.iface.set(va, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
    for (const k of [...h.maps.xlat.keys()]) h.maps.xlat.delete(k);
    h.maps.pit.set({ saddr: B, daddr: A, sport: 53, dport: 5555, proto: IPPROTO_UDP, dir: Dir.INGRESS }, pass());
    h.maps.pit.set({ saddr: A, daddr: B, sport: 40200, dport: 5556, proto: IPPROTO_UDP, dir: Dir.EGRESS }, pass());
    h.resetStats();
    const macA = topo.exec('a', 'cat', ['/sys/class/net/va/address']).stdout.trim().replace(/:/g, '');
    const macB = topo.exec('b', 'cat', ['/sys/class/net/vb/address']).stdout.trim().replace(/:/g, '');
    const withMacs = (f: Buffer, dst: string, src: string): Buffer => {
      Buffer.from(dst, 'hex').copy(f, 0);
      Buffer.from(src, 'hex').copy(f, 6);
      return f;
    };

    // ingress release: a frame "from b" re-injected on a's own interface
    const lin = topo.spawn('a', 'node', ['-e', UDP_LISTEN(A, 5555)]);
    await firstLine(lin, 'listener in a');
    let got = '';
    lin.stdout?.on('data', (d: string) => { got += d; });
    const fin = withMacs(udpFrame({ src: B, dst: A, sport: 53, dport: 5555, payload: Buffer.from('released-ingress') }), macA, macB);
    topo.exec('a', 'node', ['-e', RELEASE(va, Dir.INGRESS, fin.toString('hex'))]);
    await waitFor('ingress-released datagram in a', () => got.includes('released-ingress'));
    assert.deepEqual(JSON.parse(got.trim().split('\n').pop()!), { msg: 'released-ingress', from: B });
    let s = h.nonZeroStats();
    assert.equal(s.released, 1n, 'counted released once, by the ingress program');
    assert.equal(s.pit_pass, 1n);
    assert.equal(s.release_miss, undefined);

    // egress release: leaves a towards b and takes the egress PIT hit
    const lout = topo.spawn('b', 'node', ['-e', UDP_LISTEN(B, 5556)]);
    await firstLine(lout, 'listener in b');
    let gotB = '';
    lout.stdout?.on('data', (d: string) => { gotB += d; });
    const fout = withMacs(udpFrame({ src: A, dst: B, sport: 40200, dport: 5556, payload: Buffer.from('released-egress') }), macB, macA);
    topo.exec('a', 'node', ['-e', RELEASE(va, Dir.EGRESS, fout.toString('hex'))]);
    await waitFor('egress-released datagram in b', () => gotB.includes('released-egress'));
    s = h.nonZeroStats();
    assert.equal(s.released, 2n);
    assert.equal(s.pit_pass, 2n);

    // a release that misses (no PIT entry for this flow) is dropped, not re-punted
    const miss = withMacs(udpFrame({ src: B, dst: A, sport: 53, dport: 5557, payload: Buffer.from('x') }), macA, macB);
    topo.exec('a', 'node', ['-e', RELEASE(va, Dir.INGRESS, miss.toString('hex'))]);
    await waitFor('release_miss counted', () => h.nonZeroStats().release_miss === 1n);
  });
});

/** Load the object, pin both programs under pinDir and attach them to `ifname` in host's namespace. */
function attachDatapath(topo: Topology, host: string, ifname: string, pinDir: string): BpfHarness {
  const h = BpfHarness.open();
  try {
    mkdirP(pinDir);
    const netns = `--net=/run/netns/${topo.ns(host)}`;
    sh('nsenter', [netns, 'tc', 'qdisc', 'add', 'dev', ifname, 'clsact']);
    for (const dir of ['ingress', 'egress'] as const) {
      const pin = `${pinDir}/${dir}`;
      objPin(h.obj.progFd(`gscip_tc_${dir}`), pin);
      sh('nsenter', [netns, 'tc', 'filter', 'add', 'dev', ifname, dir, 'bpf', 'direct-action', 'pinned', pin]);
    }
  } catch (e) { h.close(); throw e; }
  return h;
}

/** Verify every frame of a capture: IPv4 header and L4 checksums; returns how many frames. */
function verifyCapture(cap: Capture): number {
  let frames: Buffer[];
  try { frames = readPcap(cap.pcap()); } finally { rmSync(cap.file, { force: true }); }
  for (const f of frames) {
    const p = parseFrame(f);
    assert.ok(p.ip?.checksumOk, 'IPv4 header checksum on the wire');
    assert.ok(p.l4?.checksumOk, `L4 checksum on the wire (${p.ip?.src}:${p.l4?.sport} -> ${p.ip?.dst}:${p.l4?.dport})`);
  }
  return frames.length;
}

const C = '198.51.100.2';

describe('TC datapath as a translating router (ingress XLAT on CHECKSUM_PARTIAL, forwarded)', { skip: unavailable ?? false }, () => {
  let topo: Topology;
  let h: BpfHarness | undefined;
  let pinDir = '';

  before(() => {
    topo = new Topology('dprtr');
    pinDir = topo.scratchPinRoot();
    for (const n of ['a', 'b', 'c']) topo.addHost(n);
    topo.link('b', 'vb', 'a', 'va');
    topo.link('a', 'va2', 'c', 'vc');
    topo.addr('b', 'vb', `${B}/24`);
    topo.addr('a', 'va', `${A}/24`);
    topo.addr('a', 'va2', '198.51.100.1/24');
    topo.addr('c', 'vc', `${C}/24`);
    topo.route('c', '192.0.2.0/24', '198.51.100.1');
    topo.forwarding('a');
    // b and c offload (their packets reach a CHECKSUM_PARTIAL) and verify what they receive;
    // a completes checksums in software after its programs, on both of its devices.
    topo.exec('b', 'ethtool', ['-K', 'vb', 'rx', 'off']);
    topo.exec('c', 'ethtool', ['-K', 'vc', 'rx', 'off']);
    topo.exec('a', 'ethtool', ['-K', 'va', 'tx', 'off']);
    topo.exec('a', 'ethtool', ['-K', 'va2', 'tx', 'off']);
    h = attachDatapath(topo, 'a', 'va', pinDir);
  });

  after(() => {
    topo?.cleanupSync();
    if (pinDir) rmSync(pinDir, { recursive: true, force: true });
    h?.close();
  });

  test('b reaches c through a destination translation done by a\'s ingress program; checksums verified at both ends', async (t) => {
    const dp = h!;
    const va = topo.ifindex('a', 'va');
    dp.maps.iface.set(va, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 1 });
    // b -> A:8080 becomes b -> C:9090 (ingress); the replies C:9090 -> b become A:8080 -> b (egress)
    dp.maps.xlat.set({ saddr: B, daddr: A, sport: 40300, dport: 8080, proto: IPPROTO_TCP, dir: Dir.INGRESS },
      { saddr: B, daddr: C, sport: 40300, dport: 9090, kind: XlatKind.NAT, created_ns: 0n });
    dp.maps.xlat.set({ saddr: C, daddr: B, sport: 9090, dport: 40300, proto: IPPROTO_TCP, dir: Dir.EGRESS },
      { saddr: A, daddr: B, sport: 8080, dport: 40300, kind: XlatKind.NAT, created_ns: 0n });
    dp.resetStats();
    const before = { b: snmp(topo, 'b'), c: snmp(topo, 'c') };

    const pcapB = `/tmp/${topo.prefix}-vb.pcap`;
    const pcapC = `/tmp/${topo.prefix}-vc.pcap`;
    t.after(() => { rmSync(pcapB, { force: true }); rmSync(pcapC, { force: true }); });
    // inbound only: outbound frames of an offloading sender are captured before their checksum exists
    const capB = await Capture.start(topo, { host: 'b', iface: 'vb', file: pcapB, direction: 'in', immediate: false, filter: 'tcp port 40300' });
    const capC = await Capture.start(topo, { host: 'c', iface: 'vc', file: pcapC, direction: 'in', immediate: false, filter: 'tcp port 9090' });
    try {
      const srv = topo.spawn('c', 'node', ['-e', TCP_ECHO_SERVER.replace(`'${B}'`, `'${C}'`)]);
      await firstLine(srv, 'TCP echo server in c');
      const client = TCP_CLIENT.replace(`host: '${V}', port: 8080, localAddress: '${A}', localPort: 40100`,
        `host: '${A}', port: 8080, localAddress: '${B}', localPort: 40300`);
      assert.notEqual(client, TCP_CLIENT);
      const r = JSON.parse(topo.exec('b', 'node', ['-e', client], { timeoutMs: 30_000 }).stdout.trim()) as Record<string, unknown>;
      assert.equal(r.error, undefined, `TCP client: ${String(r.error)}`);
      assert.equal(r.len, 4 << 20);
      assert.equal(r.got, r.sent, '4 MiB echoed through the router translation, bytes identical');
    } finally {
      await Promise.all([capB.stop(3000), capC.stop(3000)]);
    }
    assert.ok(verifyCapture(capC) > 10, 'frames translated on ingress and forwarded to c');
    assert.ok(verifyCapture(capB) > 10, 'replies translated on egress back to b');
    const now = { b: snmp(topo, 'b'), c: snmp(topo, 'c') };
    for (const hst of ['b', 'c'] as const) {
      for (const k of ['Tcp.InCsumErrors', 'Ip.InHdrErrors']) assert.equal(now[hst][k] - before[hst][k], 0, `${k} in ${hst}`);
    }
    const s = dp.nonZeroStats();
    assert.ok((s.xlat ?? 0n) >= 20n, `xlat counted ${s.xlat}`);
  });
});
