/**
 * The selftest's applications: small Node programs run inside its scratch
 * namespaces (nothing to install beyond Node), a TCP bulk sender and sink
 * and a UDP datagram sender and sink. Every one is bounded in time and is
 * killed by the topology's cleanup if it outlives its transfer.
 */
import { type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { waitFor, type Topology } from '../lab/topology.js';

/** Random bytes with `marker` written every `every` bytes from offset 0. */
export function markedData(bytes: number, marker: Buffer, every: number): Buffer {
  const d = randomBytes(bytes);
  for (let off = 0; off + marker.length <= bytes; off += every) marker.copy(d, off);
  return d;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Wait (bounded) for a child to exit; SIGKILL it at the deadline. Its exit code, or null if it had to be killed. */
export async function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, Math.max(1, timeoutMs));
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

function collect(child: ChildProcess): { out: () => string; err: () => string } {
  let out = ''; let err = '';
  child.stdout?.setEncoding('utf8'); child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => { if (out.length < 65536) out += d; });
  child.stderr?.on('data', (d: string) => { if (err.length < 65536) err += d; });
  return { out: () => out, err: () => err };
}

const TCP_SINK = `
const net = require('net'), fs = require('fs');
const [out, port] = process.argv.slice(1);
const w = fs.createWriteStream(out);
const srv = net.createServer((c) => { c.pipe(w); c.on('error', () => {}); c.on('end', () => w.end(() => process.exit(0))); });
srv.listen(+port, '0.0.0.0', () => console.log('ready'));`;

const TCP_SOURCE = `
const net = require('net'), fs = require('fs');
const [inp, host, port, cport] = process.argv.slice(1);
const s = net.connect({ host, port: +port, localPort: +cport });
s.on('connect', () => fs.createReadStream(inp).pipe(s));
s.on('close', (hadError) => process.exit(hadError ? 2 : 0));
s.on('error', (e) => { console.error(e.code || e.message); process.exit(2); });`;

// Keeps what it received in memory; SIGTERM (or the life limit) writes it out in arrival order.
const UDP_SINK = `
const d = require('dgram').createSocket('udp4'), fs = require('fs');
const [out, port, lifeMs] = process.argv.slice(1);
const got = [];
const fin = () => { fs.writeFileSync(out, Buffer.concat(got)); console.log(JSON.stringify({ datagrams: got.length })); process.exit(0); };
process.on('SIGTERM', fin);
setTimeout(fin, +lifeMs);
d.on('message', (m) => got.push(m));
d.bind(+port, '0.0.0.0', () => console.log('ready'));`;

// Paced (2 datagrams per ms) so that no socket buffer on the way drops any.
const UDP_SOURCE = `
const d = require('dgram').createSocket('udp4'), data = require('fs').readFileSync(process.argv[1]);
const [, host, port, cport, size] = process.argv.slice(1);
let off = 0, sent = 0;
d.bind(+cport, () => {
  const step = () => {
    for (let i = 0; i < 2 && off < data.length; i++, off += +size) { d.send(data.subarray(off, off + +size), +port, host); sent++; }
    if (off < data.length) setTimeout(step, 1); else setTimeout(() => { console.log(JSON.stringify({ sent })); process.exit(0); }, 30);
  };
  step();
});`;

export interface Endpoint { host: string; addr: string }

export interface TcpResult { completed: boolean; received: Buffer; ms: number; error?: string }

/** One TCP connection from `src`:cport to `dst`:port carrying `data`; what the sink application received. */
export async function tcpTransfer(t: Topology, dir: string, src: Endpoint, dst: Endpoint, port: number, cport: number,
  data: Buffer, timeoutMs: number): Promise<TcpResult> {
  const inp = `${dir}/tcp-${cport}.in`; const out = `${dir}/tcp-${cport}.out`;
  writeFileSync(inp, data, { mode: 0o600 }); rmSync(out, { force: true });
  const t0 = Date.now();
  try {
    const sink = t.spawn(dst.host, process.execPath, ['-e', TCP_SINK, out, String(port)]);
    const so = collect(sink);
    await waitFor(`TCP sink on ${dst.host}`, () => {
      if (sink.exitCode !== null) throw new Error(`exited ${sink.exitCode}: ${so.err()}`);
      return so.out().includes('ready');
    }, Math.min(5000, timeoutMs), 10);
    const source = t.spawn(src.host, process.execPath, ['-e', TCP_SOURCE, inp, dst.addr, String(port), String(cport)]);
    const ce = collect(source);
    const srcCode = await exited(source, timeoutMs - (Date.now() - t0));
    const sinkCode = await exited(sink, srcCode === 0 ? 2000 : 50);
    const received = existsSync(out) ? readFileSync(out) : Buffer.alloc(0);
    const error = srcCode === null ? `no completion within ${timeoutMs} ms` : srcCode !== 0 ? `sender: ${ce.err().trim() || `exit ${srcCode}`}` : undefined;
    return { completed: srcCode === 0 && sinkCode === 0, received, ms: Date.now() - t0, error };
  } finally { rmSync(inp, { force: true }); rmSync(out, { force: true }); }
}

export interface UdpResult { sent: number; datagrams: number; received: Buffer; ms: number }

/** Datagrams of `size` bytes from `src`:cport to `dst`:port; what the sink application received, in order. */
export async function udpTransfer(t: Topology, dir: string, src: Endpoint, dst: Endpoint, port: number, cport: number,
  data: Buffer, size: number, timeoutMs: number): Promise<UdpResult> {
  const inp = `${dir}/udp-${cport}.in`; const out = `${dir}/udp-${cport}.out`;
  writeFileSync(inp, data, { mode: 0o600 }); rmSync(out, { force: true });
  const t0 = Date.now();
  try {
    const sink = t.spawn(dst.host, process.execPath, ['-e', UDP_SINK, out, String(port), String(timeoutMs)]);
    const so = collect(sink);
    await waitFor(`UDP sink on ${dst.host}`, () => {
      if (sink.exitCode !== null) throw new Error(`exited ${sink.exitCode}: ${so.err()}`);
      return so.out().includes('ready');
    }, Math.min(5000, timeoutMs), 10);
    const source = t.spawn(src.host, process.execPath, ['-e', UDP_SOURCE, inp, dst.addr, String(port), String(cport), String(size)]);
    const se = collect(source);
    await exited(source, timeoutMs - (Date.now() - t0));
    // What is still in flight after the last send arrives within a few ms on veth.
    await new Promise((r) => setTimeout(r, 100));
    sink.kill('SIGTERM');
    await exited(sink, 2000);
    const sent = Number(/"sent":(\d+)/.exec(se.out())?.[1] ?? 0);
    const datagrams = Number(/"datagrams":(\d+)/.exec(so.out())?.[1] ?? 0);
    return { sent, datagrams, received: existsSync(out) ? readFileSync(out) : Buffer.alloc(0), ms: Date.now() - t0 };
  } finally { rmSync(inp, { force: true }); rmSync(out, { force: true }); }
}
