/**
 * The flow table's maps on the real fast path: PIT and XLAT entries by name
 * (pit-entry.ts, flow-maps.ts) to and from the typed BpfMaps of
 * maps/gscip-maps.ts. Thin; the only state is each PIT entry's `created_ns`,
 * kept so rewriting an entry (confirming it, a new key version) keeps its age
 * in `gscip maps dump pit`.
 */
import { PIT_F_FIN, PIT_F_FLOW_KEY, PIT_F_RST, PIT_F_WIRE_CSUM, PIT_WHY_MASK, PIT_WHY_SHIFT, PitState } from '../maps/abi.js';
import { FlowKeyWriter, type FlowKeyInstall, type FlowKeyWriterOptions } from '../pccom/flow-keys.js';
import type { Cid, PitVal, XlatVal } from '../maps/codecs.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import { ACTIONS, DIRS, PIT_STATES, PIT_WHYS, ROLES, XLAT_KINDS, withPitWhy } from '../maps/vocabulary.js';
import { slotKey, type FiveTuple, type MapSlot, type PitDir } from './cid.js';
import type { FlowMaps, PitMap, XlatEntry, XlatMap } from './flow-maps.js';
import type { PitEntry } from './pit-entry.js';

export function toCid(f: FiveTuple, dir: PitDir): Cid {
  return { saddr: f.saddr, daddr: f.daddr, sport: f.sport, dport: f.dport, proto: f.proto, dir: DIRS.code(dir) };
}

type PitLike = Pick<GscipMaps['pit'], 'setBatch' | 'deleteBatch' | 'get' | 'entries'>;
type FlowKeysLike = Pick<GscipMaps['flowKeys'], 'get' | 'set' | 'delete'> & Partial<Pick<GscipMaps['flowKeys'], 'setBatch'>>;
type KeysLike = Pick<GscipMaps['keys'], 'get'>;

/** The per-flow key writer over an instance's maps (group keys from gscip_keys). */
export function flowKeyWriter(maps: { flowKeys?: FlowKeysLike; keys?: KeysLike }, o: FlowKeyWriterOptions = {}): FlowKeyWriter | undefined {
  const { flowKeys, keys } = maps;
  if (!flowKeys || !keys) return undefined;
  return new FlowKeyWriter(flowKeys, (group, version) => {
    const v = keys.get({ group_id: group, version });
    return v ? { key: Buffer.from(v.key), flags: v.flags } : undefined;
  }, o);
}

/** Has a per-flow key: the entry's PIT flag FLOW_KEY. */
function usesFlowKey(e: PitEntry): boolean {
  return !!e.flowKey && (e.action === 'encrypt' || e.action === 'decrypt');
}
type XlatLike = Pick<GscipMaps['xlat'], 'setBatch' | 'deleteBatch'>;

export class KernelPitMap implements PitMap<PitEntry> {
  /** created_ns of the entries written through this map (or adopted), by slot. */
  private readonly created = new Map<string, bigint>();

  /** keys: the per-flow key writer (absent: entries with a flowKey are refused, never written with the group key). */
  constructor(private readonly pit: PitLike, private readonly nowNs: () => bigint, readonly keys?: FlowKeyWriter) {}

  install(es: readonly PitEntry[]): void {
    const now = this.nowNs();
    // Per-flow keys first: the fast path never sees an entry's FLOW_KEY flag before its key.
    const withKeys: FlowKeyInstall[] = [];
    for (const e of es) {
      if (!usesFlowKey(e)) continue;
      if (!this.keys) throw new Error('PIT entry with a per-flow key, but no gscip_flow_keys map to put it in');
      withKeys.push({ e, cid: toCid(e.flow, e.dir), ...(e.flowKey!.from ? { fromCid: toCid(e.flowKey!.from.flow, e.flowKey!.from.dir) } : {}) });
    }
    if (withKeys.length) this.keys!.installMany(withKeys);
    const rows = es.map((e): [Cid, PitVal] => {
      const k = slotKey(e);
      const created = this.created.get(k) ?? now;
      this.created.set(k, created);
      const fk = usesFlowKey(e);
      const flags = (e.wireCsum && e.action === 'encrypt' ? PIT_F_WIRE_CSUM : 0) | (fk ? PIT_F_FLOW_KEY : 0);
      const prev = e.action !== 'decrypt' ? 0 : fk ? (e.prevFlowKey ? (e.prevVersion ?? e.version) : 0) : (e.prevVersion ?? 0);
      return [toCid(e.flow, e.dir), {
        action: ACTIONS.code(e.action), state: PIT_STATES.code(e.state),
        role: ROLES.code(e.role), flags: withPitWhy(flags, e.why ?? 'none'), group_id: e.group, key_version: e.version,
        prev_key_version: prev, created_ns: created, last_seen_ns: now,
      }];
    });
    this.pit.setBatch(rows);
  }

  remove(ks: readonly MapSlot[]): void {
    this.pit.deleteBatch(ks.map((k) => toCid(k.flow, k.dir)));
    if (this.keys) for (const k of ks) this.keys.remove(toCid(k.flow, k.dir));
    for (const k of ks) this.created.delete(slotKey(k));
  }

