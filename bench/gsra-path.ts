/**
 * GSRA on the real datapath (namespaces, the router of test/netns/gsra-router.test.ts):
 * first-connect added latency and one TCP stream's throughput through the
 * GSRA router, each against the same path without GSCIP measured in the same
 * run (plain routing through the same router namespace, before the agents
 * start). "Through GSRA" = the EN's admission (AUTH + MAP over UDP 7253) and
 * then the TCP connect to GGR:t; the stream then crosses both NAT halves.
 * Not PCCOM: the Internet leg is not encrypted yet (docs/gsra.md).
 *
 *   node dist/bench/gsra-path.js [--connects 200] [--mb 256]
 *
 * Writes bench/results/gsra-path.json. Needs root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, release } from 'node:os';
import { resolve } from 'node:path';
import { Topology, waitFor } from '../test/lib/netns.js';
import { GscipRunner } from '../test/lib/agent-process.js';
import { enScript } from '../test/lib/gsra-en.js';
import { exited } from '../test/netns/pccom-topology.js';
import { intArg } from './args.js';

const GEN = '192.0.2.20', GGR = '192.0.2.1', PGR = '100.64.1.1', IN1 = '100.64.1.10';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { process.stderr.write('gsra-path: skipped: needs root\n'); return; }
  const connects = intArg('connects', 200, 10);
  const mb = intArg('mb', 256, 16);
  const t = new Topology('gsrab');
  let g: GscipRunner | null = null;
  try {
    t.addHost('en'); t.addHost('router'); t.addHost('in');
    t.link('en', 'e0', 'router', 'out0');
    t.link('router', 'in0', 'in', 'l0');
    t.addr('en', 'e0', `${GEN}/24`); t.addr('router', 'out0', `${GGR}/24`);
    t.addr('router', 'in0', `${PGR}/24`); t.addr('in', 'l0', `${IN1}/24`);
    t.forwarding('router');
    t.route('en', '100.64.1.0/24', GGR);   // the baseline's plain path
    t.route('in', '192.0.2.0/24', PGR);
    const srv = t.spawn('in', process.execPath, ['-e', `require('net').createServer((c) => { c.on('data', () => {}); c.on('end', () => c.end()); c.on('error', () => {}); }).listen(5201, '0.0.0.0', () => console.log('ready'));`]);
    let so = '';
    srv.stdout?.setEncoding('utf8'); srv.stdout?.on('data', (d: string) => { so += d; });
    await waitFor('server', () => so.includes('ready'), 5000);
    const key = randomBytes(32).toString('hex');
    const run = async (job: Record<string, unknown>): Promise<Record<string, any>> => {
      const p = t.spawn('en', process.execPath, ['-e', enScript(key, { scriptMs: 300_000, ...job }, { gen: GEN, ggr: GGR })]);
      let o = '';
      p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { o += d; });
      await exited(p, 300_000);
      return JSON.parse(o.trim().split('\n').pop() ?? '{}') as Record<string, any>;
    };
    const plainLat = await run({ kind: 'latency', direct: IN1, d: 5201, s: 30000, n: connects });
    const plainBulk = await run({ kind: 'bulk', direct: IN1, d: 5201, s: 29000, bytes: mb << 20 });
    g = new GscipRunner(t, 'gsra-out');
    const keyFile = t.scratchPath(`/tmp/${t.prefix}-alice.key`);
    writeFileSync(keyFile, key, { mode: 0o600 });
    const inCfg = t.scratchPath(`/tmp/${t.prefix}-in.json`);
    writeFileSync(inCfg, JSON.stringify({ interfaces: [{ name: 'in0' }], nat: { external: PGR, inside: ['100.127.255.252/30'], ports: { first: 21000, last: 21999 } } }));
    const outCfg = t.scratchPath(`/tmp/${t.prefix}-out.json`);
    writeFileSync(outCfg, JSON.stringify({
      interfaces: [{ name: 'out0' }], nat: { external: GGR, inside: ['100.64.1.0/24'], ports: { first: 21000, last: 21999 } },
      gsra: { ggr: GGR, pgr: PGR, insidePinDir: `${g.pinRoot}/gsra-in`, ports: { first: 40000, last: 49999 }, maxEntries: 20000, legEncryption: 'none',
        servers: [{ name: 'in1.corp.example.net', address: IN1, groups: [1] }], users: [{ userId: 'alice', groups: [1], keyFile }] },
    }));
    await g.startAgent('router', ['--config', inCfg, '--iface', 'in0', '--miss', 'pass', '--handler', 'nat', '--metrics', '127.0.0.1:9465'], 'gsra-in');
    await g.startAgent('router', ['--config', outCfg, '--iface', 'out0', '--miss', 'pass', '--handler', 'nat', '--handler', 'gsra-router', '--metrics', '127.0.0.1:9464'], 'gsra-out');
    const gsraLat = await run({ kind: 'latency', name: 'in1.corp.example.net', d: 5201, s: 31000, n: connects });
    const gsraBulk = await run({ kind: 'bulk', name: 'in1.corp.example.net', d: 5201, s: 28000, bytes: mb << 20 });
    const p50p = pct(plainLat.ms, 50), p50g = pct(gsraLat.ms, 50), p99p = pct(plainLat.ms, 99), p99g = pct(gsraLat.ms, 99);
    process.stdout.write(`first connect, ${connects} flows: plain p50 ${p50p.toFixed(2)} ms p99 ${p99p.toFixed(2)} ms; through GSRA (admission + connect) p50 ${p50g.toFixed(2)} ms p99 ${p99g.toFixed(2)} ms; ` +
      `added p50 ${(p50g - p50p).toFixed(2)} ms (${(p50g / p50p).toFixed(2)}x); failures plain ${plainLat.failed ?? 0}, gsra ${gsraLat.failed ?? 0}\n`);
    process.stdout.write(`one TCP stream, ${mb} MiB: plain ${plainBulk.gbps?.toFixed(2)} Gbit/s, through the GSRA router (both NAT halves, no PCCOM) ${gsraBulk.gbps?.toFixed(2)} Gbit/s, ratio ${(gsraBulk.gbps / plainBulk.gbps).toFixed(3)}; load average ${loadavg()[0].toFixed(1)}\n`);
    const dir = resolve(__dirname, '../../bench/results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, 'gsra-path.json'), JSON.stringify({ kernel: release(), cpus: cpus().length, load: loadavg(), connects, mb, plainLat, gsraLat, plainBulk, gsraBulk }, null, 2));
  } finally { g?.cleanup(); t.cleanupSync(); }
}

void main();
