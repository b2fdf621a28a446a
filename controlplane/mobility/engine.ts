/**
 * Mobile PPC on one GE, both ends (docs/mobility.md): pure, with the maps,
 * key ring, transport, clock, timers and the old-address keeper injected, so
 * test/unit/mobility.test.ts runs a mover and a stationary end against each
 * other without a kernel.
 *
 * Mover (`onMove`, an address of this GE went, another came: move-events.ts):
 *  1. the flows on the old address: those it moved before (its flow table)
 *     and DPRP's entries on it (the PIT);
 *  2. keeps the sockets' address local (`keeper.keep`: the stack view);
 *  3. per flow the next move sequence; writes the ingress half of the CIT
 *     (nothing arrives on it before the peer switches);
 *  4. one CU per peer and key (up to CU_MAX_ENTRIES flows each), re-sent on a
 *     bounded backoff (cu-exchange.ts);
 *  5. on the CU-ACK, each accepted flow takes its whole CIT and its PIT
 *     entries on the new wire CIDs (flow table: the id stays); so the peer has
 *     switched before this end sends from the new address.
 * Stationary end (`onControl` with a CU): MAC under a group key it holds, the
 * IP source must be every entry's new address, timestamp window, the flow must
 * be one it holds (DPRP's or moved before) under that group, and the move
 * sequence must be new (move-seq.ts); then its CIT and re-keyed PIT entries,
 * and a CU-ACK. The old PIT entries stay DPRP's and expire with DPRP's idle
 * timeout: packets in flight on the old address are still accepted meanwhile.
 * Every refusal is counted by reason and changes nothing.
 * Both ends moved at once (docs/mobility.md): each end's CU went to the other's
 * old address and is lost. After a few unanswered sends the mover asks the
 * rendezvous (`rendezvous.locate`: DNS, where each GE's DDNS put its new
 * address) where the peer is now and sends the CU there; a CU that arrives at
 * this end's new address while its own move is unanswered proves the peer knows
 * it, so both halves of the CIT go in (both addresses translated) and this
 * end's own CU goes to the address that CU came from.
 */
import { randomBytes } from 'node:crypto';
import { canonicalFlowKey, slotKey, type FiveTuple, type MapSlot } from '../flows/cid.js';
import { FlowTable } from '../flows/flow-table.js';
import { sameEntry } from '../flows/same-entry.js';
import type { FlowMaps, XlatEntry } from '../flows/flow-maps.js';
import type { PitEntry } from '../flows/pit-entry.js';
import { citBetween, endOf, sameAddrPort, stackFlowKey, type MoveEnd, type PitTemplate, type StackFlow } from './cit.js';
import { CuExchanges, type Timers } from './cu-exchange.js';
import { newestVersion, rekeyed, wantsRekey } from './rekey.js';
import { BatchedFlowMaps } from './batched-maps.js';
import { CU_CODE, CU_FLAG, CU_MAX_ENTRIES, CU_STATUS, CuWireError, decodeCu, encodeCu, verifyCu, type AddrPort, type CuEntry } from './cu-wire.js';
import { judgeSeq, MoveCounter } from './move-seq.js';
import type { Move } from './move-events.js';

/** After an unanswered CU exchange, the same move is offered again after these delays (ms), then given up. */
export const RESYNC_MS: readonly number[] = [1000, 2000, 4000, 8000, 16_000];
/**
 * A flow that moves again (or home) keeps the ingress entries of its previous
 * wire addresses this long: packets the peer sent there before it switched are
 * still accepted, decrypted and translated (else each is a PIT miss that
 * starts a DPRP negotiation toward an address the peer has left).
 */
export const REMOVE_GRACE_MS = 3000;
/** Lingering entries made within this long share one grace timer (expireLater): they go 3-4 s after they were made. */
export const LINGER_BUCKET_MS = 1000;
/** From this send of a CU on (~175 ms after the move with CU_RETRY_MS), every send asks the rendezvous where the peer is. */
export const LOCATE_FROM_SEND = 4;
/** An unanswered re-key of moved flows (rekey.ts) is tried again after REKEY_RETRY_MS * 2^tries, at most REKEY_TRIES times. */
export const REKEY_RETRY_MS = 2000;
export const REKEY_TRIES = 5;

export interface MobilityKey { group: number; version: number; key: Buffer }

export const CU_REFUSAL_REASONS = [
  'wire', 'no_key', 'bad_mac', 'stale', 'source_mismatch', 'destination_mismatch', 'unknown_flow', 'wrong_group', 'replayed', 'unexpected_ack', 'refused_by_peer',
] as const;
export type CuRefusal = (typeof CU_REFUSAL_REASONS)[number];

/** Why an open CU exchange was sent to another peer address: the rendezvous said so, or the peer's own CU came from there. */
export type RedirectReason = 'rendezvous' | 'peer_cu';

export interface MobilityObserver {
  moved?(flows: number): void;
  cuSent?(retry: boolean): void;
  cuAnswered?(seconds: number): void;
  cuFailed?(reason: 'no_answer' | 'no_key'): void;
  refused?(reason: CuRefusal, entries: number): void;
  /** `n` flows (1 when absent) took their CIT as `end`. */
  flowMoved?(end: MoveEnd, n?: number): void;
  redirected?(reason: RedirectReason): void;
  /** Moved flows switched to a newer key version (rekey.ts), by step: sent (decrypt switched), applied (peer's CU), answered. */
  rekeyed?(step: 'sent' | 'applied' | 'answered', flows: number): void;
}

/** Where a peer GE is now, from a source both ends trust (rendezvous.ts: DNS). undefined: unknown or unchanged. */
export interface Rendezvous {
  locate(peer: string): Promise<string | undefined>;
}

