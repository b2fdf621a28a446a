/**
 * PIT lookup cost from BPF_PROG_TEST_RUN: ns per packet through the egress
 * program (parse -> XLAT lookup -> PIT lookup -> verdict -> counters) with 1
 * PIT entry and with 1,000,000 entries (filled with bpf_map_update_batch).
 *
 *   node dist/bench/pit-lookup.js [--entries 1000000] [--repeat 200000]
 *
 * Two kinds of figure, both printed:
 *  - "hot": one packet repeated R times in one syscall (the kernel's
 *    duration / R): the same key every time, so the hash bucket is cache-hot;
 *  - "spread": 4096 different flows, one run each (median of the per-run
 *    durations, which include the test-run timer's own overhead), so with
 *    1M entries most lookups touch cold buckets, closer to real traffic.
 * Writes bench/results/pit-lookup.json. Needs root (BPF_PROG_TEST_RUN).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { BpfHarness, defaultObjectPath, TC_ACT } from '../test/lib/bpf-harness.js';
import { ipv6UdpFrame, tcpFrame, IPPROTO_TCP } from '../test/lib/packets.js';
import { Action, Dir, MissAction } from '../controlplane/maps/abi.js';
import { cidCodec, pitValCodec } from '../controlplane/maps/codecs.js';
import { intArg } from './args.js';

const EGRESS = 'gscip_tc_egress';
const ROUNDS = 5;
const SPREAD_FLOWS = 4096;
const FILL_CHUNK = 65536;


/** Flow i: 198.18.0.0/15 source addresses x source ports, to 192.0.2.2:80 (keys only, no traffic). */
function flow(i: number): { src: string; dst: string; sport: number; dport: number } {
  const host = i % 131072;
  return {
    src: `198.${18 + (host >> 16)}.${(host >> 8) & 0xff}.${host & 0xff}`,
    dst: '192.0.2.2',
    sport: 1024 + Math.floor(i / 131072),
    dport: 80,
  };
}

function fillPit(h: BpfHarness, from: number, to: number): number {
  const ks = cidCodec.size;
  const vs = pitValCodec.size;
  const val = pitValCodec.encode({ action: Action.PASS, state: 0, role: 0, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n });
  const t0 = process.hrtime.bigint();
  for (let i = from; i < to; i += FILL_CHUNK) {
    const n = Math.min(FILL_CHUNK, to - i);
    const kb = Buffer.alloc(n * ks);
    const vb = Buffer.alloc(n * vs);
    for (let j = 0; j < n; j++) {
      const f = flow(i + j);
      cidCodec.encode({ saddr: f.src, daddr: f.dst, sport: f.sport, dport: f.dport, proto: IPPROTO_TCP, dir: Dir.EGRESS }, kb, j * ks);
      val.copy(vb, j * vs);
    }
    h.maps.pit.setBatchRaw(kb, vb, n);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median over rounds of (duration per run) for one packet repeated `repeat` times. */
function hot(h: BpfHarness, pkt: Buffer, repeat: number, want: number): number {
  const per: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const res = h.progTestRun(EGRESS, pkt, { repeat });
    if (res.retval !== want) throw new Error(`unexpected verdict ${res.retval} (want ${want})`);
    per.push(res.durationNs);
  }
  return median(per);
}

/** Median single-run duration over `flows` different packets. */
function spread(h: BpfHarness, flows: number[], want: number): number {
  const per: number[] = [];
  for (const i of flows) {
    const res = h.progTestRun(EGRESS, tcpFrame(flow(i)), { repeat: 1 });
    if (res.retval !== want) throw new Error(`flow ${i}: unexpected verdict ${res.retval} (want ${want})`);
    per.push(res.durationNs);
  }
  return median(per);
}

/**
 * BPF_PROG_TEST_RUN repeats on the same skb, so a one-way translation would
 * only happen on the first run. Two XLAT entries that map the packet back
 * and forth make every run rewrite (addresses and a port, with checksum
 * fix-up) and then hit the PIT.
 */
function xlatHot(h: BpfHarness, repeat: number): number {
  const f = flow(0);
  const other = { saddr: f.src, daddr: '203.0.113.80', sport: f.sport, dport: 8080 };
  const orig = { saddr: f.src, daddr: f.dst, sport: f.sport, dport: f.dport };
  const pass = { action: Action.PASS, state: 0, role: 0, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n };
  h.maps.xlat.set({ ...orig, proto: IPPROTO_TCP, dir: Dir.EGRESS }, { ...other, kind: 0, created_ns: 0n });
  h.maps.xlat.set({ ...other, proto: IPPROTO_TCP, dir: Dir.EGRESS }, { ...orig, kind: 0, created_ns: 0n });
  h.maps.pit.set({ ...other, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pass);
  h.maps.pit.set({ ...orig, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pass);
  return hot(h, tcpFrame(f), repeat, TC_ACT.OK);
}

/** Punt cost: a SYN-sized miss into the ring (rate limit raised; ring drained after each round). */
const PUNT_REPEAT = 20_000; // x ~112 B records: fits the 4 MiB ring
function puntHot(h: BpfHarness, pkt: Buffer): number {
  h.maps.iface.set(1, { miss_action: [MissAction.PUNT, MissAction.PUNT], flags: 0 });
  h.maps.cfg.set(0, { punt_rate_pps: 10_000_000n, punt_burst: 10_000_000n });
  const per: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const res = h.progTestRun(EGRESS, pkt, { repeat: PUNT_REPEAT });
      if (res.retval !== TC_ACT.STOLEN) throw new Error(`punt: unexpected verdict ${res.retval}`);
      per.push(res.durationNs);
      const n = h.punts().length;
      if (n !== PUNT_REPEAT) throw new Error(`punt: ${n} records in the ring, expected ${PUNT_REPEAT}`);
    }
  } finally {
    h.maps.iface.set(1, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 0 });
    h.maps.cfg.set(0, { punt_rate_pps: 0n, punt_burst: 0n });
  }
  return median(per);
}

