/**
 * The Mobile PPC CU (the seeds' "CU", the body's "Binding Update") and its
 * answer, CU-ACK, on the wire: GSCIP control messages (ICMP type 253) with the
 * part's own codes, whose per-flow entries carry the spec's Mobile PPC option
 * TLVs MOBILE_OLD {old IP, old port} and MOBILE_NEW {new IP, new port}
 * (dprp/spec-options.ts codecs, docs/dprp.md "TLV option"), authenticated under
 * a group key like every DPRP message. Layout and rules: docs/mobility.md.
 *
 *   ICMP  type 253 | code (CU 8, CU_ACK 9) | checksum | 4 zero bytes
 *   head  ver 1 | flags 1 | count 2 | group 4 | key version 4 | cu id 8 | timestamp ms 8   (28 B)
 *   entry proto 1 | status 1 | peer port 2 | peer IPv4 4 | move seq 4 | TLV MOBILE_OLD (8) | TLV MOBILE_NEW (8)   (28 B)
 *   MAC   HMAC-SHA256(M(g,v), label | code | IP src | IP dst | head | entries)[:16]
 *
 * M(g,v) = HMAC-SHA256(GK(g,v), "GSCIP-MPPC-auth/1"): a key of its own, so a
 * CU MAC is never a DPRP MAC or a PCCOM key. The IP addresses are inside the
 * MAC, so a captured CU cannot be re-sent from another address. "old" is the
 * address the upper layers see (the flow's identity), "new" the one on the
 * wire from now on: a flow that moves again is described from its original
 * address, so translations never chain. Pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GscipError } from '../errors/catalogue.js';
import { inetChecksum, readIpv4, writeIpv4 } from '../dprp/ipv4.js';
import { OptionType, SPEC_OPTIONS } from '../dprp/spec-options.js';
import { GSCIP_ICMP_TYPE, ICMP_HDR_LEN } from '../dprp/wire.js';

export const CU_CODE = { CU: 8, CU_ACK: 9 } as const;
export const CU_VERSION = 1;
export const CU_HEAD_LEN = 28;
export const CU_ENTRY_LEN = 28;
export const CU_MAC_LEN = 16;
/** Entries per message: a CU of this many stays under 1,000 bytes of IP packet. */
export const CU_MAX_ENTRIES = 32;

/**
 * Head flags. REKEY: not a move but the key rotation of moved flows (the
 * flows stay where they are on the wire; the message's key version is the one
 * they switch to; engine.ts "re-key"). Its answer carries it too.
 */
export const CU_FLAG = { REKEY: 0x01 } as const;

/** An entry's status in a CU-ACK (0 in a CU). */
export const CU_STATUS = { OK: 0, REFUSED: 1, UNKNOWN_FLOW: 2 } as const;

export const CU_WIRE_REASONS = ['too_short', 'bad_type', 'bad_version', 'bad_count', 'bad_option', 'bad_checksum'] as const;
export type CuWireReason = (typeof CU_WIRE_REASONS)[number];

export class CuWireError extends GscipError {
  constructor(readonly reason: CuWireReason, message: string) {
    super('GSCIP_E_MOBILITY_WIRE', `Mobile PPC CU: ${message}`);
  }
}

export interface AddrPort { addr: string; port: number }

export interface CuEntry {
  proto: number;
  status: number;
  /** The receiver's end of the flow (its address and port, as it sees them). */
  peer: AddrPort;
  /** Per-flow move sequence: each move of the flow takes the next number. */
  seq: number;
  /** The mover's end as the upper layers see it (the flow's identity). */
  old: AddrPort;
  /** The mover's end on the wire from now on. */
  next: AddrPort;
}

export interface CuMessage {
  code: number;
  /** CU_FLAG bits (0 or absent: a move). */
  flags?: number;
  group: number;
  version: number;
  /** 8 bytes: pairs a CU-ACK with its CU. */
  cuId: Buffer;
  timestampMs: number;
  entries: CuEntry[];
}

const AUTH_LABEL = Buffer.from('GSCIP-MPPC-auth/1');
const MAC_LABEL = Buffer.from('GSCIP-MPPC/1');
const derived = new WeakMap<Buffer, Buffer>();

/** M(g,v): the CU authentication key of a group key (cached per key buffer). */
export function cuAuthKey(groupKey: Buffer): Buffer {
  let k = derived.get(groupKey);
  if (!k) {
    k = createHmac('sha256', groupKey).update(AUTH_LABEL).digest();
    derived.set(groupKey, k);
  }
  return k;
}

function mac(groupKey: Buffer, code: number, src: string, dst: string, signed: Buffer): Buffer {
  const ips = Buffer.alloc(8);
  writeIpv4(ips, 0, src, 'CU IP source');
  writeIpv4(ips, 4, dst, 'CU IP destination');
  return createHmac('sha256', cuAuthKey(groupKey)).update(MAC_LABEL).update(Buffer.from([code])).update(ips).update(signed).digest().subarray(0, CU_MAC_LEN);
}

/** Writes the TLV of `type` (a spec option codec: docs/dprp.md) for `v` at `off`; returns the offset after it. */
function writeTlv(b: Buffer, off: number, type: number, v: AddrPort): number {
  const value = SPEC_OPTIONS.get(type)!.encode(v);
  b[off] = type;
  b[off + 1] = value.length;
  value.copy(b, off + 2);
  return off + 2 + value.length;
}

