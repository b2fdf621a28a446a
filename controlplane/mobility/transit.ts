/**
 * Mobile PPC at a GE on the new path between the two ends (a GEN or GEA the
 * moved flows now cross; SPEC section 5: "the GEs on the new path get their
 * PIT entries"). The CU crosses this GE on its way from the mover to the
 * stationary end (every control message is punted at a GE, control.h); this
 * GE checks it under the group key it names, learns each moved flow's wire
 * CIDs from it, writes its own PIT entries for them, and sends the CU on
 * unchanged (the same bytes, source and destination: the ends' MAC covers
 * them). The CU-ACK on its way back is sent on the same way.
 *
 * What it writes is what DPRP gives a GE strictly between the two members
 * that encrypt and decrypt (decide.ts rule 1): `pass`, role intermediate, all
 * four slots, on
 *   - the mover's new wire CID (new address <-> the stationary end's wire
 *     address, the CU's IP destination), and
 *   - the mover's old-source CID (old address <-> the same), which the mover's
 *     packets carry along the new route until the answer comes (engine.ts),
 *     only on slots this GE has no entry on already.
 * Written before the CU is sent on, so they are in place before either end
 * switches. Nothing is written from a CU this GE cannot check (no key for its
 * group, bad MAC, stale): such a CU is still sent on (the ends judge it) and
 * counted. The entries expire with the CIT's idle timeout (flow table), as
 * those on the old path expire with DPRP's. Pure: maps, keys, clock injected.
 */
import { canonicalFlowKey, type FiveTuple, type MapSlot } from '../flows/cid.js';
import { FlowTable } from '../flows/flow-table.js';
import type { FlowMaps } from '../flows/flow-maps.js';
import type { PitEntry } from '../flows/pit-entry.js';
import { CU_CODE, verifyCu, type decodeCu } from './cu-wire.js';
import type { MobilityKey } from './engine.js';
import type { DirName } from '../maps/vocabulary.js';

export type TransitResult = 'learned' | 'no_key' | 'bad_mac' | 'stale' | 'ack';

export interface TransitDeps {
  maps: FlowMaps<PitEntry>;
  keys(): readonly MobilityKey[];
  /** Whether this GE has a PIT entry on the slot already (DPRP's: left alone). */
  has(slot: MapSlot): boolean;
  clock: { nowMs(): number; monoMs(): number };
  expiry?: { idleMs: number; closedMs: number };
  windowMs?: number;
}

interface TransitMeta { cuId: string }

/** Every slot of a pass flow (both directions at both hooks), as DPRP writes a transit GE's. */
export function passEntries(flow: FiveTuple): PitEntry[] {
  const rev: FiveTuple = { saddr: flow.daddr, sport: flow.dport, daddr: flow.saddr, dport: flow.sport, proto: flow.proto };
  const mk = (f: FiveTuple, dir: DirName): PitEntry => ({ flow: f, dir, action: 'pass', group: 0, version: 0, state: 'confirmed', role: 'intermediate' });
  return [mk(flow, 'egress'), mk(flow, 'ingress'), mk(rev, 'egress'), mk(rev, 'ingress')];
}

export class TransitLearner {
  readonly table: FlowTable<PitEntry, TransitMeta>;
  private readonly windowMs: number;

  constructor(private readonly d: TransitDeps) {
    const idle = d.expiry ?? { idleMs: 300_000, closedMs: 10_000 };
    this.table = new FlowTable({ maps: d.maps, clock: d.clock, expiry: { pit: idle, xlat: { cit: idle } } });
    this.windowMs = d.windowMs ?? 30_000;
  }

  /** A CU or CU-ACK crossing this GE from `src` to `dst` (decoded). Writes the entries a checked CU names; never throws for bad input. */
  onCrossing(m: ReturnType<typeof decodeCu>, src: string, dst: string): TransitResult {
    if (m.code === CU_CODE.CU_ACK) return 'ack';
    const key = this.d.keys().find((k) => k.group === m.group && k.version === m.version);
    if (!key) return 'no_key';
    if (!verifyCu(m, src, dst, key.key)) return 'bad_mac';
    if (Math.abs(this.d.clock.nowMs() - m.timestampMs) > this.windowMs) return 'stale';
    const id = m.cuId.toString('hex');
    for (const e of m.entries) {
      // The stationary end on the wire: the CU's destination (it may be off its own original address), its port.
      const wire: FiveTuple = { saddr: e.next.addr, sport: e.next.port, daddr: dst, dport: e.peer.port, proto: e.proto };
      const oldSrc: FiveTuple = { ...wire, saddr: e.old.addr, sport: e.old.port };
      this.put(wire, passEntries(wire), id);
      if (canonicalFlowKey(oldSrc) !== canonicalFlowKey(wire)) {
        const free = passEntries(oldSrc).filter((p) => !this.d.has(p) || this.table.find(oldSrc) !== undefined);
        if (free.length) this.put(oldSrc, free, id);
      }
    }
    return 'learned';
  }

  private put(wire: FiveTuple, pit: PitEntry[], cuId: string): void {
    this.table.commit(wire, { cuId }, { pit });
  }

  /** Expires the learnt flows nothing crossed for the idle timeout; returns how many. */
  sweep(): number {
    return this.table.sweep();
  }
}
