/**
 * PCCOM throughput and per-packet cost.
 *
 *   node dist/bench/pccom.js [--seconds 5] [--rounds 3] [--repeat 20000] [--placement both]
 *
 * 1. ns/packet from BPF_PROG_TEST_RUN through the real datapath programs
 *    (build/bpf/gscip_tc.bpf.o) for a 1400-byte TCP payload: PIT pass, PCCOM
 *    encrypt (egress) and decrypt (ingress) at 20, 12 and 8 ChaCha rounds, and
 *    the bare keystream (test-only program, ns per 64-byte block) to show where
 *    the time goes. Encrypt: average over --repeat runs (each run re-encrypts
 *    its own output: same work). Decrypt verifies before it decrypts, so a
 *    repeat on its own output would stop at the check: median of single runs.
 * 2. iperf3, one TCP stream, a -> r (nftables masquerade + port filter) -> b,
 *    all in the same namespaces and the same run, kernel default offloads
 *    (GSO/TSO on; PCCOM no longer needs gso_max_segs 1). wireguard-go first as a
 *    block; then --rounds rounds that each run baseline (TC filters off), pit-pass
 *    and pccom-20/12/8 back to back, so slow minutes on a shared VM hit all alike:
 *      baseline          no programs
 *      wireguard-go      userspace WireGuard a <-> b through r, no programs
 *      pit-pass          programs attached, PIT entry "pass" for the flow
 *      pccom-20/12/8     programs attached, PIT encrypt/decrypt on both ends,
 *                        group key with ChaCha20 / ChaCha12 / ChaCha8
 *    Median of --rounds runs of --seconds each; Gbit/s as iperf3's receiver reports it,
 *    and each CPU's busy share during the runs (/proc/stat).
 *    --placement split|shared|both (default both), fresh namespaces for each:
 *      split   iperf3 client on CPU 0, server on CPU 1, RPS on vb steers b's
 *              receive path (TC ingress, hence PCCOM decrypt) to CPU 1: each end's
 *              crypto on its own core, as on two hosts. The targets are judged here.
 *      shared  kernel default: veth runs the receiver's softirq on the sender's CPU,
 *              so one core encrypts AND decrypts every byte; two real hosts never do.
 * Prints a table per placement and writes bench/results/pccom.json. Needs root.
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BpfHarness, TEST_RUN_IFINDEX } from '../test/lib/bpf-harness.js';
import { Action, Dir, KEY_F_ROUNDS_12, KEY_F_ROUNDS_8, MissAction, PitState, Role, Stat } from '../controlplane/maps/abi.js';
import { CryptoTestProgs, tcpPacket } from '../test/bpf/pccom-fixture.js';
import { B, PccomTopo, TCP_PORT, UDP_PORT, IPPROTO_TCP, exited } from '../test/netns/pccom-topology.js';
import { sh, waitFor } from '../test/lib/netns.js';
import { intArg } from './args.js';


const SECONDS = intArg('seconds', 5);
const ROUNDS = intArg('rounds', 3);
const REPEAT = intArg('repeat', 20000);
type Placement = 'split' | 'shared';
const PLACEMENTS: Placement[] = ((): Placement[] => {
  const i = process.argv.indexOf('--placement');
  const v = i >= 0 ? process.argv[i + 1] : 'both';
  if (v === 'both') return ['split', 'shared'];
  if (v === 'split' || v === 'shared') return [v];
  throw new Error(`--placement: expected split, shared or both, got ${v}`);
})();
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/* ---------------- 1. ns/packet ---------------- */

const ROUND_FLAGS = { 20: 0, 12: KEY_F_ROUNDS_12, 8: KEY_F_ROUNDS_8 } as const;

