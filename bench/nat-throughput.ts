/**
 * TCP throughput through a GNAT whose NAT is GSCIP's fast path (bpf/lib/nat.h)
 * against the same path with nftables masquerade instead, and a plain routed
 * path (no NAT) as the floor every NAT pays against (issue 13: target eBPF/nft
 * >= 1.0), and the same with PCCOM on (issue 13: "and with PCCOM on"). One
 * iperf3 TCP stream, client in namespace bob, server in glob; five routers
 * between them, one per mode, so no round attaches anything:
 *
 *   ebpf       bob 100.64.1.10 -> gE (GSCIP agent on out0, `nat` config, miss pass) -> glob 192.0.2.1
 *   nft        bob 100.64.2.10 -> gN (nftables: oifname out0 masquerade)              -> glob 198.51.100.1
 *   routed     bob 100.64.3.10 -> gR (forwarding only; glob routes 100.64.3.0/24 back) -> glob 203.0.113.1
 *   pccom_nat  bob 100.64.4.10 -> gP (a GNAT: dprp + nat, group 10)                   -> glob 192.0.2.65 (a GES, group 10)
 *   pccom      bob 100.64.5.10 -> gQ (a GEN: dprp, no NAT; glob routes 100.64.5.0/24 back) -> glob 198.51.100.65 (the GES)
 *
 * pccom_nat is the GNAT encrypting its private side's flow after its NAPT
 * (test/netns/natf-outbound.test.ts): the global leg carries ciphertext;
 * pccom is the same path without the NAT, so pccom_nat/pccom is what the NAT
 * costs when PCCOM is on. glob's GES agent guards g4 and g5 only.
 *
 * Modes interleaved round-robin (order rotated each round); per-round paired
 * ratios and their median with the quartiles. Throughput figures on this
 * shared 2-vCPU machine are noisy: read the ratios, not the Gbit/s.
 *
 *   node dist/bench/nat-throughput.js [--seconds 2] [--rounds 8]
 *
 * Writes bench/results/nat-throughput.json. Needs root, iperf3, nft.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { Topology, sh } from '../test/lib/netns.js';
import { bpfUnavailable } from '../test/lib/bpf-harness.js';
import { GscipRunner } from '../test/lib/agent-process.js';
import { table } from '../controlplane/cli/output.js';
import { intArg } from './args.js';

type Mode = 'ebpf' | 'nft' | 'routed' | 'pccom_nat' | 'pccom';
const MODES: Mode[] = ['ebpf', 'nft', 'routed', 'pccom_nat', 'pccom'];
const GROUP_KEY = '5a'.repeat(32);
const PATH: Record<Mode, { router: string; bob: string; gwIn: string; gwOut: string; glob: string; net: number }> = {
  ebpf: { router: 'gE', bob: '100.64.1.10', gwIn: '100.64.1.1', gwOut: '192.0.2.2', glob: '192.0.2.1', net: 1 },
  nft: { router: 'gN', bob: '100.64.2.10', gwIn: '100.64.2.1', gwOut: '198.51.100.2', glob: '198.51.100.1', net: 2 },
  routed: { router: 'gR', bob: '100.64.3.10', gwIn: '100.64.3.1', gwOut: '203.0.113.2', glob: '203.0.113.1', net: 3 },
  pccom_nat: { router: 'gP', bob: '100.64.4.10', gwIn: '100.64.4.1', gwOut: '192.0.2.66', glob: '192.0.2.65', net: 4 },
  pccom: { router: 'gQ', bob: '100.64.5.10', gwIn: '100.64.5.1', gwOut: '198.51.100.66', glob: '198.51.100.65', net: 5 },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
function quartiles(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  return [s[Math.floor((s.length - 1) / 4)], s[Math.ceil((3 * (s.length - 1)) / 4)]];
}

async function main(): Promise<void> {
  const why = bpfUnavailable() ?? (sh('sh', ['-c', 'command -v iperf3 && command -v nft'], { allowFail: true }).code ? 'iperf3 or nft missing (make deps)' : null);
  if (why) { process.stderr.write(`nat-throughput: skipped: ${why}\n`); return; }
  const seconds = intArg('seconds', 2);
  const rounds = intArg('rounds', 8, 2);
  const t = new Topology('natbn');
  let g: GscipRunner | null = null;
  try {
    t.addHost('bob'); t.addHost('glob');
    for (const m of MODES) {
      const p = PATH[m];
      t.addHost(p.router);
      t.link('bob', `p${p.net}`, p.router, 'in0');
      t.link(p.router, 'out0', 'glob', `g${p.net}`);
      t.addr('bob', `p${p.net}`, `${p.bob}/24`);
      t.addr(p.router, 'in0', `${p.gwIn}/24`);
      t.addr(p.router, 'out0', `${p.gwOut}/26`);
      t.addr('glob', `g${p.net}`, `${p.glob}/26`);
      t.route('bob', `${p.glob}/32`, p.gwIn);
      t.forwarding(p.router);
    }
    t.route('glob', '100.64.3.0/24', PATH.routed.gwOut);
    t.route('glob', '100.64.5.0/24', PATH.pccom.gwOut);
    t.exec('gN', 'nft', ['add', 'table', 'ip', 'natbench']);
    t.exec('gN', 'nft', ['add', 'chain', 'ip', 'natbench', 'post', '{ type nat hook postrouting priority 100 ; }']);
    t.exec('gN', 'nft', ['add', 'rule', 'ip', 'natbench', 'post', 'oifname', 'out0', 'masquerade']);
    g = new GscipRunner(t, 'gnat');
    const cfg = t.scratchPath(`/tmp/${t.prefix}-gnat.json`);
    writeFileSync(cfg, JSON.stringify({ interfaces: [{ name: 'out0' }], nat: { external: PATH.ebpf.gwOut, inside: ['100.64.1.0/24'] } }));
    await g.startAgent('gE', ['--config', cfg, '--iface', 'out0', '--miss', 'pass', '--handler', 'nat', '--metrics', 'none']);
    const pcfg = (name: string, c: object): string => { const f = t.scratchPath(`/tmp/${t.prefix}-${name}.json`); writeFileSync(f, JSON.stringify(c)); return f; };
    const gnatP = pcfg('gP', { interfaces: [{ name: 'out0' }], handlers: ['dprp', 'nat'], ge: { type: 'GNAT', mode: 'CL' }, nat: { external: PATH.pccom_nat.gwOut, inside: ['100.64.4.0/24'] } });
    const genQ = pcfg('gQ', { interfaces: [{ name: 'out0' }], handlers: ['dprp'], ge: { type: 'GEN', mode: 'CL' } });
    const ges = pcfg('glob', { interfaces: [{ name: 'g4' }, { name: 'g5' }], handlers: ['dprp'], ge: { type: 'GES', mode: 'OP' } });
    await g.startAgent('gP', ['--config', gnatP, '--metrics', 'none'], 'gP');
    await g.startAgent('gQ', ['--config', genQ, '--metrics', 'none'], 'gQ');
    await g.startAgent('glob', ['--config', ges, '--metrics', 'none'], 'glob');
    for (const [host, inst] of [['gP', 'gP'], ['gQ', 'gQ'], ['glob', 'glob']]) {
      g.ok(host, ['keys', 'set', '--group', '10', '--version', '1', ...g.instanceArgs(inst)], `${GROUP_KEY}\n`);
    }
    await new Promise((r) => setTimeout(r, 1300));  // DPRP reads the key ring each housekeeping tick
    const server = t.spawn('glob', 'iperf3', ['-s', '-p', '5201']);
    await new Promise((r) => setTimeout(r, 500));
    const runs: Array<{ mode: Mode; round: number; gbps: number; retransmits: number }> = [];
    for (let round = 0; round < rounds; round++) {
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
      for (const mode of order) {
        const p = PATH[mode];
        const r = t.exec('bob', 'iperf3', ['-c', p.glob, '-B', p.bob, '-p', '5201', '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000, allowFail: true });
        const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } }; error?: string };
        if (!j.end?.sum_received) throw new Error(`iperf3 ${mode}: ${j.error ?? r.stderr}`);
        runs.push({ mode, round, gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent?.retransmits ?? 0 });
      }
    }
    server.kill('SIGKILL');
    const stats = JSON.parse(g.ok('gE', ['maps', 'dump', 'stats', '--json', ...g.instanceArgs()])) as Array<{ name: string; packets: string }>;
    const natXlat = Number(stats.find((s) => s.name === 'nat_xlat')?.packets ?? 0);
    // PCCOM really on: the GNAT's flows encrypted (its PIT holds encrypt entries on its external address).
    const pit = JSON.parse(g.ok('gP', ['maps', 'dump', 'pit', '--json', ...g.instanceArgs('gP')])) as Array<{ src: string; action: string }>;
    const encrypted = pit.filter((e) => e.src === PATH.pccom_nat.gwOut && e.action === 'encrypt').length;
    if (encrypted === 0) throw new Error(`pccom_nat: the GNAT encrypted nothing: ${JSON.stringify(pit)}`);
    const of = (m: Mode, r: number): number => runs.find((x) => x.mode === m && x.round === r)!.gbps;
    const ratio = (a: Mode, b: Mode): number[] => Array.from({ length: rounds }, (_, r) => of(a, r) / of(b, r));
    const rows = MODES.map((m) => [m, median(runs.filter((x) => x.mode === m).map((x) => x.gbps)).toFixed(2), runs.filter((x) => x.mode === m).reduce((a, x) => a + x.retransmits, 0)]);
    process.stdout.write(`${table(['MODE', 'MEDIAN_GBIT_S', 'RETRANSMITS'], rows)}\n`);
    const summary: Record<string, { median: number; q1: number; q3: number }> = {};
    for (const [a, b] of [['ebpf', 'nft'], ['ebpf', 'routed'], ['nft', 'routed'], ['pccom_nat', 'pccom'], ['pccom_nat', 'ebpf']] as Array<[Mode, Mode]>) {
      const xs = ratio(a, b);
      const [q1, q3] = quartiles(xs);
      summary[`${a}/${b}`] = { median: median(xs), q1, q3 };
      process.stdout.write(`${a}/${b}: median ${median(xs).toFixed(3)} [quartiles ${q1.toFixed(3)}-${q3.toFixed(3)}] over ${rounds} paired rounds\n`);
    }
    process.stdout.write(`target ebpf/nft >= 1.0: ${summary['ebpf/nft'].median >= 1 ? 'met' : 'NOT met'}; nat_xlat packets counted on gE: ${natXlat}; the GNAT's encrypt entries: ${encrypted}\n`);
    const out = resolve(__dirname, '../../bench/results');
    mkdirSync(out, { recursive: true });
    writeFileSync(resolve(out, 'nat-throughput.json'), JSON.stringify({ kernel: release(), cpus: cpus().length, seconds, rounds, runs, summary, natXlat, encrypted }, null, 2));
  } finally {
    g?.cleanup();
    t.cleanupSync();
  }
}

main().catch((e) => { process.stderr.write(`nat-throughput: ${(e as Error).stack ?? e}\n`); process.exit(1); });
