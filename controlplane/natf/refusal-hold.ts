/**
 * A flow to a virtual address the GNAT refused is held refused for a while
 * (docs/natf.md "Denials"): its next packets are answered at once with the
 * ICMP unreachable (refusal.ts), without asking the GNAT again. Without it
 * every datagram of a UDP application to a denied name cost a DDE round trip
 * to the GNAT before its error, and the error came only after that trip. A
 * connected UDP socket now sees EHOSTUNREACH on its next call after each send
 * (at most one ICMP per flow per `icmpEveryMs`); TCP retries of a refused
 * connect fail the same way. Bounded (`maxFlows`, the oldest forgotten first),
 * with an injected clock. Pure.
 */
import { flowKey, type FiveTuple } from '../flows/cid.js';

export interface RefusalHoldOptions {
  /** How long a refusal is held (0: not held, every packet asks the GNAT again). */
  holdMs: number;
  /** At most one ICMP unreachable per held flow this often (the rest are dropped, counted). */
  icmpEveryMs: number;
  maxFlows: number;
}

export const REFUSAL_HOLD_DEFAULTS: RefusalHoldOptions = { holdMs: 2000, icmpEveryMs: 50, maxFlows: 4096 };

export type HeldVerdict = 'not_held' | 'icmp' | 'quiet';

export class RefusalHold {
  private readonly held = new Map<string, { untilMs: number; lastIcmpMs: number }>();

  constructor(private readonly o: RefusalHoldOptions, private readonly nowMs: () => number) {}

  get size(): number { return this.held.size; }

  /** The GNAT refused `flow` (the application's, to the virtual address); the ICMP for it was just sent. */
  refused(flow: FiveTuple): void {
    if (this.o.holdMs <= 0) return;
    const k = flowKey(flow);
    this.held.delete(k);
    while (this.held.size >= this.o.maxFlows) this.held.delete(this.held.keys().next().value!);
    const now = this.nowMs();
    this.held.set(k, { untilMs: now + this.o.holdMs, lastIcmpMs: now });
  }

  /** A packet of `flow` missed: held (answer with an ICMP, or quietly drop it) or not (negotiate). */
  check(flow: FiveTuple): HeldVerdict {
    const k = flowKey(flow);
    const h = this.held.get(k);
    if (!h) return 'not_held';
    const now = this.nowMs();
    if (now >= h.untilMs) {
      this.held.delete(k);
      return 'not_held';
    }
    if (now - h.lastIcmpMs < this.o.icmpEveryMs) return 'quiet';
    h.lastIcmpMs = now;
    return 'icmp';
  }

  /** Forgets lapsed holds (the sweep). */
  expire(): number {
    const now = this.nowMs();
    let n = 0;
    for (const [k, h] of this.held) if (now >= h.untilMs) { this.held.delete(k); n++; }
    return n;
  }
}
