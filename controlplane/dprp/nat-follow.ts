/**
 * Following a NAT's port mapping (docs/dprp.md "Across NATs and firewalls").
 *
 * A GE past a NAT (it saw the DDE come from the NAT's address) cannot know
 * which source port the NAT gives the flow: usually the one the host used
 * (a NAT keeps it when it is free), but not when two private hosts use one
 * port toward the same service, or behind a port-randomising NAT; and when
 * two such flows start at once, which of them keeps the port is the order
 * their first packets reach the NAT. So it installs nothing on a guess: the
 * negotiation waits here, for a short while, for the flow's first packet,
 * which misses and is punted. The wait it belongs to is told by the packet
 * itself: the start GE names its flow's first packet in the MPIT (option
 * FIRST: a TCP flow's initial sequence number, which neither the NAT nor
 * PCCOM changes); for UDP in PCCOM's wire-valid form this GE derives the
 * first datagram's IP ID itself (pccom/udp-wire.ts). Waits without a mark (a
 * start older than the option, plaintext UDP) are taken oldest first; so is
 * any UDP wait when no mark matches (its first datagram lost: the next one
 * carries counter 1's IP ID). The view learned is kept for the flow's later
 * negotiations (re-keying), which then install at once.
 *
 * Bounded: at most maxPending waits (each pendingTtlMs), at most maxViews
 * learned views (each viewTtlMs after it was last used). Pure: the clock is
 * the caller's.
 */
import { flowKey } from './pit-entries.js';
import type { Flow } from './wire.js';

const IPPROTO_UDP = 17;

export interface NatFollowLimits {
  maxPending: number;
  pendingTtlMs: number;
  maxViews: number;
  viewTtlMs: number;
}

export const DEFAULT_NAT_FOLLOW: NatFollowLimits = { maxPending: 4096, pendingTtlMs: 10_000, maxViews: 65_536, viewTtlMs: 300_000 };

/** One negotiation past a NAT, waiting for its flow's first packet. */
export interface NatWait<T> {
  /** The flow as its messages name it (the start GE's, pre-NAT view). */
  wire: Flow;
  natAddr: string;
  /** The first packet's mark (FIRST option), or null when the start gave none. */
  first: number | null;
  /** The caller's data: what installing needs. */
  data: T;
  untilMono: number;
}

const serviceKey = (proto: number, natAddr: string, daddr: string, dport: number) => `${proto}|${natAddr}|${daddr}|${dport}`;
const viewKey = (wire: Flow, natAddr: string) => `${natAddr}|${flowKey(wire)}`;

export class NatFollow<T> {
  private readonly pending = new Map<string, Array<NatWait<T>>>();
  private pendingCount = 0;
  /** (NAT, pre-NAT flow) -> the view learned for it. */
  private readonly views = new Map<string, { local: Flow; untilMono: number }>();
  /** Learned local views (flow keys), for misses that raced with the install. */
  private readonly locals = new Map<string, string>();

  constructor(private readonly lim: NatFollowLimits = DEFAULT_NAT_FOLLOW) {}

  /** The view learned for `wire` past `natAddr`, or null (then its entries wait for the first packet). */
  learned(wire: Flow, natAddr: string, now: number): Flow | null {
    const v = this.views.get(viewKey(wire, natAddr));
    if (!v) return null;
    v.untilMono = now + this.lim.viewTtlMs;
    return v.local;
  }

  /** Whether `seen` (as it arrived) is a view learned already: a packet punted before its entries were written. */
  isLearned(seen: Flow): boolean {
    return this.locals.has(flowKey(seen));
  }

  /** `wire`'s entries are on `local` now. */
  learn(local: Flow, wire: Flow, natAddr: string, now: number): void {
    if (this.views.size >= this.lim.maxViews) this.sweep(now);
    if (this.views.size >= this.lim.maxViews) return;
    const k = viewKey(wire, natAddr);
    const before = this.views.get(k);
    if (before) this.locals.delete(flowKey(before.local));
    this.views.set(k, { local, untilMono: now + this.lim.viewTtlMs });
    this.locals.set(flowKey(local), k);
  }

  /** A negotiation past a NAT completed: it waits for its first packet. False (not kept) at the cap. */
  await(w: Omit<NatWait<T>, 'untilMono'>, now: number): boolean {
    if (this.pendingCount >= this.lim.maxPending) this.sweep(now);
    if (this.pendingCount >= this.lim.maxPending) return false;
    const k = serviceKey(w.wire.proto, w.natAddr, w.wire.daddr, w.wire.dport);
    const list = this.pending.get(k) ?? [];
    // A re-negotiation of the same flow replaces its older wait.
    const i = list.findIndex((x) => flowKey(x.wire) === flowKey(w.wire));
    if (i >= 0) { list.splice(i, 1); this.pendingCount--; }
    list.push({ ...w, untilMono: now + this.lim.pendingTtlMs });
    this.pending.set(k, list);
    this.pendingCount++;
    return true;
  }

  /**
   * A packet `seen` (as it arrived: from the NAT's address) with mark `first`
   * missed: the wait it belongs to (removed), or null. The wait naming that
   * mark; else the oldest wait that names none; never one naming another mark,
   * but for UDP (then the oldest: a lost first datagram must not strand its flow).
   */
  take(seen: Flow, first: number | null, now: number): NatWait<T> | null {
    const k = serviceKey(seen.proto, seen.saddr, seen.daddr, seen.dport);
    const list = this.pending.get(k);
    if (!list) return null;
    let i = first === null ? -1 : list.findIndex((w) => w.untilMono > now && w.first === first);
    if (i < 0) i = list.findIndex((w) => w.untilMono > now && w.first === null);
    if (i < 0 && seen.proto === IPPROTO_UDP) i = list.findIndex((w) => w.untilMono > now);
    if (i < 0) return null;
    const [w] = list.splice(i, 1);
    this.pendingCount--;
    if (list.length === 0) this.pending.delete(k);
    return w;
  }

  /** Drops expired waits and views. */
  sweep(now: number): void {
    for (const [k, list] of this.pending) {
      const keep = list.filter((w) => w.untilMono > now);
      this.pendingCount -= list.length - keep.length;
      if (keep.length) this.pending.set(k, keep);
      else this.pending.delete(k);
    }
    for (const [k, v] of this.views) {
      if (v.untilMono > now) continue;
      this.views.delete(k);
      if (this.locals.get(flowKey(v.local)) === k) this.locals.delete(flowKey(v.local));
    }
  }

  get size(): { pending: number; views: number } {
    return { pending: this.pendingCount, views: this.views.size };
  }
}
