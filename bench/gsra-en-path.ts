/**
 * GSRA with the EN's own agent (the gsra-en part) on the real datapath, the
 * issue's benchmark: an unmodified application on the EN reaches the IN by
 * name through the GSRA router with **PCCOM on the Internet leg** (group key
 * on the EN and the router), against the same path without GSCIP measured in
 * the same run (plain routing EN -> router -> IN to the IN's address, before
 * any agent starts). Topology of test/netns/gsra-en.test.ts:
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (IN1 100.64.1.10)
 *   en 203.0.113.20 --d0/dns0-- dns 203.0.113.53 (BIND 9: in1.example.net A GGR)
 *
 * Printed: first connect p50/p99 (each a new flow: through GSRA the EN's
 * agent holds the SYN, runs AUTH + MAP with the router, writes VAT and PIT,
 * releases it), admissions per second the router completed during the
 * connect run, and one TCP stream's throughput, each as a ratio to plain.
 * The application resolves the name once per connect (getaddrinfo through
 * BIND; the EN's DNS stage rewrites the answer to a VIN): the plain run does
 * the same lookup of a name that BIND answers with the IN's address.
 *
 *   node dist/bench/gsra-en-path.js [--connects 200] [--mb 256]
 *
 * Writes bench/results/gsra-en-path.json. Needs root and BIND 9. The site: test/lib/gsra-en-site.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, release } from 'node:os';
import { resolve } from 'node:path';
import { Topology, waitReady, sh } from '../test/lib/netns.js';
import { GscipRunner } from '../test/lib/agent-process.js';
import { exited } from '../test/netns/pccom-topology.js';
import type { DnsServer } from '../test/netns/dns-server.js';
import { linkGsraCore, SITE } from '../test/lib/gsra-site.js';
import { startEnDns, startGsraEnAgents } from '../test/lib/gsra-en-site.js';
import { intArg } from './args.js';

const { GGR, PGR, IN1 } = SITE;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

/** The application: `n` sequential connects by name (connect time only, after the lookup), or one stream of `bytes`. */
const APP = (job: { kind: 'latency'; name: string; n: number } | { kind: 'bulk'; name: string; bytes: number }): string => `
const dns = require('dns'), net = require('net');
const job = ${JSON.stringify(job)};
const out = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
setTimeout(() => out({ error: 'TIMEOUT' }), 280000).unref();
const lookup = () => new Promise((res, rej) => dns.lookup(job.name, { family: 4 }, (e, a) => (e ? rej(e) : res(a))));
(async () => {
  if (job.kind === 'latency') {
    const ms = []; let failed = 0, addr = '';
    for (let i = 0; i < job.n; i++) {
      addr = await lookup();
      const t0 = process.hrtime.bigint();
      const ok = await new Promise((res) => {
        const c = net.connect({ host: addr, port: 5201 });
        const to = setTimeout(() => { c.destroy(); res(false); }, 5000);
        c.on('connect', () => { clearTimeout(to); c.destroy(); res(true); });
        c.on('error', () => { clearTimeout(to); res(false); });
      });
      if (ok) ms.push(Number(process.hrtime.bigint() - t0) / 1e6); else failed++;
    }
    out({ addr, ms, failed });
  } else {
    const addr = await lookup();
    const buf = Buffer.alloc(1 << 20, 0x5a);
    const c = net.connect({ host: addr, port: 5201 });
    let t0 = 0n, sent = 0;
    const pump = () => { while (sent < job.bytes) { sent += buf.length; if (!c.write(buf)) return; } c.end(); };
    c.on('connect', () => { t0 = process.hrtime.bigint(); pump(); });
    c.on('drain', pump);
    c.on('close', () => { const s = Number(process.hrtime.bigint() - t0) / 1e9; out({ addr, bytes: sent, s, gbps: (sent * 8) / s / 1e9 }); });
    c.on('error', (e) => out({ addr, error: e.code }));
  }
})().catch((e) => out({ error: String(e && e.code || e) }));`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { process.stderr.write('gsra-en-path: skipped: needs root\n'); return; }
  if (sh('sh', ['-c', 'command -v named'], { allowFail: true }).code !== 0) { process.stderr.write('gsra-en-path: skipped: needs BIND 9 (named)\n'); return; }
  const connects = intArg('connects', 200, 10);
  const mb = intArg('mb', 256, 16);
  const t = new Topology('gsraenb');
  let g: GscipRunner | null = null;
  let dnsSrv: DnsServer | null = null;
  try {
    t.addHost('en'); t.addHost('router'); t.addHost('in'); t.addHost('dns');
    linkGsraCore(t);
    t.route('en', '100.64.1.0/24', GGR);   // the baseline's plain path
    t.route('in', '192.0.2.0/24', PGR);
    const dir = t.scratchPath(`/tmp/gscip-bench-${t.prefix}-gsraen`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // in1 (through GSRA) answers the router's address; direct (the baseline) the IN's own
    let resolvConf: string;
    ({ dns: dnsSrv, resolvConf } = await startEnDns(t, dir, { in1: GGR, direct: IN1 }));
    const srv = t.spawn('in', process.execPath, ['-e', `require('net').createServer((c) => { c.on('data', () => {}); c.on('end', () => c.end()); c.on('error', () => {}); }).listen(5201, '0.0.0.0', () => console.log('ready'));`]);
    await waitReady(srv, 'IN sink', () => undefined);
    const run = async (job: Parameters<typeof APP>[0]): Promise<Record<string, any>> => {
      const p = t.spawn('en', 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, process.execPath, '-e', APP(job)]);
      let o = '';
      p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { o += d; });
      await exited(p, 300_000);
      return JSON.parse(o.trim().split('\n').pop() || '{}') as Record<string, any>;
    };
    const plainLat = await run({ kind: 'latency', name: 'direct.example.net', n: connects });
    const plainBulk = await run({ kind: 'bulk', name: 'direct.example.net', bytes: mb << 20 });

    g = new GscipRunner(t, 'gsra-out');
    const key = randomBytes(32).toString('hex');
    await startGsraEnAgents(g, {
      dir, groupKey: key, routerMetrics: '127.0.0.1:9464', enMetrics: 'none',
      servers: [{ name: 'in1.example.net', address: IN1, groups: [1] }],
      gsra: { ports: { first: 40000, last: 49999 }, maxEntries: 20000 },
    });

    const admitted = (): number => {
      const m = t.exec('router', process.execPath, ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"], { allowFail: true }).stdout;
      return m.split('\n').filter((l) => /^gscip_gsra_admissions_total[ {]/.test(l)).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
    };
    const a0 = admitted();
    const t0 = process.hrtime.bigint();
    const gsraLat = await run({ kind: 'latency', name: 'in1.example.net', n: connects });
    const latS = Number(process.hrtime.bigint() - t0) / 1e9;
    const a1 = admitted();
    const gsraBulk = await run({ kind: 'bulk', name: 'in1.example.net', bytes: mb << 20 });

    const p50p = pct(plainLat.ms ?? [], 50), p50g = pct(gsraLat.ms ?? [], 50), p99p = pct(plainLat.ms ?? [], 99), p99g = pct(gsraLat.ms ?? [], 99);
    process.stdout.write(`first connect by name, ${connects} flows: plain p50 ${p50p.toFixed(2)} ms p99 ${p99p.toFixed(2)} ms; through GSRA with the EN's agent (admission + connect) p50 ${p50g.toFixed(2)} ms p99 ${p99g.toFixed(2)} ms; ` +
      `added p50 ${(p50g - p50p).toFixed(2)} ms (${(p50g / p50p).toFixed(2)}x); failures plain ${plainLat.failed ?? '?'}, gsra ${gsraLat.failed ?? '?'} (the application got ${gsraLat.addr})\n`);
    process.stdout.write(`admissions the router counted during the connect run: ${a1 - a0} in ${latS.toFixed(2)} s (${((a1 - a0) / latS).toFixed(0)}/s, sequential connects: bounded by the client)\n`);
    process.stdout.write(`one TCP stream, ${mb} MiB: plain ${plainBulk.gbps?.toFixed(2)} Gbit/s, through the GSRA router with PCCOM on the Internet leg ${gsraBulk.gbps?.toFixed(2)} Gbit/s, ratio ${(gsraBulk.gbps / plainBulk.gbps).toFixed(3)}${gsraBulk.error ? ` (error ${gsraBulk.error})` : ''}; load average ${loadavg()[0].toFixed(1)}\n`);
    const out = resolve(__dirname, '../../bench/results');
    mkdirSync(out, { recursive: true });
    writeFileSync(resolve(out, 'gsra-en-path.json'), JSON.stringify({ kernel: release(), cpus: cpus().length, load: loadavg(), connects, mb, plainLat, gsraLat, plainBulk, gsraBulk, admissions: a1 - a0, latS }, null, 2));
  } finally { await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t.cleanupSync(); }
}

void main();
