/**
 * DPRP and PCCOM across a NAT and firewalls nobody configured for GSCIP
 * (issue 11 item 1), in namespaces:
 *
 *   a (va 100.64.1.10) --- (nin 100.64.1.1) n (nout 203.0.113.254) --- (vb 203.0.113.2) b
 *
 * a and b are GESs of one group running the real agent; n is an ordinary
 * Linux NAT with "drop invalid" filters, a and b run "drop invalid" host
 * firewalls (test/netns/nat-topology.ts has the details).
 *
 * Asserted from outside: a capture on `nout` (the NAT's global side) shows no
 * private source address and no plaintext marker; transfers are byte-exact
 * by hash; the PITs of both GEs name the addresses as each sees them (a the
 * private one, b the NAT's); a flush of n's conntrack table mid-flow loses
 * nothing; a UDP echo goes encrypted both ways in PCCOM's UDP wire-valid form
 * and the NAT's conntrack entry for it is ASSURED. The first test shows the
 * old transport (ICMP type 253) does not cross this NAT, so these tests can
 * fail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor, type Topology } from '../lib/netns.js';
import { Action, Dir, PIT_F_WIRE_CSUM, PitState } from '../../controlplane/maps/abi.js';
import { pitWhyOf } from '../../controlplane/maps/vocabulary.js';
import { buildIpv4Packet, IPPROTO_ICMP } from '../../controlplane/dprp/ipv4.js';
import { controlOfFrame, frameControl } from '../../controlplane/parts/control-framing.js';
import { GSCIP_ICMP_TYPE } from '../../controlplane/dprp/wire.js';
import { parseFrame } from '../lib/packets.js';
import { injectFrom, RouterCapture, type GeProcesses } from './dprp-topology.js';
import { A_PRIV, HOST_FIREWALL, isPrivate, N_OUT, NatTopo } from './nat-topology.js';
import { B, exited, markedData, MARKER, sha256, tcpTransfer, UDP_PORT, udpTransfer } from './pccom-topology.js';

const unavailable = bpfUnavailable();
const TCP_PORT = 5201;

/** Frames of a capture on the NAT's global side: how many carry a private source, the marker, or a control message. */
function globalSide(frames: Buffer[]): { privateSrc: number; markers: number; udpControl: number; icmpControl: number; fromNat: number } {
  let privateSrc = 0; let markers = 0; let udpControl = 0; let icmpControl = 0; let fromNat = 0;
  for (const f of frames) {
    const p = parseFrame(f);
    if (!p.ip) continue;
    if (isPrivate(p.ip.src) || isPrivate(p.ip.dst)) privateSrc++;
    if (p.ip.src === N_OUT) fromNat++;
    if (f.includes(MARKER)) markers++;
    const c = controlOfFrame(f);
    if (c) { if (c.sport === undefined) icmpControl++; else udpControl++; }
  }
  return { privateSrc, markers, udpControl, icmpControl, fromNat };
}

/** A paced TCP source: `chunks` writes of `chunk` bytes, one every `everyMs`, then end. */
const PACED_SOURCE = (inp: string, host: string, port: number, cport: number, chunk: number, everyMs: number): string => `
const net = require('net'), data = require('fs').readFileSync(${JSON.stringify(inp)});
const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port}, localPort: ${cport} });
let off = 0;
s.on('connect', () => {
  const t = setInterval(() => {
    if (off >= data.length) { clearInterval(t); s.end(); return; }
    s.write(data.subarray(off, off + ${chunk})); off += ${chunk};
  }, ${everyMs});
});
s.on('close', () => process.exit(0));
s.on('error', (e) => { console.error(e.message); process.exit(2); });
setTimeout(() => { console.error('source timed out'); process.exit(3); }, 30000);`;

const TCP_SINK = (out: string, port: number): string => `
const net = require('net'), fs = require('fs');
const o = fs.createWriteStream(${JSON.stringify(out)});
const srv = net.createServer((c) => { c.pipe(o); c.on('error', () => {}); c.on('end', () => o.end(() => process.exit(0))); });
srv.listen(${port}, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(4), 40000);`;

