/**
 * DDNS: an RFC 2136 dynamic update of one name's A record, signed with TSIG
 * (RFC 8945, HMAC-SHA256), encoded here rather than by driving `nsupdate`:
 * the agent needs no child process or key file per update, and the message
 * is unit-tested byte by byte (test/unit/mobility-ddns.test.ts) and accepted
 * by BIND 9 (test/netns/mobility-ddns.test.ts). One UPDATE replaces the name's
 * A RRset: "delete all A of NAME" then "add NAME A ADDR".
 *
 *   header   id | flags (opcode UPDATE = 5) | ZOCOUNT 1 | PRCOUNT 0 | UPCOUNT 2 | ADCOUNT 1
 *   zone     ZONE SOA IN
 *   update   NAME A ANY ttl 0 rdlen 0            (delete the RRset)
 *            NAME A IN  ttl TTL rdlen 4 ADDR     (add; absent in a withdrawal, UPCOUNT 1)
 *   additional  KEYNAME TSIG ANY ttl 0  { hmac-sha256. | time 48 | fudge | mac | id | error | other }
 *
 * The MAC covers the message before the TSIG RR plus the TSIG variables
 * (key name, class, TTL, algorithm, time, fudge, error, other). `sendUpdate`
 * sends it over UDP (bounded retries) and returns the server's answer code;
 * a response MAC is checked when the server signs its answer (it does for a
 * key it knows).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { GscipError } from '../errors/catalogue.js';
import { writeIpv4 } from '../dprp/ipv4.js';

export const DNS = { OPCODE_UPDATE: 5, TYPE_A: 1, TYPE_SOA: 6, TYPE_TSIG: 250, CLASS_IN: 1, CLASS_ANY: 255 } as const;
export const RCODE: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN', 7: 'YXRRSET', 8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE' };
export const TSIG_ERROR: Record<number, string> = { 0: 'NOERROR', 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };
const ALGORITHM = 'hmac-sha256.';
const NAME = /^(?=.{1,253}\.?$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;

export class DdnsError extends GscipError {
  constructor(readonly field: string, message: string) {
    super('GSCIP_E_DDNS', `DDNS: ${message}`);
  }
}

export interface TsigKey {
  /** Key name as the server knows it (e.g. ge-b). */
  name: string;
  /** The shared secret (the base64 of BIND's `secret` decoded). Never log. */
  secret: Buffer;
}

export interface UpdateRequest {
  zone: string;
  name: string;
  /** The address the name's A RRset becomes; with `withdraw`, ignored (the RRset is only deleted). */
  addr: string;
  ttl: number;
  /** Delete the name's A RRset and add nothing (a name no longer published). */
  withdraw?: boolean;
  key?: TsigKey;
  /** Test hooks. */
  id?: number;
  nowS?: number;
  fudgeS?: number;
}

/** A domain name in wire form, lower-cased (the canonical form TSIG uses). */
export function encodeName(name: string, field = 'name'): Buffer {
  if (!NAME.test(name)) throw new DdnsError(field, `${field} '${name}' is not a host name`);
  const labels = name.replace(/\.$/, '').toLowerCase().split('.');
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
}

function rr(name: Buffer, type: number, cls: number, ttl: number, rdata: Buffer): Buffer {
  const f = Buffer.alloc(10);
  f.writeUInt16BE(type, 0);
  f.writeUInt16BE(cls, 2);
  f.writeUInt32BE(ttl, 4);
  f.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([name, f, rdata]);
}

