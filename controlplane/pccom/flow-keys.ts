/**
 * The per-flow keys of PIT entries in gscip_flow_keys (PIT CID -> struct
 * gscip_flow_key_val): written with the entries by the flow table's kernel
 * adapter (flows/kernel-flow-maps.ts), read back on adoption.
 *
 * Contract (docs/pccom.md "Per-flow keys and nonces"): a (key, counter) pair
 * is never used twice. So:
 *  - an ENCRYPT entry's value is written only when its key changes (a new
 *    salt or version): rewriting it with a counter read earlier would hand
 *    the fast path counters it has already used. Rewriting the entry with the
 *    same key (confirming it, adoption after a restart) leaves the value alone.
 *  - a DECRYPT entry's value may be rewritten (its counter is the highest one
 *    accepted, a hint for the reconstruction: a stale one costs nothing);
 *    its current and previous keys keep their counters when they stay.
 *  - a moved entry (Mobile PPC, spec.from) takes the value of the slot it moves
 *    from, the sender's counter advanced by MOVE_SKIP (packets still sent on
 *    the old slot while the move is written); never derived afresh. When that
 *    slot holds another key, the value is removed: the fast path then drops
 *    the flow's packets as no_key (counted) rather than reuse a counter.
 *    A sender's source value is read from the map at the write, never from
 *    reads remembered earlier (FlowKeyReadCache.getFresh).
 */
import type { Cid, FlowKeyHalf, FlowKeyVal } from '../maps/codecs.js';
import type { FlowKeySpec, PitEntry } from '../flows/pit-entry.js';
import { deriveFlowKey, legCode, legName, saltFromU64, saltToU64 } from './flow-key.js';

/** The group key (group, version) and its GSCIP_KEY_F_* flags, if this GE holds it. */
export type GroupKeyOf = (group: number, version: number) => { key: Buffer; flags: number } | undefined;

export interface FlowKeyMapLike {
  get(k: Cid): FlowKeyVal | undefined;
  set(k: Cid, v: FlowKeyVal): void;
  delete(k: Cid): boolean;
  /** One syscall for many values (the kernel map's bpf_map_update_batch); without it, one set() each. */
  setBatch?(entries: ReadonlyArray<readonly [Cid, FlowKeyVal]>): number;
  /** `get` from the map itself, never a remembered value (a sender's counter: FlowKeyReadCache); absent: `get`. */
  getFresh?(k: Cid): FlowKeyVal | undefined;
}

/** One entry of an install: the PIT entry, its CID and (a moved entry) the CID of the slot it moves from. */
export interface FlowKeyInstall { e: PitEntry; cid: Cid; fromCid?: Cid }

const cidKey = (c: Cid): string => `${c.saddr}|${c.daddr}|${c.sport}|${c.dport}|${c.proto}|${c.dir}`;

/**
 * The writes of one installMany(): reads see the writes made before them in
 * the same call (an entry may move from a slot written just before); the
 * values go to the map at the end, every delete and then all the sets in one
 * batch. The caller writes the PIT entries only after that, so the fast path
 * still never sees an entry's FLOW_KEY flag before its key.
 */
class FlowKeyWrites {
  private readonly pending = new Map<string, [Cid, FlowKeyVal | null]>();
  private readonly groupKeys = new Map<string, { key: Buffer; flags: number } | undefined>();
  constructor(private readonly map: FlowKeyMapLike, private readonly groupKey: GroupKeyOf) {}

  get(c: Cid): FlowKeyVal | undefined {
    const p = this.pending.get(cidKey(c));
    return p ? p[1] ?? undefined : this.map.get(c);
  }
  /** A sender's counter: this call's own write, else the map itself (never a value remembered elsewhere). */
  getFresh(c: Cid): FlowKeyVal | undefined {
    const p = this.pending.get(cidKey(c));
    return p ? p[1] ?? undefined : this.map.getFresh ? this.map.getFresh(c) : this.map.get(c);
  }
  set(c: Cid, v: FlowKeyVal): void { this.pending.set(cidKey(c), [c, v]); }
  delete(c: Cid): void { this.pending.set(cidKey(c), [c, null]); }

  /** The group key (group, version), read once per call (both legs of a flow use the same one). */
  group(group: number, version: number): { key: Buffer; flags: number } | undefined {
    const k = `${group}/${version}`;
    if (!this.groupKeys.has(k)) this.groupKeys.set(k, this.groupKey(group, version));
    return this.groupKeys.get(k);
  }

