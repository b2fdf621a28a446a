/**
 * Small real applications (Node scripts) run inside test namespaces: a TCP
 * and UDP echo server that also reports the peer address it saw, a one-shot
 * client with a fixed source port, and a streaming TCP client that prints
 * each echoed sequence number. Every one is bounded in time.
 */
import type { ChildProcess } from 'node:child_process';
import type { Topology } from './netns.js';
import { waitFor } from './netns.js';

const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const [host, tcpPort, udpPort, lifeMs] = process.argv.slice(1);
const t = net.createServer((s) => {
  s.on('data', (d) => s.write('peer=' + s.remoteAddress + ':' + s.remotePort + '|' + d));
  s.on('error', () => {});
});
t.listen(+tcpPort, host);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send('peer=' + r.address + ':' + r.port + '|' + m, r.port, r.address));
u.bind(+udpPort, host, () => console.log('ready'));
setTimeout(() => process.exit(0), +lifeMs);
`;

const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram');
const [proto, dst, dport, lport, msg, timeoutMs] = process.argv.slice(1);
const t0 = process.hrtime.bigint();
const done = (out, code) => { console.log(JSON.stringify({ ...out, ms: Number(process.hrtime.bigint() - t0) / 1e6 })); process.exit(code); };
setTimeout(() => done({ error: 'timeout' }, 2), +timeoutMs);
if (proto === 'tcp') {
  const s = net.connect({ host: dst, port: +dport, localPort: +lport });
  let connectMs = 0;
  s.on('connect', () => { connectMs = Number(process.hrtime.bigint() - t0) / 1e6; s.write(msg); });
  s.on('data', (d) => { s.destroy(); done({ reply: String(d), connectMs }, 0); });
  s.on('error', (e) => done({ error: e.code || e.message }, 1));
} else {
  const u = dgram.createSocket('udp4');
  u.bind(+lport, () => u.send(msg, +dport, dst));
  u.on('message', (m) => done({ reply: String(m) }, 0));
}
`;

const STREAM = `
const net = require('node:net');
const [dst, dport, lport, periodMs, lifeMs] = process.argv.slice(1);
const s = net.connect({ host: dst, port: +dport, localPort: +lport });
let n = 0, buf = '';
s.on('connect', () => { console.log('connected'); setInterval(() => s.write('seq ' + (++n) + '\\n'), +periodMs); });
s.on('data', (d) => {
  buf += d;
  for (const m of buf.matchAll(/seq (\\d+)/g)) console.log('echo ' + m[1]);
  buf = '';
});
s.on('error', (e) => { console.log('error ' + (e.code || e.message)); process.exit(1); });
setTimeout(() => process.exit(0), +lifeMs);
`;

export interface ClientResult { reply?: string; error?: string; ms: number; connectMs?: number }

/** Start the echo server in `host` (killed by topo cleanup); resolves when listening. */
export async function startEchoServer(topo: Topology, host: string, addr: string, tcpPort: number, udpPort: number, lifeMs = 120_000): Promise<ChildProcess> {
  const p = topo.spawn(host, process.execPath, ['-e', SERVER, addr, String(tcpPort), String(udpPort), String(lifeMs)]);
  let out = '';
  p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor(`echo server in ${host}`, () => out.includes('ready') || p.exitCode !== null, 10_000);
  if (p.exitCode !== null) throw new Error(`echo server in ${host} exited ${p.exitCode}`);
  return p;
}

/** One request/response from `host` with source port `lport`. */
export function echoOnce(topo: Topology, host: string, proto: 'tcp' | 'udp', dst: string, dport: number, lport: number, msg: string, timeoutMs = 3000): ClientResult {
  const r = topo.exec(host, process.execPath, ['-e', CLIENT, proto, dst, String(dport), String(lport), msg, String(timeoutMs)], { allowFail: true, timeoutMs: timeoutMs + 5000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try { return JSON.parse(line) as ClientResult; } catch { return { error: `no result (${r.stderr.trim()})`, ms: timeoutMs }; }
}

/** A TCP connection that sends `seq N` every periodMs; `echoed()` is the last N echoed back. */
export class StreamClient {
  private last = 0;
  private connected = false;
  readonly proc: ChildProcess;

  constructor(topo: Topology, host: string, dst: string, dport: number, lport: number, periodMs = 50, lifeMs = 120_000) {
    this.proc = topo.spawn(host, process.execPath, ['-e', STREAM, dst, String(dport), String(lport), String(periodMs), String(lifeMs)]);
    let buf = '';
    this.proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (l === 'connected') this.connected = true;
        const m = /^echo (\d+)$/.exec(l);
        if (m) this.last = Math.max(this.last, Number(m[1]));
      }
    });
  }

  echoed(): number { return this.last; }
  isConnected(): boolean { return this.connected; }

  /** Wait until at least `n` more echoes than now arrive (bounded). */
  async advances(n: number, timeoutMs: number): Promise<number> {
    const start = this.last;
    await waitFor(`${n} more echoes (from ${start})`, () => this.last >= start + n, timeoutMs, 20);
    return this.last - start;
  }
}
