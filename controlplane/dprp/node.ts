/**
 * The DPRP negotiation state machine of ONE GE, in every role (start,
 * intermediate, end). Pure: clock, timers, transport, PIT writer, stash and key
 * ring are injected, so test/unit/dprp-negotiation.test.ts wires several nodes
 * through a fake network (with loss) and docs/dprp.md describes the sequence.
 *
 *   start:        PIT miss -> stash, DDE (retried) -> RGI: verify, decide,
 *                 MPIT (retried) -> CDN: install confirmed, release stash
 *                 (a refused flow: discard installed at once, stash dropped)
 *   intermediate: DDE relay -> RGI append own record, relay -> MPIT take own
 *                 action (tentative), relay -> CDN confirm, relay
 *   end:          DDE for me (or for a Term behind me, after endWaitMs with no
 *                 GE answering from inside) -> RGI -> MPIT: tentative PIT ->
 *                 CDN (sealed), confirm
 */
import { randomBytes } from 'node:crypto';
import {
  findSelected, sealMac, selector, signActions, signRecord, verifyAction, verifyRecord, same,
  type GroupKey, type KeyRing,
} from './auth.js';
import { commonKey, decide, type Decision, type GroupVersion, type Outcome, type PathGe, type PathRole } from './decide.js';
import {
  canonicalFlowKey, flowKey, isDecryptVersionSwitch, isEncryptVersionSwitch, pitEntriesFor, pitEntryKey, reverseFlow,
  withPrevVersions, type PitDir, type PitEntry,
} from './pit-entries.js';
import { DEFAULT_REPLAY, ReplayCache, type ReplayCacheOptions } from './replay.js';
import type { OptionCodecs, OptionRefusalReason } from './option-codecs.js';
import type { ClaimedOptionHooks } from '../parts/dprp-extension.js';
import { SPEC_OPTIONS } from './spec-options.js';
import {
  ACT_F_TRANSIT, MAX_CAND_DEPTH, withCandDepth, decode, DprpWireError, encode, isZero, MAX_RECORDS, MsgType, REC_F_IS_DEST, REC_F_PROTECTS_DEST,
  Status, WireAction, WireRole, zero16, type ActionEntry, type DprpMessage, type Flow, type GeRecord, type GeTypeName,
  type ModeName, type TlvOption, type WireRejectReason,
} from './wire.js';

// ------------------------------------------------------------------ injected

export interface DprpClock {
  /** Wall clock (ms since epoch): message timestamps and the replay window. */
  nowMs(): number;
  /** Monotonic ms: timeouts, durations, ages. */
  monoMs(): number;
}

export interface TimerHandle { cancel(): void }
export interface DprpTimers {
  after(ms: number, fn: () => void): TimerHandle;
}

/** Sends one GSCIP control ICMP message from this GE toward `dst` (the handler adds the IP header). */
export interface ControlTransport {
  send(dst: string, icmp: Buffer): void;
}

/** The PIT as DPRP sees it (the handler maps this onto the BPF map). */
export interface PitWriter {
  /** Insert or replace. */
  install(entries: readonly PitEntry[]): void;
  remove(keys: readonly { flow: Flow; dir: PitDir }[]): void;
  /**
   * Last time the fast path saw traffic on the entry (monoMs clock); `closed`:
   * the entry saw the flow end by itself (a TCP RST); `finSeen`: a TCP FIN in
   * the entry's direction. A flow counts as closed on an RST on any entry or on
   * a FIN in both directions (a half-close alone keeps the idle timeout).
   */
  activity?(key: { flow: Flow; dir: PitDir }): { lastSeenMs: number; closed: boolean; finSeen?: boolean } | undefined;
}

/** The packets stashed on a PIT miss (opaque handles from the punt handler). */
export interface StashSink {
  release(handles: readonly unknown[]): void;
  drop(handles: readonly unknown[], reason: FailReason | 'refused'): void;
}

/** Where the GE stands relative to an address. */
export type Locality = 'self' | 'behind' | 'other';

export interface SelfInfo {
  addr: string;
  type: GeTypeName;
  mode: ModeName;
}

export const FAIL_REASONS = [
  'dde_timeout', 'cdn_timeout', 'too_many_negotiations', 'stash_full', 'bad_path', 'keys_missing',
] as const;
export type FailReason = (typeof FAIL_REASONS)[number];

/** Reasons a control message is ignored (bounded label set for the metric). */
export const REJECT_REASONS = [
  'replay', 'stale', 'future', 'unknown_negotiation', 'wrong_phase', 'bad_selector', 'bad_mac', 'bad_seal',
  'missing_seal', 'unauthenticated_action', 'downgrade', 'bad_path', 'no_end_flag', 'path_too_long', 'relay_table_full', 'own_message',
  'option_refused',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number] | `wire_${WireRejectReason | OptionRefusalReason}`;

/** 'upgraded': a late RGI replaced a no_end_ge decision (counted once more, with this label). */
export type OutcomeKind = 'encrypted' | 'plaintext' | 'refused' | 'no_end_ge' | 'upgraded';

export interface DprpObserver {
  started(reason: 'miss' | 'rekey'): void;
  completed(outcome: OutcomeKind, seconds: number): void;
  failed(reason: FailReason): void;
  rejected(reason: RejectReason): void;
  /** A CL GE overrode an unauthenticated "pass" with discard (local policy wins). */
  overridden(): void;
}

export const NULL_OBSERVER: DprpObserver = {
  started() {}, completed() {}, failed() {}, rejected() {}, overridden() {},
};

