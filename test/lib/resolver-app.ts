/**
 * The unmodified application of the GSRA EN tests: the system resolver
 * (getaddrinfo) in the EN's namespace, then a TCP send of a file, a TCP
 * connect, or a UDP echo, each to port 5201/5301 of the address it got.
 * It prints one JSON line (what happened, how long it took) and exits.
 * Run with the EN's resolv.conf in a private mount namespace, so the
 * machine's own file is untouched.
 */
import type { Topology } from './netns.js';
import { exited } from '../netns/pccom-topology.js';

export type ResolverJob =
  | { kind: 'tcp'; name: string; file: string }
  | { kind: 'connect'; name: string; port?: number }
  | { kind: 'udp'; name: string; payload: string }
  /** Several datagrams on one socket (one flow), each sent after the previous one's echo (2 s each at most). */
  | { kind: 'udpMany'; name: string; payloads: string[] }
  /** Writes 16 KiB every 20 ms for maxMs, then ends cleanly: how the connection ended (ended, error CODE, close, end_timeout), when, bytes written. */
  | { kind: 'stream'; name: string; maxMs: number };

const APP = (job: ResolverJob): string => `
const dns = require('dns'), net = require('net'), dgram = require('dgram'), fs = require('fs');
const job = ${JSON.stringify(job)};
const t0 = Date.now();
const done = (o) => { console.log(JSON.stringify({ ...o, ms: Date.now() - t0 })); process.exit(0); };
dns.lookup(job.name, { family: 4 }, (e, addr) => {
  if (e) return done({ lookup: e.code });
  if (job.kind === 'tcp') {
    const c = net.connect({ host: addr, port: 5201 });
    c.on('connect', () => { const r = fs.createReadStream(job.file); r.pipe(c); });
    c.on('close', () => done({ addr, sent: true }));
    c.on('error', (er) => done({ addr, error: er.code }));
  } else if (job.kind === 'connect') {
    const c = net.connect({ host: addr, port: job.port ?? 5201 });
    const to = setTimeout(() => { c.destroy(); done({ addr, error: 'TIMEOUT' }); }, 10000);
    c.on('connect', () => { clearTimeout(to); c.destroy(); done({ addr, connected: true }); });
    c.on('error', (er) => { clearTimeout(to); done({ addr, error: er.code }); });
  } else if (job.kind === 'stream') {
    const c = net.connect({ host: addr, port: 5201 });
    let sent = 0, timer = null, ended = false, closing = false;
    const end = (how) => { if (ended) return; ended = true; clearInterval(timer); c.destroy(); done({ addr, end: how, endAt: Date.now(), sent }); };
    c.on('connect', () => { timer = setInterval(() => { c.write(Buffer.alloc(16384, 0x41)); sent += 16384; }, 20); });
    c.on('error', (er) => end('error ' + er.code));
    c.on('close', () => end(closing ? 'ended' : 'close'));
    // After maxMs: a clean end (FIN, everything written delivered), or 'end_timeout' if that does not come within 3 s.
    setTimeout(() => { if (ended) return; closing = true; clearInterval(timer); c.end(); setTimeout(() => end('end_timeout'), 3000); }, job.maxMs);
  } else if (job.kind === 'udp') {
    const s = dgram.createSocket('udp4');
    const msg = Buffer.from(job.payload, 'hex');
    s.on('message', (m) => done({ addr, echo: m.toString('hex') }));
    s.connect(5301, addr, () => s.send(msg));
    setTimeout(() => done({ addr, error: 'TIMEOUT' }), 10000);
  } else if (job.kind === 'udpMany') {
    const s = dgram.createSocket('udp4');
    const echoes = [];
    let timer = null;
    const next = () => {
      if (echoes.length === job.payloads.length) return done({ addr, echoes });
      s.send(Buffer.from(job.payloads[echoes.length], 'hex'));
      timer = setTimeout(() => done({ addr, echoes, error: 'TIMEOUT' }), 2000);
    };
    s.on('message', (m) => { clearTimeout(timer); echoes.push(m.toString('hex')); next(); });
    s.connect(5301, addr, next);
  }
});`;

/** Runs `job` in `host` with `resolvConf` as its /etc/resolv.conf; the application's JSON result. */
export async function runResolverApp(t: Topology, host: string, resolvConf: string, job: ResolverJob): Promise<Record<string, any>> {
  const p = t.spawn(host, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, process.execPath, '-e', APP(job)]);
  let so = '';
  p.stdout?.setEncoding('utf8');
  p.stdout?.on('data', (d: string) => { so += d; });
  await exited(p, 60_000);
  return JSON.parse(so.trim().split('\n').pop() || '{}') as Record<string, any>;
}
