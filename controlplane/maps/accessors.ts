/**
 * Small helpers over the typed GSCIP maps that more than one component needs
 * (agent, CLI, handlers, metrics): flow reversal, PIT entry construction,
 * counters summed over CPUs. Everything else uses the BpfMaps directly.
 */
import { Action, Dir, PitState, Role, STATS, type StatInfo } from './abi.js';
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

export interface StatRow extends StatInfo { packets: bigint; bytes: bigint }

/** Every counter of gscip_stats summed over CPUs, in ABI order. */
export function readStats(maps: Pick<GscipMaps, 'stats'>): StatRow[] {
  return STATS.map((s) => {
    let packets = 0n;
    let bytes = 0n;
    for (const v of maps.stats.get(s.id) ?? []) { packets += v.packets; bytes += v.bytes; }
    return { ...s, packets, bytes };
  });
}
