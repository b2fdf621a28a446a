/**
 * GSRA messages on the wire (seed 004, docs/gsra.md "Messages"): GSCIP
 * control messages (ICMP type 253, the code is the message type) between a
 * remote user's laptop (EN) and the GSRA router, carried like DPRP's (UDP
 * 7253, parts/control-framing.ts); BIND leaves from the flow's own source
 * port s, so that the home router's answer {GHR, m} is that port's mapping.
 *
 *   ICMP  253 | code | checksum | 4 zero bytes
 *   head  ver 1 | reason 1 (REFUSE; else 0) | userLen 1 | 0 | msg id 8 | timestamp ms 8 | user ID (userLen)  (20 + userLen)
 *   body  per code, below
 *   MAC   HMAC-SHA256(U(user), label | code | head | body)[:16]
 *
 *   AUTH      EN -> router: group 4 | proto 1 | 0 | d 2 | nameLen 1 | name          {EN's group, IN's name}
 *   AUTH_OK   router -> EN: t 2 | lease s 2                                       the reserved port t
 *   BIND      EN:s -> GGR:7253: PEN 4 | s 2 | t 2                                 sent from the flow's port s
 *   BIND_OK   router -> EN: seen address 4 | seen port 2 | t 2                    {GHR, m} (or {GEN, s})
 *   MAP       EN -> router: proto 1 | flags 1 | t 2 | EN address 4 | EN port 2 | d 2   the stashed packet's session
 *   MAP_OK    router -> EN: t 2 | idle s 2 | action 1 | 0 [| salt 8]              confirms the tentative VAT/PIT
 *   (MAP flags: GSRA_MAP_F_UDP_WIRE, "I take UDP in PCCOM's wire-valid form"; an older EN sends 0 there.
 *   MAP_OK's salt: only to such a MAP of a bound UDP flow: the per-flow keys' salt, docs/gsra.md.)
 *   CLOSE     EN -> router: t 2                                                   frees t and its mapping
 *   REFUSE    router -> EN: (empty; head.reason says why)
 *
 * U(user) = HMAC-SHA256(user key, "GSCIP-GSRA-auth/1"): the user key the GMS
 * delivers to that user alone (and to the routers that may admit them), so a
 * message proves the user, not only a group. An answer carries its request's
 * msg id. The MAC leaves out IP addresses and ports (a home router rewrites
 * them); what the router relies on is in the body. Replay: msg id + timestamp
 * through dprp/replay.ts's cache. Pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GscipError } from '../errors/catalogue.js';
import { inetChecksum, readIpv4, writeIpv4 } from '../dprp/ipv4.js';
import { GSCIP_ICMP_TYPE, ICMP_HDR_LEN } from '../dprp/wire.js';

/** ICMP codes of GSRA (taken from no other part: DPRP 1-5, Mobile PPC 8-9). */
export const GsraCode = { AUTH: 32, AUTH_OK: 33, BIND: 34, BIND_OK: 35, MAP: 36, MAP_OK: 37, CLOSE: 38, REFUSE: 39 } as const;
export type GsraCode = (typeof GsraCode)[keyof typeof GsraCode];
export const GSRA_CODES: readonly number[] = Object.values(GsraCode);
export const GSRA_VERSION = 1;
export const GSRA_HEAD_LEN = 20;
export const GSRA_MAC_LEN = 16;
export const GSRA_MAX_NAME = 253;

/**
 * Why the router refused (REFUSE's reason byte; also the label of the
 * router's refusal counter). Index = wire value; append only.
 */
export const REFUSE_REASONS = [
  'none', 'unknown_user', 'not_member', 'unknown_in', 'no_shared_group', 'in_denied',
  'ports_exhausted', 'table_full', 'unknown_port', 'wrong_user', 'bad_session',
  // appended: older decoders refuse it as bad_reason, nothing renumbered
  'no_group_key',
  // a port outside the IN's `ports` that no FTP control connection of this user announced (docs/gsra.md "FTP passive mode")
  'not_announced',
] as const;
export type RefuseReason = Exclude<(typeof REFUSE_REASONS)[number], 'none'>;