  /** A PIT value's per-flow key specs (empty unless its flags say FLOW_KEY), read from gscip_flow_keys. */
  flowKeysOf(cid: Cid, v: PitVal): Pick<PitEntry, 'flowKey' | 'prevFlowKey'> {
    return (v.flags & PIT_F_FLOW_KEY) && this.keys ? this.keys.specOf(cid) : {};
  }

  activity(k: MapSlot): { lastSeenMs: number; closed: boolean; finSeen: boolean } | undefined {
    const v = this.pit.get(toCid(k.flow, k.dir));
    if (!v) return undefined;
    return { lastSeenMs: Number(v.last_seen_ns / 1_000_000n), closed: (v.flags & PIT_F_RST) !== 0, finSeen: (v.flags & PIT_F_FIN) !== 0 };
  }

  /**
   * The entries a control plane made (role set, state not static), e.g. by the
   * agent before a restart; their ages are kept for later rewrites. `keys:
   * false`: without their per-flow key specs (each is a lookup in
   * gscip_flow_keys; a scan for addresses needs none).
   */
  readOwned(o: { keys?: boolean } = {}): PitEntry[] {
    const out: PitEntry[] = [];
    for (const [k, v] of this.pit.entries()) {
      const a = ACTIONS.name(v.action);
      const r = ROLES.name(v.role);
      if (!a || a === 'none' || !r || r === 'none' || v.state === PitState.STATIC) continue;
      // A key of no known direction reads as ingress, a state of no known name as tentative (as always).
      const dir: PitDir = DIRS.name(k.dir) ?? 'ingress';
      const flow: FiveTuple = { saddr: k.saddr, daddr: k.daddr, sport: k.sport, dport: k.dport, proto: k.proto };
      this.created.set(slotKey({ flow, dir }), v.created_ns);
      // Fields assigned one by one, not spread (a scan of a 20,000-entry PIT: issue 12).
      const e: PitEntry = {
        flow, dir, action: a, role: r, group: v.group_id, version: v.key_version,
        state: PIT_STATES.name(v.state) === 'confirmed' ? 'confirmed' : 'tentative',
      };
      if (a === 'decrypt' && v.prev_key_version) e.prevVersion = v.prev_key_version;
      const why = whyName(v.flags);
      if (why) e.why = why;
      if (a === 'encrypt' && (v.flags & PIT_F_WIRE_CSUM)) e.wireCsum = true;
      if (o.keys !== false) {
        const ks = this.flowKeysOf(k, v);
        if (ks.flowKey) e.flowKey = ks.flowKey;
        if (ks.prevFlowKey) e.prevFlowKey = ks.prevFlowKey;
      }
      out.push(e);
    }
    return out;
  }
}

/** An entry's per-flow key specs for the same flow on another slot: the key (and counter) is taken over from `from`. */
export function movedFlowKeys(k: Pick<PitEntry, 'flowKey' | 'prevFlowKey'>, from: MapSlot): Pick<PitEntry, 'flowKey' | 'prevFlowKey'> {
  if (!k.flowKey) return {};
  return { flowKey: { salt: k.flowKey.salt, leg: k.flowKey.leg, from: { flow: from.flow, dir: from.dir } }, ...(k.prevFlowKey ? { prevFlowKey: k.prevFlowKey } : {}) };
}

/** The why bits of an entry's flags, when set to a name the ABI defines (other than 'none'). */
export function whyName(flags: number): PitEntry['why'] {
  const why = PIT_WHYS.name((flags & PIT_WHY_MASK) >> PIT_WHY_SHIFT);
  return why && why !== 'none' ? why : undefined;
}

/** The why bits of an entry's flags, when set to a name the ABI defines. */
export function whyOf(flags: number): Pick<PitEntry, 'why'> {
  const why = whyName(flags);
  return why ? { why } : {};
}

export class KernelXlatMap implements XlatMap {
  constructor(private readonly xlat: XlatLike, private readonly nowNs: () => bigint) {}

  set(es: readonly XlatEntry[]): void {
    const now = this.nowNs();
    this.xlat.setBatch(es.map((e): [Cid, XlatVal] => [toCid(e.flow, e.dir), {
      saddr: e.to.saddr, daddr: e.to.daddr, sport: e.to.sport, dport: e.to.dport, kind: XLAT_KINDS.code(e.kind), created_ns: now,
    }]));
  }

  remove(ks: readonly MapSlot[]): void {
    this.xlat.deleteBatch(ks.map((k) => toCid(k.flow, k.dir)));
  }
}

/** Both maps of an instance for a flow table. */
export function kernelFlowMaps(maps: { pit: PitLike; xlat?: XlatLike; flowKeys?: FlowKeysLike; keys?: KeysLike }, nowNs: () => bigint): FlowMaps<PitEntry> & { pit: KernelPitMap } {
  return { pit: new KernelPitMap(maps.pit, nowNs, flowKeyWriter(maps)), ...(maps.xlat ? { xlat: new KernelXlatMap(maps.xlat, nowNs) } : {}) };
}
