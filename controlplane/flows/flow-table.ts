/**
 * The flow table: every flow this GE holds entries for, under an id that
 * survives its addresses changing, with the PIT and XLAT entries it owns.
 *
 * Contract:
 *  - identity: `create`/`commit` give a new flow an id (a counter, never
 *    reused while the process lives); `rekey` moves a flow to other wire CIDs
 *    (an address change) and keeps it. A secondary index finds a flow by its
 *    current wire CIDs (either direction: the canonical key of `wire`).
 *  - ownership: a flow's PIT entries are keyed by its wire CIDs (forward and
 *    reverse, per hook); its XLAT entries have a kind (cit/vat/nat). Entries a
 *    flow stops holding are erased when it takes the new ones (never left
 *    behind unowned), and an expired flow's entries all go, in reverse order.
 *  - order: through ordered-writes.ts (XLAT before PIT; erase in reverse;
 *    make before break).
 *  - expiry: `sweep` judges each flow from its PIT entries' activity with the
 *    per-kind policies of expiry.ts.
 * Pure: maps and clock injected (test/unit/flows.test.ts, fake clock).
 * The table holds one flow per wire 5-tuple; the parts decide what a flow is
 * (DPRP: dprp/flow-book.ts). Entries of a negotiation still in flight are
 * the negotiation's until it hands them to the table.
 */
import { canonicalFlowKey, type FiveTuple, type MapSlot } from './cid.js';
import { FLOW_ERROR_CODES, FlowError } from './errors.js';
import { foldActivity, limitFor, soonest, xlatPolicy, type ExpiryPolicies, type ExpiryPolicy } from './expiry.js';
import type { FlowMaps, XlatEntry } from './flow-maps.js';
import { OrderedWrites, type FlowEntries } from './ordered-writes.js';

/** A flow's identity: stable across re-keying, never reused by this table. */
export type FlowId = number;

export interface FlowRecord<P extends MapSlot, M> {
  readonly id: FlowId;
  /** The flow's current wire CID, forward orientation (as its owner last committed it). */
  wire: FiveTuple;
  pit: readonly P[];
  xlat: readonly XlatEntry[];
  /** What the owning part keeps about the flow (DPRP: role, decision, key, negotiation). */
  meta: M;
  readonly createdMono: number;
  /** When its entries were last committed (0: unknown, e.g. adopted from a previous agent). */
  installedMono: number;
  /** Last activity known without asking the kernel (sweep refreshes it). */
  lastActivityMono: number;
}

export interface FlowTableDeps<P extends MapSlot> {
  maps: FlowMaps<P>;
  clock: { monoMs(): number };
  expiry: ExpiryPolicies;
}

export interface CommitOptions {
  /** The caller already wrote the entries (e.g. before a send on the critical path): only stale ones are erased. */
  written?: boolean;
  /** Install time to record (default: now). Adoption passes 0: age unknown. */
  installedMono?: number;
}

export class FlowTable<P extends MapSlot, M> {
  readonly writes: OrderedWrites<P>;
  private readonly byId = new Map<FlowId, FlowRecord<P, M>>();
  private readonly byWire = new Map<string, FlowId>();
  private nextId = 1;

  constructor(private readonly d: FlowTableDeps<P>) {
    this.writes = new OrderedWrites(d.maps);
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: FlowId): FlowRecord<P, M> | undefined {
    return this.byId.get(id);
  }

  /** The flow currently on this wire 5-tuple (either direction). */
  find(wire: FiveTuple): FlowRecord<P, M> | undefined {
    const id = this.byWire.get(canonicalFlowKey(wire));
    return id === undefined ? undefined : this.byId.get(id);
  }

  values(): IterableIterator<FlowRecord<P, M>> {
    return this.byId.values();
  }

  /**
   * The flow on `wire` now holds `entries` and `meta`: a new flow gets an id,
   * an existing one keeps its id and its old entries that `entries` does not
   * reuse are erased (after the new ones are written).
   */
  commit(wire: FiveTuple, meta: M, entries: Partial<FlowEntries<P>>, o: CommitOptions = {}): FlowRecord<P, M> {
    const next = this.checked(wire, entries);
    const now = this.d.clock.monoMs();
    const old = this.find(wire);
    if (o.written) this.writes.eraseStale(old ?? { pit: [], xlat: [] }, next);
    else this.writes.move(old ?? { pit: [], xlat: [] }, next);
    const installedMono = o.installedMono ?? now;
    if (old) {
      Object.assign(old, { wire, meta, pit: next.pit, xlat: next.xlat, installedMono, lastActivityMono: installedMono });
      return old;
    }
    const rec: FlowRecord<P, M> = {
      id: this.nextId++, wire, pit: next.pit, xlat: next.xlat, meta, createdMono: now, installedMono, lastActivityMono: installedMono,
    };
    this.byId.set(rec.id, rec);
    this.byWire.set(canonicalFlowKey(wire), rec.id);
    return rec;
  }

