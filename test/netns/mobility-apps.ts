/**
 * The applications and captures of the Mobile PPC namespace tests
 * (mobility.test.ts, mobility-both.test.ts): a TCP sink on a, a paced TCP
 * source on b, a UDP pinger bound to b's first address, tcpdump in a host,
 * and pcap readers.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { waitFor } from '../lib/netns.js';
import { GSCIP_ICMP_TYPE } from '../../controlplane/dprp/wire.js';
import { controlOfFrame } from '../../controlplane/parts/control-framing.js';
import { exited, markedData, sha256 } from './pccom-topology.js';
import { A, B_OLD, type MobilityTopo } from './mobility-topology.js';
import type { GeOptions } from './dprp-topology.js';
import { startEchoServer } from '../lib/net-apps.js';
import { Capture } from '../lib/capture.js';

export const TCP_PORT = 7300;
export const UDP_PORT = 7302;

export const SINK = (out: string): string => `
const net = require('net'), fs = require('fs');
const out = fs.createWriteStream(${JSON.stringify(out)});
const srv = net.createServer((c) => { c.pipe(out); c.on('error', (e) => { console.log('sink-error ' + e.code); process.exit(3); }); c.on('end', () => out.end(() => process.exit(0))); });
srv.listen(${TCP_PORT}, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(4), 90000);`;

// Paced so the move lands mid-transfer: 32 KiB every 5 ms (~6 MB/s at most).
export const SOURCE = (inp: string, A: string, localPort = 40100): string => `
const net = require('net'), fs = require('fs');
const data = fs.readFileSync(${JSON.stringify(inp)});
const s = net.connect({ host: ${JSON.stringify(A)}, port: ${TCP_PORT}, localPort: ${localPort} });
let off = 0, failed = false;
s.on('connect', () => { const t = setInterval(() => { if (off >= data.length) { clearInterval(t); s.end(); return; } s.write(data.subarray(off, off + 32768)); off += 32768; }, 5); });
s.on('error', (e) => { failed = true; console.log('source-error ' + (e.code || e.message)); process.exit(2); });
s.on('close', () => process.exit(failed ? 2 : 0));
setTimeout(() => process.exit(5), 90000);`;

export const PINGER = (A: string, B_OLD: string): string => `
const d = require('dgram').createSocket('udp4');
let n = 0;
d.on('message', (m) => console.log('echo ' + m));
// Bound to b's first address: a live UDP "connection" (an unbound socket would simply send from the new address).
d.bind(41000, ${JSON.stringify(B_OLD)}, () => setInterval(() => d.send('u' + (++n), ${UDP_PORT}, ${JSON.stringify(A)}), 20));
setTimeout(() => process.exit(0), 90000);`;

export class Pinger {
  readonly echoes: string[] = [];
  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('echo ')) this.echoes.push(l.slice(5));
    });
  }
  async more(n: number, timeoutMs: number): Promise<string[]> {
    const from = this.echoes.length;
    await waitFor(`${n} more UDP echoes (from ${from})`, () => this.echoes.length >= from + n, timeoutMs);
    return this.echoes.slice(from);
  }
}

/** tcpdump in a host (a Capture, ../lib/capture.ts); stop() returns the pcap bytes, or throws if tcpdump lost frames. */
export async function capture(p: MobilityTopo, host: string, dev: string, filter: string): Promise<{ stop(): Promise<Buffer> }> {
  const cap = await Capture.start(p.topo, { host, iface: dev, file: `/tmp/${p.topo.prefix}-${host}-${dev}-${Date.now()}.pcap`, immediate: false, filter });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 200));
      await cap.stop(3000);
      try { return cap.pcap(); } finally { rmSync(cap.file, { force: true }); }
    },
  };
}

