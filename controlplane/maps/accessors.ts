/**
 * Small helpers over the typed GSCIP maps that more than one component needs
 * (agent, CLI, handlers, metrics): flow reversal, PIT entry construction,
 * counters summed over CPUs. Everything else uses the BpfMaps directly.
 */
import { Action, counterSlot, Dir, PitState, Role, STATS, type StatInfo } from './abi.js';
import type { Cid, PitVal } from './codecs.js';
import type { GscipMaps } from './gscip-maps.js';

/** Monotonic ns on the fast path's clock (bpf_ktime_get_ns = CLOCK_MONOTONIC; so is process.hrtime). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

/** The other direction of a flow, as seen at the same interface. */
export function reverseCid(c: Cid): Cid {
  return { saddr: c.daddr, daddr: c.saddr, sport: c.dport, dport: c.sport, proto: c.proto, dir: c.dir === Dir.INGRESS ? Dir.EGRESS : Dir.INGRESS };
}

/** A PIT value with timestamps set to now. */
export function pitEntry(action: number, o: { state?: number; role?: number; group?: number; keyVersion?: number } = {}): PitVal {
  const now = monotonicNs();
  return {
    action, state: o.state ?? PitState.STATIC, role: o.role ?? Role.NONE, flags: 0,
    group_id: o.group ?? 0, key_version: o.keyVersion ?? 0, created_ns: now, last_seen_ns: now,
  };
}

export function passEntry(): PitVal {
  return pitEntry(Action.PASS);
}

export interface Count { packets: bigint; bytes: bigint }
export interface StatRow extends StatInfo, Count {
  /** The same counter split by direction (packets + bytes above are their sum). */
  ingress: Count;
  egress: Count;
}

function sumCpus(cells: readonly Count[] | undefined): Count {
  let packets = 0n;
  let bytes = 0n;
  for (const v of cells ?? []) { packets += v.packets; bytes += v.bytes; }
  return { packets, bytes };
}

/** Every declared reason of gscip_counters summed over CPUs, per direction and in total, in ABI order. */
export function readStats(maps: Pick<GscipMaps, 'stats'>): StatRow[] {
  return STATS.map((s) => {
    const ingress = sumCpus(maps.stats.get(counterSlot(s.id, Dir.INGRESS)));
    const egress = sumCpus(maps.stats.get(counterSlot(s.id, Dir.EGRESS)));
    return { ...s, packets: ingress.packets + egress.packets, bytes: ingress.bytes + egress.bytes, ingress, egress };
  });
}

/** One reason's counter summed over CPUs and both directions (0 for an unknown reason). */
export function readStat(maps: Pick<GscipMaps, 'stats'>, reason: number): Count {
  const i = sumCpus(maps.stats.get(counterSlot(reason, Dir.INGRESS)));
  const e = sumCpus(maps.stats.get(counterSlot(reason, Dir.EGRESS)));
  return { packets: i.packets + e.packets, bytes: i.bytes + e.bytes };
}