  /** Replaces a flow's entries, keeping its meta and install time (e.g. confirming, dropping a previous key version). */
  rewrite(id: FlowId, entries: Partial<FlowEntries<P>>, o: Pick<CommitOptions, 'written'> = {}): FlowRecord<P, M> {
    const rec = this.must(id);
    const next = this.checked(rec.wire, { pit: entries.pit ?? rec.pit, xlat: entries.xlat ?? rec.xlat });
    if (o.written) this.writes.eraseStale(rec, next);
    else this.writes.move(rec, next);
    rec.pit = next.pit;
    rec.xlat = next.xlat;
    return rec;
  }

  /**
   * An address change: the flow moves to `wire` with `entries` (keyed by the
   * new CIDs) and keeps its id, meta and age. Make before break: the new
   * entries are written before the old ones are erased, so the flow is never
   * without entries. Refused when another flow is on the new CIDs.
   */
  rekey(id: FlowId, wire: FiveTuple, entries: Partial<FlowEntries<P>>): FlowRecord<P, M> {
    const rec = this.must(id);
    const to = canonicalFlowKey(wire);
    const holder = this.byWire.get(to);
    if (holder !== undefined && holder !== id) {
      throw new FlowError(FLOW_ERROR_CODES.CID_TAKEN, `flow table: flow ${id} cannot move to ${to}, flow ${holder} is there`);
    }
    const next = this.checked(wire, entries);
    this.writes.move(rec, next);
    this.byWire.delete(canonicalFlowKey(rec.wire));
    this.byWire.set(to, id);
    rec.wire = wire;
    rec.pit = next.pit;
    rec.xlat = next.xlat;
    return rec;
  }

  /** Erases every entry of the flow (PIT first, then XLAT) and forgets it. */
  remove(id: FlowId): void {
    const rec = this.must(id);
    this.writes.erase(rec);
    this.forget(id);
  }

  /** Forgets a flow whose entries the caller erased itself (a negotiation that never settled). */
  forget(id: FlowId): void {
    const rec = this.byId.get(id);
    if (!rec) return;
    this.byId.delete(id);
    if (this.byWire.get(canonicalFlowKey(rec.wire)) === id) this.byWire.delete(canonicalFlowKey(rec.wire));
  }

  /**
   * Expires the flows whose last packet is older than their timeout
   * (expiry.ts), erasing all their entries. The kernel is asked only about
   * flows quiet for at least the soonest timeout. `skip`: flows not to judge
   * now (e.g. one being negotiated again). `shorter`: a PIT policy some flows
   * get instead of the table's (DPRP: flows no key authenticated), with the
   * soonest it can expire one. Returns how many expired.
   */
  sweep(skip?: (rec: FlowRecord<P, M>) => boolean, shorter?: { policy(rec: FlowRecord<P, M>): ExpiryPolicy | undefined; soonestMs: number }): number {
    const now = this.d.clock.monoMs();
    const first = Math.min(soonest(this.d.expiry), shorter?.soonestMs ?? Infinity);
    let expired = 0;
    for (const rec of [...this.byId.values()]) {
      if (now - rec.lastActivityMono < first) continue;
      if (skip?.(rec)) continue;
      const a = foldActivity(rec.wire, rec.pit, rec.installedMono, this.d.maps.pit.activity?.bind(this.d.maps.pit));
      rec.lastActivityMono = a.lastMs;
      const own = shorter?.policy(rec);
      const expiry = own ? { ...this.d.expiry, pit: own } : this.d.expiry;
      if (now - a.lastMs >= limitFor(expiry, rec.xlat.map((x) => x.kind), a.closed)) {
        this.remove(rec.id);
        expired++;
      }
    }
    return expired;
  }

  private must(id: FlowId): FlowRecord<P, M> {
    const rec = this.byId.get(id);
    if (!rec) throw new FlowError(FLOW_ERROR_CODES.UNKNOWN_FLOW, `flow table: no flow ${id}`);
    return rec;
  }

  /** PIT entries must sit on the flow's wire CIDs; XLAT kinds must have a policy. */
  private checked(wire: FiveTuple, e: Partial<FlowEntries<P>>): FlowEntries<P> {
    const pit = e.pit ?? [];
    const xlat = e.xlat ?? [];
    const key = canonicalFlowKey(wire);
    for (const p of pit) {
      if (canonicalFlowKey(p.flow) !== key) {
        throw new FlowError(FLOW_ERROR_CODES.BAD_ENTRY, `flow table: a PIT entry on ${canonicalFlowKey(p.flow)} given to the flow on ${key}`);
      }
    }
    for (const x of xlat) xlatPolicy(this.d.expiry, x.kind);
    if (xlat.length && !this.d.maps.xlat) throw new FlowError(FLOW_ERROR_CODES.NO_XLAT_MAP, 'flow table: XLAT entries given, but this table has no XLAT map');
    return { pit, xlat };
  }
}
