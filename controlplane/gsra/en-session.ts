/**
 * The EN's side of one GSRA admission (seed 004 section 3.2), for the flow
 * whose first packet is stashed: AUTH {group, IN name} -> t; BIND from s
 * (to GGR's control port) when behind a home router -> {GHR, m}; MAP {the stashed packet's
 * session, t} -> the router's confirmation, which turns the tentative VAT
 * entry {GEN:s <-> VIN:d} <=> {GEN:s <-> GGR:t} into a confirmed one; then
 * the caller releases the stashed packet. A REFUSE (MAC'd by the router)
 * fails the flow at once with its reason; no answer after the bounded
 * retries fails it with `timeout`. Each retry is a new message (new msg id
 * and timestamp: the router's replay cache would drop a copy). Pure: the
 * caller sends what `send` says and calls onReply/onTimer.
 */
import { randomBytes } from 'node:crypto';
import { GSRA_MAP_F_UDP_WIRE, decodeGsra, encodeGsra, GsraCode, verifyGsra, type AddrPort, type GsraBody, type RefuseReason } from './wire.js';

/** Retries: first wait RETRY_BASE_MS, doubling, at most RETRY_MAX attempts per step in all (docs/gsra.md). */
export const RETRY_BASE_MS = 250;
export const RETRY_MAX = 4;
export function retryDelayMs(attempt: number): number | null {
  return attempt >= RETRY_MAX ? null : RETRY_BASE_MS * 2 ** attempt;
}

export interface EnFlow {
  userId: string;
  /** The user's GSRA key (GMS delivery `gsraUserKey`). Never log. */
  key: Buffer;
  /** The EN's group it claims (one of its own). */
  group: number;
  /** IN's name, VIN and the router's global address GGR. */
  name: string;
  vin: string;
  ggr: string;
  proto: number;
  /** GEN (or PEN behind a home router): the EN's own address, and s, d of the stashed packet. */
  local: AddrPort;
  dport: number;
  /** A UDP flow behind a home router: ask for PCCOM's UDP wire-valid form (MAP flag; MAP_OK brings the salt). */
  udpWire?: boolean;
  /** EN is behind a home router it does not control: bind first. */
  behindNat: boolean;
}

/** The EN's VAT entry: what the application sees <=> what is on the wire. */
export interface VatEntry {
  proto: number;
  /** {GEN:s <-> VIN:d} */
  local: AddrPort; virtual: AddrPort;
  /** {GEN:s <-> GGR:t} (GHR:m is what the router sees of local, behind a home router) */
  router: AddrPort;
  seenAs: AddrPort;
  confirmed: boolean;
  idleS: number;
  action: number;
  /** MAP_OK's salt (hex, 8 bytes): UDP on the leg in the wire-valid form under per-flow keys. */
  salt?: string;
}

export type EnState = 'auth' | 'bind' | 'map' | 'done' | 'failed';

/** A message to send to GGR's control port; BIND from the flow's local port s (fromPort). */
export interface Send { msg: Buffer; to: AddrPort; fromPort?: number; waitMs: number }

export class EnSession {
  state: EnState = 'auth';
  failure: RefuseReason | 'timeout' | null = null;
  vat: VatEntry | null = null;
  t = 0;
  private attempt = 0;
  private pending: { code: number; msgId: Buffer } | null = null;
  private seen: AddrPort | null = null;

  constructor(readonly flow: EnFlow, private readonly controlPort = 7253) {}

  start(now: number): Send { return this.send(now); }

  /** An answer arrived. Returns the next message, or null (done, failed, or not for us: wrong id, bad MAC). */
  onReply(icmp: Buffer, now: number): Send | null {
    if (!this.pending) return null;
    let m;
    try { m = decodeGsra(icmp); } catch { return null; }
    if (m.userId !== this.flow.userId || !m.msgId.equals(this.pending.msgId) || !verifyGsra(m, this.flow.key)) return null;
    const b = m.body;
    if (b.code === GsraCode.REFUSE) return this.fail(b.reason);
    if (this.state === 'auth' && b.code === GsraCode.AUTH_OK) {
      this.t = b.t;
      this.state = this.flow.behindNat ? 'bind' : 'map';
      this.vat = this.tentative({ ...this.flow.local });
    } else if (this.state === 'bind' && b.code === GsraCode.BIND_OK && b.t === this.t) {
      this.seen = b.seen;
      this.state = 'map';
      this.vat = this.tentative(b.seen);
    } else if (this.state === 'map' && b.code === GsraCode.MAP_OK && b.t === this.t) {
      this.vat = { ...this.vat!, confirmed: true, idleS: b.idleS, action: b.action, ...(b.salt && this.wantsUdpWire() ? { salt: b.salt.toString('hex') } : {}) };
      this.state = 'done';
      this.pending = null;
      return null;
    } else return null;
    this.attempt = 0;
    return this.send(now);
  }

  /** The wait of the last message ran out: the same step again (new message), or failed after RETRY_MAX. */
  onTimer(now: number): Send | null {
    if (this.state === 'done' || this.state === 'failed') return null;
    this.attempt++;
    if (retryDelayMs(this.attempt) === null) return this.fail('timeout');
    return this.send(now);
  }

  private tentative(seenAs: AddrPort): VatEntry {
    return {
      proto: this.flow.proto, local: { ...this.flow.local }, virtual: { addr: this.flow.vin, port: this.flow.dport },
      router: { addr: this.flow.ggr, port: this.t }, seenAs: { ...seenAs }, confirmed: false, idleS: 0, action: 0,
    };
  }

  private fail(reason: RefuseReason | 'timeout'): null {
    this.state = 'failed';
    this.failure = reason;
    this.pending = null;
    return null;
  }

  private body(): GsraBody {
    const f = this.flow;
    if (this.state === 'auth') return { code: GsraCode.AUTH, group: f.group, name: f.name, proto: f.proto, dport: f.dport };
    if (this.state === 'bind') return { code: GsraCode.BIND, pen: { ...f.local }, t: this.t };
    return { code: GsraCode.MAP, proto: f.proto, t: this.t, en: this.seen ?? { ...f.local }, dport: f.dport, ...(this.wantsUdpWire() ? { flags: GSRA_MAP_F_UDP_WIRE } : {}) };
  }

  private wantsUdpWire(): boolean { return !!this.flow.udpWire && this.flow.behindNat && this.flow.proto === 17; }

  private send(now: number): Send {
    const body = this.body();
    const msgId = randomBytes(8);
    this.pending = { code: body.code, msgId };
    const msg = encodeGsra({ userId: this.flow.userId, msgId, timestampMs: now, body }, this.flow.key);
    const waitMs = retryDelayMs(this.attempt)!;
    // BIND leaves from the flow's own port s (to the control port: the router's fast path punts it like any
    // GSRA message), so the home router's answer is the mapping of s (docs/gsra.md "Binding").
    if (body.code === GsraCode.BIND) return { msg, to: { addr: this.flow.ggr, port: this.controlPort }, fromPort: this.flow.local.port, waitMs };
    return { msg, to: { addr: this.flow.ggr, port: this.controlPort }, waitMs };
  }
}