export interface MobilityDeps {
  maps: FlowMaps<PitEntry>;
  /** A PIT entry's value by slot, or undefined. */
  pitGet(slot: MapSlot): PitTemplate | undefined;
  /** The PIT's control-plane entries (DPRP's), for the flows on a moved address. */
  /** `keys: false`: the entries' per-flow key specs are not needed (not read: a lookup per entry). */
  pitScan(o?: { keys?: boolean }): Iterable<PitEntry>;
  keys(): readonly MobilityKey[];
  /** Sends an ICMP message from src to dst. */
  send(dst: string, icmp: Buffer, src: string): void;
  /** Keeps an address the sockets use local to this host after it left the interface (and lets it go). */
  keeper: { keep(addr: string): void; release(addr: string): void };
  /** The stationary end: the old address is routed the way the new one is (TC egress runs after routing). */
  router?: { follow(oldAddr: string, newAddr: string): void };
  /** Both ends moved at once: where the peer is now (none: a CU to a peer that moved too is lost). */
  rendezvous?: Rendezvous;
  clock: { nowMs(): number; monoMs(): number };
  timers: Timers;
  observer?: MobilityObserver;
  /** CIT expiry (idle / closed ms): as long as DPRP's PIT timeouts by default. */
  expiry?: { idleMs: number; closedMs: number };
  retryMs?: readonly number[];
  /** Timestamp window of a CU, ms. */
  windowMs?: number;
}

export interface MoveMeta {
  /** Which end is off its original address (this one: mover, the peer: stationary, or both). */
  end: MoveEnd;
  stack: StackFlow;
  /** This end and the peer on the wire now. */
  local: AddrPort;
  remote: AddrPort;
  /** The moving side's end on the wire now (this end's when it moved, else the peer's). */
  next: AddrPort;
  /** The last move sequence this end sent for its side, and the last one applied from the peer. */
  localSeq: number;
  remoteSeq: number;
  moves: number;
  lastMoveMono: number;
  group: number;
  version: number;
}

interface Pending {
  flow: StackFlow;
  /** This end's new wire address. */
  next: AddrPort;
  /** Where the peer is on the wire (the CU goes there). */
  remote: AddrPort;
  seq: number;
  egress: PitTemplate;
  ingress: PitTemplate;
  /** The ingress half written before the answer (erased if the move does not happen). */
  half: { pit: PitEntry[]; xlat: XlatEntry[] };
}

interface Exchange { entries: Pending[]; peer: string; src: string; key: MobilityKey; startMono: number; resyncTry: number; locating: boolean }

export class MobilityEngine {
  readonly table: FlowTable<PitEntry, MoveMeta>;
  private readonly counter = new MoveCounter();
  private readonly exchanges: CuExchanges;
  private readonly pending = new Map<string, Exchange>();
  /** Which open exchange carries a flow's move (stack key -> exchange id; checked against `pending` on use). */
  private readonly pendingByFlow = new Map<string, string>();
  private readonly windowMs: number;
  /** Moves whose CU went unanswered, offered again from sweep() (bounded: RESYNC_MS). */
  private readonly resync = new Map<string, { entry: Pending; src: string; tries: number; dueMono: number }>();
  /** Ids of the last answered CUs (bounded): their late duplicate answers are ignored. */
  private readonly answered = new Set<string>();
  private readonly stackIndex = new Map<string, number>();
  /** Re-keys of moved flows waiting for their answer (cu id -> what was sent), and the flows in them (stack keys). */
  private readonly rekeyPending = new Map<string, { peer: string; src: string; key: MobilityKey; flows: string[] }>();
  private readonly rekeyOpen = new Set<string>();
  private readonly rekeyRetry = new Map<string, { tries: number; dueMono: number }>();

  /** The maps, with one CU's writes batched (batched-maps.ts). */
  private readonly maps: BatchedFlowMaps<PitEntry>;

  constructor(private readonly d: MobilityDeps) {
    const cit = d.expiry ?? { idleMs: 300_000, closedMs: 10_000 };
    this.maps = new BatchedFlowMaps(d.maps);
    this.table = new FlowTable({ maps: this.maps, clock: d.clock, expiry: { pit: cit, xlat: { cit } } });
    this.exchanges = new CuExchanges(d.timers, d.retryMs, () => d.clock.monoMs());
    this.windowMs = d.windowMs ?? 30_000;
  }

  /** CU exchanges waiting for their answer. */
  get pendingExchanges(): number {
    return this.exchanges.pending;
  }

  /** The moved flows (both ends), as the flow view shows them. */
  moved(): Array<{ id: number } & MoveMeta & { wire: FiveTuple }> {
    return [...this.table.values()].map((r) => ({ id: r.id, wire: r.wire, ...r.meta }));
  }

  // ---------------- mover ----------------

  /** A route appeared (rtnetlink): CUs waiting for an answer are re-sent now, once. */
  onRoute(): number {
    return this.exchanges.kick();
  }

  /**
   * A new address came on an interface that still has `others` (DHCP's order:
   * new address first, the old one removed next): the sockets' addresses of
   * the flows on those are kept local now, so the move that is likely next
   * does not wait for an `ip` call before the sockets' address is local again.
   * Returns the addresses kept.
   */
  onAddressAdded(others: readonly string[]): string[] {
    const keep = new Set<string>();
    for (const a of others) {
      for (const r of this.table.values()) if (r.meta.local.addr === a && r.meta.stack.local.addr !== a) keep.add(r.meta.stack.local.addr);
    }
    const on = new Set(others);
    for (const e of this.d.pitScan({ keys: false })) {
      if (e.dir === 'egress' && on.has(e.flow.saddr) && (e.flow.proto === 6 || e.flow.proto === 17)) { keep.add(e.flow.saddr); on.delete(e.flow.saddr); }
      if (!on.size) break;
    }
    for (const a of keep) this.d.keeper.keep(a);
    return [...keep];
  }