export interface DprpConfig {
  /** First retransmission timeout for DDE and MPIT; doubles per attempt up to rtoMaxMs. */
  rtoMs: number;
  rtoMaxMs: number;
  /** Sends per phase (DDE, MPIT) before giving up. */
  maxSends: number;
  /**
   * A GEN/GEA forwarding a DDE to an address behind it answers itself after
   * endWaitMs + (MAX_CAND_DEPTH - depth) * endWaitStepMs with no GE answering
   * from inside (depth = candidates that forwarded it before: nested GENs).
   */
  endWaitMs: number;
  endWaitStepMs: number;
  /** How long "this inside address is a plain Term" / "is a GE" is remembered. */
  termCacheMs: number;
  /** How long "no GE answered for this destination" is remembered (skip the DDE). */
  noEndCacheMs: number;
  /** Relay/end state and tentative entries live this long without CDN. */
  tentativeTtlMs: number;
  /**
   * Relay/end state of a CONFIRMED negotiation lives this long (to answer a
   * retransmitted MPIT/CDN; the start's whole retry budget is well under it),
   * so the relay table holds seconds of negotiations, not tentativeTtlMs' worth.
   */
  relayLingerMs: number;
  idleTimeoutMs: number;
  closedTimeoutMs: number;
  /** Bound on simultaneous negotiations this GE starts / relays. */
  maxNegotiations: number;
  maxRelays: number;
  maxStashPerFlow: number;
  /** What a start GE does when no GE ever answers its DDE. */
  onNoAnswer: 'decide-alone' | 'fail';
  /**
   * A GE that holds no group key yet (agent started, GMS not delivered) refuses
   * to decide: the negotiation fails with keys_missing and the stashed packet is
   * dropped (the application retries), instead of settling the flow in
   * plaintext/refused for its lifetime. Set false for a GE defined with no group.
   */
  requireKeys: boolean;
  /**
   * After deciding alone, a late RGI (a GE on a path slower than the DDE
   * budget) is still accepted this long and upgrades the flow to the
   * negotiated decision.
   */
  lateRgiGraceMs: number;
  /**
   * Re-keying: how long a decrypt entry moved to a new key version keeps
   * accepting the old one (prevVersion) at most; cleared sooner when the old
   * key leaves the ring.
   */
  prevGraceMs: number;
  replay: ReplayCacheOptions;
}

export const DEFAULT_DPRP_CONFIG: DprpConfig = {
  rtoMs: 20,
  rtoMaxMs: 200,
  maxSends: 4,
  // Outermost candidate: 4 + 4 x 3 = 16 ms, kept under rtoMs (a DDE retry restarts
  // the wait). The 3 ms step covers one inner hop of real agents (punt, relay,
  // answer, egress punt); 1 ms lost that race in test/netns/dprp-cascade.test.ts.
  endWaitMs: 4,
  endWaitStepMs: 3,
  termCacheMs: 300_000,
  noEndCacheMs: 60_000,
  tentativeTtlMs: 5_000,
  relayLingerMs: 2_000,
  idleTimeoutMs: 300_000,
  closedTimeoutMs: 10_000,
  maxNegotiations: 8192,
  // At 3,000+ negotiations/s with relayLingerMs + the 1 s sweep period: ~10,000 live.
  maxRelays: 65536,
  maxStashPerFlow: 8,
  onNoAnswer: 'decide-alone',
  requireKeys: true,
  lateRgiGraceMs: 5_000,
  prevGraceMs: 30_000,
  replay: DEFAULT_REPLAY,
};

export interface DprpNodeDeps {
  self: SelfInfo;
  keys: KeyRing;
  clock: DprpClock;
  timers: DprpTimers;
  transport: ControlTransport;
  pit: PitWriter;
  stash: StashSink;
  locality(addr: string): Locality;
  observer?: DprpObserver;
  random?(n: number): Buffer;
  config?: Partial<DprpConfig>;
  /** The option codecs this GE knows (default: the spec's, spec-options.ts); a composed agent adds its parts'. */
  options?: OptionCodecs;
  /** Parts' hooks: options for this GE's own records, and a say on the options of received ones. */
  optionHooks?: readonly ClaimedOptionHooks[];
}

// ------------------------------------------------------------------ state

interface StartNeg {
  negId: Buffer;
  flow: Flow;
  reason: 'miss' | 'rekey';
  /** 'alone': decided without an answer, still listening for a late RGI (lateRgiGraceMs). */
  phase: 'dde' | 'mpit' | 'alone';
  attempt: number;
  sends: number;
  timer: TimerHandle | null;
  stashes: unknown[];
  startedMono: number;
  outcome: Outcome | null;
  mpit: DprpMessage | null;
  endGe: string;
  /** Key the end GE must seal the CDN with, if it shares one with us. */
  endKey: GroupKey | null;
  /** Per on-path GE: the key its MPIT entry is authenticated with (null: none shared). */
  keyFor: Map<string, GroupKey | null>;
  entries: PitEntry[];
  /** Decided alone first, then a late RGI arrived. */
  upgraded?: boolean;
  /** Whether neg.entries are in the PIT (to remove them on failure). */
  installed?: boolean;
}

interface RelayNeg {
  negId: Buffer;
  flow: Flow;
  startGe: string;
  role: 'intermediate' | 'end' | 'end-candidate';
  createdMono: number;
  endTimer: TimerHandle | null;
  lastDdeAttempt: number;
  entries: PitEntry[];
  confirmed: boolean;
  /** End GE: the key its MPIT entry was authenticated with (to seal the CDN). */
  sealKey: GroupKey | null;
  /** End GE: the last CDN attempt answered. */
  answeredMpit: boolean;
  /**
   * The DDEs carrying the start GE's own record, kept to check lazily (off the
   * DDE -> RGI critical path) whether it proved a group we hold: then its
   * decision must come authenticated. Bounded: one per accepted attempt (u8).
   */
  startDdes: DprpMessage[];
  /** The flow's entries before this negotiation's first MPIT (re-keying), null: none. */
  prior?: PitEntry[] | null;
  /** Re-keying: what the MPIT actually wrote (r.entries minus the deferred encrypt toward the end, which keeps the prior entry). */
  installed?: PitEntry[];
}