function nsPerPacket(): Record<string, number> {
  const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 } });
  const progs = new CryptoTestProgs();
  try {
    const key = randomBytes(32);
    h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 1 });
    const pkt = tcpPacket({ src: '192.0.2.1', dst: '198.51.100.2', sport: 40000, dport: 5201, payload: randomBytes(1400) });
    const cid = { saddr: '192.0.2.1', daddr: '198.51.100.2', sport: 40000, dport: 5201, proto: IPPROTO_TCP };
    const pit = (action: number, version: number) => ({ action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 1, key_version: version, created_ns: 0n, last_seen_ns: 0n });
    const run = (prog: string, frame: Buffer): { ns: number; out: Buffer; retval: number } => {
      const r = h.progTestRun(prog, frame, { repeat: REPEAT });
      return { ns: r.durationNs, out: r.dataOut, retval: r.retval };
    };
    const singleRunsMedian = (prog: string, frame: Buffer): number => {
      const xs: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const r = h.progTestRun(prog, frame);
        if (r.retval !== 0) throw new Error(`${prog}: verdict ${r.retval} in the bench setup`);
        xs.push(r.durationNs);
      }
      return median(xs);
    };
    const out: Record<string, number> = {};
    h.maps.pit.set({ ...cid, dir: Dir.EGRESS }, pit(Action.PASS, 1));
    out.pit_pass_ns = run('gscip_tc_egress', pkt).ns;
    for (const cr of [20, 12, 8] as const) {
      h.maps.keys.set({ group_id: 1, version: cr }, { key, flags: ROUND_FLAGS[cr], installed_ns: 0n });
      h.maps.pit.set({ ...cid, dir: Dir.EGRESS }, pit(Action.ENCRYPT, cr));
      h.maps.pit.set({ ...cid, dir: Dir.INGRESS }, pit(Action.DECRYPT, cr));
      const enc = run('gscip_tc_egress', pkt);
      if (enc.retval !== 0) throw new Error(`encrypt verdict ${enc.retval} in the bench setup`);
      const encOnce = h.progTestRun('gscip_tc_egress', pkt).dataOut;
      const once = h.progTestRun('gscip_tc_ingress', encOnce);
      if (once.retval !== 0 || once.dataOut.compare(pkt) !== 0) throw new Error('decrypt(encrypt(p)) != p in the bench setup');
      out[`pccom${cr}_encrypt_ns`] = enc.ns;
      out[`pccom${cr}_decrypt_ns`] = singleRunsMedian('gscip_tc_ingress', encOnce);
      const frame = Buffer.alloc(66 + 64 * 22); frame.writeUInt32LE(cr << 8, 62);
      out[`chacha${cr}_ns_per_block`] = Math.round(progs.run('chacha_test', frame, REPEAT).durationNs / 22);
    }
    return out;
  } finally {
    progs.cleanup();
    h.close();
  }
}

/* ---------------- 2. iperf3 ---------------- */

async function iperf(p: PccomTopo, host: string, cport: number, split: boolean): Promise<{ gbps: number; retransmits: number; cpu: number }> {
  const aff = (cpu: number): string[] => (split ? ['-A', String(cpu)] : []);
  const srv = p.topo.spawn('b', 'iperf3', ['-s', '-1', '-p', String(TCP_PORT), ...aff(1)]);
  await waitFor('iperf3 server', () => p.topo.exec('b', 'ss', ['-Hltn', `sport = :${TCP_PORT}`]).stdout.includes('LISTEN'), 5000, 50);
  const r = p.topo.exec('a', 'iperf3', ['-c', host, '-p', String(TCP_PORT), '--cport', String(cport), '-t', String(SECONDS), '-J', ...aff(0)],
    { timeoutMs: (SECONDS + 20) * 1000 });
  await exited(srv, 5000);
  const j = JSON.parse(r.stdout) as {
    end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits: number };
      cpu_utilization_percent: { host_total: number; remote_total: number } };
  };
  return {
    gbps: j.end.sum_received.bits_per_second / 1e9,
    retransmits: j.end.sum_sent.retransmits,
    cpu: j.end.cpu_utilization_percent.host_total + j.end.cpu_utilization_percent.remote_total,
  };
}