  /** This GE's address `from` left, `to` is its address now. Returns how many flows it started moving. */
  onMove(m: Move): number {
    // Back on an address the sockets use: the interface holds it again, the kept copy can go.
    this.d.keeper.release(m.to);
    const flows = this.flowsOn(m.from);
    if (!flows.length) return 0;
    const byPeer = new Map<string, Pending[]>();
    const keep = new Set<string>();
    for (const f of flows) {
      this.resync.delete(stackFlowKey(f.stack));
      const next = { addr: m.to, port: f.stack.local.port };
      if (!sameAddrPort(next, f.stack.local)) keep.add(f.stack.local.addr);
      const e: Pending = { flow: f.stack, next, remote: f.remote, seq: this.counter.next(stackFlowKey(f.stack)), egress: f.egress, ingress: f.ingress, half: { pit: [], xlat: [] } };
      const peerKey = `${f.remote.addr}|${f.egress.group}`;
      const list = byPeer.get(peerKey) ?? [];
      list.push(e);
      byPeer.set(peerKey, list);
    }
    // Per CU: its flows' ingress halves (nothing arrives on the new wire CIDs before the peer switched, on
    // its ACK), then the CU at once: with many flows the peer works on the first CUs while this end
    // writes the next halves (all halves first delayed the first CU by the whole move's writes).
    for (const list of byPeer.values()) {
      for (let i = 0; i < list.length; i += CU_MAX_ENTRIES) {
        const chunk = list.slice(i, i + CU_MAX_ENTRIES);
        this.maps.batch(() => { for (const e of chunk) this.writeHalf(e); });
        this.sendCu(chunk, m.to, list[0].remote.addr);
      }
    }
    // The sockets' addresses stay local: after the CUs left (an `ip` call each), before any answer can come.
    for (const a of keep) this.d.keeper.keep(a);
    this.d.observer?.moved?.(flows.length);
    return flows.length;
  }

  private writeHalf(e: Pending): void {
    const c = citBetween(e.flow, e.next, e.remote, e.egress, e.ingress);
    e.half = { pit: c.pit.filter((p) => p.dir === 'ingress'), xlat: c.xlat.filter((x) => x.dir === 'ingress') };
    this.table.writes.write(e.half);
  }

  /** A move that will not happen (refused, superseded, re-addressed): its ingress half goes, unless the flow's record holds the same slot now. */
  private eraseHalf(e: Pending): void {
    const rec = this.byStack(stackFlowKey(e.flow));
    const held = new Set([...(rec?.pit ?? []), ...(rec?.xlat ?? [])].map(slotKey));
    const free = <T extends MapSlot>(l: T[]) => l.filter((x) => !held.has(slotKey(x)));
    this.table.writes.erase({ pit: free(e.half.pit), xlat: free(e.half.xlat) });
    e.half = { pit: [], xlat: [] };
  }

  private sendCu(entries: Pending[], src: string, peer: string, resyncTry = 0): void {
    const key = this.keyFor(entries[0].egress.group, entries[0].egress.version);
    if (!key) {
      this.d.observer?.cuFailed?.('no_key');
      for (const e of entries) this.eraseHalf(e);
      return;
    }
    const cuId = randomBytes(8);
    const id = cuId.toString('hex');
    const x: Exchange = { entries, peer, src, key, startMono: this.d.clock.monoMs(), resyncTry, locating: false };
    this.pending.set(id, x);
    for (const e of entries) this.pendingByFlow.set(stackFlowKey(e.flow), id);
    const wire: CuEntry[] = entries.map((e) => ({ proto: e.flow.proto, status: 0, peer: e.flow.remote, seq: e.seq, old: e.flow.local, next: e.next }));
    const icmp = encodeCu({ code: CU_CODE.CU, group: key.group, version: key.version, cuId, timestampMs: this.d.clock.nowMs(), entries: wire }, src, peer, key.key);
    this.exchanges.start(id, {
      send: (attempt) => {
        this.d.observer?.cuSent?.(attempt > 1);
        // Re-sends keep the CU's bytes: its timestamp and id (the peer answers a duplicate again).
        this.d.send(peer, icmp, src);
        if (attempt >= LOCATE_FROM_SEND) this.locate(id, x);
      },
      answered: () => { /* onAck did the work */ },
      failed: () => {
        this.dropPending(id);
        this.d.observer?.cuFailed?.('no_answer');
        // The peer may have switched and only its answers were lost (it answers every copy; a lost
        // CU and lost answers look the same from here). This end switches too, so both agree in the
        // likely case, and the same move (same sequence: a duplicate if applied) is offered again a
        // bounded number of times, RESYNC_MS apart, until answered or superseded by the next move.
        this.batched(() => { for (const e of entries) {
          this.install(e.flow, { local: e.next, localSeq: e.seq, remote: e.remote }, e, key);
          if (resyncTry < RESYNC_MS.length) this.resync.set(stackFlowKey(e.flow), { entry: e, src, tries: resyncTry + 1, dueMono: this.d.clock.monoMs() + RESYNC_MS[resyncTry] });
        } });
      },
    });
  }

  /** An unanswered exchange: asks the rendezvous where the peer is (one question at a time); another address re-addresses the CU. */
  private locate(id: string, x: Exchange): void {
    const r = this.d.rendezvous;
    if (!r || x.locating) return;
    x.locating = true;
    r.locate(x.peer).then((addr) => {
      x.locating = false;
      if (this.pending.get(id) !== x || !addr || addr === x.peer) return;
      this.redirect(id, addr, 'rendezvous');
    }, () => { x.locating = false; });
  }

  /** An open exchange goes to the peer at `addr` now: a new CU (the MAC covers the IP destination), the ingress halves re-keyed. */
  private redirect(id: string, addr: string, why: RedirectReason): void {
    const x = this.pending.get(id);
    if (!x || x.peer === addr) return;
    this.dropPending(id);
    this.exchanges.cancel(id);
    for (const e of x.entries) {
      this.eraseHalf(e);
      e.remote = { addr, port: e.remote.port };
      this.writeHalf(e);
    }
    this.d.observer?.redirected?.(why);
    this.sendCu(x.entries, x.src, addr, x.resyncTry);
  }