/** The ICMP message (what goes after the IP header) of `m`, sent from `src` to `dst`, MAC'd under `groupKey`. */
export function encodeCu(m: CuMessage, src: string, dst: string, groupKey: Buffer): Buffer {
  if (m.code !== CU_CODE.CU && m.code !== CU_CODE.CU_ACK) throw new RangeError(`CU code ${m.code} is not ${CU_CODE.CU} or ${CU_CODE.CU_ACK}`);
  if (m.entries.length < 1 || m.entries.length > CU_MAX_ENTRIES) throw new RangeError(`CU entries: ${m.entries.length}, must be 1..${CU_MAX_ENTRIES}`);
  if (m.cuId.length !== 8) throw new RangeError('CU id must be 8 bytes');
  // One buffer, written in place (a 32-entry CU was ~100 small buffers and concats: issue 12's many-flow move).
  const end = ICMP_HDR_LEN + CU_HEAD_LEN + m.entries.length * CU_ENTRY_LEN;
  const icmp = Buffer.alloc(end + CU_MAC_LEN);
  icmp[0] = GSCIP_ICMP_TYPE;
  icmp[1] = m.code;
  const h = ICMP_HDR_LEN;
  icmp.writeUInt8(CU_VERSION, h);
  icmp.writeUInt8(m.flags ?? 0, h + 1);
  icmp.writeUInt16BE(m.entries.length, h + 2);
  icmp.writeUInt32BE(m.group, h + 4);
  icmp.writeUInt32BE(m.version, h + 8);
  m.cuId.copy(icmp, h + 12);
  icmp.writeBigUInt64BE(BigInt(m.timestampMs), h + 20);
  let o = h + CU_HEAD_LEN;
  for (const e of m.entries) {
    icmp.writeUInt8(e.proto, o);
    icmp.writeUInt8(e.status, o + 1);
    icmp.writeUInt16BE(e.peer.port, o + 2);
    writeIpv4(icmp, o + 4, e.peer.addr, 'CU peer address');
    icmp.writeUInt32BE(e.seq, o + 8);
    const next = writeTlv(icmp, writeTlv(icmp, o + 12, OptionType.MOBILE_OLD, e.old), OptionType.MOBILE_NEW, e.next);
    if (next !== o + CU_ENTRY_LEN) throw new Error(`CU entry is ${next - o} bytes, the layout says ${CU_ENTRY_LEN}`);
    o = next;
  }
  mac(groupKey, m.code, src, dst, icmp.subarray(h, end)).copy(icmp, end);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  return icmp;
}

function addrPortTlv(b: Buffer, off: number, type: number): AddrPort {
  if (b[off] !== type || b[off + 1] !== 6) throw new CuWireError('bad_option', `expected option ${type} of 6 bytes at ${off}, found type ${b[off]} length ${b[off + 1]}`);
  try {
    return SPEC_OPTIONS.get(type)!.decode(b.subarray(off + 2, off + 8)) as AddrPort;
  } catch (e) {
    throw new CuWireError('bad_option', (e as Error).message);
  }
}

/** Parses a CU or CU-ACK (without checking its MAC: `verifyCu`). Throws CuWireError (its reason is counted). */
export function decodeCu(icmp: Buffer): CuMessage & { signed: Buffer; mac: Buffer } {
  if (icmp.length < ICMP_HDR_LEN + CU_HEAD_LEN + CU_ENTRY_LEN + CU_MAC_LEN) throw new CuWireError('too_short', `${icmp.length} bytes`);
  if (icmp[0] !== GSCIP_ICMP_TYPE || (icmp[1] !== CU_CODE.CU && icmp[1] !== CU_CODE.CU_ACK)) throw new CuWireError('bad_type', `ICMP ${icmp[0]}/${icmp[1]}`);
  if (inetChecksum(icmp) !== 0) throw new CuWireError('bad_checksum', 'ICMP checksum');
  const body = icmp.subarray(ICMP_HDR_LEN);
  if (body[0] !== CU_VERSION) throw new CuWireError('bad_version', `version ${body[0]}`);
  const count = body.readUInt16BE(2);
  if (count < 1 || count > CU_MAX_ENTRIES || body.length !== CU_HEAD_LEN + count * CU_ENTRY_LEN + CU_MAC_LEN) {
    throw new CuWireError('bad_count', `${count} entries in ${body.length} bytes`);
  }
  const entries: CuEntry[] = [];
  for (let i = 0; i < count; i++) {
    const o = CU_HEAD_LEN + i * CU_ENTRY_LEN;
    entries.push({
      proto: body[o], status: body[o + 1], peer: { port: body.readUInt16BE(o + 2), addr: readIpv4(body, o + 4) }, seq: body.readUInt32BE(o + 8),
      old: addrPortTlv(body, o + 12, OptionType.MOBILE_OLD), next: addrPortTlv(body, o + 20, OptionType.MOBILE_NEW),
    });
  }
  const end = CU_HEAD_LEN + count * CU_ENTRY_LEN;
  return {
    code: icmp[1], flags: body[1], group: body.readUInt32BE(4), version: body.readUInt32BE(8), cuId: Buffer.from(body.subarray(12, 20)),
    timestampMs: Number(body.readBigUInt64BE(20)), entries, signed: body.subarray(0, end), mac: body.subarray(end),
  };
}

/** Whether the MAC holds under `groupKey` for a message that came from `src` to `dst`. */
export function verifyCu(m: ReturnType<typeof decodeCu>, src: string, dst: string, groupKey: Buffer): boolean {
  const want = mac(groupKey, m.code, src, dst, m.signed);
  return want.length === m.mac.length && timingSafeEqual(want, m.mac);
}
