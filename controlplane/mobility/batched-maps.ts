/**
 * The maps a burst of moved flows is written through (one CU's 32 flows):
 * inside `batch`, every PIT install/remove and XLAT set/remove is held, the
 * last one per slot wins, and at the end each map gets one call per phase,
 * in an order that keeps the flow table's rule for every flow at once
 * (flows/ordered-writes.ts; a packet never meets half a flow):
 *
 *   1. egress PIT entries written (egress translates, then looks the PIT up:
 *      an egress translation must never point at a CID without its entry)
 *   2. XLAT entries written
 *   3. ingress PIT entries written (ingress looks up, then translates)
 *   4. egress XLAT entries erased (before the PIT entries they point at)
 *   5. PIT entries erased
 *   6. ingress XLAT entries erased (after their PIT entries)
 *
 * One bpf_map_update_batch per phase instead of one per flow (and per
 * entry kind). Outside a batch calls go straight through. Pure over the
 * injected maps.
 */
import { slotKey, type MapSlot } from '../flows/cid.js';
import type { FlowMaps, PitMap, XlatEntry, XlatMap } from '../flows/flow-maps.js';

type Op<T> = { put: T } | { del: MapSlot };

export class BatchedFlowMaps<P extends MapSlot> implements FlowMaps<P> {
  private depth = 0;
  private readonly pitOps = new Map<string, Op<P>>();
  private readonly xlatOps = new Map<string, Op<XlatEntry>>();
  readonly pit: PitMap<P>;
  readonly xlat?: XlatMap;

  constructor(private readonly inner: FlowMaps<P>) {
    this.pit = {
      install: (es) => (this.depth ? es.forEach((e) => this.pitOps.set(slotKey(e), { put: e })) : inner.pit.install(es)),
      remove: (ks) => (this.depth ? ks.forEach((k) => this.pitOps.set(slotKey(k), { del: k })) : inner.pit.remove(ks)),
      ...(inner.pit.activity ? { activity: inner.pit.activity.bind(inner.pit) } : {}),
    };
    const x = inner.xlat;
    if (x) {
      this.xlat = {
        set: (es) => (this.depth ? es.forEach((e) => this.xlatOps.set(slotKey(e), { put: e })) : x.set(es)),
        remove: (ks) => (this.depth ? ks.forEach((k) => this.xlatOps.set(slotKey(k), { del: k })) : x.remove(ks)),
      };
    }
  }

  /** Runs `fn` with the writes held, then writes them in the six phases; nested batches flush with the outermost. */
  batch<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      if (--this.depth === 0) this.flush();
    }
  }

  private flush(): void {
    const pitPut: P[][] = [[], []];
    const pitDel: MapSlot[] = [];
    const xPut: XlatEntry[] = [];
    const xDel: MapSlot[][] = [[], []];
    for (const op of this.pitOps.values()) {
      if ('put' in op) pitPut[op.put.dir === 'egress' ? 0 : 1].push(op.put);
      else pitDel.push(op.del);
    }
    for (const op of this.xlatOps.values()) {
      if ('put' in op) xPut.push(op.put);
      else xDel[op.del.dir === 'egress' ? 0 : 1].push(op.del);
    }
    this.pitOps.clear();
    this.xlatOps.clear();
    if (pitPut[0].length) this.inner.pit.install(pitPut[0]);
    if (xPut.length) this.inner.xlat!.set(xPut);
    if (pitPut[1].length) this.inner.pit.install(pitPut[1]);
    if (xDel[0].length) this.inner.xlat!.remove(xDel[0]);
    if (pitDel.length) this.inner.pit.remove(pitDel);
    if (xDel[1].length) this.inner.xlat!.remove(xDel[1]);
  }
}