interface Rounds { gbps: number; runs: number[]; retransmits: number[]; cpu_percent: number[]; cpu_busy_percent: number[] }

/** Busy and total jiffies per CPU (/proc/stat). */
function cpuTimes(): { busy: number; total: number }[] {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).map((l) => {
    const f = l.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + f[4];
    const total = f.slice(0, 8).reduce((x, y) => x + y, 0);
    return { busy: total - idle, total };
  });
}

function summarize(rs: Awaited<ReturnType<typeof iperf>>[], busy: number[][]): Rounds {
  const runs = rs.map((r) => r.gbps);
  return {
    gbps: median(runs), runs, retransmits: rs.map((r) => r.retransmits), cpu_percent: rs.map((r) => Math.round(r.cpu)),
    cpu_busy_percent: busy[0].map((_, i) => Math.round(busy.reduce((a, b) => a + b[i], 0) / busy.length)),
  };
}

/** Every CPU's busy % while fn runs (softirq and TC programs included). */
async function busyDuring<T>(fn: () => Promise<T>): Promise<{ value: T; busy: number[] }> {
  const before = cpuTimes();
  const value = await fn();
  const after = cpuTimes();
  return { value, busy: after.map((a, i) => (100 * (a.busy - before[i].busy)) / Math.max(1, a.total - before[i].total)) };
}

/** iperf3 --rounds times; median Gbit/s, plus retransmits, sender+receiver CPU % as iperf3 sees it
 * (its processes only), and every CPU's busy % over the rounds. */
async function rounds(p: PccomTopo, host: string, cport: () => number, split: boolean): Promise<Rounds> {
  const rs: Awaited<ReturnType<typeof iperf>>[] = [];
  const busy: number[][] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await busyDuring(() => iperf(p, host, cport(), split));
    rs.push(r.value); busy.push(r.busy);
  }
  return summarize(rs, busy);
}

const wgName = (p: PccomTopo, h: string): string => `wg${p.topo.prefix.slice(-6)}${h}`;

/** wireguard-go on a and b, tunnel 100.64.0.1 <-> 100.64.0.2 through r (b listens on the allowed UDP port). */
function startWireguard(p: PccomTopo): () => void {
  const keys = { a: sh('wg', ['genkey']).stdout.trim(), b: sh('wg', ['genkey']).stdout.trim() };
  const pub = { a: sh('wg', ['pubkey'], { input: keys.a }).stdout.trim(), b: sh('wg', ['pubkey'], { input: keys.b }).stdout.trim() };
  const dir = `/tmp/${p.topo.prefix}-wg`;
  mkdirSync(dir, { recursive: true });
  for (const h of ['a', 'b'] as const) {
    writeFileSync(`${dir}/${h}.key`, keys[h] + '\n', { mode: 0o600 });
    // distinct names: the UAPI socket /var/run/wireguard/<name>.sock is shared by all namespaces
    p.topo.spawn(h, 'wireguard-go', ['-f', wgName(p, h)], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
  }
  for (const h of ['a', 'b'] as const) {
    // bounded wait for the tun device
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) { ok = p.topo.exec(h, 'ip', ['link', 'show', wgName(p, h)], { allowFail: true }).code === 0; if (!ok) sh('sleep', ['0.05']); }
    if (!ok) throw new Error(`wireguard-go did not create ${wgName(p, h)} in ${h}`);
  }
  p.topo.exec('b', 'wg', ['set', wgName(p, 'b'), 'private-key', `${dir}/b.key`, 'listen-port', String(UDP_PORT), 'peer', pub.a, 'allowed-ips', '100.64.0.1/32']);
  p.topo.exec('a', 'wg', ['set', wgName(p, 'a'), 'private-key', `${dir}/a.key`, 'peer', pub.b, 'endpoint', `${B}:${UDP_PORT}`, 'allowed-ips', '100.64.0.2/32', 'persistent-keepalive', '1']);
  p.topo.addr('a', wgName(p, 'a'), '100.64.0.1/24');
  p.topo.addr('b', wgName(p, 'b'), '100.64.0.2/24');
  for (const h of ['a', 'b'] as const) p.topo.exec(h, 'ip', ['link', 'set', wgName(p, h), 'up']);
  return () => {
    for (const h of ['a', 'b'] as const) p.topo.exec(h, 'ip', ['link', 'del', wgName(p, h)], { allowFail: true });
    rmSync(dir, { recursive: true, force: true });
  };
}