/** A flow this GE holds PIT entries for (idle expiry, re-keying, `maps dump pit`). */
export interface FlowRecord {
  flow: Flow;
  role: PathRole;
  decision: Decision;
  group: number;
  version: number;
  entries: PitEntry[];
  installedMono: number;
  /** Last activity known without asking the kernel (sweep refreshes it). */
  lastActivityMono: number;
  negId: string;
}

const hex = (b: Buffer) => b.toString('hex');

// ------------------------------------------------------------------ node

export class DprpNode {
  readonly cfg: DprpConfig;
  private readonly d: DprpNodeDeps;
  private readonly obs: DprpObserver;
  private readonly replay: ReplayCache;
  private readonly rnd: (n: number) => Buffer;
  private readonly codecs: OptionCodecs;
  private readonly hooks: readonly ClaimedOptionHooks[];
  private readonly startByNeg = new Map<string, StartNeg>();
  private readonly startByFlow = new Map<string, StartNeg>();
  private readonly relays = new Map<string, RelayNeg>();
  private readonly flows = new Map<string, FlowRecord>();
  /** inside address -> what answered there, until when. */
  private readonly termCache = new Map<string, { kind: 'term' | 'ge'; untilMono: number }>();
  private readonly noEnd = new Map<string, number>();
  /** Start negotiations decided alone that still listen for a late RGI (not counted as pending). */
  private alone = 0;

  constructor(deps: DprpNodeDeps) {
    this.d = deps;
    this.cfg = { ...DEFAULT_DPRP_CONFIG, ...deps.config };
    this.obs = deps.observer ?? NULL_OBSERVER;
    this.replay = new ReplayCache(this.cfg.replay);
    this.rnd = deps.random ?? randomBytes;
    this.codecs = deps.options ?? SPEC_OPTIONS;
    this.hooks = deps.optionHooks ?? [];
  }

  get self(): SelfInfo {
    return this.d.self;
  }

  /** Negotiations this GE has started and not finished. */
  get pending(): number {
    return this.startByNeg.size - this.alone;
  }

  flowRecords(): FlowRecord[] {
    return [...this.flows.values()];
  }

  /** Encodes a message this GE sends, options checked against the codecs it knows. */
  private enc(m: DprpMessage): Buffer {
    return encode(m, this.codecs);
  }

  /** Integer wall-clock ms for message timestamps. */
  private wallMs(): number {
    return Math.floor(this.d.clock.nowMs());
  }

  private myKeys(): readonly GroupKey[] {
    return this.d.keys.all();
  }

  private myGroupVersions(): GroupVersion[] {
    return this.myKeys().map((k) => ({ group: k.group, version: k.version }));
  }

  private keyOf(gv: GroupVersion | null): GroupKey | null {
    if (!gv) return null;
    return this.myKeys().find((k) => k.group === gv.group && k.version === gv.version) ?? null;
  }

  private rto(sends: number): number {
    return Math.min(this.cfg.rtoMs * 2 ** Math.max(0, sends - 1), this.cfg.rtoMaxMs);
  }

  // ================================================================ start role

  /**
   * A packet of `flow` missed the PIT and was stashed (handle is the punt
   * handler's). Starts a negotiation, or joins the one already running for the
   * flow or its reverse.
   */
  onPitMiss(flow: Flow, handle: unknown): void {
    const running = this.startByFlow.get(flowKey(flow)) ?? this.startByFlow.get(flowKey(reverseFlow(flow)));
    if (running) {
      if (running.stashes.length >= this.cfg.maxStashPerFlow) {
        this.d.stash.drop([handle], 'stash_full');
        this.obs.failed('stash_full');
      } else {
        running.stashes.push(handle);
      }
      return;
    }
    this.begin(flow, 'miss', [handle]);
  }

  private begin(flow: Flow, reason: 'miss' | 'rekey', stashes: unknown[]): void {
    if (this.cfg.requireKeys && this.myKeys().length === 0) {
      this.d.stash.drop(stashes, 'keys_missing');
      this.obs.failed('keys_missing');
      return;
    }
    if (this.pending >= this.cfg.maxNegotiations) {
      this.d.stash.drop(stashes, 'too_many_negotiations');
      this.obs.failed('too_many_negotiations');
      return;
    }
    const neg: StartNeg = {
      negId: this.rnd(8), flow, reason, phase: 'dde', attempt: 0, sends: 0, timer: null, stashes,
      startedMono: this.d.clock.monoMs(), outcome: null, mpit: null, endGe: '0.0.0.0', endKey: null, keyFor: new Map(), entries: [],
    };
    const noEndUntil = this.noEnd.get(flow.daddr);
    if (noEndUntil !== undefined && noEndUntil > neg.startedMono) {
      this.obs.started(reason);
      this.concludeAlone(neg);
      return;
    }
    this.startByNeg.set(hex(neg.negId), neg);
    this.startByFlow.set(flowKey(flow), neg);
    this.sendDde(neg);
    this.obs.started(reason);
  }

  private ownRecord(m: DprpMessage, flags: number): GeRecord {
    const s = this.d.self;
    return signRecord(this.myKeys(), m, { addr: s.addr, geType: s.type, mode: s.mode, flags, options: this.ownRecordOptions(m) });
  }

  /** What the parts add to this GE's record (each only options of the types its part claims). */
  private ownRecordOptions(m: DprpMessage): TlvOption[] {
    if (this.hooks.length === 0) return [];
    const out: TlvOption[] = [];
    for (const h of this.hooks) {
      for (const o of h.recordOptions?.({ msgType: m.type, flow: m.flow, self: this.d.self.addr }) ?? []) {
        if (!h.optionTypes.includes(o.type)) throw new RangeError(`part ${h.part} added DPRP option type ${o.type}, which it does not claim`);
        out.push(o);
      }
    }
    return out;
  }