/** b: echoes every datagram to where it came from; exits idle. */
const UDP_ECHO = (port: number, idleMs: number): string => `
const d = require('dgram').createSocket('udp4'); let timer;
const fin = () => process.exit(0);
d.on('message', (m, r) => { d.send(m, r.port, r.address); clearTimeout(timer); timer = setTimeout(fin, ${idleMs}); });
d.bind(${port}, () => { console.log('ready'); timer = setTimeout(fin, ${idleMs * 5}); });`;

/** a: sends the file in datagrams (2 per ms), collects the echoes in arrival order, writes them; bounded in time. */
const UDP_ECHO_CLIENT = (inp: string, out: string, host: string, port: number, cport: number, size: number): string => `
const d = require('dgram').createSocket('udp4'), fs = require('fs'), data = fs.readFileSync(${JSON.stringify(inp)});
const got = []; let off = 0, n = 0; const total = Math.ceil(data.length / ${size});
const fin = () => { fs.writeFileSync(${JSON.stringify(out)}, Buffer.concat(got)); console.log(JSON.stringify({ n })); process.exit(0); };
d.on('message', (m) => { got.push(m); if (++n === total) fin(); });
d.bind(${cport}, () => {
  const step = () => {
    for (let i = 0; i < 2 && off < data.length; i++, off += ${size}) d.send(data.subarray(off, off + ${size}), ${port}, ${JSON.stringify(host)});
    if (off < data.length) setTimeout(step, 1); else setTimeout(fin, 2000);
  };
  step();
});
setTimeout(fin, 25000);`;

/** a:cport -> b:UDP_PORT -> back: what a received of its own datagrams, in order, and how many. */
async function udpEcho(t: Topology, data: Buffer, cport: number, size: number): Promise<{ received: Buffer; echoed: number }> {
  const inp = `/tmp/${t.prefix}-echo-in`; const out = `/tmp/${t.prefix}-echo-out`;
  writeFileSync(inp, data); rmSync(out, { force: true });
  try {
    const echo = t.spawn('b', 'node', ['-e', UDP_ECHO(UDP_PORT, 3000)]);
    let line = '';
    echo.stdout?.setEncoding('utf8');
    echo.stdout?.on('data', (d: string) => { line += d; });
    await waitFor('UDP echo', () => line.includes('ready'), 5000);
    const cl = t.spawn('a', 'node', ['-e', UDP_ECHO_CLIENT(inp, out, B, UDP_PORT, cport, size)]);
    let res = '';
    cl.stdout?.setEncoding('utf8');
    cl.stdout?.on('data', (d: string) => { res += d; });
    await exited(cl, 30_000);
    echo.kill('SIGTERM');
    await exited(echo, 5_000);
    const n = /\{"n":(\d+)\}/.exec(res);
    return { received: readFileSync(out), echoed: n ? Number(n[1]) : 0 };
  } finally { rmSync(inp, { force: true }); rmSync(out, { force: true }); }
}