  private onAck(m: ReturnType<typeof decodeCu>, src: string, dst: string): void {
    const id = m.cuId.toString('hex');
    const p = this.pending.get(id);
    // The answer to a re-sent CU whose first answer already came: expected, not a refusal.
    if (!p && this.answered.has(id)) return;
    if (!p || p.peer !== src || p.src !== dst || p.key.group !== m.group || p.key.version !== m.version) return this.refuse('unexpected_ack', m.entries.length);
    if (!verifyCu(m, src, dst, p.key.key)) return this.refuse('bad_mac', m.entries.length);
    this.dropPending(id);
    this.exchanges.ack(id);
    this.answered.add(id);
    if (this.answered.size > 1024) this.answered.delete(this.answered.values().next().value!);
    const now = this.d.clock.monoMs();
    this.d.observer?.cuAnswered?.((now - p.startMono) / 1000);
    this.maps.batch(() => this.installAnswered(p, m));
  }

  private installAnswered(p: Exchange, m: ReturnType<typeof decodeCu>): void {
    for (const e of p.entries) {
      const a = m.entries.find((x) => x.proto === e.flow.proto && sameAddrPort(x.old, e.flow.local) && sameAddrPort(x.peer, e.flow.remote) && x.seq === e.seq);
      if (!a || a.status !== CU_STATUS.OK) {
        this.refuse('refused_by_peer', 1);
        this.eraseHalf(e);
        continue;
      }
      // The answer came from the peer's address, authenticated: that is where the peer is.
      this.install(e.flow, { local: e.next, localSeq: e.seq, remote: e.remote }, e, p.key);
    }
  }

  // ---------------- the peer moved ----------------

  /** A CU or CU-ACK (the ICMP message) that came from `src` to `dst`. Never throws for bad input: refusals are counted. */
  onControl(icmp: Buffer, src: string, dst: string): void {
    let m: ReturnType<typeof decodeCu>;
    try {
      m = decodeCu(icmp);
    } catch (e) {
      if (e instanceof CuWireError) return this.refuse('wire', 0);
      throw e;
    }
    if ((m.flags ?? 0) & CU_FLAG.REKEY) return m.code === CU_CODE.CU_ACK ? this.onRekeyAck(m, src, dst) : this.onRekeyCu(m, src, dst);
    if (m.code === CU_CODE.CU_ACK) return this.batched(() => this.onAck(m, src, dst));
    this.batched(() => this.onCu(m, src, dst));
  }

  private onCu(m: ReturnType<typeof decodeCu>, src: string, dst: string): void {
    const key = this.keyFor(m.group, m.version);
    if (!key) return this.refuse('no_key', m.entries.length);
    if (!verifyCu(m, src, dst, key.key)) return this.refuse('bad_mac', m.entries.length);
    if (Math.abs(this.d.clock.nowMs() - m.timestampMs) > this.windowMs) return this.refuse('stale', m.entries.length);
    const follow = new Map<string, string>();
    const redirect = new Set<string>();
    // Every entry's writes in one batch, in the maps before the answer leaves (the peer switches on it).
    const answers: CuEntry[] = this.maps.batch(() => m.entries.map((e) => ({ ...e, status: this.applyEntry(e, src, dst, key, follow, redirect) })));
    const ack = encodeCu({ code: CU_CODE.CU_ACK, group: key.group, version: key.version, cuId: m.cuId, timestampMs: this.d.clock.nowMs(), entries: answers }, dst, src, key.key);
    this.d.send(src, ack, dst);
    // This end's own unanswered moves of those flows: the peer is at `src`, not where they were sent.
    for (const id of redirect) this.redirect(id, src, 'peer_cu');
    // Host routes after the answer (they cost `ip` calls; the mover is waiting for the answer).
    for (const [oldAddr, newAddr] of follow) this.d.router?.follow(oldAddr, newAddr);
  }

  private applyEntry(e: CuEntry, src: string, dst: string, key: MobilityKey, follow: Map<string, string>, redirect: Set<string>): number {
    if (e.next.addr !== src) { this.refuse('source_mismatch', 1); return CU_STATUS.REFUSED; }
    const flow: StackFlow = { local: e.peer, remote: e.old, proto: e.proto };
    const k = stackFlowKey(flow);
    const rec = this.byStack(k);
    // This end's own move of the flow, unanswered: a CU to its new address means the peer knows it.
    const own = this.pendingOf(k);
    const toOwnNew = own !== undefined && own.entry.next.addr === dst;
    const localWire = rec?.meta.local ?? flow.local;
    if (!toOwnNew && localWire.addr !== dst) { this.refuse('destination_mismatch', 1); return CU_STATUS.REFUSED; }
    let egress: PitTemplate | undefined;
    let ingress: PitTemplate | undefined;
    if (rec) {
      const verdict = judgeSeq({ seq: rec.meta.remoteSeq, next: `${rec.meta.remote.addr}:${rec.meta.remote.port}` }, e.seq, `${e.next.addr}:${e.next.port}`);
      if (verdict === 'duplicate' && !toOwnNew) return CU_STATUS.OK;
      if (verdict === 'replayed') { this.refuse('replayed', 1); return CU_STATUS.REFUSED; }
      egress = strip(rec.pit.find((p) => p.dir === 'egress'));
      ingress = strip(rec.pit.find((p) => p.dir === 'ingress'));
    } else if (own) {
      egress = own.entry.egress;
      ingress = own.entry.ingress;
      if (judgeSeq(undefined, e.seq, '') === 'replayed') { this.refuse('replayed', 1); return CU_STATUS.REFUSED; }
    } else {
      const out: FiveTuple = { saddr: flow.local.addr, sport: flow.local.port, daddr: flow.remote.addr, dport: flow.remote.port, proto: flow.proto };
      egress = this.d.pitGet({ flow: out, dir: 'egress' });
      ingress = this.d.pitGet({ flow: { saddr: out.daddr, sport: out.dport, daddr: out.saddr, dport: out.sport, proto: out.proto }, dir: 'ingress' });
      if (judgeSeq(undefined, e.seq, '') === 'replayed') { this.refuse('replayed', 1); return CU_STATUS.REFUSED; }
    }
    if (!egress || !ingress) { this.refuse('unknown_flow', 1); return CU_STATUS.UNKNOWN_FLOW; }
    // A flow under a group's key moves only by a CU under that group; a plaintext flow by any group both hold.
    if (egress.group !== 0 && egress.group !== key.group) { this.refuse('wrong_group', 1); return CU_STATUS.REFUSED; }
    if (e.next.addr !== flow.remote.addr) follow.set(flow.remote.addr, e.next.addr);
    if (toOwnNew) {
      this.install(flow, { local: own.entry.next, localSeq: own.entry.seq, remote: e.next, remoteSeq: e.seq }, { egress, ingress }, key);
      if (own.x.peer !== src) redirect.add(own.id);
    } else {
      this.install(flow, { remote: e.next, remoteSeq: e.seq }, { egress, ingress }, key);
    }
    return CU_STATUS.OK;
  }

