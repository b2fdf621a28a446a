/**
 * A DNS query for one name's A records (RFC 1035), sent straight to one
 * server over UDP: the rendezvous of Mobile PPC (rendezvous.ts) asks the
 * zone's own server, where each GE's DDNS put its address, so no resolver
 * cache stands between an update and the answer. Encoded here beside the
 * RFC 2136 update (ddns.ts), with the same name codec; tested byte by byte
 * (test/unit/mobility-ddns.test.ts) and against BIND 9
 * (test/netns/mobility-both.test.ts).
 *
 *   header    id | flags 0 (QUERY, no recursion wanted) | QDCOUNT 1 | 0 | 0 | 0
 *   question  NAME A IN
 */
import { randomBytes } from 'node:crypto';
import { DdnsError, DNS, encodeName, RCODE, skipName, udpExchange } from './ddns.js';

/** The query message for NAME A IN. */
export function encodeQuery(name: string, id = randomBytes(2).readUInt16BE(0)): { msg: Buffer; id: number } {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(1, 4);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(DNS.TYPE_A, 0);
  q.writeUInt16BE(DNS.CLASS_IN, 2);
  return { msg: Buffer.concat([head, encodeName(name), q]), id };
}

export interface AAnswer {
  rcode: string;
  /** The A records of the answer section, in order. */
  addrs: string[];
}

/** Reads the answer to query `id`: its rcode and the A records of its answer section. Throws DdnsError on anything malformed. */
export function decodeAAnswer(b: Buffer, id: number): AAnswer {
  if (b.length < 12) throw new DdnsError('answer', `answer of ${b.length} bytes`);
  if (b.readUInt16BE(0) !== id) throw new DdnsError('answer', 'answer to another query');
  const flags = b.readUInt16BE(2);
  if (!(flags & 0x8000)) throw new DdnsError('answer', 'not a response');
  const rcode = RCODE[flags & 0xf] ?? `RCODE${flags & 0xf}`;
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(b, off) + 4;
  const addrs: string[] = [];
  for (let i = 0; i < an; i++) {
    off = skipName(b, off);
    if (off + 10 > b.length) throw new DdnsError('answer', 'answer record cut short');
    const type = b.readUInt16BE(off);
    const cls = b.readUInt16BE(off + 2);
    const rdlen = b.readUInt16BE(off + 8);
    const rd = off + 10;
    if (rd + rdlen > b.length) throw new DdnsError('answer', 'answer record cut short');
    if (type === DNS.TYPE_A && cls === DNS.CLASS_IN && rdlen === 4) addrs.push([...b.subarray(rd, rd + 4)].join('.'));
    off = rd + rdlen;
  }
  return { rcode, addrs };
}

/** Asks `server` for NAME's A records, up to `attempts` times `timeoutMs` apart. */
export async function queryA(name: string, server: string, port = 53, o: { attempts?: number; timeoutMs?: number } = {}): Promise<AAnswer> {
  const { msg, id } = encodeQuery(name);
  return udpExchange(msg, server, port, (b) => decodeAAnswer(b, id), o.attempts ?? 2, o.timeoutMs ?? 300);
}
