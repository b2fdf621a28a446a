/**
 * NAT-f first-connect latency (issue 13 item 7), namespaces (test/netns/natf-topology.ts):
 * alice opens fresh TCP connections, interleaved in one run,
 *
 *   natf-name    getaddrinfo(bob.example.net) + connect: the DNS answer punted
 *                and rewritten to a virtual address, then a DPRP negotiation
 *                with the GNAT by name (ACT check, inbound mapping, VAT)
 *   direct-name  getaddrinfo(glob.example.net) + connect to a global GES:
 *                the DNS answer punted and passed untouched, a plain DPRP
 *                negotiation (also encrypted)
 *   natf / direct  the same connects to the already resolved addresses
 *
 * and prints p50/p99 of each and the ratios natf/direct; then the rate of
 * fresh connects through the GNAT with --parallel in flight (default 32), which is the rate of
 * inbound mappings the GNAT creates (one per connection, counted by its
 * gscip_nat_inbound_mappings_total). Every connect is a new flow (new source
 * port): a first packet stashed, negotiated and released.
 *
 *   node dist/bench/natf-connect.js [--rounds 300] [--burst 8000] [--parallel 32] [--ge]
 *
 * --ge: bob is a GE itself (a CL GES, ACT `ge: true`): the natf cases are then
 * negotiated end to end through the GNAT (DDE relayed inward, three GEs on
 * the path; docs/natf.md "A private GE behind the GNAT"), against the same
 * run's direct connects, and a fifth case, `cascade`: connects to cbob, a
 * global GE behind the GNAT as a plain GEN (outside its NAT's inside
 * prefixes), so the same three GEs and the same four relays by the GNAT's
 * agent without NAT-f: natf - cascade is what NAT-f adds beyond plain DPRP's
 * negotiation on that path (the issue's "<= 1 ms added beyond plain DPRP's").
 *
 * Writes bench/results/natf-connect.json (natf-connect-ge.json with --ge). Needs root, BIND 9.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { waitFor } from '../test/lib/netns.js';
import { exited } from '../test/netns/pccom-topology.js';
import { BOB, CBOB, GLOB, HTTP_PORT, NatfTopo } from '../test/netns/natf-topology.js';
import { intArg } from './args.js';

const SERVER = (addr: string): string => `
require('net').createServer((c) => { c.on('error', () => {}); c.end(); }).listen(${HTTP_PORT}, ${JSON.stringify(addr)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 600000).unref();`;

/** Interleaved rounds of the four cases (five with `cascade`, an address); prints the per-case microsecond samples as JSON. */
const ROUNDS = (rounds: number, cascade: string | null): string => `
const net = require('net'), dns = require('dns');
const cases = {
  'natf-name': { name: 'bob.example.net' }, 'direct-name': { name: 'glob.example.net' },
  natf: { name: 'bob.example.net', pre: true }, direct: { name: 'glob.example.net', pre: true },
  ${cascade ? `cascade: { addr: ${JSON.stringify(cascade)}, pre: true },` : ''}
};
const addr = {};
const out = { 'natf-name': [], 'direct-name': [], natf: [], direct: [], cascade: [], errors: 0 };
const look = (n) => new Promise((ok, ko) => dns.lookup(n, { family: 4 }, (e, a) => (e ? ko(e) : ok(a))));
const conn = (a) => new Promise((ok, ko) => { const s = net.connect({ host: a, port: ${HTTP_PORT} }); s.setTimeout(5000); s.on('connect', () => { s.destroy(); ok(); }); s.on('timeout', () => { s.destroy(); ko(new Error('timeout')); }); s.on('error', ko); });
(async () => {
  for (const k of Object.keys(cases)) addr[k] = cases[k].addr ?? await look(cases[k].name);
  const keys = Object.keys(cases);
  for (let r = 0; r < ${rounds}; r++) {
    const order = r % 2 ? [...keys].reverse() : keys;
    for (const k of order) {
      const t0 = process.hrtime.bigint();
      try { await conn(cases[k].pre ? addr[k] : await look(cases[k].name)); out[k].push(Number(process.hrtime.bigint() - t0) / 1000); } catch { out.errors++; }
    }
  }
  console.log(JSON.stringify(out));
  process.exit(0);
})();
setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 500000).unref();`;

const BURST = (addr: string, n: number, par: number): string => `
const net = require('net');
let next = 0, ok = 0, failed = 0; const t0 = process.hrtime.bigint(); const why = {};
function one() {
  if (next >= ${n}) return; next++;
  const s = net.connect({ host: ${JSON.stringify(addr)}, port: ${HTTP_PORT} }); s.setTimeout(5000);
  let done = false;
  const end = (good, reason) => { if (done) return; done = true; if (good) ok++; else { failed++; why[reason] = (why[reason] || 0) + 1; } s.destroy(); if (ok + failed === ${n}) { console.log(JSON.stringify({ ok, failed, why, s: Number(process.hrtime.bigint() - t0) / 1e9 })); process.exit(0); } else one(); };
  s.on('connect', () => end(true)); s.on('timeout', () => end(false, 'timeout')); s.on('error', (e) => end(false, e.code || 'error'));
}
for (let i = 0; i < ${par}; i++) one();
setTimeout(() => { console.log(JSON.stringify({ ok, failed, why, s: Number(process.hrtime.bigint() - t0) / 1e9, timedOut: true })); process.exit(0); }, 300000).unref();`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

async function run(n: NatfTopo, script: string, timeoutMs: number): Promise<string> {
  const p = n.appSpawn('alice', 'node', ['-e', script]);
  let out = '';
  p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  await exited(p, timeoutMs);
  return out.trim();
}

