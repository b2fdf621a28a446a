/**
 * Following a NAT's port mapping (docs/dprp.md "Across NATs and firewalls").
 *
 * A GE past a NAT (it saw the DDE come from the NAT's address) installs the flow's entries on the NAT's address with the
 * source port kept, which is what a NAT does when the port is free. When it
 * is not (two private hosts using one source port toward the same service, or
 * a port-randomising NAT), the flow's first packet comes from another port
 * and misses. This table keeps, for a short while after each such
 * negotiation, what is needed to re-point its entries: on a miss from the
 * NAT's address toward the same service (protocol, destination, port), the
 * oldest negotiation whose entries have not seen a packet yet takes the
 * packet's port, and the view it learned is kept for the flow's later
 * negotiations (re-keying) so they start on the right port.
 *
 * Also: a second flow whose guess would land on another flow's entries (the
 * same NAT port) is not installed on the guess at all, only re-pointed.
 *
 * Bounded: at most maxPending negotiations waiting for their first packet
 * (each pendingTtlMs), at most maxViews learned views (each viewTtlMs after
 * it was last used). Pure: the clock is the caller's.
 */
import { flowKey } from './pit-entries.js';
import type { Flow } from './wire.js';

export interface NatFollowLimits {
  maxPending: number;
  pendingTtlMs: number;
  maxViews: number;
  viewTtlMs: number;
}

export const DEFAULT_NAT_FOLLOW: NatFollowLimits = { maxPending: 4096, pendingTtlMs: 10_000, maxViews: 65_536, viewTtlMs: 300_000 };

/** One negotiation past a NAT, waiting for its flow's first packet. */
export interface NatPending<T> {
  /** The flow as its messages name it (the start GE's, pre-NAT view). */
  wire: Flow;
  natAddr: string;
  /** The view its entries are on now (the guess), or null when it has none (it would have taken another flow's). */
  placed: Flow | null;
  /** Whether its placed entries have carried a packet (then the guess was right). */
  placedSeen: () => boolean;
  /** The caller's data: what re-pointing needs. */
  data: T;
  untilMono: number;
}

const serviceKey = (proto: number, natAddr: string, daddr: string, dport: number) => `${proto}|${natAddr}|${daddr}|${dport}`;
const viewKey = (wire: Flow, natAddr: string) => `${natAddr}|${flowKey(wire)}`;

export class NatFollow<T> {
  private readonly pending = new Map<string, Array<NatPending<T>>>();
  private pendingCount = 0;
  /** (NAT, pre-NAT flow) -> the view learned for it. */
  private readonly views = new Map<string, { local: Flow; untilMono: number }>();
  /** local view -> the pre-NAT flow owning it. */
  private readonly owners = new Map<string, string>();

  constructor(private readonly lim: NatFollowLimits = DEFAULT_NAT_FOLLOW) {}

  /** The view of `wire` past `natAddr`: the one learned for it, else the guess (the NAT's address, the port kept). */
  viewOf(wire: Flow, natAddr: string, now: number): Flow {
    const v = this.views.get(viewKey(wire, natAddr));
    if (v) {
      v.untilMono = now + this.lim.viewTtlMs;
      return v.local;
    }
    return { ...wire, saddr: natAddr };
  }

  /** Whether `local` already carries another flow than `wire` (its guess would overwrite that flow's entries). */
  takenByOther(local: Flow, wire: Flow): boolean {
    const o = this.owners.get(flowKey(local));
    return o !== undefined && o !== flowKey(wire);
  }

  /** `wire`'s entries are on `local` (guessed or learned). */
  own(local: Flow, wire: Flow, natAddr: string, now: number): void {
    if (this.views.size >= this.lim.maxViews) this.sweep(now);
    if (this.views.size >= this.lim.maxViews) return;
    this.views.set(viewKey(wire, natAddr), { local, untilMono: now + this.lim.viewTtlMs });
    this.owners.set(flowKey(local), flowKey(wire));
  }

  /** A negotiation past a NAT completed: it may need its port re-pointed. False (not kept) at the cap. */
  await(p: Omit<NatPending<T>, 'untilMono'>, now: number): boolean {
    if (this.pendingCount >= this.lim.maxPending) this.sweep(now);
    if (this.pendingCount >= this.lim.maxPending) return false;
    const k = serviceKey(p.wire.proto, p.natAddr, p.wire.daddr, p.wire.dport);
    const list = this.pending.get(k) ?? [];
    // A re-negotiation of the same flow replaces its older wait.
    const i = list.findIndex((x) => flowKey(x.wire) === flowKey(p.wire));
    if (i >= 0) { list.splice(i, 1); this.pendingCount--; }
    list.push({ ...p, untilMono: now + this.lim.pendingTtlMs });
    this.pending.set(k, list);
    this.pendingCount++;
    return true;
  }

  /**
   * A packet `seen` (as it arrived: from the NAT's address) missed. The
   * oldest waiting negotiation toward its service whose guess has carried
   * nothing takes it (removed from the wait), or null.
   */
  take(seen: Flow, now: number): NatPending<T> | null {
    const k = serviceKey(seen.proto, seen.saddr, seen.daddr, seen.dport);
    const list = this.pending.get(k);
    if (!list) return null;
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      if (p.untilMono <= now) continue;
      if (p.placed && (p.placed.sport === seen.sport || p.placedSeen())) continue;
      list.splice(i, 1);
      this.pendingCount--;
      if (list.length === 0) this.pending.delete(k);
      return p;
    }
    return null;
  }

  /** Drops expired waits and views. */
  sweep(now: number): void {
    for (const [k, list] of this.pending) {
      const keep = list.filter((p) => p.untilMono > now);
      this.pendingCount -= list.length - keep.length;
      if (keep.length) this.pending.set(k, keep);
      else this.pending.delete(k);
    }
    for (const [k, v] of this.views) {
      if (v.untilMono > now) continue;
      this.views.delete(k);
      const ok = flowKey(v.local);
      if (this.owners.get(ok) === k.slice(k.indexOf('|') + 1)) this.owners.delete(ok);
    }
  }

  get size(): { pending: number; views: number } {
    return { pending: this.pendingCount, views: this.views.size };
  }
}