  flush(): void {
    const sets: Array<[Cid, FlowKeyVal]> = [];
    for (const [c, v] of this.pending.values()) {
      if (v === null) this.map.delete(c);
      else sets.push([c, v]);
    }
    if (sets.length > 1 && this.map.setBatch) this.map.setBatch(sets);
    else for (const [c, v] of sets) this.map.set(c, v);
  }
}

/** Whether a value's half (its key version, salt and leg) is the key `s` under `version`. */
function matches(h: FlowKeyHalf, hs: bigint, hl: number, s: FlowKeySpec, version: number): boolean {
  return h.key_version === version && hs === saltToU64(s.salt) && hl === legCode(s.leg);
}

/** How far a moved sender's counter jumps (the receiver's reconstruction takes up to 2^16 - 4096 ahead). */
export const MOVE_SKIP = 8192n;

const EMPTY: FlowKeyHalf = { key: Buffer.alloc(32), key_version: 0, flags: 0, ctr: 0n };

export interface FlowKeyWriterOptions {
  /** UDP senders: the counter at which the fast path asks for a re-key (default: the ABI's 2^47). */
  udpRekeyAt?: bigint;
}

export class FlowKeyWriter {
  constructor(private readonly map: FlowKeyMapLike, private readonly groupKey: GroupKeyOf, private readonly opts: FlowKeyWriterOptions = {}) {}

  private derive(w: FlowKeyWrites, spec: FlowKeySpec, group: number, version: number): FlowKeyHalf | undefined {
    const g = w.group(group, version);
    if (!g) return undefined;
    return { key: deriveFlowKey(g.key, group, version, spec.salt, spec.leg), key_version: version, flags: g.flags, ctr: 0n };
  }

  /** Write the per-flow key of `e` (which has e.flowKey) at `cid`; `fromCid` is e.flowKey.from's CID. */
  install(e: PitEntry, cid: Cid, fromCid?: Cid): void {
    this.installMany([{ e, cid, fromCid }]);
  }

  /**
   * The per-flow keys of several entries (one PIT install), written together:
   * each group key read once, the values in one batch when the map has one
   * (issue 15: was a lookup of the group key and one update syscall per entry).
   */
  installMany(items: readonly FlowKeyInstall[]): void {
    const w = new FlowKeyWrites(this.map, this.groupKey);
    for (const { e, cid, fromCid } of items) this.installOne(w, e, cid, fromCid);
    w.flush();
  }

  private installOne(w: FlowKeyWrites, e: PitEntry, cid: Cid, fromCid?: Cid): void {
    const spec = e.flowKey;
    if (!spec || (e.action !== 'encrypt' && e.action !== 'decrypt')) return;
    const salt = saltToU64(spec.salt);
    const leg = legCode(spec.leg);
    const old = w.get(cid);
    // A sender's counter is read from the map itself at the write (never a remembered value): what the
    // fast path used since is covered by MOVE_SKIP only for the time the write takes.
    const src = spec.from && fromCid ? (e.action === 'encrypt' ? w.getFresh(fromCid) : w.get(fromCid)) : undefined;
    let cur: FlowKeyHalf | undefined;
    let kept = false;
    if (old && matches(old.cur, old.salt, old.leg, spec, e.version)) {
      if (e.action === 'encrypt') return;  // same key: the counter stays the fast path's
      cur = old.cur;
      kept = true;
    } else if (spec.from) {
      if (!src || !matches(src.cur, src.salt, src.leg, spec, e.version)) {
        w.delete(cid);  // fail closed: never a fresh counter under a key in use
        return;
      }
      cur = e.action === 'encrypt' && e.flow.proto === 17 ? { ...src.cur, ctr: src.cur.ctr + MOVE_SKIP } : src.cur;
    } else if (e.action === 'decrypt' && old && matches(old.prev, old.prev_salt, old.prev_leg, spec, e.version)) {
      cur = old.prev;
    } else {
      cur = this.derive(w, spec, e.group, e.version);
    }
    if (!cur) {
      w.delete(cid);  // no group key to derive from: no_key drops, never the group key
      return;
    }
    let prev: FlowKeyHalf = EMPTY;
    let prevSalt = 0n;
    let prevLeg = 0;
    const ps = e.action === 'decrypt' ? e.prevFlowKey : undefined;
    if (ps) {
      const pv = e.prevVersion ?? e.version;
      const cands: Array<[FlowKeyHalf, bigint, number]> = [];
      if (old) cands.push([old.cur, old.salt, old.leg], [old.prev, old.prev_salt, old.prev_leg]);
      if (src) cands.push([src.cur, src.salt, src.leg], [src.prev, src.prev_salt, src.prev_leg]);
      const hit = cands.find(([h, s, l]) => matches(h, s, l, ps, pv));
      const p = hit ? hit[0] : this.derive(w, ps, e.group, pv);
      if (p) {
        prev = p;
        prevSalt = saltToU64(ps.salt);
        prevLeg = legCode(ps.leg);
      }
    }
    const udpSender = e.action === 'encrypt' && e.flow.proto === 17;
    w.set(cid, {
      cur, prev, salt, prev_salt: prevSalt,
      rekey_at: udpSender ? (src?.rekey_at ?? this.opts.udpRekeyAt ?? 0n) : 0n,
      leg, prev_leg: prevLeg,
      signalled: kept && old ? old.signalled : 0,
      fails: 0,
    });
  }