  /**
   * Hands each option of a received record to the part claiming its type;
   * false when one refuses. Membership tags are checked only for records that
   * carry such an option (no cost for the others).
   */
  private partsAcceptRecordOptions(m: DprpMessage): boolean {
    if (this.hooks.length === 0 || (m.type !== MsgType.DDE && m.type !== MsgType.RGI)) return true;
    const self = this.d.self.addr;
    for (let i = 0; i < m.records.length; i++) {
      const r = m.records[i];
      if (r.addr === self || r.options.length === 0) continue;
      let authenticated: boolean | undefined;
      for (const o of r.options) {
        for (const h of this.hooks) {
          if (!h.verifyRecordOption || !h.optionTypes.includes(o.type)) continue;
          authenticated ??= verifyRecord(this.myKeys(), m, i).length > 0;
          if (!h.verifyRecordOption({ option: o, msgType: m.type, from: r.addr, authenticated, flow: m.flow })) return false;
        }
      }
    }
    return true;
  }

  private sendDde(neg: StartNeg): void {
    neg.attempt++;
    neg.sends++;
    const m: DprpMessage = {
      type: MsgType.DDE, flags: 0, attempt: neg.attempt, negId: neg.negId, timestampMs: this.wallMs(),
      flow: neg.flow, status: Status.OK, startGe: this.d.self.addr, endGe: '0.0.0.0',
      records: [], actions: [], seal: null, options: [],
    };
    m.records = [this.ownRecord(m, 0)];
    this.d.transport.send(neg.flow.daddr, this.enc(m));
    neg.timer = this.d.timers.after(this.rto(neg.sends), () => this.onStartTimeout(neg));
  }

  private onStartTimeout(neg: StartNeg): void {
    if (this.startByNeg.get(hex(neg.negId)) !== neg) return;
    neg.timer = null;
    if (neg.sends < this.cfg.maxSends) {
      if (neg.phase === 'dde') this.sendDde(neg);
      else this.sendMpit(neg);
      return;
    }
    if (neg.phase === 'alone') {
      this.alone--;
      this.finishStart(neg);
      return;
    }
    if (neg.phase === 'dde' && this.cfg.onNoAnswer === 'decide-alone') {
      // Decide now, but keep listening for a late answer for a while.
      if (this.startByFlow.get(flowKey(neg.flow)) === neg) this.startByFlow.delete(flowKey(neg.flow));
      this.noEnd.set(neg.flow.daddr, this.d.clock.monoMs() + this.cfg.noEndCacheMs);
      this.concludeAlone(neg);
      neg.phase = 'alone';
      this.alone++;
      neg.timer = this.d.timers.after(this.cfg.lateRgiGraceMs, () => this.onStartTimeout(neg));
      return;
    }
    this.fail(neg, neg.phase === 'dde' ? 'dde_timeout' : 'cdn_timeout');
  }

  /** No GE toward the destination: the start decides on its own (OP: plaintext, CL: refuse). */
  private concludeAlone(neg: StartNeg): void {
    const out = decide([{ addr: this.d.self.addr, type: this.d.self.type, mode: this.d.self.mode, keys: this.myGroupVersions() }]);
    const mine = out.actions[0];
    const entries = pitEntriesFor(neg.flow, mine.action, 'start', null, 'confirmed');
    this.d.pit.install(entries);
    this.remember(neg.flow, 'start', mine.action, null, entries, hex(neg.negId));
    this.settleStash(neg, out);
    this.obs.completed(out.verdict === 'refused' ? 'refused' : 'no_end_ge', this.elapsed(neg));
  }

  private elapsed(neg: StartNeg): number {
    return (this.d.clock.monoMs() - neg.startedMono) / 1000;
  }

  private settleStash(neg: StartNeg, out: Outcome): void {
    if (neg.stashes.length === 0) return;
    if (out.verdict === 'refused') this.d.stash.drop(neg.stashes, 'refused');
    else this.d.stash.release(neg.stashes);
    neg.stashes = [];
  }

  private finishStart(neg: StartNeg): void {
    neg.timer?.cancel();
    neg.timer = null;
    this.startByNeg.delete(hex(neg.negId));
    if (this.startByFlow.get(flowKey(neg.flow)) === neg) this.startByFlow.delete(flowKey(neg.flow));
  }

  private fail(neg: StartNeg, reason: FailReason): void {
    this.finishStart(neg);
    if (neg.installed && neg.entries.length) this.d.pit.remove(neg.entries);
    if (neg.stashes.length) this.d.stash.drop(neg.stashes, reason);
    neg.stashes = [];
    this.obs.failed(reason);
  }

