/**
 * Bounded holding area for punted packets waiting for a decision (release or
 * drop). Pure: no I/O, time passed in. Limits: packets per flow, packets in
 * total, and a time to live; every refusal and expiry is reported to the
 * caller, which counts it.
 */
import type { Cid, PuntRec } from '../maps/codecs.js';

export function flowKey(c: Cid): string {
  return `${c.dir}|${c.proto}|${c.saddr}:${c.sport}>${c.daddr}:${c.dport}`;
}

export interface StashLimits {
  perFlowPackets: number;
  totalPackets: number;
  ttlMs: number;
}

export type StashRefusal = 'flow_full' | 'stash_full';

interface Held { rec: PuntRec; at: number }

export class Stash {
  private readonly flows = new Map<string, Held[]>();
  private total = 0;

  constructor(private readonly limits: StashLimits) {}

  get size(): number { return this.total; }
  get flowCount(): number { return this.flows.size; }

  /** Hold a record (`now` in ms on a monotonic clock); returns null if held, or why it was refused. */
  add(rec: PuntRec, now: number): StashRefusal | null {
    const k = flowKey(rec.cid);
    const list = this.flows.get(k);
    if (list && list.length >= this.limits.perFlowPackets) return 'flow_full';
    if (this.total >= this.limits.totalPackets) return 'stash_full';
    if (list) list.push({ rec, at: now }); else this.flows.set(k, [{ rec, at: now }]);
    this.total++;
    return null;
  }

  /** Remove one specific record (by identity); true if it was held. */
  take(rec: PuntRec): boolean {
    const k = flowKey(rec.cid);
    const list = this.flows.get(k);
    if (!list) return false;
    const i = list.findIndex((h) => h.rec === rec);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.flows.delete(k);
    this.total--;
    return true;
  }

  /** Remove and return every record of a flow, oldest first. */
  takeFlow(cid: Cid): PuntRec[] {
    const k = flowKey(cid);
    const list = this.flows.get(k);
    if (!list) return [];
    this.flows.delete(k);
    this.total -= list.length;
    return list.map((h) => h.rec);
  }

  /** Remove and return records older than the TTL. */
  expire(now: number): PuntRec[] {
    const out: PuntRec[] = [];
    for (const [k, list] of this.flows) {
      let n = 0;
      while (n < list.length && now - list[n].at >= this.limits.ttlMs) n++;
      if (n === 0) continue;
      out.push(...list.splice(0, n).map((h) => h.rec));
      if (list.length === 0) this.flows.delete(k);
    }
    this.total -= out.length;
    return out;
  }

  clear(): PuntRec[] {
    const all = [...this.flows.values()].flat().map((h) => h.rec);
    this.flows.clear();
    this.total = 0;
    return all;
  }
}
