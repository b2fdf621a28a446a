/**
 * The initiator side of NAT-f, step 1 (SPEC section 6): a DNS answer whose A
 * records name a GNAT's global address is rewritten so the application gets
 * a virtual address instead. This module reads a DNS response (RFC 1035
 * wire form; over UDP as it is, over TCP after its 2-byte length) far enough
 * to find every A record and its TTL, and patches them in place: an A record
 * keeps its 4-byte length, so nothing is re-encoded, name compression and
 * every other record (CNAME chains, AAAA, authority, EDNS) stay byte for
 * byte. Pure; bounded (at most 64 records, 128 labels per name).
 *
 * Not built: the interception that hands it the answers (docs/natf.md).
 */
import { GscipError } from '../errors/catalogue.js';

export interface ARecord {
  /** Owner name of the record (the end of a CNAME chain), lower case, no trailing dot. */
  owner: string;
  address: string;
  ttl: number;
  /** Offsets in the message: the TTL field and the 4 address bytes. */
  ttlOff: number;
  rdataOff: number;
}

export interface DnsAnswer {
  id: number;
  /** The question's name (what the application asked for), lower case, no trailing dot. */
  qname: string;
  rcode: number;
  a: ARecord[];
  /** Offset just after the question section. */
  questionEnd: number;
}

const MAX_RECORDS = 64;
const MAX_LABELS = 128;
export const RCODE_SERVFAIL = 2;

export class DnsFormatError extends GscipError {
  constructor(message: string) { super('GSCIP_E_DNS_FORMAT', `DNS response: ${message}`); }
}

/** The name at off (following compression pointers, bounded) and the offset after it in place. */
function readName(m: Buffer, off: number): { name: string; next: number } {
  const labels: string[] = [];
  let next = -1;
  let p = off;
  for (let hops = 0; hops < MAX_LABELS; hops++) {
    if (p >= m.length) throw new DnsFormatError('name runs past the message');
    const len = m[p];
    if (len === 0) { if (next < 0) next = p + 1; return { name: labels.join('.').toLowerCase(), next }; }
    if ((len & 0xc0) === 0xc0) {
      if (p + 1 >= m.length) throw new DnsFormatError('truncated compression pointer');
      if (next < 0) next = p + 2;
      const to = ((len & 0x3f) << 8) | m[p + 1];
      if (to >= p) throw new DnsFormatError('compression pointer does not point back');
      p = to;
      continue;
    }
    if (len > 63 || p + 1 + len > m.length) throw new DnsFormatError('bad label');
    labels.push(m.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  throw new DnsFormatError('name too long');
}

/** Parse a DNS response (the message itself: strip a TCP length prefix first). */
export function parseAnswer(m: Buffer): DnsAnswer {
  if (m.length < 12) throw new DnsFormatError('shorter than a DNS header');
  const flags = m.readUInt16BE(2);
  if (!(flags & 0x8000)) throw new DnsFormatError('not a response');
  const qd = m.readUInt16BE(4);
  const an = m.readUInt16BE(6);
  if (qd !== 1) throw new DnsFormatError(`${qd} questions (expected 1)`);
  if (an > MAX_RECORDS) throw new DnsFormatError(`${an} answers (at most ${MAX_RECORDS})`);
  let off = 12;
  const q = readName(m, off);
  off = q.next + 4;
  if (off > m.length) throw new DnsFormatError('truncated question');
  const a: ARecord[] = [];
  for (let i = 0; i < an; i++) {
    const r = readName(m, off);
    off = r.next;
    if (off + 10 > m.length) throw new DnsFormatError('truncated record');
    const type = m.readUInt16BE(off);
    const cls = m.readUInt16BE(off + 2);
    const ttl = m.readUInt32BE(off + 4);
    const rdlen = m.readUInt16BE(off + 8);
    if (off + 10 + rdlen > m.length) throw new DnsFormatError('truncated rdata');
    if (type === 1 && cls === 1 && rdlen === 4) {
      a.push({ owner: r.name, address: [...m.subarray(off + 10, off + 14)].join('.'), ttl, ttlOff: off + 4, rdataOff: off + 10 });
    }
    off += 10 + rdlen;
  }
  return { id: m.readUInt16BE(0), qname: q.name, rcode: flags & 0xf, a, questionEnd: q.next + 4 };
}

export interface Rewrite {
  /** The A record's index in DnsAnswer.a, its new address and its new TTL. */
  index: number;
  address: string;
  ttl: number;
}

/** The header and question of m, no records, RCODE SERVFAIL: a refusal that carries no address at all. */
export function servfail(m: Buffer, questionEnd: number): Buffer {
  const out = Buffer.from(m.subarray(0, questionEnd));
  out.writeUInt16BE((out.readUInt16BE(2) & ~0xf) | RCODE_SERVFAIL, 2);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/** A copy of the message with those A records' addresses and TTLs replaced (and optionally the RCODE). */
export function patchAnswer(m: Buffer, ans: DnsAnswer, rewrites: readonly Rewrite[], rcode?: number): Buffer {
  const out = Buffer.from(m);
  for (const w of rewrites) {
    const r = ans.a[w.index];
    if (!r) throw new RangeError(`no A record ${w.index}`);
    out.writeUInt32BE(w.ttl >>> 0, r.ttlOff);
    w.address.split('.').forEach((x, i) => { out[r.rdataOff + i] = Number(x); });
  }
  if (rcode !== undefined) out.writeUInt16BE((out.readUInt16BE(2) & ~0xf) | (rcode & 0xf), 2);
  return out;
}