export const GSRA_WIRE_REASONS = ['too_short', 'bad_type', 'bad_version', 'bad_length', 'bad_checksum', 'bad_user', 'bad_name', 'bad_reason'] as const;
export type GsraWireReason = (typeof GSRA_WIRE_REASONS)[number];

export class GsraWireError extends GscipError {
  constructor(readonly reason: GsraWireReason, message: string) { super('GSCIP_E_GSRA_WIRE', `GSRA message: ${message}`); }
}

export interface AddrPort { addr: string; port: number }

export type GsraBody =
  | { code: typeof GsraCode.AUTH; group: number; proto: number; dport: number; name: string }
  | { code: typeof GsraCode.AUTH_OK; t: number; leaseS: number }
  | { code: typeof GsraCode.BIND; pen: AddrPort; t: number }
  | { code: typeof GsraCode.BIND_OK; seen: AddrPort; t: number }
  | { code: typeof GsraCode.MAP; proto: number; t: number; en: AddrPort; dport: number; flags?: number }
  | { code: typeof GsraCode.MAP_OK; t: number; idleS: number; action: number; salt?: Buffer }
  | { code: typeof GsraCode.CLOSE; t: number }
  | { code: typeof GsraCode.REFUSE; reason: RefuseReason };

export interface GsraMessage {
  userId: string;
  /** 8 bytes; an answer carries its request's. */
  msgId: Buffer;
  timestampMs: number;
  body: GsraBody;
}

const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const AUTH_LABEL = Buffer.from('GSCIP-GSRA-auth/1');
const MAC_LABEL = Buffer.from('GSCIP-GSRA/1');
const derived = new WeakMap<Buffer, Buffer>();

/** U(user): the GSRA authentication key of a user key (cached per key buffer). */
export function gsraAuthKey(userKey: Buffer): Buffer {
  let k = derived.get(userKey);
  if (!k) { k = createHmac('sha256', userKey).update(AUTH_LABEL).digest(); derived.set(userKey, k); }
  return k;
}

function mac(userKey: Buffer, code: number, signed: Buffer): Buffer {
  return createHmac('sha256', gsraAuthKey(userKey)).update(MAC_LABEL).update(Buffer.from([code])).update(signed).digest().subarray(0, GSRA_MAC_LEN);
}