function mappings(n: NatfTopo): number {
  const m = /gscip_nat_inbound_mappings_total\{result="created"\} (\d+)/.exec(n.metrics('gnat'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { process.stderr.write('natf-connect: skipped: needs root\n'); return; }
  const rounds = intArg('rounds', 300, 10);
  const burst = intArg('burst', 8000, 100);
  // Connects in flight during the burst: enough that neither agent idles waiting for the other (8 left both
  // below 75 % of a core, so the burst measured the round trips, not how fast the GNAT maps).
  const parallel = intArg('parallel', 32, 1);
  const ge = process.argv.includes('--ge');
  // With --ge, also cbob: a global GE behind the GNAT as a plain GEN (no NAT-f), the plain-DPRP cost of the same three-GE path.
  const n = new NatfTopo('natfbn', { bobGe: ge, cascade: ge });
  try {
    await n.start();
    for (const [host, addr] of [['bob', BOB], ['glob', GLOB], ...(ge ? [['cbob', CBOB]] : [])]) {
      const p = n.t.spawn(host, 'node', ['-e', SERVER(addr)]);
      let o = '';
      p.stdout?.on('data', (d: Buffer) => { o += d.toString(); });
      await waitFor(`${host} server`, () => o.includes('ready'), 5000);
    }
    const samples = JSON.parse(await run(n, ROUNDS(rounds, ge ? CBOB : null), 520_000)) as Record<string, number[]> & { errors: number };
    const caseNames = ['natf-name', 'direct-name', 'natf', 'direct', ...(ge ? ['cascade'] : [])];
    const stats = Object.fromEntries(caseNames.map((k) => [k, { n: samples[k].length, p50: pct(samples[k], 50), p99: pct(samples[k], 99) }]));
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    const before = mappings(n);
    const b = JSON.parse(await run(n, BURST(v, burst, parallel), 310_000)) as { ok: number; failed: number; why: Record<string, number>; s: number };
    const created = mappings(n) - before;
    // NAT-f's own cost for a private GE: beyond plain DPRP's on the same three-GE path (the GNAT a plain GEN).
    const vsCascade = ge ? { addedUs: { p50: stats.natf.p50 - stats.cascade.p50, p99: stats.natf.p99 - stats.cascade.p99 }, ratioP50: stats.natf.p50 / stats.cascade.p50 } : null;
    const result = {
      bench: 'natf-connect', bobGe: ge, machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release() }, rounds, errors: samples.errors,
      latencyUs: stats,
      ratios: {
        nameP50: stats['natf-name'].p50 / stats['direct-name'].p50, nameP99: stats['natf-name'].p99 / stats['direct-name'].p99,
        connectP50: stats.natf.p50 / stats.direct.p50, connectP99: stats.natf.p99 / stats.direct.p99,
      },
      ...(vsCascade ? { addedOverCascadeUs: vsCascade.addedUs, natfOverCascadeP50: vsCascade.ratioP50 } : {}),
      burst: { connects: burst, parallel, ok: b.ok, failed: b.failed, failures: b.why, seconds: b.s, connectsPerS: b.ok / b.s, inboundMappingsCreated: created, mappingsPerS: created / b.s },
    };
    const f = (x: number): string => (x / 1000).toFixed(2);
    process.stdout.write(`first connect, ${rounds} interleaved rounds (ms), bob ${ge ? 'a GE (end to end)' : 'a Term'}      p50     p99\n`);
    for (const k of caseNames) process.stdout.write(`  ${k.padEnd(44)} ${f(stats[k].p50).padStart(6)}  ${f(stats[k].p99).padStart(6)}  (n=${stats[k].n})\n`);
    process.stdout.write(`ratio natf/direct by name: p50 ${result.ratios.nameP50.toFixed(2)}, p99 ${result.ratios.nameP99.toFixed(2)}; connect only: p50 ${result.ratios.connectP50.toFixed(2)}, p99 ${result.ratios.connectP99.toFixed(2)}; errors ${samples.errors}\n`);
    if (vsCascade) {
      process.stdout.write(`natf (private GE) vs cascade (a global GE behind the GNAT as a plain GEN, same three GEs): added p50 ${f(vsCascade.addedUs.p50)} ms, p99 ${f(vsCascade.addedUs.p99)} ms; ratio p50 ${vsCascade.ratioP50.toFixed(2)}\n`);
    }
    process.stdout.write(`burst through the GNAT, ${parallel} in flight: ${b.ok}/${burst} in ${b.s.toFixed(2)} s = ${result.burst.connectsPerS.toFixed(0)} connects/s; inbound mappings created ${created} (${result.burst.mappingsPerS.toFixed(0)}/s)${b.failed ? `; failed by reason ${JSON.stringify(b.why)}` : ''}\n`);
    if (b.failed) {
      // The agents' side of the failures: what alice was told and why, what the GNAT refused or dropped.
      const pick = /^gscip_(natf_flows_total|dprp_negotiations_failed_total|dprp_messages_rejected_total|nat_inbound_mappings_total|agent_stash_dropped_total)\{/;
      for (const host of ['alice', 'gnat', ...(ge ? ['bob'] as const : [])] as const) {
        const lines = n.metrics(host).split('\n').filter((l) => pick.test(l) && !/ 0$/.test(l));
        process.stdout.write(`  ${host}: ${lines.join('; ') || '(no failure counted)'}\n`);
      }
    }
    const dir = resolve(__dirname, '..', '..', 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(resolve(dir, ge ? 'natf-connect-ge.json' : 'natf-connect.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await n.stop();
    n.cleanupSync();
  }
}

main().catch((e: unknown) => { process.stderr.write(`natf-connect: ${(e as Error).stack ?? String(e)}\n`); process.exit(1); });
