/**
 * What every job of one DPRP node shares: its injected dependencies and
 * configuration, its keys, the replay cache, the option codecs and the parts'
 * hooks, its own GE record, the negotiated flows, and the end-GE caches.
 * Contract: no negotiation state lives here (that is start-role.ts and
 * relay-role.ts); everything here is read or updated by more than one job.
 */
import { randomBytes } from 'node:crypto';
import { signRecord, verifyRecord, type GroupKey } from './auth.js';
import type { GroupVersion } from './decide.js';
import { DEFAULT_DPRP_CONFIG, NULL_OBSERVER, type ControlVia, type DprpConfig, type DprpNodeDeps, type DprpObserver, type RejectReason } from './node-deps.js';
import { NegotiatedFlows } from './negotiated-flows.js';
import type { OptionCodecs } from './option-codecs.js';
import type { ClaimedOptionHooks } from '../parts/dprp-extension.js';
import { ReplayCache } from './replay.js';
import { RateLimiter } from './rate-limit.js';
import { specialAddress } from './addr-guard.js';
import { OptionType, OWN_PCCOM_CAPS, SPEC_OPTIONS } from './spec-options.js';
import { encode, MsgType, type DprpMessage, type Flow, type GeRecord, type TlvOption } from './wire.js';
import { RttEstimator } from './rtt-estimator.js';

export const hex = (b: Buffer) => b.toString('hex');

export function sameFlow(a: Flow, b: Flow): boolean {
  return a.saddr === b.saddr && a.daddr === b.daddr && a.sport === b.sport && a.dport === b.dport && a.proto === b.proto;
}

/** One message as seen by one GE: a retransmission has a new attempt and timestamp. */
export function replayKey(m: DprpMessage): string {
  return `${m.type}:${hex(m.negId)}:${m.attempt}:${m.timestampMs}:${m.records.length}`;
}

export class DprpContext {
  readonly cfg: DprpConfig;
  readonly obs: DprpObserver;
  readonly replay: ReplayCache;
  readonly rnd: (n: number) => Buffer;
  readonly codecs: OptionCodecs;
  readonly hooks: readonly ClaimedOptionHooks[];
  readonly flows: NegotiatedFlows;
  /** inside address -> what answered there, until when. */
  readonly termCache = new Map<string, { kind: 'term' | 'ge'; untilMono: number }>();
  /** destination -> until when "no GE answered for it" holds (skip the DDE). */
  readonly noEnd = new Map<string, number>();
  /** DDEs sent per destination (start role) and RGIs answered per source (end role): issue 11. */
  readonly ddeLimiter: RateLimiter;
  readonly answerLimiter: RateLimiter;
  /** First-try round trips of this GE's negotiations (rto()). */
  readonly rtt = new RttEstimator();

  constructor(readonly d: DprpNodeDeps) {
    this.cfg = { ...DEFAULT_DPRP_CONFIG, ...d.config };
    this.obs = d.observer ?? NULL_OBSERVER;
    this.replay = new ReplayCache(this.cfg.replay);
    this.rnd = d.random ?? randomBytes;
    this.codecs = d.options ?? SPEC_OPTIONS;
    this.hooks = d.optionHooks ?? [];
    this.flows = new NegotiatedFlows(d.pit, d.clock, this.cfg);
    this.ddeLimiter = new RateLimiter(this.cfg.ddeLimit);
    this.answerLimiter = new RateLimiter(this.cfg.answerLimit);
  }

  /**
   * Whether addr may never be a control message's destination: multicast,
   * broadcast (limited, reserved, or a directed broadcast the host knows),
   * loopback, 0/8, or one of this GE's own addresses other than the one it
   * speaks DPRP with (that one the roles handle: own_message, end role).
   */
  forbidden(addr: string): boolean {
    if (specialAddress(addr) !== null) return true;
    if (addr === this.d.self.addr) return false;
    return this.d.isOwnOrBroadcast?.(addr) ?? false;
  }

  /** Whether the network definition requires encryption to `addr` (strict mode: encryption-required.ts). */
  encryptionRequired(addr: string): boolean {
    return this.d.encryptionRequired?.(addr) ?? false;
  }

  /**
   * Every control message this GE sends goes through here: never to a
   * forbidden address (the node refuses such messages before they get this
   * far; this is the last line, counted as a suppressed send).
   */
  send(dst: string, icmp: Buffer, src?: string, via?: ControlVia): void {
    if (this.forbidden(dst) || dst === this.d.self.addr) {
      this.obs.suppressed?.('forbidden_destination');
      return;
    }
    this.d.transport.send(dst, icmp, src, via);
  }

  /** Encodes a message this GE sends, options checked against the codecs it knows. */
  enc(m: DprpMessage): Buffer {
    return encode(m, this.codecs);
  }

  /** Integer wall-clock ms for message timestamps. */
  wallMs(): number {
    return Math.floor(this.d.clock.nowMs());
  }

  mono(): number {
    return this.d.clock.monoMs();
  }

  myKeys(): readonly GroupKey[] {
    return this.d.keys.all();
  }

  myGroupVersions(): GroupVersion[] {
    return this.myKeys().map((k) => ({ group: k.group, version: k.version }));
  }

  keyOf(gv: GroupVersion | null): GroupKey | null {
    if (!gv) return null;
    return this.myKeys().find((k) => k.group === gv.group && k.version === gv.version) ?? null;
  }

  /** Timeout before send number `sends + 1`: the measured base (never below rtoMs), doubled per send, capped at rtoMaxMs. */
  rto(sends: number): number {
    const base = this.cfg.rtoFollowsRtt ? this.rtt.baseMs(this.cfg.rtoMs, this.cfg.rtoMaxMs) : this.cfg.rtoMs;
    return Math.min(base * 2 ** Math.max(0, sends - 1), this.cfg.rtoMaxMs);
  }

  replayAccept(m: DprpMessage): void {
    this.replay.accept(replayKey(m), m.timestampMs, this.d.clock.nowMs());
  }

  reject(reason: RejectReason): void {
    this.obs.rejected(reason);
  }

  ownRecord(m: DprpMessage, flags: number, extra: readonly TlvOption[] = []): GeRecord {
    const s = this.d.self;
    // DPRP's own: what this GE's PCCOM receiver takes (spec-options.ts PCCOM_CAPS), a NAT it saw, then the parts' options.
    const options = [{ type: OptionType.PCCOM_CAPS, value: Buffer.from([this.cfg.pccomCaps ?? OWN_PCCOM_CAPS]) }, ...extra, ...this.ownRecordOptions(m)];
    return signRecord(this.myKeys(), m, { addr: s.addr, geType: s.type, mode: s.mode, flags, options });
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
  partsAcceptRecordOptions(m: DprpMessage): boolean {
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
}
