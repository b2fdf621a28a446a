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
 *  - expiry: DPRP's idleTimeoutMs / closedTimeoutMs are the table's PIT policy.
 */
import type { Decision, GroupVersion, PathRole } from './decide.js';
import type { DprpConfig, PitWriter } from './node-deps.js';
import type { PitEntry } from './pit-entries.js';
import type { Flow } from './wire.js';
import { FlowTable, type FlowId, type FlowRecord as TableRecord } from '../flows/flow-table.js';

export interface DprpFlowMeta {
  role: PathRole;
  decision: Decision;
  group: number;
  version: number;
  /** The negotiation that installed the entries (hex id), or 'adopted'. */
  negId: string;
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

  constructor(pit: PitWriter, clock: { monoMs(): number }, cfg: Pick<DprpConfig, 'idleTimeoutMs' | 'closedTimeoutMs'>) {
    this.table = new FlowTable({
      maps: { pit }, clock, expiry: { pit: { idleMs: cfg.idleTimeoutMs, closedMs: cfg.closedTimeoutMs }, xlat: {} },
    });
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

  /** A negotiation settled: the flow now holds `entries` (already written). */
  remember(flow: Flow, role: PathRole, decision: Decision, gv: GroupVersion | null, entries: readonly PitEntry[], negId: string): void {
    this.table.commit(flow, { role, decision, group: gv?.group ?? 0, version: gv?.version ?? 0, negId }, { pit: entries }, { written: true });
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
