/**
 * DPRP's flows in the flow table (controlplane/flows/): what a GE holds PIT
 * entries for once a negotiation settled (idle/closed expiry, re-keying,
 * `maps dump pit`, adoption). Contract:
 *  - one flow per 5-tuple, either orientation; it keeps its id when a later
 *    negotiation (re-keying, an upgrade) replaces its entries;
 *  - `remember` takes entries the roles already wrote (before a send on the
 *    critical path) and erases the flow's old entries they do not reuse;
 *  - entries of a negotiation in flight belong to that negotiation
 *    (start-role.ts, relay-role.ts) and reach the PIT through `writes`, the
 *    table's ordered writer, until they are remembered here;
 *  - expiry: DPRP's idleTimeoutMs / closedTimeoutMs are the table's PIT policy;
 *  - a transit pass (this GE relays, holds no key of the flow's group) is on
 *    an unauthenticated word, so it idles out after unauthIdleTimeoutMs like
 *    any such flow, but the ends keep their entries for idleTimeoutMs: it is
 *    kept as lapsed (bounded) until then, and the flow's next packet, a PIT
 *    miss here, puts it back (`reinstate`) instead of a negotiation of this
 *    GE's own (a CL GEN of another group would refuse the live flow).
 */
import type { Decision, GroupVersion, PathRole } from './decide.js';
import type { DprpConfig, PitWriter } from './node-deps.js';
import type { PitEntry } from './pit-entries.js';
import type { Flow } from './wire.js';
import { FlowTable, type FlowId, type FlowRecord as TableRecord } from '../flows/flow-table.js';
import { canonicalFlowKey } from '../flows/cid.js';

export interface DprpFlowMeta {
  role: PathRole;
  decision: Decision;
  group: number;
  version: number;
  /** The negotiation that installed the entries (hex id), or 'adopted'. */
  negId: string;
  /** The GE at the flow's other encrypting end (encrypt/decrypt only; unknown for adopted entries). */
  peer?: string;
}

export type NegotiatedFlow = TableRecord<PitEntry, DprpFlowMeta>;

/** A flow this GE holds PIT entries for, as `DprpNode.flowRecords()` lists it. */
export interface FlowRecord {
  /** The flow table's id: the same across re-keying. */
  id: FlowId;
  flow: Flow;
  role: PathRole;
  decision: Decision;
  group: number;
  version: number;
  entries: readonly PitEntry[];
  installedMono: number;
  /** Last activity known without asking the kernel (sweep refreshes it). */
  lastActivityMono: number;
  negId: string;
}

export class NegotiatedFlows {
  readonly table: FlowTable<PitEntry, DprpFlowMeta>;
  /**
   * Ids of the flows no key authenticated (a superset: ids of flows the table
   * forgot are pruned when the set reaches the cap), for maxUnauthFlows.
   */
  private readonly unauth = new Set<number>();
  private readonly shortPolicy: { idleMs: number; closedMs: number };
  private lastPruneMono = -Infinity;
  /** Transit passes idled out on the short policy, by canonical 5-tuple, oldest first (bounded: lapsedMax). */
  private readonly lapsed = new Map<string, { flow: Flow; meta: DprpFlowMeta; entries: readonly PitEntry[]; untilMono: number }>();
  private readonly lapsedMax: number;

  constructor(pit: PitWriter, private readonly clock: { monoMs(): number }, private readonly cfg: Pick<DprpConfig, 'idleTimeoutMs' | 'closedTimeoutMs' | 'maxUnauthFlows' | 'unauthIdleTimeoutMs'>) {
    this.table = new FlowTable({
      maps: { pit }, clock, expiry: { pit: { idleMs: cfg.idleTimeoutMs, closedMs: cfg.closedTimeoutMs }, xlat: {} },
    });
    this.shortPolicy = { idleMs: Math.min(cfg.idleTimeoutMs, cfg.unauthIdleTimeoutMs), closedMs: Math.min(cfg.closedTimeoutMs, cfg.unauthIdleTimeoutMs) };
    this.lapsedMax = 4 * cfg.maxUnauthFlows;
  }