  /**
   * This end's open exchange carrying a move of the flow `k` (stack key): a
   * flow is in at most one (a new move takes it out of the one before). By
   * index: with both ends moving, every entry of every CU asks (a scan of the
   * open exchanges was 10,000 x 10,000 flow keys there).
   */
  private pendingOf(k: string): { id: string; x: Exchange; entry: Pending } | undefined {
    const id = this.pendingByFlow.get(k);
    if (id === undefined) return undefined;
    const x = this.pending.get(id);
    const entry = x?.entries.find((e) => stackFlowKey(e.flow) === k);
    if (!x || !entry) { this.pendingByFlow.delete(k); return undefined; }
    return { id, x, entry };
  }

  /** An exchange is over (answered, failed, re-addressed, emptied): it and its flows leave the index. */
  private dropPending(id: string): void {
    const x = this.pending.get(id);
    if (!x) return;
    this.pending.delete(id);
    this.unindex(id, x.entries);
  }

  /** These flows are no longer in exchange `id`: out of the index (unless a newer exchange took them). */
  private unindex(id: string, entries: readonly Pending[]): void {
    for (const e of entries) {
      const k = stackFlowKey(e.flow);
      if (this.pendingByFlow.get(k) === id) this.pendingByFlow.delete(k);
    }
  }

  // ---------------- key rotation of moved flows (rekey.ts) ----------------

  /** Moved flows under an older key version than the newest held: decrypt entries switched, one REKEY CU per peer and key. */
  private rekeyMoved(): number {
    const keys = this.d.keys();
    const now = this.d.clock.monoMs();
    const due = new Map<string, { recs: Array<ReturnType<MobilityEngine['byStack']> & object>; group: number; version: number }>();
    for (const r of this.table.values()) {
      const keyed = r.pit.find((p) => (p.action === 'encrypt' || p.action === 'decrypt') && p.group !== 0);
      if (!keyed) continue;
      const v = newestVersion(keys, keyed.group);
      if (v === undefined || !wantsRekey(r.pit, keyed.group, v)) continue;
      const sk = stackFlowKey(r.meta.stack);
      const retry = this.rekeyRetry.get(sk);
      if (this.rekeyOpen.has(sk) || this.pendingOf(sk) || (retry && (retry.dueMono > now || retry.tries >= REKEY_TRIES))) continue;
      const g = `${r.meta.remote.addr}|${r.meta.local.addr}|${keyed.group}|${v}`;
      const b = due.get(g) ?? { recs: [], group: keyed.group, version: v };
      b.recs.push(r);
      due.set(g, b);
    }
    let n = 0;
    for (const b of due.values()) {
      const key = keys.find((k) => k.group === b.group && k.version === b.version)!;
      for (let i = 0; i < b.recs.length; i += CU_MAX_ENTRIES) {
        const recs = b.recs.slice(i, i + CU_MAX_ENTRIES);
        // Step 1: this end decrypts the new version (and the old one) before the peer may encrypt with it.
        for (const r of recs) this.table.rewrite(r.id, { pit: rekeyed(r.pit as PitEntry[], b.group, b.version, 'decrypt') });
        this.sendRekey(recs, key);
        n += recs.length;
      }
    }
    if (n) this.d.observer?.rekeyed?.('sent', n);
    return n;
  }

  private sendRekey(recs: Array<{ meta: MoveMeta }>, key: MobilityKey): void {
    const src = recs[0].meta.local.addr;
    const peer = recs[0].meta.remote.addr;
    const cuId = randomBytes(8);
    const id = cuId.toString('hex');
    const flows = recs.map((r) => stackFlowKey(r.meta.stack));
    const entries: CuEntry[] = recs.map((r) => ({ proto: r.meta.stack.proto, status: 0, peer: r.meta.stack.remote, seq: r.meta.localSeq, old: r.meta.stack.local, next: r.meta.local }));
    const icmp = encodeCu({ code: CU_CODE.CU, flags: CU_FLAG.REKEY, group: key.group, version: key.version, cuId, timestampMs: this.d.clock.nowMs(), entries }, src, peer, key.key);
    this.rekeyPending.set(id, { peer, src, key, flows });
    for (const f of flows) this.rekeyOpen.add(f);
    this.exchanges.start(id, {
      send: (attempt) => { this.d.observer?.cuSent?.(attempt > 1); this.d.send(peer, icmp, src); },
      answered: () => { /* onRekeyAck did the work */ },
      failed: () => {
        this.rekeyPending.delete(id);
        this.d.observer?.cuFailed?.('no_answer');
        for (const f of flows) this.rekeyFailed(f);
      },
    });
  }

