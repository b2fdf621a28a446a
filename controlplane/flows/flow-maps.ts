/**
 * The maps a flow's entries live in, as the flow table sees them: injected,
 * so the table is pure and tested without root (test/unit/flows.test.ts); the
 * kernel side is kernel-flow-maps.ts over the typed BpfMaps.
 *
 * A PIT entry is whatever the owning part writes (DPRP: dprp/pit-entries.ts'
 * PitEntry); the table only needs its slot. An XLAT entry rewrites the CID of
 * its slot (the pre-translation view) to `to`; its `kind` is the ABI's
 * `enum gscip_xlat_kind` by name (STATIC entries are the operator's, never a
 * flow's).
 */
import { XLAT_KINDS, type XlatKindName as AbiXlatKindName } from '../maps/vocabulary.js';
import type { MapSlot, PitDir } from './cid.js';

/** A flow's XLAT kinds: 'cit' | 'vat' | 'nat' (every kind but 'static'). */
export type XlatKindName = Exclude<AbiXlatKindName, 'static'>;
export const XLAT_KIND_NAMES: readonly XlatKindName[] = XLAT_KINDS.names.filter((n): n is XlatKindName => n !== 'static');

export interface XlatEntry extends MapSlot {
  /** The CID after translation (the protocol and direction stay). */
  to: { saddr: string; daddr: string; sport: number; dport: number };
  kind: XlatKindName;
}

/** What the fast path reports about one PIT entry. */
export interface SlotActivity {
  /** Last packet on the entry (the table's monotonic ms clock). */
  lastSeenMs: number;
  /** The entry saw the flow end by itself (a TCP RST). */
  closed: boolean;
  /** A TCP FIN in the entry's direction. */
  finSeen?: boolean;
}

export interface PitMap<P extends MapSlot> {
  /** Insert or replace. */
  install(entries: readonly P[]): void;
  remove(keys: readonly MapSlot[]): void;
  activity?(key: MapSlot): SlotActivity | undefined;
}

export interface XlatMap {
  /** Insert or replace. */
  set(entries: readonly XlatEntry[]): void;
  remove(keys: readonly MapSlot[]): void;
}

export interface FlowMaps<P extends MapSlot> {
  pit: PitMap<P>;
  /** Absent: this GE writes no XLAT entries (a flow given some is refused). */
  xlat?: XlatMap;
}

export type { MapSlot, PitDir };