  private onRgiAtStart(m: DprpMessage): void {
    const neg = this.startByNeg.get(hex(m.negId));
    if (!neg) return this.reject('unknown_negotiation');
    if ((neg.phase !== 'dde' && neg.phase !== 'alone') || m.attempt > neg.attempt) return this.reject('wrong_phase');
    if (!sameFlow(neg.flow, m.flow)) return this.reject('unknown_negotiation');
    if ((m.records[0].flags & (REC_F_IS_DEST | REC_F_PROTECTS_DEST)) === 0) return this.reject('no_end_flag');
    if (m.records[0].addr !== m.endGe) return this.reject('no_end_flag');

    const keys = this.myKeys();
    // Path order: start, then the records from the start side to the end GE.
    const path: PathGe[] = [{ addr: this.d.self.addr, type: this.d.self.type, mode: this.d.self.mode, keys: this.myGroupVersions() }];
    for (let i = m.records.length - 1; i >= 0; i--) {
      const r = m.records[i];
      const shared = verifyRecord(keys, m, i).map((k) => ({ group: k.group, version: k.version }));
      path.push({ addr: r.addr, type: r.geType, mode: r.mode, keys: shared });
    }
    let out: Outcome;
    try {
      out = decide(path);
    } catch {
      // A path that cannot be (a GE twice): ignore this RGI, keep waiting for a sound one.
      return this.reject('bad_path');
    }
    this.replayAccept(m);
    neg.timer?.cancel();
    neg.timer = null;
    if (neg.phase === 'alone') {
      this.alone--;
      // A GE answered after all: this destination is not GE-less, and the flow gets the real decision.
      neg.upgraded = true;
      this.noEnd.delete(neg.flow.daddr);
      this.startByFlow.set(flowKey(neg.flow), neg);
    }
    neg.outcome = out;
    neg.phase = 'mpit';
    neg.sends = 0;
    neg.endGe = m.endGe;

    const keyFor = neg.keyFor;
    keyFor.clear();
    path.forEach((g, i) => {
      if (i === 0) return;
      const a = out.actions[i];
      const gv = a.group !== undefined ? { group: a.group, version: a.version! } : commonKey(path[0].keys, g.keys);
      keyFor.set(g.addr, this.keyOf(gv));
    });
    neg.endKey = keyFor.get(m.endGe) ?? null;

    const mine = out.actions[0];
    const myKey = mine.group !== undefined ? { group: mine.group, version: mine.version! } : null;
    // Re-keying a live flow: the new decrypt entries keep accepting the old version.
    const prior = this.flows.get(canonicalFlowKey(neg.flow))?.entries;
    neg.entries = withPrevVersions(pitEntriesFor(neg.flow, mine.action, 'start', myKey, 'tentative'), prior);

    neg.mpit = {
      type: MsgType.MPIT, flags: 0, attempt: 0, negId: neg.negId, timestampMs: 0, flow: neg.flow,
      status: out.verdict === 'refused' ? Status.REFUSED : Status.OK, startGe: this.d.self.addr, endGe: m.endGe,
      records: [], seal: null, options: [],
      actions: out.actions.slice(1).map((a): ActionEntry => ({
        addr: a.addr,
        action: ({ encrypt: WireAction.ENCRYPT, decrypt: WireAction.DECRYPT, pass: WireAction.PASS, discard: WireAction.DISCARD } as const)[a.action],
        role: a.role === 'end' ? WireRole.END : WireRole.INTERMEDIATE,
        flags: a.transit ? ACT_F_TRANSIT : 0,
        selector: zero16(), mac: zero16(),
      })),
    };
    // A refused flow's stashed packet is dropped now; nothing will release it.
    if (out.verdict === 'refused') this.settleStash(neg, out);
    else {
      // Lossless re-keying, step 1 at the start GE: decrypt the new version
      // (and still the old one) BEFORE the MPIT lets the end GE encrypt with it.
      // The encrypt entries switch on CDN, when the end GE decrypts it too.
      const early = neg.entries.filter((e) => isDecryptVersionSwitch(e, prior)).map((e) => ({ ...e, state: 'confirmed' as const }));
      if (early.length) this.d.pit.install(early);
    }
    this.sendMpit(neg);
    // The start GE writes its entries once, confirmed, on CDN: until then further
    // packets of the flow keep missing and join the stash, so none can overtake
    // the end GE's MPIT. A refused flow is cut at once (tentative discard).
    if (out.verdict === 'refused') {
      this.d.pit.install(neg.entries);
      neg.installed = true;
    }
  }

  private sendMpit(neg: StartNeg): void {
    const m = neg.mpit!;
    const keyFor = neg.keyFor;
    neg.attempt++;
    neg.sends++;
    m.attempt = neg.attempt;
    m.timestampMs = this.wallMs();
    signActions(m, (addr) => keyFor.get(addr) ?? null);
    this.d.transport.send(m.endGe, this.enc(m));
    neg.timer = this.d.timers.after(this.rto(neg.sends), () => this.onStartTimeout(neg));
  }

  private onCdnAtStart(m: DprpMessage): void {
    const neg = this.startByNeg.get(hex(m.negId));
    if (!neg) return this.reject('unknown_negotiation');
    if (neg.phase !== 'mpit' || m.attempt > neg.attempt || m.endGe !== neg.endGe) return this.reject('wrong_phase');
    if (neg.endKey) {
      if (!m.seal) return this.reject('missing_seal');
      // The selector we sent the end GE in the MPIT (selector(endKey, negId, endGe)).
      const sent = neg.mpit?.actions.find((a) => a.addr === m.endGe)?.selector;
      if (!sent || !same(sent, m.seal.selector) || !same(sealMac(neg.endKey, m), m.seal.mac)) return this.reject('bad_seal');
    }
    this.replayAccept(m);
    this.finishStart(neg);
    const out = neg.outcome!;
    // Entries first: the released packet must hit them (a released packet that misses is dropped).
    const confirmed = neg.entries.map((e) => ({ ...e, state: 'confirmed' as const }));
    this.d.pit.install(confirmed);
    neg.installed = true;
    this.settleStash(neg, out);
    const mine = out.actions[0];
    this.remember(neg.flow, 'start', mine.action, mine.group !== undefined ? { group: mine.group, version: mine.version! } : null, confirmed, hex(neg.negId));
    this.obs.completed(neg.upgraded ? 'upgraded' : out.verdict, this.elapsed(neg));
  }

  // ================================================================ relay / end

  private relayFor(m: DprpMessage, create: RelayNeg['role'] | null): RelayNeg | null {
    const id = hex(m.negId);
    let r = this.relays.get(id);
    if (r) {
      if (!sameFlow(r.flow, m.flow) || r.startGe !== m.startGe) return null;
      return r;
    }
    if (!create) return null;
    if (this.relays.size >= this.cfg.maxRelays) {
      this.reject('relay_table_full');
      return null;
    }
    r = {
      negId: m.negId, flow: m.flow, startGe: m.startGe, role: create, createdMono: this.d.clock.monoMs(),
      endTimer: null, lastDdeAttempt: 0, entries: [], confirmed: false, sealKey: null, answeredMpit: false, startDdes: [],
    };
    this.relays.set(id, r);
    return r;
  }