function u48(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

/** The TSIG MAC over `msg` (no TSIG RR, ADCOUNT without it) and the TSIG variables; `prior`: the request MAC, for a response. */
export function tsigMac(key: TsigKey, msg: Buffer, timeS: number, fudgeS: number, error = 0, other = Buffer.alloc(0), prior?: Buffer): Buffer {
  const vars = Buffer.alloc(8);
  const h = createHmac('sha256', key.secret);
  if (prior) {
    const l = Buffer.alloc(2);
    l.writeUInt16BE(prior.length, 0);
    h.update(l).update(prior);
  }
  h.update(msg).update(encodeName(key.name, 'key name'));
  vars.writeUInt16BE(DNS.CLASS_ANY, 0);
  vars.writeUInt32BE(0, 2);
  h.update(vars.subarray(0, 6)).update(encodeName(ALGORITHM)).update(u48(timeS));
  const tail = Buffer.alloc(6);
  tail.writeUInt16BE(fudgeS, 0);
  tail.writeUInt16BE(error, 2);
  tail.writeUInt16BE(other.length, 4);
  return h.update(tail).update(other).digest();
}

/** The UPDATE message, TSIG-signed when `key` is given. Returns the bytes and the MAC (to check the answer's). */
export function encodeUpdate(r: UpdateRequest): { msg: Buffer; id: number; mac: Buffer | null } {
  if (!Number.isInteger(r.ttl) || r.ttl < 0 || r.ttl > 0x7fffffff) throw new DdnsError('ttl', `ttl ${r.ttl} is not 0..2147483647`);
  const zone = encodeName(r.zone, 'zone');
  const name = encodeName(r.name, 'name');
  const rdata = Buffer.alloc(4);
  if (!r.withdraw) writeIpv4(rdata, 0, r.addr, 'DDNS address');
  const id = r.id ?? randomBytes(2).readUInt16BE(0);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(DNS.OPCODE_UPDATE << 11, 2);
  head.writeUInt16BE(1, 4); // ZOCOUNT
  head.writeUInt16BE(0, 6); // PRCOUNT
  head.writeUInt16BE(r.withdraw ? 1 : 2, 8); // UPCOUNT
  head.writeUInt16BE(0, 10); // ADCOUNT (1 once signed)
  const zq = Buffer.alloc(4);
  zq.writeUInt16BE(DNS.TYPE_SOA, 0);
  zq.writeUInt16BE(DNS.CLASS_IN, 2);
  const del = rr(name, DNS.TYPE_A, DNS.CLASS_ANY, 0, Buffer.alloc(0));
  const body = Buffer.concat(r.withdraw ? [head, zone, zq, del] : [head, zone, zq, del, rr(name, DNS.TYPE_A, DNS.CLASS_IN, r.ttl, rdata)]);
  if (!r.key) return { msg: body, id, mac: null };
  const timeS = r.nowS ?? Math.floor(Date.now() / 1000);
  const fudge = r.fudgeS ?? 300;
  const mac = tsigMac(r.key, body, timeS, fudge);
  const f = Buffer.alloc(2);
  f.writeUInt16BE(fudge, 0);
  const ml = Buffer.alloc(2);
  ml.writeUInt16BE(mac.length, 0);
  const tailer = Buffer.alloc(6);
  tailer.writeUInt16BE(id, 0); // original id
  tailer.writeUInt16BE(0, 2); // error
  tailer.writeUInt16BE(0, 4); // other len
  const tsig = rr(encodeName(r.key.name, 'key name'), DNS.TYPE_TSIG, DNS.CLASS_ANY, 0, Buffer.concat([encodeName(ALGORITHM), u48(timeS), f, ml, mac, tailer]));
  const signed = Buffer.concat([body, tsig]);
  signed.writeUInt16BE(1, 10);
  return { msg: signed, id, mac };
}

export interface UpdateAnswer {
  rcode: string;
  /** The TSIG error of the answer's TSIG RR, if it has one. */
  tsigError: string | null;
  /** The answer's MAC verified under the key (null: the answer was not signed). */
  signed: boolean | null;
}

export function skipName(b: Buffer, off: number): number {
  for (let i = 0; i < 128 && off < b.length; i++) {
    const l = b[off];
    if (l === 0) return off + 1;
    if ((l & 0xc0) === 0xc0) return off + 2;
    off += 1 + l;
  }
  throw new DdnsError('answer', 'malformed name in the answer');
}

/** Reads the answer to a request of `id` (and its MAC, to verify a signed answer). */
export function decodeAnswer(b: Buffer, id: number, key?: TsigKey, reqMac?: Buffer | null): UpdateAnswer {
  if (b.length < 12) throw new DdnsError('answer', `answer of ${b.length} bytes`);
  if (b.readUInt16BE(0) !== id) throw new DdnsError('answer', 'answer to another request');
  const flags = b.readUInt16BE(2);
  const rcode = RCODE[flags & 0xf] ?? `RCODE${flags & 0xf}`;
  const counts = [4, 6, 8, 10].map((o) => b.readUInt16BE(o));
  let off = 12;
  for (let i = 0; i < counts[0]; i++) off = skipName(b, off) + 4;
  for (let s = 1; s < 3; s++) for (let i = 0; i < counts[s]; i++) { off = skipName(b, off) + 8; off += 2 + b.readUInt16BE(off); }
  let tsigError: string | null = null;
  let signed: boolean | null = null;
  for (let i = 0; i < counts[3]; i++) {
    const start = off;
    off = skipName(b, off);
    const type = b.readUInt16BE(off);
    const rdlen = b.readUInt16BE(off + 8);
    const rd = off + 10;
    if (type === DNS.TYPE_TSIG) {
      let p = skipName(b, rd);
      const timeS = b.readUIntBE(p, 6);
      const fudge = b.readUInt16BE(p + 6);
      const macLen = b.readUInt16BE(p + 8);
      const mac = b.subarray(p + 10, p + 10 + macLen);
      p += 10 + macLen + 2;
      const err = b.readUInt16BE(p);
      const otherLen = b.readUInt16BE(p + 2);
      const other = b.subarray(p + 4, p + 4 + otherLen);
      tsigError = TSIG_ERROR[err] ?? `TSIG${err}`;
      if (key && reqMac && macLen > 0) {
        const unsigned = Buffer.from(b.subarray(0, start));
        unsigned.writeUInt16BE(counts[3] - 1, 10);
        const want = tsigMac(key, unsigned, timeS, fudge, err, Buffer.from(other), reqMac);
        signed = want.length === mac.length && timingSafeEqual(want, mac);
      }
    }
    off = rd + rdlen;
  }
  return { rcode, tsigError, signed };
}

/**
 * One DNS exchange over UDP: `msg` to `server`, up to `attempts` times
 * `timeoutMs` apart, until `decode` takes an answer (a datagram it throws on
 * is not ours: the wait goes on). Shared by updates and queries.
 */
export async function udpExchange<T>(msg: Buffer, server: string, port: number, decode: (b: Buffer) => T, attempts: number, timeoutMs: number): Promise<T> {
  const sock = createSocket('udp4');
  try {
    return await new Promise<T>((resolve, reject) => {
      let n = 0;
      let timer: NodeJS.Timeout | null = null;
      sock.on('message', (b) => {
        try {
          const a = decode(b);
          if (timer) clearTimeout(timer);
          resolve(a);
        } catch { /* not ours: keep waiting */ }
      });
      sock.on('error', (e) => reject(new DdnsError('server', `UDP to ${server}:${port}: ${e.message}`)));
      const fire = (): void => {
        if (n++ >= attempts) return reject(new DdnsError('server', `no answer from ${server}:${port} after ${attempts} attempts`));
        sock.send(msg, port, server);
        timer = setTimeout(fire, timeoutMs);
      };
      fire();
    });
  } finally {
    sock.close();
  }
}

/** Sends the update to `server` (UDP port `port`), up to `attempts` times `timeoutMs` apart; resolves with the answer. */
export async function sendUpdate(r: UpdateRequest, server: string, port = 53, o: { attempts?: number; timeoutMs?: number } = {}): Promise<UpdateAnswer> {
  const { msg, id, mac } = encodeUpdate(r);
  return udpExchange(msg, server, port, (b) => decodeAnswer(b, id, r.key, mac), o.attempts ?? 3, o.timeoutMs ?? 1000);
}