  /** Its encrypt entries stay on the old version (the decrypt ones take both); tried again later, bounded. */
  private rekeyFailed(f: string): void {
    this.rekeyOpen.delete(f);
    const tries = (this.rekeyRetry.get(f)?.tries ?? 0) + 1;
    this.rekeyRetry.set(f, { tries, dueMono: this.d.clock.monoMs() + REKEY_RETRY_MS * 2 ** (tries - 1) });
  }

  /** Step 2: the peer decrypts the new version already (it sent this under it): every keyed entry switches. */
  private onRekeyCu(m: ReturnType<typeof decodeCu>, src: string, dst: string): void {
    const key = this.d.keys().find((k) => k.group === m.group && k.version === m.version);
    if (!key) return this.refuse('no_key', m.entries.length);
    if (!verifyCu(m, src, dst, key.key)) return this.refuse('bad_mac', m.entries.length);
    if (Math.abs(this.d.clock.nowMs() - m.timestampMs) > this.windowMs) return this.refuse('stale', m.entries.length);
    let applied = 0;
    const answers: CuEntry[] = m.entries.map((e) => {
      const rec = this.byStack(stackFlowKey({ local: e.peer, remote: e.old, proto: e.proto }));
      // The flow as this end has it on the wire: the peer where the entry says it is, this end at the destination.
      if (!rec || e.next.addr !== src || !sameAddrPort(rec.meta.remote, e.next) || rec.meta.local.addr !== dst) {
        this.refuse('unknown_flow', 1);
        return { ...e, status: CU_STATUS.UNKNOWN_FLOW };
      }
      if (!rec.pit.some((p) => (p.action === 'encrypt' || p.action === 'decrypt') && p.group === m.group)) {
        this.refuse('wrong_group', 1);
        return { ...e, status: CU_STATUS.REFUSED };
      }
      this.table.rewrite(rec.id, { pit: rekeyed(rec.pit as PitEntry[], m.group, m.version, 'all') });
      this.rekeyRetry.delete(stackFlowKey(rec.meta.stack));
      applied++;
      return { ...e, status: CU_STATUS.OK };
    });
    const ack = encodeCu({ code: CU_CODE.CU_ACK, flags: CU_FLAG.REKEY, group: key.group, version: key.version, cuId: m.cuId, timestampMs: this.d.clock.nowMs(), entries: answers }, dst, src, key.key);
    this.d.send(src, ack, dst);
    if (applied) this.d.observer?.rekeyed?.('applied', applied);
  }

  /** Step 3: the peer switched; this end's encrypt entries follow. */
  private onRekeyAck(m: ReturnType<typeof decodeCu>, src: string, dst: string): void {
    const id = m.cuId.toString('hex');
    const p = this.rekeyPending.get(id);
    if (!p && this.answered.has(id)) return;
    if (!p || p.peer !== src || p.src !== dst || p.key.group !== m.group || p.key.version !== m.version) return this.refuse('unexpected_ack', m.entries.length);
    if (!verifyCu(m, src, dst, p.key.key)) return this.refuse('bad_mac', m.entries.length);
    this.rekeyPending.delete(id);
    this.exchanges.ack(id);
    this.answered.add(id);
    if (this.answered.size > 1024) this.answered.delete(this.answered.values().next().value!);
    let n = 0;
    for (const e of m.entries) {
      const sk = stackFlowKey({ local: e.old, remote: e.peer, proto: e.proto });
      this.rekeyOpen.delete(sk);
      const rec = this.byStack(sk);
      if (!rec || e.status !== CU_STATUS.OK) { this.refuse('refused_by_peer', 1); this.rekeyFailed(sk); continue; }
      this.table.rewrite(rec.id, { pit: rekeyed(rec.pit as PitEntry[], m.group, m.version, 'all') });
      this.rekeyRetry.delete(sk);
      n++;
    }
    if (n) this.d.observer?.rekeyed?.('answered', n);
  }

  // ---------------- both ----------------

