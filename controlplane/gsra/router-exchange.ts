/**
 * The GSRA router's side of the exchange: one control message in, at most one
 * answer out. Decode (malformed: counted, no answer), find the user's key
 * (unknown: counted, no answer: nothing to MAC it with), check the MAC and
 * the replay window (counted, no answer), then decide (admission.ts) and
 * answer: AUTH_OK / BIND_OK / MAP_OK, or a REFUSE with its reason, MAC'd
 * under the user's key so the EN fails the flow at once. Every outcome is
 * counted with its reason. A MAP_OK comes with the mapping the caller
 * installs in the NAT stage before sending the answer.
 */
import { ReplayCache, DEFAULT_REPLAY } from '../dprp/replay.js';
import { gsraAdmissionsTotal, gsraRefusalsTotal, gsraRequestsTotal } from '../metrics/metrics.js';
import { GsraAdmission, type AddrPort, type Mapping } from './admission.js';
import { Action } from '../maps/abi.js';
import { decodeGsra, encodeGsra, GSRA_MAP_F_UDP_WIRE, GsraCode, GsraWireError, replayKey, verifyGsra, type GsraBody, type RefuseReason } from './wire.js';

export const MESSAGE_NAMES: Record<number, string> = { 32: 'auth', 34: 'bind', 36: 'map', 38: 'close' };

export interface RouterOutcome {
  /** The answer to send back to `from` (null: none). */
  reply: Buffer | null;
  /** ok, a refusal reason, or why nothing was answered. */
  result: string;
  /** MAP_OK: install this mapping first. CLOSE: delete it. */
  install?: Mapping;
  remove?: Mapping;
}

export class GsraRouterExchange {
  constructor(
    readonly admission: GsraAdmission,
    private readonly replay = new ReplayCache(DEFAULT_REPLAY),
    /** The MAP_OK action byte (PCCOM ENCRYPT: the Internet leg is encrypted). */
    private readonly action = 3,
    /** Writes a new mapping into the fast path before MAP_OK goes out; a refusal reason undoes the admission. */
    private readonly installer: ((m: Mapping) => RefuseReason | null) | null = null,
  ) {}

  /** `from`: the message's source address and port as received (a home router's GHR:m). */
  onMessage(icmp: Buffer, from: AddrPort, now: number): RouterOutcome {
    let m;
    try { m = decodeGsra(icmp); } catch (e) {
      return this.count('unknown', e instanceof GsraWireError ? `malformed_${e.reason}` : 'malformed', { reply: null });
    }
    const what = MESSAGE_NAMES[m.body.code];
    if (!what) return this.count('unknown', 'not_a_request', { reply: null });
    const key = this.admission.keyOf(m.userId);
    if (!key) return this.count(what, 'unknown_user', { reply: null });
    if (!verifyGsra(m, key)) return this.count(what, 'bad_mac', { reply: null });
    const rv = this.replay.accept(replayKey(m), m.timestampMs, now);
    if (rv !== 'ok') return this.count(what, rv, { reply: null });
    const answer = (body: GsraBody): Buffer => encodeGsra({ userId: m.userId, msgId: m.msgId, timestampMs: now, body }, key);
    const refusal = (reason: RefuseReason): RouterOutcome => this.count(what, reason, { reply: answer({ code: GsraCode.REFUSE, reason }) });
    const b = m.body;
    switch (b.code) {
      case GsraCode.AUTH: {
        const d = this.admission.authenticate(m.userId, b.group, b.name, b.proto, b.dport, now);
        if (!d.ok) return refusal(d.reason);
        return this.count(what, 'ok', { reply: answer({ code: GsraCode.AUTH_OK, t: d.value.t, leaseS: Math.ceil(this.admission.limits.leaseMs / 1000) }) });
      }
      case GsraCode.BIND: {
        const d = this.admission.bind(m.userId, b.t, from);
        if (!d.ok) return refusal(d.reason);
        return this.count(what, 'ok', { reply: answer({ code: GsraCode.BIND_OK, seen: d.value, t: b.t }) });
      }
      case GsraCode.MAP: {
        const d = this.admission.map(m.userId, b.t, b.proto, b.en, b.dport, from, now, { udpWire: !!((b.flags ?? 0) & GSRA_MAP_F_UDP_WIRE) });
        if (!d.ok) return refusal(d.reason);
        const why = this.installer ? this.installer(d.value) : null;
        if (why) { this.admission.close(m.userId, b.t); return refusal(why); }
        gsraAdmissionsTotal.inc();
        return this.count(what, 'ok', { reply: answer({ code: GsraCode.MAP_OK, t: b.t, idleS: Math.ceil(this.admission.limits.idleMs / 1000), action: this.action, ...(d.value.salt && this.action === Action.ENCRYPT ? { salt: Buffer.from(d.value.salt, 'hex') } : {}) }), install: d.value });
      }
      case GsraCode.CLOSE: {
        const gone = this.admission.close(m.userId, b.t);
        return this.count(what, 'ok', { reply: null, remove: gone ?? undefined });
      }
    }
    return this.count(what, 'not_a_request', { reply: null });
  }

  private count(message: string, result: string, o: Omit<RouterOutcome, 'result'>): RouterOutcome {
    gsraRequestsTotal.inc({ message, result });
    if (result !== 'ok') gsraRefusalsTotal.inc({ reason: result });
    return { ...o, result };
  }
}