  private onDde(m: DprpMessage, raw: Buffer): void {
    const loc = this.d.locality(m.flow.daddr);
    const existing = this.relays.get(hex(m.negId));
    const role: RelayNeg['role'] = loc === 'self' ? 'end' : loc === 'behind' ? 'end-candidate' : 'intermediate';
    const r = this.relayFor(m, role);
    if (!r) return existing ? this.reject('unknown_negotiation') : undefined;
    if (m.attempt <= r.lastDdeAttempt) return this.reject('replay');
    r.lastDdeAttempt = m.attempt;
    this.replayAccept(m);
    if (m.records[0].addr === m.startGe) r.startDdes.push(m);

    if (r.role === 'end') return this.answerRgi(r, m, loc === 'self' ? REC_F_IS_DEST : REC_F_PROTECTS_DEST);
    if (r.role === 'intermediate') {
      this.d.transport.send(m.flow.daddr, raw);
      return;
    }
    // end candidate: is there a GE behind us for this address?
    const now = this.d.clock.monoMs();
    const known = this.termCache.get(m.flow.daddr);
    if (known && known.untilMono > now && known.kind === 'term') {
      r.role = 'end';
      return this.answerRgi(r, m, REC_F_PROTECTS_DEST);
    }
    const depth = Math.min(m.candDepth ?? 0, MAX_CAND_DEPTH);
    this.d.transport.send(m.flow.daddr, withCandDepth(raw, Math.min(depth + 1, MAX_CAND_DEPTH)));
    r.endTimer?.cancel();
    const wait = this.cfg.endWaitMs + (MAX_CAND_DEPTH - depth) * this.cfg.endWaitStepMs;
    r.endTimer = this.d.timers.after(wait, () => {
      r.endTimer = null;
      if (this.relays.get(hex(r.negId)) !== r || r.role !== 'end-candidate') return;
      this.termCache.set(r.flow.daddr, { kind: 'term', untilMono: this.d.clock.monoMs() + this.cfg.termCacheMs });
      r.role = 'end';
      this.answerRgi(r, m, REC_F_PROTECTS_DEST);
    });
  }

  /** Whether any DDE of the start GE proved (tagged) a group this GE holds. */
  private sharesWithStart(r: RelayNeg): boolean {
    const keys = this.myKeys();
    return r.startDdes.some((d) => verifyRecord(keys, d, 0).length > 0);
  }

  private answerRgi(r: RelayNeg, dde: DprpMessage, flags: number): void {
    const m: DprpMessage = {
      type: MsgType.RGI, flags: 0, attempt: dde.attempt, negId: r.negId, timestampMs: this.wallMs(),
      flow: r.flow, status: Status.OK, startGe: r.startGe, endGe: this.d.self.addr,
      records: [], actions: [], seal: null, options: [],
    };
    m.records = [this.ownRecord(m, flags)];
    this.d.transport.send(r.startGe, this.enc(m));
  }

  private onRgiRelay(m: DprpMessage): void {
    const r = this.relayFor(m, 'intermediate');
    if (!r) return this.reject('unknown_negotiation');
    if (m.records.length >= MAX_RECORDS) return this.reject('path_too_long');
    if (m.records.some((x) => x.addr === this.d.self.addr)) return this.reject('own_message');
    this.replayAccept(m);
    if (r.role === 'end-candidate' || r.role === 'end') {
      // A GE behind us answered: we are only on the way.
      r.endTimer?.cancel();
      r.endTimer = null;
      r.role = 'intermediate';
      this.termCache.set(r.flow.daddr, { kind: 'ge', untilMono: this.d.clock.monoMs() + this.cfg.termCacheMs });
    }
    const out: DprpMessage = { ...m, records: [...m.records] };
    out.records.push(this.ownRecord(m, 0));
    this.d.transport.send(m.startGe, this.enc(out));
  }