describe('DPRP and PCCOM across an unconfigured NAT and "drop invalid" firewalls (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: NatTopo;
  let t: Topology;
  let ges: GeProcesses;
  const key = randomBytes(32);

  const pit = (host: 'a' | 'b') => {
    const m = ges.maps(host);
    try { return [...m.pit.entries()]; } finally { m.close(); }
  };

  before(() => {
    p = new NatTopo('dprpnat');
    t = p.topo;
    ges = p.ges;
  });
  after(async () => {
    await p?.cleanup();
  });

  test('the old transport does not cross this NAT: ICMP type 253 is INVALID and dropped, a UDP control message is translated', async () => {
    const msg = Buffer.concat([Buffer.from([GSCIP_ICMP_TYPE, 1, 0, 0]), randomBytes(60)]);
    // a's own "drop invalid" firewall refuses to send it at all (what every agent's raw send met).
    assert.throws(() => injectFrom(t, 'a', [buildIpv4Packet(A_PRIV, B, IPPROTO_ICMP, msg)]), /EPERM/);
    const cap = await RouterCapture.start(t, 'vb', 'b');
    // Without a's firewall, the NAT drops it (INVALID); the UDP message crosses, translated.
    t.exec('a', 'nft', ['delete', 'table', 'inet', 'hostfw']);
    try {
      injectFrom(t, 'a', [buildIpv4Packet(A_PRIV, B, IPPROTO_ICMP, msg), frameControl(A_PRIV, B, msg)]);
    } finally {
      t.exec('a', 'nft', ['-f', '-'], { input: HOST_FIREWALL });
    }
    await new Promise((r) => setTimeout(r, 300));
    const g = globalSide(await cap.stop());
    assert.equal(g.icmpControl, 0, 'an ICMP 253 message crossed the NAT');
    assert.equal(g.udpControl, 1, 'the UDP one did not');
    assert.equal(g.privateSrc, 0);
    assert.ok(p.nftCounter('n', 'ct state invalid') >= 1, 'the NAT counted the ICMP 253 message invalid');
  });

  test('TCP: negotiated over UDP through the NAT, encrypted, byte-exact; nothing private or plaintext on the global side', async () => {
    await ges.start('a', ['va'], { keys: [[1, 1, key]] });
    await ges.start('b', ['vb'], { keys: [[1, 1, key]] });
    const cap = await RouterCapture.start(t, 'nout', 'n');
    const data = markedData(2 * 1024 * 1024);
    const r = await tcpTransfer(t, data, 41000, 30_000, TCP_PORT);
    const g = globalSide(await cap.stop());
    assert.ok(r.completed, 'transfer completed');
    assert.equal(sha256(r.received), sha256(data), 'byte-exact');
    assert.equal(g.markers, 0, 'plaintext marker on the global side');
    assert.equal(g.privateSrc, 0, 'a private address on the global side');
    assert.equal(g.icmpControl, 0);
    assert.ok(g.udpControl >= 4, `DDE, RGI, MPIT, CDN over UDP: ${g.udpControl}`);
    assert.equal(p.nftCounter('n', 'saddr 100.64.0.0/10'), 0, 'a packet with a private source reached the NAT\'s leak rule');

    // Each GE's PIT names the flow as its own packets carry it.
    const find = (host: 'a' | 'b', dir: number, saddr: string, sport: number, daddr: string, dport: number) =>
      pit(host).find(([k]) => k.proto === 6 && k.dir === dir && k.saddr === saddr && k.sport === sport && k.daddr === daddr && k.dport === dport)?.[1];
    const aOut = find('a', Dir.EGRESS, A_PRIV, 41000, B, TCP_PORT);
    const bIn = find('b', Dir.INGRESS, N_OUT, 41000, B, TCP_PORT);
    const bOut = find('b', Dir.EGRESS, B, TCP_PORT, N_OUT, 41000);
    assert.equal(aOut?.action, Action.ENCRYPT, 'a encrypts on its private view');
    assert.equal(bIn?.action, Action.DECRYPT, 'b decrypts on the NAT\'s view');
    assert.equal(bOut?.action, Action.ENCRYPT);
    for (const e of [aOut!, bIn!, bOut!]) assert.equal(e.state, PitState.CONFIRMED);
    assert.equal(pit('b').filter(([k]) => k.saddr === A_PRIV || k.daddr === A_PRIV).length, 0, 'b holds no entry for a\'s private address');
  });

  test('conntrack -F on the NAT twice mid-flow: the paced transfer completes byte-exact and stays encrypted', async () => {
    const data = markedData(3 * 1024 * 1024);
    const inp = `/tmp/${t.prefix}-paced-in`; const out = `/tmp/${t.prefix}-paced-out`;
    writeFileSync(inp, data);
    const cap = await RouterCapture.start(t, 'nout', 'n');
    const sink = t.spawn('b', 'node', ['-e', TCP_SINK(out, TCP_PORT + 1)]);
    let line = '';
    sink.stdout?.setEncoding('utf8');
    sink.stdout?.on('data', (d: string) => { line += d; });
    await waitFor('paced sink', () => line.includes('ready'), 5000);
    const src = t.spawn('a', 'node', ['-e', PACED_SOURCE(inp, B, TCP_PORT + 1, 41100, 32 * 1024, 10)]);
    // ~1 s of transfer (96 chunks, one per 10 ms): flush at about a third and two thirds.
    for (const ms of [350, 350]) {
      await new Promise((r) => setTimeout(r, ms));
      const tracked = Number(t.exec('n', 'conntrack', ['-C']).stdout.trim());
      assert.ok(tracked >= 1, `the NAT tracks the flow before the flush (${tracked} entries)`);
      t.exec('n', 'conntrack', ['-F']);  // throws unless it emptied the table
    }
    const srcCode = await exited(src, 30_000);
    const sinkCode = await exited(sink, 5_000);
    const g = globalSide(await cap.stop());
    assert.equal(srcCode, 0, 'source finished');
    assert.equal(sinkCode, 0, 'sink finished');
    assert.equal(sha256(readFileSync(out)), sha256(data), 'byte-exact across two flushes');
    assert.equal(g.markers, 0, 'plaintext on the global side');
    assert.equal(g.privateSrc, 0, 'a private address on the global side after a flush');
    assert.equal(p.nftCounter('n', 'saddr 100.64.0.0/10'), 0, 'a packet left un-translated after a flush');
  });

  test('UDP across the NAT, both ways: PCCOM\'s UDP wire-valid form, so the NAT verifies and translates it: encrypted, byte-exact, conntrack ASSURED', async () => {
    const data = markedData(4 * 1024 * 1024);
    const cap = await RouterCapture.start(t, 'nout', 'n');
    // One datagram negotiates the flow (what arrives during a negotiation beyond the stash cap is
    // dropped, counted: any UDP flow), then the bulk on the same flow, echoed back by b.
    const first = await udpTransfer(t, data.subarray(0, 1000), 41200, 1000);
    assert.equal(first.datagrams, 1, 'the first datagram was delivered (released from the stash)');
    const r = await udpEcho(t, data, 41200, 1000);
    const tracked = t.exec('n', 'conntrack', ['-L', '-p', 'udp', '--orig-src', A_PRIV, '--orig-port-src', '41200']).stdout;
    const g = globalSide(await cap.stop());
    assert.equal(r.echoed, Math.ceil(data.length / 1000), `every datagram came back: ${r.echoed}`);
    assert.equal(sha256(r.received), sha256(data), 'byte-exact a -> b -> a');
    assert.equal(g.markers, 0, 'plaintext marker on the global side: not encrypted');
    assert.equal(g.privateSrc, 0, 'a private address on the global side');
    assert.equal(p.nftCounter('n', 'saddr 100.64.0.0/10'), 0, 'a packet left the NAT un-translated (its checksum INVALID)');
    assert.match(tracked, /\[ASSURED\]/, `the NAT's conntrack entry is ASSURED (replies seen): ${tracked}`);
    assert.match(tracked, new RegExp(`src=${B} dst=${N_OUT.replace(/\./g, '\\.')}`), 'translated: the reply goes to the NAT\'s address');
    const rows = pit('a').filter(([k]) => k.proto === 17 && ((k.saddr === A_PRIV && k.sport === 41200) || (k.daddr === A_PRIV && k.dport === 41200)));
    const aOut = rows.find(([k]) => k.dir === Dir.EGRESS)?.[1];
    const aIn = rows.find(([k]) => k.dir === Dir.INGRESS)?.[1];
    assert.equal(aOut?.action, Action.ENCRYPT, 'a encrypts its private view');
    assert.ok(((aOut?.flags ?? 0) & PIT_F_WIRE_CSUM) !== 0, 'in the UDP wire-valid form');
    assert.equal(aIn?.action, Action.DECRYPT);
    const bOut = pit('b').find(([k]) => k.proto === 17 && k.dir === Dir.EGRESS && k.daddr === N_OUT && k.dport === 41200)?.[1];
    assert.equal(bOut?.action, Action.ENCRYPT, 'b encrypts toward the NAT\'s address');
    assert.ok(((bOut?.flags ?? 0) & PIT_F_WIRE_CSUM) !== 0, 'b too sends the wire-valid form');
  });
});

