/**
 * IPv4 helpers the DPRP codec needs: dotted <-> 4 bytes, the Internet checksum,
 * and building/parsing the IPv4 header that carries a GSCIP control message.
 * Pure; no sockets.
 */
import { GscipError } from '../errors/catalogue.js';

/** Thrown for a malformed dotted IPv4 address given by a caller. */
export class Ipv4AddressError extends GscipError {
  constructor(readonly field: string, readonly value: unknown) {
    super('GSCIP_E_IPV4_ADDRESS', `${field}: not a dotted IPv4 address: ${JSON.stringify(value)}`);
  }
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parsed addresses (the same few appear in every message); bounded, cleared when full. */
const parsed = new Map<string, number>();
const PARSED_MAX = 65_536;

/** Writes `addr` (dotted) at `off` in network order. */
export function writeIpv4(buf: Buffer, off: number, addr: string, field = 'address'): void {
  let v = parsed.get(addr);
  if (v === undefined) {
    const m = DOTTED.exec(addr);
    if (!m) throw new Ipv4AddressError(field, addr);
    v = 0;
    for (let i = 0; i < 4; i++) {
      const n = Number(m[i + 1]);
      if (n > 255) throw new Ipv4AddressError(field, addr);
      v = (v * 256) + n;
    }
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(addr, v);
  }
  buf.writeUInt32BE(v, off);
}

export function readIpv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

export function ipv4ToInt(addr: string, field = 'address'): number {
  const b = Buffer.alloc(4);
  writeIpv4(b, 0, addr, field);
  return b.readUInt32BE(0);
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** True when `addr` lies in `prefix` ("a.b.c.d/len"). */
export function inPrefix(addr: string, prefix: string): boolean {
  const [base, lenS] = prefix.split('/');
  const len = lenS === undefined ? 32 : Number(lenS);
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new Ipv4AddressError('prefix', prefix);
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return ((ipv4ToInt(addr) & mask) >>> 0) === ((ipv4ToInt(base, 'prefix') & mask) >>> 0);
}

/** RFC 1071 one's-complement checksum of `buf[off, off+len)`. */
export function inetChecksum(buf: Buffer, off = 0, len = buf.length - off): number {
  let sum = 0;
  let i = off;
  const end = off + len;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export const IPPROTO_ICMP = 1;
export const IPV4_HDR_LEN = 20;
export const CONTROL_TTL = 64;

/** A 20-byte IPv4 header (no options, DF set) followed by `payload`. */
export function buildIpv4Packet(src: string, dst: string, proto: number, payload: Buffer, id = 0, ttl = CONTROL_TTL): Buffer {
  const total = IPV4_HDR_LEN + payload.length;
  if (total > 0xffff) throw new RangeError(`payload: ${payload.length} bytes do not fit an IPv4 packet`);
  const p = Buffer.alloc(total);
  p[0] = 0x45;
  p.writeUInt16BE(total, 2);
  p.writeUInt16BE(id & 0xffff, 4);
  p.writeUInt16BE(0x4000, 6); // DF
  p[8] = ttl;
  p[9] = proto;
  writeIpv4(p, 12, src, 'src');
  writeIpv4(p, 16, dst, 'dst');
  p.writeUInt16BE(inetChecksum(p, 0, IPV4_HDR_LEN), 10);
  payload.copy(p, IPV4_HDR_LEN);
  return p;
}

export interface Ipv4View {
  src: string;
  dst: string;
  proto: number;
  ttl: number;
  /** The L4 payload (a view into the input, not a copy). */
  payload: Buffer;
}

/** Parses an IPv4 packet; returns null (never throws) when it is not a sane, unfragmented IPv4 packet. */
export function parseIpv4(pkt: Buffer): Ipv4View | null {
  if (pkt.length < IPV4_HDR_LEN || pkt[0] >> 4 !== 4) return null;
  const ihl = (pkt[0] & 0x0f) * 4;
  if (ihl < IPV4_HDR_LEN || pkt.length < ihl) return null;
  const total = pkt.readUInt16BE(2);
  if (total < ihl || total > pkt.length) return null;
  const frag = pkt.readUInt16BE(6);
  if ((frag & 0x1fff) !== 0 || (frag & 0x2000) !== 0) return null; // fragmented: never ours
  return { src: readIpv4(pkt, 12), dst: readIpv4(pkt, 16), proto: pkt[9], ttl: pkt[8], payload: pkt.subarray(ihl, total) };
}