  remove(cid: Cid): void {
    this.map.delete(cid);
  }

  /** The specs of the value at `cid` (adoption: an entry rewritten later keeps its keys). */
  specOf(cid: Cid): Pick<PitEntry, 'flowKey' | 'prevFlowKey'> {
    const v = this.map.get(cid);
    const leg = v && legName(v.leg);
    if (!v || !leg || !v.cur.key_version) return {};
    const pleg = legName(v.prev_leg);
    return {
      flowKey: { salt: saltFromU64(v.salt), leg },
      ...(v.prev.key_version && pleg ? { prevFlowKey: { salt: saltFromU64(v.prev_salt), leg: pleg } } : {}),
    };
  }

  /** The raw value (tests, `gscip maps dump`). */
  get(cid: Cid): FlowKeyVal | undefined {
    return this.map.get(cid);
  }
}

/**
 * A flow-key map whose reads are remembered inside `scope` (and only there):
 * a moved flow's value is read when its PIT entry is read (the key specs
 * travel with the entry), and again as the slot it moves from and for the
 * slot it moves to when the new entry is written, in the same synchronous
 * call. Inside a scope those reads are answered from what was read (or
 * written) before, or from a `preload` of the whole map (one
 * bpf_map_lookup_batch sweep instead of a lookup per slot, for a large move).
 * Nothing but the control plane creates or deletes values (the fast path
 * only updates its counters in place), and no other part runs inside a
 * synchronous scope, so presence and keys are exact; counters may be older
 * than the map's, which costs nothing for a receiver (a hint) and is never
 * used for a sender: a sender's source value is read with `getFresh`, from
 * the map, at the write (pccom contract: no (key, counter) pair twice).
 * Writes go straight through and update what is remembered. Outside a scope
 * every call goes straight to the map.
 */
export class FlowKeyReadCache implements FlowKeyMapLike {
  private depth = 0;
  private readonly seen = new Map<string, FlowKeyVal | null>();
  /** Inside a scope after preload(): every slot's value as read then (absent = none). */
  private all = false;

  constructor(private readonly map: FlowKeyMapLike & { entries?(): Iterable<[Cid, FlowKeyVal]> }) {}

  /** Runs `fn` with reads remembered; forgotten when the outermost scope ends (also on a throw). */
  scope<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      if (--this.depth === 0) { this.seen.clear(); this.all = false; }
    }
  }

  /** Inside a scope: reads every value now (one sweep), so the scope's reads need no lookups. False outside a scope or without a sweep. */
  preload(): boolean {
    if (!this.depth || !this.map.entries) return false;
    for (const [k, v] of this.map.entries()) if (!this.seen.has(cidKey(k))) this.seen.set(cidKey(k), v);
    this.all = true;
    return true;
  }

  get(k: Cid): FlowKeyVal | undefined {
    if (!this.depth) return this.map.get(k);
    const key = cidKey(k);
    const s = this.seen.get(key);
    if (s !== undefined) return s ?? undefined;
    if (this.all) return undefined;
    const v = this.map.get(k);
    this.seen.set(key, v ?? null);
    return v;
  }

  getFresh(k: Cid): FlowKeyVal | undefined {
    const v = this.map.get(k);
    if (this.depth) this.seen.set(cidKey(k), v ?? null);
    return v;
  }

  set(k: Cid, v: FlowKeyVal): void {
    this.map.set(k, v);
    if (this.depth) this.seen.set(cidKey(k), v);
  }

  delete(k: Cid): boolean {
    const r = this.map.delete(k);
    if (this.depth) this.seen.set(cidKey(k), null);
    return r;
  }

  setBatch(entries: ReadonlyArray<readonly [Cid, FlowKeyVal]>): number {
    const n = this.map.setBatch ? this.map.setBatch(entries) : (entries.forEach(([k, v]) => this.map.set(k, v)), entries.length);
    if (this.depth) for (const [k, v] of entries) this.seen.set(cidKey(k), v);
    return n;
  }
}