  private onMpit(m: DprpMessage, raw: Buffer): void {
    const r = this.relayFor(m, null);
    if (!r) return this.reject('unknown_negotiation');
    const self = this.d.self.addr;
    const entry = m.actions.find((a) => a.addr === self);
    if (!entry) {
      // Not named (we are past the end GE, or our record was stripped): relay only.
      this.replayAccept(m);
      if (m.endGe !== self) this.d.transport.send(m.endGe, raw);
      return;
    }
    let key: GroupKey | null = null;
    if (!isZero(entry.selector)) {
      key = findSelected(this.myKeys(), m.negId, self, entry.selector);
      if (!key) return this.reject('bad_selector');
      if (!verifyAction(key, m, entry)) return this.reject('bad_mac');
    } else if (entry.action === WireAction.ENCRYPT || entry.action === WireAction.DECRYPT) {
      return this.reject('unauthenticated_action');
    } else if (m.endGe === self && this.sharesWithStart(r)) {
      // The start proved (in its DDE) a group we share, yet its word for us is
      // unauthenticated: someone rewrote the RGI to downgrade the flow. Install nothing.
      return this.reject('downgrade');
    }
    this.replayAccept(m);

    let decision: Decision = ({ [WireAction.ENCRYPT]: 'encrypt', [WireAction.DECRYPT]: 'decrypt', [WireAction.PASS]: 'pass', [WireAction.DISCARD]: 'discard' } as const)[entry.action];
    // Local policy wins: a CL GE never lets plaintext through on an unauthenticated word.
    if (decision === 'pass' && !key && this.d.self.mode === 'CL' && (entry.flags & ACT_F_TRANSIT) === 0) {
      decision = 'discard';
      this.obs.overridden();
    }
    const role: PathRole = entry.role === WireRole.END ? 'end' : 'intermediate';
    const gv = decision === 'encrypt' || decision === 'decrypt' ? { group: key!.group, version: key!.version } : null;
    // The end GE sends the CDN itself, so it installs confirmed at once (one map write, not two).
    const isEnd = m.endGe === self;
    if (isEnd) r.confirmed = true;
    // A GEN whose inside holds the source sees the forward direction leave on egress.
    const fwdDir: PitDir = this.d.locality(r.flow.saddr) === 'behind' ? 'egress' : 'ingress';
    if (r.prior === undefined) r.prior = this.flows.get(canonicalFlowKey(r.flow))?.entries ?? null;
    const prior = r.prior ?? undefined;
    r.entries = withPrevVersions(pitEntriesFor(r.flow, decision, role, gv, r.confirmed ? 'confirmed' : 'tentative', fwdDir), prior);
    // Lossless re-keying: decrypt entries (new version, old as prev) and the
    // encrypt entries toward the start (whose GEs already decrypt the new
    // version) switch now; an encrypt entry toward the end GE keeps the old
    // version until the CDN says every GE downstream decrypts the new one.
    const deferred = (e: PitEntry) => !isEnd && isEncryptVersionSwitch(e, prior) && sameFlow(e.flow, r.flow);
    this.d.pit.install(r.entries.filter((e) => !deferred(e)));
    if (prior) {
      const before = new Map(prior.map((e) => [pitEntryKey(e), e]));
      r.installed = r.entries.map((e) => (deferred(e) ? before.get(pitEntryKey(e))! : e));
    }

    if (isEnd) {
      r.role = 'end';
      r.sealKey = key;
      const cdn: DprpMessage = {
        type: MsgType.CDN, flags: 0, attempt: m.attempt, negId: m.negId, timestampMs: this.wallMs(),
        flow: m.flow, status: m.status, startGe: m.startGe, endGe: self, records: [], actions: [], seal: null, options: [],
      };
      // entry.selector is selector(key, negId, self): findSelected just matched it.
      if (key) cdn.seal = { selector: entry.selector, mac: sealMac(key, cdn) };
      r.answeredMpit = true;
      this.d.transport.send(m.startGe, this.enc(cdn));
    } else {
      this.d.transport.send(m.endGe, raw);
    }
    // Book-keeping after the send: the next GE starts its work sooner.
    this.remember(r.flow, role, decision, gv, r.entries, hex(r.negId));
  }

  private onCdnRelay(m: DprpMessage, raw: Buffer): void {
    const r = this.relayFor(m, null);
    if (!r) return this.reject('unknown_negotiation');
    this.replayAccept(m);
    this.confirmRelay(r);
    this.d.transport.send(m.startGe, raw);
  }

  private confirmRelay(r: RelayNeg): void {
    if (r.confirmed || r.entries.length === 0) {
      r.confirmed = r.confirmed || r.entries.length > 0;
      return;
    }
    r.confirmed = true;
    r.entries = r.entries.map((e) => ({ ...e, state: 'confirmed' as const }));
    this.d.pit.install(r.entries);
    const rec = this.flows.get(canonicalFlowKey(r.flow));
    if (rec) rec.entries = r.entries;
  }

  // ================================================================ input

  /**
   * A GSCIP control message arrived (punted). `icmp` is the ICMP message (IP
   * payload). Never throws for bad input: every rejection is counted.
   */
  onControl(icmp: Buffer): void {
    let m: DprpMessage;
    try {
      m = decode(icmp, this.codecs);
    } catch (e) {
      if (e instanceof DprpWireError) return this.reject(`wire_${e.countedAs}`);
      throw e;
    }
    const verdict = this.replay.check(replayKey(m), m.timestampMs, this.d.clock.nowMs());
    if (verdict !== 'ok') return this.reject(verdict);
    if (!this.partsAcceptRecordOptions(m)) return this.reject('option_refused');
    const self = this.d.self.addr;
    switch (m.type) {
      case MsgType.DDE:
        if (m.startGe === self) return this.reject('own_message');
        return this.onDde(m, icmp);
      case MsgType.RGI:
        return m.startGe === self ? this.onRgiAtStart(m) : this.onRgiRelay(m);
      case MsgType.MPIT:
        if (m.startGe === self) return this.reject('own_message');
        return this.onMpit(m, icmp);
      case MsgType.CDN:
        return m.startGe === self ? this.onCdnAtStart(m) : this.onCdnRelay(m, icmp);
    }
  }

  private replayAccept(m: DprpMessage): void {
    this.replay.accept(replayKey(m), m.timestampMs, this.d.clock.nowMs());
  }

  private reject(reason: RejectReason): void {
    this.obs.rejected(reason);
  }

  // ================================================================ lifecycle

  private remember(flow: Flow, role: PathRole, decision: Decision, gv: GroupVersion | null, entries: PitEntry[], negId: string): void {
    const key = canonicalFlowKey(flow);
    const old = this.flows.get(key);
    if (old) {
      const keep = new Set(entries.map(pitEntryKey));
      const stale = old.entries.filter((e) => !keep.has(pitEntryKey(e)));
      if (stale.length) this.d.pit.remove(stale);
    }
    this.flows.set(key, {
      flow, role, decision, group: gv?.group ?? 0, version: gv?.version ?? 0, entries, installedMono: this.d.clock.monoMs(),
      lastActivityMono: this.d.clock.monoMs(), negId,
    });
  }