interface PlacementResult { results: Record<string, Rounds>; counters: Record<string, number>; targets: Record<string, number> }

/** Every iperf3 configuration in fresh namespaces with one CPU placement. */
async function measure(placement: Placement, port: { next: number }): Promise<PlacementResult> {
  const split = placement === 'split';
  const cport = (): number => port.next++;
  // Namespaces first without programs (baseline, wireguard-go), then attach in the same namespaces.
  const p = new PccomTopo('pcbench', { attach: false });
  const results: Record<string, Rounds> = {};
  let counters: Record<string, number> = {};
  try {
    if (split) p.topo.exec('b', 'sh', ['-c', 'echo 2 > /sys/class/net/vb/queues/rx-0/rps_cpus']);
    const stopWg = startWireguard(p);
    try {
      await waitFor('wireguard handshake', () => /\t[1-9]\d*$/m.test(p.topo.exec('a', 'wg', ['show', wgName(p, 'a'), 'latest-handshakes']).stdout), 15000, 200);
      results['wireguard-go'] = await rounds(p, '100.64.0.2', cport, split);
    } finally { stopWg(); }

    // Interleaved: every round runs baseline (filters off), pit-pass and each PCCOM cipher
    // (filters on) back to back, so a slow minute on this shared VM hits every config alike
    // and the ratios stay comparable (blocks of one config each gave 9-17 % for ChaCha12).
    p.attachDatapath();
    const key = randomBytes(32);
    for (const r of [20, 12, 8] as const) { p.setKey('a', 1, r, key, ROUND_FLAGS[r]); p.setKey('b', 1, r, key, ROUND_FLAGS[r]); }
    const protect = (action: 'encrypt' | 'pass', version: number) => (): number => {
      const c = cport();
      for (const h of ['a', 'b'] as const) p.protect(h, { proto: IPPROTO_TCP, cport: c, sport: TCP_PORT }, action === 'pass' ? 0 : 1, version, action);
      return c;
    };
    const configs: [string, () => number][] = [['baseline', cport], ['pit-pass', protect('pass', 0)],
      ...([20, 12, 8] as const).map((r): [string, () => number] => [`pccom-${r}`, protect('encrypt', r)])];
    const acc: Record<string, { rs: Awaited<ReturnType<typeof iperf>>[]; busy: number[][] }> = {};
    for (const [name] of configs) acc[name] = { rs: [], busy: [] };
    const encBefore = p.stat('a', Stat.STAT_PIT_ENCRYPT);
    const encBytesBefore = Number(p.harness('a').stat(Stat.STAT_PIT_ENCRYPT).bytes);
    let attached = true;
    for (let i = 0; i < ROUNDS; i++) {
      for (const [name, port] of configs) {
        const want = name !== 'baseline';
        if (want !== attached) { p.setFiltersAttached(want); attached = want; }
        const r = await busyDuring(() => iperf(p, B, port(), split));
        acc[name].rs.push(r.value); acc[name].busy.push(r.busy);
      }
    }
    results.baseline = summarize(acc.baseline.rs, acc.baseline.busy);
    for (const [name] of configs.slice(1)) results[name] = summarize(acc[name].rs, acc[name].busy);
    const encSkbs = p.stat('a', Stat.STAT_PIT_ENCRYPT) - encBefore;
    counters = {
      a_encrypted_skbs: encSkbs,
      a_encrypted_mean_skb_bytes: Math.round((Number(p.harness('a').stat(Stat.STAT_PIT_ENCRYPT).bytes) - encBytesBefore) / Math.max(1, encSkbs)),
      b_decrypted_skbs: p.stat('b', Stat.STAT_PIT_DECRYPT),
      a_drop_bad_keyed_csum: p.stat('a', Stat.DROP_BAD_KEYED_CSUM), b_drop_bad_keyed_csum: p.stat('b', Stat.DROP_BAD_KEYED_CSUM),
      a_drop_unsupported: p.stat('a', Stat.DROP_UNSUPPORTED), b_drop_unsupported: p.stat('b', Stat.DROP_UNSUPPORTED),
      a_drop_crypto: p.stat('a', Stat.DROP_CRYPTO), b_drop_crypto: p.stat('b', Stat.DROP_CRYPTO),
    };
  } finally {
    p.cleanup();
  }

  const base = results.baseline.gbps;
  const wg = results['wireguard-go'].gbps;
  console.log(`\n[${placement}] ${split ? 'client CPU 0; server and vb receive path (decrypt) CPU 1 via RPS' : 'kernel default: veth receive (decrypt) runs on the sender\'s CPU'}`);
  console.log(`iperf3 -t ${SECONDS}, one TCP stream a -> NAT r -> b, median of ${ROUNDS} (Gbit/s):`);
  console.log('  config          Gbit/s   x baseline   x wireguard-go   runs (Gbit/s)         retransmits        CPU busy % (cpu0 cpu1)');
  for (const k of ['baseline', 'wireguard-go', 'pit-pass', 'pccom-20', 'pccom-12', 'pccom-8']) {
    const v = results[k];
    console.log(`  ${k.padEnd(15)} ${v.gbps.toFixed(2).padStart(6)}   ${(v.gbps / base).toFixed(3).padStart(10)}   ${(v.gbps / wg).toFixed(2).padStart(14)}   ${v.runs.map((x) => x.toFixed(2)).join(' ').padEnd(20)}  ${v.retransmits.join(' ').padEnd(17)}  ${v.cpu_busy_percent.join(' ')}`);
  }
  console.log('  datapath counters during the pccom runs:', JSON.stringify(counters));
  const targets: Record<string, number> = { target_vs_wireguard_go: 5, target_vs_baseline: 0.15, stretch_vs_baseline: 0.25 };
  for (const r of [20, 12, 8]) {
    const g = results[`pccom-${r}`].gbps;
    targets[`pccom${r}_vs_wireguard_go`] = g / wg;
    targets[`pccom${r}_vs_baseline`] = g / base;
    console.log(`  targets, ChaCha${r}: PCCOM/wireguard-go = ${(g / wg).toFixed(2)} (target >= 5), PCCOM/baseline = ${(g / base * 100).toFixed(1)}% (target >= 15%, stretch 25%)`);
  }
  return { results, counters, targets };
}

async function main(): Promise<void> {
  const ns = nsPerPacket();
  console.log(`load average at the start: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  console.log('BPF_PROG_TEST_RUN, 1400-byte TCP payload, ns/packet (encrypt: average of', REPEAT, 'runs; decrypt: median of 1000 single runs):');
  for (const [k, v] of Object.entries(ns)) console.log(`  ${k.padEnd(20)} ${v}`);

  const port = { next: 45000 };
  const placements: Partial<Record<Placement, PlacementResult>> = {};
  for (const pl of PLACEMENTS) placements[pl] = await measure(pl, port);
  const load = readFileSync('/proc/loadavg', 'utf8').trim();
  console.log(`\nload average at the end: ${load}`);

  const json = {
    bench: 'pccom', date: new Date().toISOString(), kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model,
    seconds: SECONDS, rounds: ROUNDS, test_run_repeat: REPEAT, loadavg_end: load, ns_per_packet_1400B: ns, placements,
  };
  const dir = resolve(__dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, 'pccom.json');
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
