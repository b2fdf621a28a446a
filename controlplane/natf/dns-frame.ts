/**
 * A DNS answer as the DNS stage punts it (bpf/lib/dns.h): an Ethernet frame
 * holding IPv4 + UDP, or IPv4 + TCP, from port 53. `rewriteDnsFrame` hands a
 * UDP answer's DNS message to a rewriter and rebuilds the frame around what it
 * returns, every checksum right; a TCP segment is only read here (its DNS
 * messages may span segments: dns-tcp-stream.ts reassembles and patches them).
 * Pure (no I/O).
 *
 * Rules: the frame's L4 checksum is checked first (a partial one, from a
 * local sender over veth, is completed the way a release is): a packet that
 * arrived corrupt is never made valid. UDP: the message may change length
 * (a SERVFAIL is shorter): IPv4 total length, UDP length, both checksums
 * recomputed.
 */
import { completePartialChecksum } from '../agent/checksum-fixup.js';
import { inetChecksum } from '../dprp/ipv4.js';

/** The DNS message in, the one to deliver out; null: deliver the original. */
export type DnsMessageRewriter = (message: Buffer) => Buffer | null;

/** A TCP segment from port 53, checksum verified: where its parts are in `frame` (a private copy). */
export interface TcpDnsSegment {
  frame: Buffer;
  l3: number;
  l4: number;
  /** First payload byte and the end of the IPv4 packet (payload = frame[pay, end)). */
  pay: number;
  end: number;
  seq: number;
  /** The TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10). */
  flags: number;
  /** The connection, as "server:53>client:port". */
  key: string;
}

export type PassedWhy = 'not_dns' | 'bad_checksum';

export type DnsFrameOutcome =
  | { kind: 'rewritten'; frame: Buffer }
  | { kind: 'untouched' }
  | { kind: 'passed'; why: PassedWhy }
  | { kind: 'tcp'; segment: TcpDnsSegment };

function l4Checksum(frame: Buffer, l3: number, l4: number, end: number, proto: number): number {
  const pseudo = Buffer.alloc(12);
  frame.copy(pseudo, 0, l3 + 12, l3 + 20);
  pseudo[9] = proto;
  pseudo.writeUInt16BE(end - l4, 10);
  const c = inetChecksum(Buffer.concat([pseudo, frame.subarray(l4, end)]));
  return proto === 17 && c === 0 ? 0xffff : c;
}

/** After a segment's payload bytes changed in place: its TCP checksum again. */
export function refreshTcpChecksum(s: TcpDnsSegment): void {
  s.frame.writeUInt16BE(0, s.l4 + 16);
  s.frame.writeUInt16BE(l4Checksum(s.frame, s.l3, s.l4, s.end, 6), s.l4 + 16);
}

export function rewriteDnsFrame(frameIn: Buffer, rewrite: DnsMessageRewriter): DnsFrameOutcome {
  const frame = Buffer.from(frameIn);
  if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800 || frame[14] >> 4 !== 4) return { kind: 'passed', why: 'not_dns' };
  const l3 = 14;
  const ihl = (frame[l3] & 0xf) * 4;
  const tot = frame.readUInt16BE(l3 + 2);
  const proto = frame[l3 + 9];
  if (ihl < 20 || tot < ihl + 8 || l3 + tot > frame.length || (frame.readUInt16BE(l3 + 6) & 0x3fff) !== 0) return { kind: 'passed', why: 'not_dns' };
  const l4 = l3 + ihl;
  const end = l3 + tot;
  if (proto !== 17 && proto !== 6) return { kind: 'passed', why: 'not_dns' };
  if (frame.readUInt16BE(l4) !== 53) return { kind: 'passed', why: 'not_dns' };
  const fix = completePartialChecksum(frame);
  if (fix === 'invalid_left_alone' || fix === 'not_applicable') return { kind: 'passed', why: fix === 'not_applicable' ? 'not_dns' : 'bad_checksum' };

  if (proto === 17) {
    const ulen = frame.readUInt16BE(l4 + 4);
    if (ulen < 8 || l4 + ulen > end) return { kind: 'passed', why: 'not_dns' };
    const out = rewrite(frame.subarray(l4 + 8, l4 + ulen));
    if (!out) return { kind: 'untouched' };
    const noSum = frame.readUInt16BE(l4 + 6) === 0;
    const f = Buffer.concat([frame.subarray(0, l4 + 8), out]);
    f.writeUInt16BE(ihl + 8 + out.length, l3 + 2);
    f.writeUInt16BE(0, l3 + 10);
    f.writeUInt16BE(inetChecksum(f, l3, ihl), l3 + 10);
    f.writeUInt16BE(8 + out.length, l4 + 4);
    f.writeUInt16BE(0, l4 + 6);
    if (!noSum) f.writeUInt16BE(l4Checksum(f, l3, l4, f.length, 17), l4 + 6);
    return { kind: 'rewritten', frame: f };
  }
  const doff = (frame[l4 + 12] >> 4) * 4;
  const pay = l4 + doff;
  if (doff < 20 || pay > end) return { kind: 'passed', why: 'not_dns' };
  const ip = (o: number): string => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
  const key = `${ip(l3 + 12)}:53>${ip(l3 + 16)}:${frame.readUInt16BE(l4 + 2)}`;
  return { kind: 'tcp', segment: { frame, l3, l4, pay, end, seq: frame.readUInt32BE(l4 + 4), flags: frame[l4 + 13], key } };
}