function u16(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${what}: ${v} is not 0..65535`);
  return v;
}

function encodeBody(b: GsraBody): Buffer {
  switch (b.code) {
    case GsraCode.AUTH: {
      const name = Buffer.from(b.name, 'ascii');
      if (name.length < 1 || name.length > GSRA_MAX_NAME) throw new RangeError(`IN name: ${name.length} bytes, must be 1..${GSRA_MAX_NAME}`);
      const out = Buffer.alloc(9 + name.length);
      out.writeUInt32BE(b.group, 0); out.writeUInt8(b.proto, 4); out.writeUInt16BE(u16(b.dport, 'd'), 6); out.writeUInt8(name.length, 8); name.copy(out, 9);
      return out;
    }
    case GsraCode.AUTH_OK: { const o = Buffer.alloc(4); o.writeUInt16BE(u16(b.t, 't'), 0); o.writeUInt16BE(u16(b.leaseS, 'lease'), 2); return o; }
    case GsraCode.BIND: { const o = Buffer.alloc(8); writeIpv4(o, 0, b.pen.addr, 'PEN'); o.writeUInt16BE(u16(b.pen.port, 's'), 4); o.writeUInt16BE(u16(b.t, 't'), 6); return o; }
    case GsraCode.BIND_OK: { const o = Buffer.alloc(8); writeIpv4(o, 0, b.seen.addr, 'seen address'); o.writeUInt16BE(u16(b.seen.port, 'seen port'), 4); o.writeUInt16BE(u16(b.t, 't'), 6); return o; }
    case GsraCode.MAP: {
      const o = Buffer.alloc(12);
      o.writeUInt8(b.proto, 0); o.writeUInt8(b.flags ?? 0, 1); o.writeUInt16BE(u16(b.t, 't'), 2); writeIpv4(o, 4, b.en.addr, 'EN address'); o.writeUInt16BE(u16(b.en.port, 'EN port'), 8); o.writeUInt16BE(u16(b.dport, 'd'), 10);
      return o;
    }
    case GsraCode.MAP_OK: {
      if (b.salt && b.salt.length !== MAP_OK_SALT_LEN) throw new RangeError(`MAP_OK salt must be ${MAP_OK_SALT_LEN} bytes`);
      const o = Buffer.alloc(6 + (b.salt ? MAP_OK_SALT_LEN : 0)); o.writeUInt16BE(u16(b.t, 't'), 0); o.writeUInt16BE(u16(b.idleS, 'idle'), 2); o.writeUInt8(b.action, 4);
      if (b.salt) b.salt.copy(o, 6);
      return o;
    }
    case GsraCode.CLOSE: { const o = Buffer.alloc(2); o.writeUInt16BE(u16(b.t, 't'), 0); return o; }
    case GsraCode.REFUSE: return Buffer.alloc(0);
  }
}

/** MAP flags: the EN takes UDP in PCCOM's wire-valid form (per-flow keys; MAP_OK then carries the salt). */
export const GSRA_MAP_F_UDP_WIRE = 0x01;
export const MAP_OK_SALT_LEN = 8;

/** The body length of each code (AUTH: at least, the name follows; MAP_OK: 6, or 14 with a salt). */
const BODY_LEN: Record<number, number> = { 32: 9, 33: 4, 34: 8, 35: 8, 36: 12, 37: 6, 38: 2, 39: 0 };

/** The ICMP message of `m` (what follows the IP header, or the UDP payload), MAC'd under the user's key. */
export function encodeGsra(m: GsraMessage, userKey: Buffer): Buffer {
  if (!USER_ID.test(m.userId)) throw new RangeError(`user ID ${JSON.stringify(m.userId)} is not 1-63 of A-Z a-z 0-9 . _ -`);
  if (m.msgId.length !== 8) throw new RangeError('msg id must be 8 bytes');
  const user = Buffer.from(m.userId, 'ascii');
  const head = Buffer.alloc(GSRA_HEAD_LEN + user.length);
  head.writeUInt8(GSRA_VERSION, 0);
  head.writeUInt8(m.body.code === GsraCode.REFUSE ? REFUSE_REASONS.indexOf(m.body.reason) : 0, 1);
  head.writeUInt8(user.length, 2);
  m.msgId.copy(head, 4);
  head.writeBigUInt64BE(BigInt(m.timestampMs), 12);
  user.copy(head, GSRA_HEAD_LEN);
  const signed = Buffer.concat([head, encodeBody(m.body)]);
  const icmp = Buffer.concat([Buffer.from([GSCIP_ICMP_TYPE, m.body.code, 0, 0, 0, 0, 0, 0]), signed, mac(userKey, m.body.code, signed)]);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  return icmp;
}

export interface DecodedGsra extends GsraMessage { signed: Buffer; mac: Buffer }

/** Parses a GSRA message without checking its MAC (the user ID inside says which key: `verifyGsra`). Throws GsraWireError. */
export function decodeGsra(icmp: Buffer): DecodedGsra {
  if (icmp.length < ICMP_HDR_LEN + GSRA_HEAD_LEN + 1 + GSRA_MAC_LEN) throw new GsraWireError('too_short', `${icmp.length} bytes`);
  const code = icmp[1];
  if (icmp[0] !== GSCIP_ICMP_TYPE || !GSRA_CODES.includes(code)) throw new GsraWireError('bad_type', `ICMP ${icmp[0]}/${code}`);
  if (inetChecksum(icmp) !== 0) throw new GsraWireError('bad_checksum', 'ICMP checksum');
  const signed = icmp.subarray(ICMP_HDR_LEN, icmp.length - GSRA_MAC_LEN);
  if (signed[0] !== GSRA_VERSION) throw new GsraWireError('bad_version', `version ${signed[0]}`);
  const userLen = signed[2];
  if (userLen < 1 || userLen > 63 || GSRA_HEAD_LEN + userLen > signed.length) throw new GsraWireError('bad_user', `user ID length ${userLen}`);
  const userId = signed.subarray(GSRA_HEAD_LEN, GSRA_HEAD_LEN + userLen).toString('latin1');
  if (!USER_ID.test(userId)) throw new GsraWireError('bad_user', 'user ID characters');
  const b = signed.subarray(GSRA_HEAD_LEN + userLen);
  const need = BODY_LEN[code];
  if (code === GsraCode.AUTH ? b.length < need || b.length !== need + b[8]
    : code === GsraCode.MAP_OK ? b.length !== need && b.length !== need + MAP_OK_SALT_LEN : b.length !== need) throw new GsraWireError('bad_length', `code ${code}: body of ${b.length} bytes`);
  const reasonByte = signed[1];
  if ((code === GsraCode.REFUSE) !== (reasonByte !== 0) || reasonByte >= REFUSE_REASONS.length) throw new GsraWireError('bad_reason', `reason ${reasonByte} on code ${code}`);
  let body: GsraBody;
  switch (code) {
    case GsraCode.AUTH: {
      const name = b.subarray(9).toString('latin1');
      if (b[8] < 1 || !/^[A-Za-z0-9.-]+$/.test(name)) throw new GsraWireError('bad_name', 'IN name');
      body = { code, group: b.readUInt32BE(0), proto: b[4], dport: b.readUInt16BE(6), name: name.toLowerCase() };
      break;
    }
    case GsraCode.AUTH_OK: body = { code, t: b.readUInt16BE(0), leaseS: b.readUInt16BE(2) }; break;
    case GsraCode.BIND: body = { code, pen: { addr: readIpv4(b, 0), port: b.readUInt16BE(4) }, t: b.readUInt16BE(6) }; break;
    case GsraCode.BIND_OK: body = { code, seen: { addr: readIpv4(b, 0), port: b.readUInt16BE(4) }, t: b.readUInt16BE(6) }; break;
    case GsraCode.MAP: body = { code, proto: b[0], t: b.readUInt16BE(2), en: { addr: readIpv4(b, 4), port: b.readUInt16BE(8) }, dport: b.readUInt16BE(10), ...(b[1] ? { flags: b[1] } : {}) }; break;
    case GsraCode.MAP_OK: body = { code, t: b.readUInt16BE(0), idleS: b.readUInt16BE(2), action: b[4], ...(b.length > 6 ? { salt: Buffer.from(b.subarray(6, 6 + MAP_OK_SALT_LEN)) } : {}) }; break;
    case GsraCode.CLOSE: body = { code, t: b.readUInt16BE(0) }; break;
    default: body = { code: GsraCode.REFUSE, reason: REFUSE_REASONS[reasonByte] as RefuseReason };
  }
  return {
    userId, msgId: Buffer.from(signed.subarray(4, 12)), timestampMs: Number(signed.readBigUInt64BE(12)), body,
    signed: Buffer.from(signed), mac: Buffer.from(icmp.subarray(icmp.length - GSRA_MAC_LEN)),
  };
}

/** Whether a decoded message's MAC is right under `userKey` (constant time). */
export function verifyGsra(m: DecodedGsra, userKey: Buffer): boolean {
  return timingSafeEqual(mac(userKey, m.body.code, m.signed), m.mac);
}

/** The replay-cache key of a message: its code and msg id (an answer and its request never collide). */
export function replayKey(m: GsraMessage): string { return `${m.body.code}:${m.userId}:${m.msgId.toString('hex')}`; }