/** A TCP sink for `n` connections: each one's bytes to `${out}-<i>`, exits when all n ended. */
const MULTI_SINK = (out: string, port: number, n: number): string => `
const net = require('net'), fs = require('fs');
let i = 0, ended = 0;
const srv = net.createServer((c) => {
  const o = fs.createWriteStream(${JSON.stringify(out)} + '-' + (i++));
  c.pipe(o); c.on('error', () => {});
  c.on('end', () => o.end(() => { if (++ended === ${n}) process.exit(0); }));
});
srv.listen(${port}, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(4), 40000);`;

describe('two private hosts behind one NAT, the same source port toward one service: the NAT maps the second elsewhere (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: NatTopo;
  const key = randomBytes(32);
  before(() => { p = new NatTopo('dprpnat2', { second: true }); });
  after(async () => { await p?.cleanup(); });

  test('both flows encrypted and byte-exact; b follows the second to the port the NAT gave it', async () => {
    const t = p.topo;
    for (const [h, dev] of [['a', 'va'], ['a2', 'va2'], ['b', 'vb']]) await p.ges.start(h, [dev], { keys: [[1, 1, key]] });
    const port = 5203;
    const out = `/tmp/${t.prefix}-multi-out`;
    const data = [markedData(1024 * 1024), markedData(1024 * 1024)];
    const inp = data.map((d, i) => { const f = `/tmp/${t.prefix}-multi-in-${i}`; writeFileSync(f, d); return f; });
    const cap = await RouterCapture.start(t, 'nout', 'n');
    const sink = t.spawn('b', 'node', ['-e', MULTI_SINK(out, port, 2)]);
    let line = '';
    sink.stdout?.setEncoding('utf8');
    sink.stdout?.on('data', (d: string) => { line += d; });
    await waitFor('multi sink', () => line.includes('ready'), 5000);
    // a's flow first and still running when a2's starts: the NAT must give a2's another port.
    const s1 = t.spawn('a', 'node', ['-e', PACED_SOURCE(inp[0], B, port, 42000, 16 * 1024, 10)]);
    await new Promise((r) => setTimeout(r, 200));
    const s2 = t.spawn('a2', 'node', ['-e', PACED_SOURCE(inp[1], B, port, 42000, 16 * 1024, 10)]);
    const codes = [await exited(s1, 30_000), await exited(s2, 30_000), await exited(sink, 5_000)];
    const g = globalSide(await cap.stop());
    const dump = () => { const mm = p.ges.maps('b'); try { return [...mm.pit.entries()].map(([k, v]) => `${k.dir} ${k.saddr}:${k.sport}>${k.daddr}:${k.dport} a${v.action}`).join('; '); } finally { mm.close(); } };
    assert.deepEqual(codes, [0, 0, 0], `both sources and the sink finished; b's PIT: ${dump()}; b: ${p.ges.output('b').slice(-1500)}`);
    const got = [0, 1].map((i) => sha256(readFileSync(`${out}-${i}`))).sort();
    assert.deepEqual(got, data.map(sha256).sort(), 'both transfers byte-exact');
    assert.equal(g.markers, 0, 'plaintext on the global side');
    assert.equal(g.privateSrc, 0, 'a private address on the global side');
    const m = p.ges.maps('b');
    let ports: number[];
    try {
      ports = [...m.pit.entries()].filter(([k, v]) => k.proto === 6 && k.dir === Dir.INGRESS && k.saddr === N_OUT && k.dport === port && v.action === Action.DECRYPT).map(([k]) => k.sport).sort((x, y) => x - y);
    } finally { m.close(); }
    assert.equal(ports.length, 2, `b decrypts both flows: ${ports.join(',')}`);
    assert.ok(ports.includes(42000) && ports.some((x) => x !== 42000), `one kept its port, the NAT mapped the other: ${ports.join(',')}`);
    for (const f of inp) rmSync(f, { force: true });
    for (const i of [0, 1]) rmSync(`${out}-${i}`, { force: true });
  });
});