/** The IPv4 packets of a pcap (Ethernet link type) that are GSCIP control messages with ICMP code `code`. */
export function controlPackets(pcap: Buffer, code: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 24, i = 0; off + 16 <= pcap.length && i < 1e6; i++) {
    const len = pcap.readUInt32LE(off + 8);
    const frame = pcap.subarray(off + 16, off + 16 + len);
    off += 16 + len;
    if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    // Either framing (parts/control-framing.ts): UDP to or from the control port, or ICMP type 253.
    const c = controlOfFrame(frame);
    if (c && c.msg[0] === GSCIP_ICMP_TYPE && c.msg[1] === code) out.push(Buffer.from(ip.subarray(0, ip.readUInt16BE(2))));
  }
  return out;
}

export function count(hay: Buffer, needle: Buffer): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0 && n < 1e6; i = hay.indexOf(needle, i + 1)) n++;
  return n;
}

/**
 * A paced TCP transfer of `bytes` from `srcHost` to the sink on a (at
 * `dst`), with `move` run once 1 MiB has arrived (asserted mid-transfer),
 * and `then.fn` once `then.bytes` have (asserted mid-transfer too).
 * Asserts that both applications ended normally and the data arrived
 * byte-exact. Removes its files.
 */
export async function transferAcrossMove(p: MobilityTopo, srcHost: string, dst: string, bytes: number, move: () => void,
  o: { localPort?: number; then?: { bytes: number; fn: () => void } } = {}): Promise<void> {
  const data = markedData(bytes);
  const inp = `/tmp/${p.topo.prefix}-in`; const out = `/tmp/${p.topo.prefix}-out`;
  writeFileSync(inp, data); rmSync(out, { force: true });
  try {
    const sink = p.topo.spawn('a', 'node', ['-e', SINK(out)]);
    let sinkOut = '';
    sink.stdout?.setEncoding('utf8');
    sink.stdout?.on('data', (d: string) => { sinkOut += d; });
    await waitFor('TCP sink', () => sinkOut.includes('ready'), 5000);
    const src = p.topo.spawn(srcHost, 'node', ['-e', SOURCE(inp, dst, o.localPort)]);
    let srcOut = '';
    src.stdout?.setEncoding('utf8');
    src.stdout?.on('data', (d: string) => { srcOut += d; });
    await waitFor('1 MiB received before the move', () => existsSync(out) && statSync(out).size >= 1 << 20, 20_000);
    const atMove = statSync(out).size;
    assert.ok(atMove < bytes / 2, `the move is mid-transfer (${atMove} bytes in)`);
    move();
    if (o.then) {
      const then = o.then;
      await waitFor(`${then.bytes} bytes received`, () => statSync(out).size >= then.bytes, 30_000, 20);
      assert.ok(statSync(out).size < bytes * 0.8, `still mid-transfer (${statSync(out).size} bytes in)`);
      then.fn();
    }
    const srcCode = await exited(src, 60_000);
    const sinkCode = await exited(sink, 10_000);
    assert.equal(srcCode, 0, `the source saw no socket error: ${srcOut}`);
    assert.equal(sinkCode, 0, `the sink saw the stream end normally: ${sinkOut}`);
    const got = readFileSync(out);
    assert.equal(got.length, bytes);
    assert.equal(sha256(got), sha256(data), 'byte-exact');
  } finally {
    rmSync(inp, { force: true }); rmSync(out, { force: true });
  }
}

/**
 * The scene of a move through r2: a and b GEs of group 1 (`key`), r2 a GE
 * with `r2` options, a's UDP echo server up for `echoMs`, and b's pinger
 * answered five times before anything moves.
 */
export async function startMoveScene(p: MobilityTopo, key: Buffer, r2: GeOptions, echoMs: number): Promise<Pinger> {
  await p.startGe('a', { keys: [[1, 1, key]] });
  await p.startGe('b', { keys: [[1, 1, key]] });
  await p.startGe('r2', r2);
  await startEchoServer(p.topo, 'a', A, 7301, UDP_PORT, echoMs);
  const pinger = new Pinger(p.topo.spawn('b', 'node', ['-e', PINGER(A, B_OLD)]));
  await pinger.more(5, 10_000);
  return pinger;
}