  /**
   * Whether one more flow no key authenticates would exceed maxUnauthFlows
   * (a flow already in the table is not "one more": its entries are replaced).
   */
  unauthFull(flow: Flow): boolean {
    if (this.unauth.size < this.cfg.maxUnauthFlows) return false;
    const rec = this.table.find(flow);
    if (rec && this.unauth.has(rec.id)) return false;
    // Ids of flows the table forgot (expired, or a negotiation's that never settled): pruned at most
    // every 100 ms, so a flood refused at the cap costs O(1) per flow, not a scan of the set.
    const now = this.clock.monoMs();
    if (now - this.lastPruneMono >= 100) {
      this.lastPruneMono = now;
      for (const id of this.unauth) if (!this.table.get(id)) this.unauth.delete(id);
    }
    return this.unauth.size >= this.cfg.maxUnauthFlows;
  }

  /** Flows no key authenticated, held now. */
  get unauthCount(): number {
    let n = 0;
    for (const id of this.unauth) if (this.table.get(id)) n++;
    return n;
  }

  /** Expires idle and closed flows; those no key authenticated after unauthIdleTimeoutMs. */
  sweep(skip: (f: NegotiatedFlow) => boolean): number {
    const transit: NegotiatedFlow[] = [];
    for (const id of this.unauth) {
      const r = this.table.get(id);
      if (r && r.meta.role === 'intermediate' && r.meta.decision === 'pass') transit.push(r);
    }
    const n = this.table.sweep(skip, { policy: (r) => (this.unauth.has(r.id) ? this.shortPolicy : undefined), soonestMs: Math.min(this.shortPolicy.idleMs, this.shortPolicy.closedMs) });
    const now = this.clock.monoMs();
    if (n) {
      for (const r of transit) {
        if (this.table.get(r.id) || r.pit.length === 0) continue;
        const key = canonicalFlowKey(r.wire);
        this.lapsed.delete(key);
        this.lapsed.set(key, { flow: r.wire, meta: r.meta, entries: r.pit, untilMono: now + this.cfg.idleTimeoutMs - this.shortPolicy.idleMs });
        if (this.lapsed.size > this.lapsedMax) this.lapsed.delete(this.lapsed.keys().next().value!);
      }
      for (const id of this.unauth) if (!this.table.get(id)) this.unauth.delete(id);
    }
    for (const [k, v] of this.lapsed) {
      if (v.untilMono > now) break;
      this.lapsed.delete(k);
    }
    return n;
  }

  /**
   * A PIT miss on a transit pass that idled out here (sweep): its entries
   * written again and the flow held again as before (unauthenticated, short
   * idle, capped). False when there is none, it is past idleTimeoutMs, or the
   * cap is reached.
   */
  reinstate(flow: Flow): boolean {
    const key = canonicalFlowKey(flow);
    const l = this.lapsed.get(key);
    if (!l) return false;
    this.lapsed.delete(key);
    if (l.untilMono <= this.clock.monoMs() || this.unauthFull(l.flow)) return false;
    this.writes.write({ pit: l.entries });
    const rec = this.table.commit(l.flow, l.meta, { pit: l.entries }, { written: true });
    this.unauth.add(rec.id);
    return true;
  }

  /** The ordered writer every DPRP PIT write goes through. */
  get writes() {
    return this.table.writes;
  }

  find(flow: Flow): NegotiatedFlow | undefined {
    return this.table.find(flow);
  }

  /** The entries the flow holds now (what a re-keying negotiation replaces), if any. */
  prior(flow: Flow): readonly PitEntry[] | undefined {
    return this.table.find(flow)?.pit;
  }

  /**
   * A negotiation settled: the flow now holds `entries` (already written).
   * `unauth`: made on behalf of a peer no key authenticated (a remote's new
   * flow decided alone, a peer's unsigned word): counted against
   * maxUnauthFlows and expired after unauthIdleTimeoutMs. `peer`: the GE
   * that encrypts the flow with this one (kept with a key only).
   */
  remember(flow: Flow, role: PathRole, decision: Decision, gv: GroupVersion | null, entries: readonly PitEntry[], negId: string, unauth = false, peer?: string): void {
    const meta: DprpFlowMeta = { role, decision, group: gv?.group ?? 0, version: gv?.version ?? 0, negId };
    if (peer && gv) meta.peer = peer;
    const rec = this.table.commit(flow, meta, { pit: entries }, { written: true });
    if (unauth && !gv) this.unauth.add(rec.id);
    else this.unauth.delete(rec.id);
  }

  values(): IterableIterator<NegotiatedFlow> {
    return this.table.values();
  }

  records(): FlowRecord[] {
    return [...this.table.values()].map((r) => ({
      id: r.id, flow: r.wire, ...r.meta, entries: r.pit, installedMono: r.installedMono, lastActivityMono: r.lastActivityMono,
    }));
  }
}