interface Row { case: string; pit_entries: number; distinct_flows: number; repeat: number; ns_per_packet: number }

function main(): void {
  const entries = intArg('entries', 1_000_000);
  const repeat = intArg('repeat', 200_000);
  const h = BpfHarness.open({ maxEntries: { gscip_pit: Math.max(entries, 1 << 20) } });
  const rows: Row[] = [];
  let fillSeconds = 0;
  try {
    h.maps.iface.set(1, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 0 });
    const pkt0 = tcpFrame(flow(0));
    const missPkt = tcpFrame({ ...flow(0), dport: 81 });

    rows.push({ case: 'IPv6 pass (parse only, no lookup)', pit_entries: 0, distinct_flows: 1, repeat, ns_per_packet: hot(h, ipv6UdpFrame(), repeat, TC_ACT.OK) });
    fillPit(h, 0, 1);
    rows.push({ case: 'PIT hit, hot', pit_entries: 1, distinct_flows: 1, repeat, ns_per_packet: hot(h, pkt0, repeat, TC_ACT.OK) });
    rows.push({ case: 'PIT miss -> miss pass, hot', pit_entries: 1, distinct_flows: 1, repeat, ns_per_packet: hot(h, missPkt, repeat, TC_ACT.OK) });
    rows.push({ case: 'PIT hit, one run per packet', pit_entries: 1, distinct_flows: 1, repeat: 1, ns_per_packet: spread(h, Array(SPREAD_FLOWS).fill(0), TC_ACT.OK) });
    rows.push({ case: 'PIT miss -> punt to ring (SYN)', pit_entries: 1, distinct_flows: 1, repeat: PUNT_REPEAT, ns_per_packet: puntHot(h, missPkt) });
    rows.push({ case: 'XLAT rewrite (addr+port) + PIT hit', pit_entries: 2, distinct_flows: 1, repeat, ns_per_packet: xlatHot(h, repeat) });
    for (const k of [...h.maps.xlat.keys()]) h.maps.xlat.delete(k);
    h.maps.pit.delete({ saddr: '198.18.0.0', daddr: '203.0.113.80', sport: 1024, dport: 8080, proto: IPPROTO_TCP, dir: Dir.EGRESS });

    fillSeconds = fillPit(h, 1, entries);
    const n = h.maps.pit.count();
    if (n !== entries) throw new Error(`PIT holds ${n} entries after the fill, expected ${entries}`);
    rows.push({ case: 'PIT hit, hot', pit_entries: entries, distinct_flows: 1, repeat, ns_per_packet: hot(h, pkt0, repeat, TC_ACT.OK) });
    rows.push({ case: 'PIT miss -> miss pass, hot', pit_entries: entries, distinct_flows: 1, repeat, ns_per_packet: hot(h, missPkt, repeat, TC_ACT.OK) });
    const step = Math.max(1, Math.floor(entries / SPREAD_FLOWS));
    const flows = Array.from({ length: Math.min(SPREAD_FLOWS, entries) }, (_, k) => (k * step + 7919 * k) % entries);
    rows.push({ case: 'PIT hit, one run per packet', pit_entries: entries, distinct_flows: flows.length, repeat: 1, ns_per_packet: spread(h, flows, TC_ACT.OK) });
  } finally {
    h.close();
  }

  const pad = (s: string, n: number): string => s.padEnd(n);
  console.log(`PIT lookup cost (BPF_PROG_TEST_RUN, egress program, kernel ${release()}, ${cpus()[0]?.model ?? '?'})`);
  console.log(`${pad('case', 40)} ${pad('PIT entries', 12)} ${pad('flows', 6)} ${pad('repeat', 7)} ns/packet`);
  for (const r of rows) {
    console.log(`${pad(r.case, 40)} ${pad(r.pit_entries.toLocaleString('en-US'), 12)} ${pad(String(r.distinct_flows), 6)} ${pad(String(r.repeat), 7)} ${r.ns_per_packet}`);
  }
  console.log(`PIT fill: ${(entries - 1).toLocaleString('en-US')} entries in ${fillSeconds.toFixed(2)} s with bpf_map_update_batch (${Math.round((entries - 1) / fillSeconds).toLocaleString('en-US')} entries/s, codec encode included)`);

  const out = resolve(__dirname, __dirname.includes('/dist/') ? '../../bench/results' : 'results');
  mkdirSync(out, { recursive: true });
  const json = {
    bench: 'pit-lookup',
    date: new Date().toISOString(),
    kernel: release(),
    cpu: cpus()[0]?.model ?? null,
    object: defaultObjectPath(),
    unit: 'ns_per_packet',
    rows,
    fill: { entries: entries - 1, seconds: fillSeconds, entries_per_second: (entries - 1) / fillSeconds },
  };
  writeFileSync(resolve(out, 'pit-lookup.json'), JSON.stringify(json, null, 2) + '\n');
  console.log(`wrote ${resolve(out, 'pit-lookup.json')}`);
}

main();