  /** The flow's ends on the wire are now `u` (what is not given stays as it is); writes its CIT and PIT entries on the wire CIDs. */
  /**
   * `t.half`: the mover's ingress half written before the answer (writeHalf); those of its entries the CIT
   * holds unchanged stay as they are, not written again (at the mover's answer half of a flow's map writes).
   */
  private install(flow: StackFlow, u: { local?: AddrPort; remote?: AddrPort; localSeq?: number; remoteSeq?: number }, t: { egress: PitTemplate; ingress: PitTemplate; half?: { pit: PitEntry[]; xlat: XlatEntry[] } }, key: MobilityKey): void {
    const k = stackFlowKey(flow);
    const rec = this.byStack(k);
    const now = this.d.clock.monoMs();
    const local = u.local ?? rec?.meta.local ?? flow.local;
    const remote = u.remote ?? rec?.meta.remote ?? flow.remote;
    const seqs = { localSeq: u.localSeq ?? rec?.meta.localSeq ?? 0, remoteSeq: u.remoteSeq ?? rec?.meta.remoteSeq ?? 0 };
    const end = endOf(flow, local, remote) ?? (u.local ? 'mover' : 'stationary');
    const next = end === 'stationary' ? remote : local;
    if (rec && sameAddrPort(rec.meta.local, local) && sameAddrPort(rec.meta.remote, remote)) {
      Object.assign(rec.meta, seqs); // this move is in place already
      return;
    }
    const cit = citBetween(flow, local, remote, t.egress, t.ingress);
    // Egress looks the PIT up on the translated CID, so the egress PIT entry must exist before the egress
    // XLAT entry that sends packets to it; a packet between the two would miss and start a DPRP
    // negotiation racing this move (the flow table writes XLAT first, right for ingress only).
    this.table.writes.write({ pit: cit.pit.filter((x) => x.dir === 'egress') });
    if (rec) {
      // Home (no CIT), the flow's PIT entries are on the stack CIDs, where DPRP's are: leaving home again
      // leaves them (DPRP's, expiring with its timeouts), as the first move did.
      const stackKey = canonicalFlowKey(stackTuple(flow));
      if (canonicalFlowKey(rec.wire) === stackKey) rec.pit = rec.pit.filter((x) => canonicalFlowKey(x.flow) !== stackKey);
      const now = new Set([...cit.pit, ...cit.xlat].map(slotKey));
      // An egress translation that goes (back home) goes before the PIT entry it points at (a packet
      // between the two would miss and start a negotiation toward the address the peer left).
      const goneOut = rec.xlat.filter((x) => x.dir === 'egress' && !now.has(slotKey(x)));
      if (goneOut.length) this.table.writes.erase({ xlat: goneOut, pit: [] });
      // The previous wire's ingress entries stay for a grace (linger): not erased by the re-key.
      const stays = (x: MapSlot) => x.dir === 'ingress' && !now.has(slotKey(x));
      const linger = { pit: rec.pit.filter(stays), xlat: rec.xlat.filter(stays) };
      rec.xlat = rec.xlat.filter((x) => !goneOut.includes(x) && !stays(x));
      rec.pit = rec.pit.filter((x) => !stays(x));
      this.table.rekey(rec.id, cit.wire, { pit: cit.pit, xlat: cit.xlat });
      this.linger(linger);
      Object.assign(rec.meta, { end, local, remote, next, ...seqs, moves: rec.meta.moves + 1, lastMoveMono: now });
    } else {
      const meta: MoveMeta = { end, stack: flow, local, remote, next, ...seqs, moves: 1, lastMoveMono: now, group: key.group, version: key.version };
      const half = t.half && (t.half.pit.length || t.half.xlat.length) ? t.half : null;
      if (half) {
        // The egress PIT entries went above; what else the half does not hold as it is now (a PIT and an
        // XLAT entry share a slot: compared per map).
        const held = <T extends MapSlot>(l: readonly T[]) => new Map(l.map((x) => [slotKey(x), x]));
        const heldPit = held(half.pit);
        const heldXlat = held(half.xlat);
        const todo = <T extends MapSlot>(l: readonly T[], h: Map<string, T>) => l.filter((x) => !sameEntry(h.get(slotKey(x)), x));
        this.table.writes.write({ pit: todo(cit.pit.filter((x) => x.dir !== 'egress'), heldPit), xlat: todo(cit.xlat, heldXlat) });
        this.stackIndex.set(k, this.table.commit(cit.wire, meta, { pit: cit.pit, xlat: cit.xlat }, { written: true }).id);
      } else {
        // The rest in the flow table's order (translations before the ingress PIT entry), written here:
        // the table takes the entries as written (the egress PIT entry above need not go twice).
        this.table.writes.write({ pit: cit.pit.filter((x) => x.dir !== 'egress'), xlat: cit.xlat });
        this.stackIndex.set(k, this.table.commit(cit.wire, meta, { pit: cit.pit, xlat: cit.xlat }, { written: true }).id);
      }
    }
    if (this.movedTally) this.movedTally.set(end, (this.movedTally.get(end) ?? 0) + 1);
    else this.d.observer?.flowMoved?.(end, 1);
  }

  /** Inside batched(): the flows moved, by end, counted once at the end (one metric update per CU, not per flow). */
  private movedTally: Map<MoveEnd, number> | null = null;

  private lingering: { pit: PitEntry[]; xlat: XlatEntry[] } | null = null;

  /** The previous wire's ingress entries of a re-keyed flow (still in the maps) stay REMOVE_GRACE_MS, then go unless a flow holds the slot again. */
  private linger(e: { pit: PitEntry[]; xlat: XlatEntry[] }): void {
    if (!e.pit.length && !e.xlat.length) return;
    if (this.lingering) {
      this.lingering.pit.push(...e.pit);
      this.lingering.xlat.push(...e.xlat);
    } else {
      this.expireLater(e);
    }
  }

  /** Runs `fn` with the lingering entries it makes collected under one timer (one CU's or answer's flows). */
  private batched(fn: () => void): void {
    if (this.lingering) return fn();
    const batch = { pit: [] as PitEntry[], xlat: [] as XlatEntry[] };
    const tally = new Map<MoveEnd, number>();
    this.lingering = batch;
    this.movedTally = tally;
    try { fn(); } finally {
      this.lingering = null;
      this.movedTally = null;
      if (batch.pit.length || batch.xlat.length) this.expireLater(batch);
      for (const [end, n] of tally) this.d.observer?.flowMoved?.(end, n);
    }
  }

  /**
   * The lingering entries of one LINGER_BUCKET_MS go under one timer, fired
   * REMOVE_GRACE_MS after the bucket closes: the slots the flows hold are
   * gathered once per bucket, not once per CU (a second move of 10,000 flows
   * made 800 timers each walk every flow: 60 s of CPU in bench/mobility-engines).
   */
  private lingerBucket: { pit: PitEntry[]; xlat: XlatEntry[]; closesMono: number } | null = null;

  private expireLater(batch: { pit: PitEntry[]; xlat: XlatEntry[] }): void {
    const now = this.d.clock.monoMs();
    const open = this.lingerBucket;
    if (open && now < open.closesMono) {
      for (const x of batch.pit) open.pit.push(x);
      for (const x of batch.xlat) open.xlat.push(x);
      return;
    }
    const bucket = { pit: [...batch.pit], xlat: [...batch.xlat], closesMono: now + LINGER_BUCKET_MS };
    this.lingerBucket = bucket;
    this.d.timers.after(LINGER_BUCKET_MS + REMOVE_GRACE_MS, () => {
      if (this.lingerBucket === bucket) this.lingerBucket = null;
      const held = new Set<string>();
      for (const r of this.table.values()) {
        for (const x of r.pit) held.add(slotKey(x));
        for (const x of r.xlat) held.add(slotKey(x));
      }
      for (const x of this.pending.values()) for (const p of x.entries) for (const h of [...p.half.pit, ...p.half.xlat]) held.add(slotKey(h));
      this.table.writes.erase({ pit: bucket.pit.filter((x) => !held.has(slotKey(x))), xlat: bucket.xlat.filter((x) => !held.has(slotKey(x))) });
    });
  }