  /**
   * Housekeeping, called about once a second: expires relay state and its
   * unconfirmed entries, idle and closed flows, and stale caches.
   * Returns how many flows it expired.
   */
  sweep(): number {
    const now = this.d.clock.monoMs();
    for (const [id, r] of this.relays) {
      if (now - r.createdMono < (r.confirmed ? this.cfg.relayLingerMs : this.cfg.tentativeTtlMs)) continue;
      r.endTimer?.cancel();
      this.relays.delete(id);
      if (!r.confirmed && r.entries.length) {
        const rec = this.flows.get(canonicalFlowKey(r.flow));
        if (r.prior?.length && r.installed) {
          // A re-keying of a live flow whose CDN never came: what the MPIT
          // installed (decrypt both versions, encrypt toward the end still on
          // the old one) carries whatever either end sends. Keep it.
          if (rec && rec.negId === id) rec.entries = r.installed;
          continue;
        }
        this.d.pit.remove(r.entries);
        if (rec && rec.negId === id) this.flows.delete(canonicalFlowKey(r.flow));
      }
    }
    let expired = 0;
    const soonest = Math.min(this.cfg.closedTimeoutMs, this.cfg.idleTimeoutMs);
    for (const [key, f] of this.flows) {
      // Ask the kernel only about flows that could have expired by now (no syscall for the rest).
      if (now - f.lastActivityMono < soonest) continue;
      if (this.startByFlow.has(flowKey(f.flow))) continue;
      let last = f.installedMono;
      let closed = false;
      let finFwd = false;
      let finRev = false;
      const fwdKey = flowKey(f.flow);
      for (const e of f.entries) {
        const a = this.d.pit.activity?.(e);
        if (a) {
          last = Math.max(last, a.lastSeenMs);
          closed = closed || a.closed;
          if (a.finSeen) {
            if (flowKey(e.flow) === fwdKey) finFwd = true;
            else finRev = true;
          }
        }
      }
      // Closed: an RST anywhere, or a FIN each way. Expiry still counts from the
      // last packet, so a half-closed flow still sending is never cut.
      closed = closed || (finFwd && finRev);
      f.lastActivityMono = last;
      const limit = closed ? this.cfg.closedTimeoutMs : this.cfg.idleTimeoutMs;
      if (now - last >= limit) {
        this.d.pit.remove(f.entries);
        this.flows.delete(key);
        expired++;
      }
    }
    this.clearPrevVersions(now);
    for (const [a, t] of this.termCache) if (t.untilMono <= now) this.termCache.delete(a);
    for (const [a, t] of this.noEnd) if (t <= now) this.noEnd.delete(a);
    return expired;
  }

  /**
   * Re-keying, last step: decrypt entries stop accepting the previous key
   * version once it left the key ring, or prevGraceMs after the switch.
   */
  private clearPrevVersions(now: number): void {
    let held: Set<string> | null = null;
    for (const f of this.flows.values()) {
      if (!f.entries.some((e) => e.prevVersion)) continue;
      held ??= new Set(this.myKeys().map((k) => `${k.group}/${k.version}`));
      const h = held;
      // Adopted entries (installedMono 0: age unknown) keep prev until the old key leaves.
      const keep = (f.installedMono === 0 || now - f.installedMono < this.cfg.prevGraceMs)
        && f.entries.every((e) => !e.prevVersion || h.has(`${e.group}/${e.prevVersion}`));
      if (keep) continue;
      f.entries = f.entries.map((e) => {
        if (!e.prevVersion) return e;
        const { prevVersion: _gone, ...rest } = e;
        return rest;
      });
      const r = this.relays.get(f.negId);
      if (r) r.entries = f.entries;
      this.d.pit.install(f.entries);
    }
  }

  /**
   * Takes over PIT entries a previous agent made (pinned maps survive it), so
   * idle expiry and re-keying cover them. Entries are grouped per flow; the
   * flow's orientation comes from its encrypt (egress) or decrypt (ingress)
   * entry. Returns how many flows were adopted.
   */
  adopt(entries: readonly PitEntry[]): number {
    const byFlow = new Map<string, PitEntry[]>();
    for (const e of entries) {
      const k = canonicalFlowKey(e.flow);
      const l = byFlow.get(k);
      if (l) l.push(e);
      else byFlow.set(k, [e]);
    }
    let n = 0;
    for (const [key, es] of byFlow) {
      if (this.flows.has(key)) continue;
      const enc = es.find((e) => e.action === 'encrypt' && e.dir === 'egress' && e.role === 'start');
      const dec = es.find((e) => e.action === 'decrypt' && e.dir === 'ingress');
      const any = enc ?? dec ?? es.find((e) => e.dir === 'egress') ?? es[0];
      const decision: Decision = enc ? 'encrypt' : dec ? 'decrypt' : any.action === 'drop' ? 'discard' : 'pass';
      this.flows.set(key, {
        flow: any.flow, role: any.role, decision, group: any.group, version: any.version, entries: es,
        // Age unknown here: the first sweep asks the kernel for the entries' last activity.
        installedMono: 0, lastActivityMono: 0, negId: 'adopted',
      });
      n++;
    }
    return n;
  }

  /**
   * The key ring changed (GMS rotation). Every flow this GE started or ended
   * that uses an older version of a group it now holds a newer version of is
   * negotiated again, from this GE; the new entries replace the old ones when
   * the new negotiation installs them. Returns how many were started.
   */
  onKeysChanged(): number {
    const newest = new Map<number, number>();
    for (const k of this.myKeys()) newest.set(k.group, Math.max(newest.get(k.group) ?? 0, k.version));
    let n = 0;
    for (const f of [...this.flows.values()]) {
      if (f.role === 'intermediate' || f.group === 0) continue;
      const v = newest.get(f.group);
      if (v === undefined || v <= f.version) continue;
      const mine = f.role === 'start' ? f.flow : reverseFlow(f.flow);
      if (this.startByFlow.has(flowKey(mine)) || this.startByFlow.has(flowKey(reverseFlow(mine)))) continue;
      if (this.pending >= this.cfg.maxNegotiations) break;
      this.begin(mine, 'rekey', []);
      n++;
    }
    return n;
  }
}

function sameFlow(a: Flow, b: Flow): boolean {
  return a.saddr === b.saddr && a.daddr === b.daddr && a.sport === b.sport && a.dport === b.dport && a.proto === b.proto;
}

/** One message as seen by one GE: a retransmission has a new attempt and timestamp. */
function replayKey(m: DprpMessage): string {
  return `${m.type}:${hex(m.negId)}:${m.attempt}:${m.timestampMs}:${m.records.length}`;
}
