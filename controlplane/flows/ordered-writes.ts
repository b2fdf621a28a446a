/**
 * The order a flow's entries reach the maps in, so that no packet ever meets
 * half a flow (Cilium nat.h writes the reverse entry first for the same reason):
 *
 *   write: XLAT first, then PIT. A PIT entry is what makes the fast path act
 *          on a flow (pass, decrypt...); egress translates before the PIT
 *          lookup and ingress after it, so a PIT entry whose translation is
 *          not there yet would pass or decrypt a packet under the wrong CID.
 *   erase: PIT first, then XLAT (the reverse): once the PIT entry is gone the
 *          flow misses (punt or miss policy) and its translation is unused.
 *   move:  make before break: write every new entry (XLAT, PIT), then erase
 *          the old ones the new set does not replace (PIT, XLAT).
 *
 * Pure over the injected maps (flow-maps.ts); a map without entries to write
 * is not called (no empty syscalls).
 */
import { slotKey, type MapSlot } from './cid.js';
import { FLOW_ERROR_CODES, FlowError } from './errors.js';
import type { FlowMaps, XlatEntry } from './flow-maps.js';

export interface FlowEntries<P extends MapSlot> {
  pit: readonly P[];
  xlat: readonly XlatEntry[];
}

export const NO_ENTRIES: FlowEntries<never> = { pit: [], xlat: [] };

export class OrderedWrites<P extends MapSlot> {
  constructor(private readonly maps: FlowMaps<P>) {}

  write(e: Partial<FlowEntries<P>>): void {
    if (e.xlat?.length) this.xlatMap().set(e.xlat);
    if (e.pit?.length) this.maps.pit.install(e.pit);
  }

  erase(e: { pit?: readonly MapSlot[]; xlat?: readonly MapSlot[] }): void {
    if (e.pit?.length) this.maps.pit.remove(e.pit);
    if (e.xlat?.length) this.xlatMap().remove(e.xlat);
  }

  /** Replaces `old` with `next`: new entries first, then the old slots `next` does not reuse. */
  move(old: FlowEntries<P>, next: FlowEntries<P>): void {
    this.write(next);
    this.erase(stale(old, next));
  }

  /** Erases only the old slots `next` does not reuse (the caller wrote `next` itself). */
  eraseStale(old: FlowEntries<P>, next: FlowEntries<P>): void {
    this.erase(stale(old, next));
  }

  private xlatMap() {
    if (!this.maps.xlat) throw new FlowError(FLOW_ERROR_CODES.NO_XLAT_MAP, 'flow table: XLAT entries given, but this table has no XLAT map');
    return this.maps.xlat;
  }
}

/** The slots of `old` that `next` does not hold. */
export function stale<P extends MapSlot>(old: FlowEntries<P>, next: FlowEntries<P>): { pit: MapSlot[]; xlat: MapSlot[] } {
  const gone = <T extends MapSlot>(a: readonly T[], b: readonly MapSlot[]): T[] => {
    if (a.length === 0) return [];
    const keep = new Set(b.map(slotKey));
    return a.filter((e) => !keep.has(slotKey(e)));
  };
  return { pit: gone(old.pit, next.pit), xlat: gone(old.xlat, next.xlat) };
}