  private byStack(k: string) {
    const id = this.stackIndex.get(k);
    const rec = id === undefined ? undefined : this.table.get(id);
    if (id !== undefined && !rec) this.stackIndex.delete(k);
    return rec;
  }

  /** This GE's flows whose wire address is `addr`: moved before (table), moving (open exchanges) and DPRP's (PIT). */
  private flowsOn(addr: string): Array<{ stack: StackFlow; egress: PitTemplate; ingress: PitTemplate; remote: AddrPort }> {
    const out: Array<{ stack: StackFlow; egress: PitTemplate; ingress: PitTemplate; remote: AddrPort }> = [];
    const owned = new Set<string>();
    // Moves still waiting for their answer whose new address is going already: superseded by this one.
    const superseded = new Set<string>();
    for (const [id, p] of this.pending) {
      const gone = p.entries.filter((e) => e.next.addr === addr);
      if (!gone.length) continue;
      for (const e of gone) {
        superseded.add(stackFlowKey(e.flow));
        this.eraseHalf(e);
        out.push({ stack: e.flow, egress: e.egress, ingress: e.ingress, remote: e.remote });
      }
      this.unindex(id, gone);
      p.entries = p.entries.filter((e) => e.next.addr !== addr);
      if (!p.entries.length) {
        this.dropPending(id);
        this.exchanges.cancel(id);
      }
    }
    for (const r of this.table.values()) {
      owned.add(canonicalFlowKey(r.wire));
      owned.add(canonicalFlowKey(stackTuple(r.meta.stack)));
      if (r.meta.local.addr !== addr || superseded.has(stackFlowKey(r.meta.stack))) continue;
      const eg = r.pit.find((p) => p.dir === 'egress');
      const ig = r.pit.find((p) => p.dir === 'ingress');
      if (eg && ig) out.push({ stack: r.meta.stack, egress: strip(eg)!, ingress: strip(ig)!, remote: r.meta.remote });
    }
    for (const k of superseded) {
      const r = this.byStack(k);
      if (r) owned.add(canonicalFlowKey(r.wire));
      owned.add(k);
    }
    const ingress = new Map<string, PitEntry>();
    const egress: PitEntry[] = [];
    for (const e of this.d.pitScan()) {
      if (owned.has(canonicalFlowKey(e.flow))) continue;
      if (e.dir === 'egress' && e.flow.saddr === addr) egress.push(e);
      else if (e.dir === 'ingress' && e.flow.daddr === addr) ingress.set(canonicalFlowKey(e.flow), e);
    }
    for (const e of egress) {
      const ig = ingress.get(canonicalFlowKey(e.flow));
      const stack: StackFlow = { local: { addr, port: e.flow.sport }, remote: { addr: e.flow.daddr, port: e.flow.dport }, proto: e.flow.proto };
      if (!ig || (e.flow.proto !== 6 && e.flow.proto !== 17) || superseded.has(stackFlowKey(stack))) continue;
      out.push({ stack, egress: strip(e)!, ingress: strip(ig)!, remote: stack.remote });
    }
    return out;
  }

  private keyFor(group: number, version: number): MobilityKey | undefined {
    const keys = this.d.keys();
    if (group !== 0) return keys.find((k) => k.group === group && k.version === version) ?? [...keys].reverse().find((k) => k.group === group);
    return keys[0];
  }

  private refuse(reason: CuRefusal, entries: number): void {
    this.d.observer?.refused?.(reason, entries);
  }

  /** Expires moved flows (flow table policy) and offers unanswered moves again; returns how many flows expired. */
  sweep(): number {
    const now = this.d.clock.monoMs();
    const due = new Map<string, { list: Pending[]; src: string; peer: string; tries: number }>();
    for (const [k, r] of this.resync) {
      if (r.dueMono > now) continue;
      this.resync.delete(k);
      // The flow's record knows where the peer is now (a CU of its own may have come meanwhile).
      const rec = this.byStack(k);
      if (rec) r.entry.remote = rec.meta.remote;
      const peer = r.entry.remote.addr;
      const g = `${peer}|${r.src}|${r.tries}|${r.entry.egress.group}`;
      const b = due.get(g) ?? { list: [], src: r.src, peer, tries: r.tries };
      b.list.push(r.entry);
      due.set(g, b);
    }
    for (const b of due.values()) {
      for (let i = 0; i < b.list.length; i += CU_MAX_ENTRIES) this.sendCu(b.list.slice(i, i + CU_MAX_ENTRIES), b.src, b.peer, b.tries);
    }
    this.rekeyMoved();
    return this.table.sweep();
  }

  close(): void {
    this.exchanges.close();
  }
}

function strip(p: (PitTemplate & Partial<MapSlot>) | undefined): PitTemplate | undefined {
  if (!p) return undefined;
  const { flow: _f, dir: _d, ...rest } = p as PitEntry;
  // A per-flow key moves with its counter from the slot the entry is on now (pccom/flow-keys.ts).
  if (rest.flowKey && p.flow && p.dir) return { ...rest, flowKey: { salt: rest.flowKey.salt, leg: rest.flowKey.leg, from: { flow: p.flow, dir: p.dir } } };
  return rest;
}

function stackTuple(f: StackFlow): FiveTuple {
  return { saddr: f.local.addr, sport: f.local.port, daddr: f.remote.addr, dport: f.remote.port, proto: f.proto };
}
