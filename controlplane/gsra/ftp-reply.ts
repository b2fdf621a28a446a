/**
 * FTP passive-mode replies as the fast path's FTP stage hands them over
 * (bpf/lib/ftp.h; docs/gsra.md "FTP passive mode"): an Ethernet frame with
 * IPv4 + TCP from port 21 whose payload starts "227 " or "229 ". Pure.
 *
 *  - parseFtpFrame: where the payload is, and the reply's announced port
 *    (227 "h1,h2,h3,h4,p1,p2" -> p1*256+p2; 229 "(|||p|)" -> p).
 *  - rewrite227: the EN's rewrite of the address in a 227 reply to the VIN,
 *    **keeping the segment's length**: the reply's free text between "227 "
 *    and the numbers (RFC 959 leaves it to the server: vsftpd says "Entering
 *    Passive Mode (") absorbs the difference, padded with spaces when the VIN
 *    is shorter, trimmed when longer. So no TCP sequence number moves and no
 *    per-flow sequence fix-up is needed in either direction (a retransmitted
 *    227 is rewritten the same way). A reply without room for the difference:
 *    with `resize`, only the numbers are replaced and the reply's length
 *    changes by `diff` (the caller keeps the connection's sequence delta,
 *    ftp-seq.ts); without it, passed unmodified ('no_room').
 *  - rewriteFtpFrame: the frame with that rewrite, IPv4 total length and
 *    checksum fixed when the length changed, TCP checksum recomputed (a
 *    partial checksum from a local sender completed first; a corrupt segment
 *    is never made valid).
 */
import { completePartialChecksum } from '../agent/checksum-fixup.js';
import { inetChecksum } from '../dprp/ipv4.js';

export interface FtpFrame {
  src: string; dst: string; sport: number; dport: number;
  /** Offsets in the frame: IPv4 header, TCP header, payload start and end. */
  l3: number; l4: number; payload: number; end: number;
  code: 227 | 229;
  /** The data port the reply announces, or null when the numbers do not parse. */
  port: number | null;
}

const ip = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** The reply's first line (up to CRLF or the payload's end). */
function firstLine(p: Buffer): string {
  const s = p.toString('latin1');
  const i = s.indexOf('\r\n');
  return i < 0 ? s : s.slice(0, i);
}

/** h1..h4,p1,p2 of a 227 line: where the six numbers start and end in the line, and their values; null if none. */
export function find227(line: string): { start: number; end: number; addr: string; port: number } | null {
  const m = /(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})/.exec(line.slice(4));
  if (!m) return null;
  const n = m.slice(1).map(Number);
  if (n.some((x) => x > 255)) return null;
  const start = 4 + m.index;
  return { start, end: start + m[0].length, addr: n.slice(0, 4).join('.'), port: n[4] * 256 + n[5] };
}

/** The port of a 229 line "(|||p|)" (any delimiter, RFC 2428), or null. */
export function find229(line: string): number | null {
  const m = /\((.)\1\1(\d{1,5})\1\)/.exec(line.slice(4));
  if (!m) return null;
  const p = Number(m[2]);
  return p >= 1 && p <= 65535 ? p : null;
}

export function parseFtpFrame(frame: Buffer): FtpFrame | null {
  if (frame.length < 14 + 20 + 20 || frame.readUInt16BE(12) !== 0x0800 || frame[14] >> 4 !== 4) return null;
  const l3 = 14;
  const ihl = (frame[l3] & 0xf) * 4;
  const tot = frame.readUInt16BE(l3 + 2);
  if (ihl < 20 || frame[l3 + 9] !== 6 || (frame.readUInt16BE(l3 + 6) & 0x3fff) !== 0 || l3 + tot > frame.length) return null;
  const l4 = l3 + ihl;
  const doff = (frame[l4 + 12] >> 4) * 4;
  const end = l3 + tot;
  if (doff < 20 || l4 + doff + 4 > end) return null;
  const payload = l4 + doff;
  const head = frame.toString('latin1', payload, payload + 4);
  if (head !== '227 ' && head !== '229 ') return null;
  const code = head === '227 ' ? 227 : 229;
  const line = firstLine(frame.subarray(payload, end));
  const port = code === 227 ? find227(line)?.port ?? null : find229(line);
  return { src: ip(frame, l3 + 12), dst: ip(frame, l3 + 16), sport: frame.readUInt16BE(l4), dport: frame.readUInt16BE(l4 + 2), l3, l4, payload, end, code, port };
}

export type RewriteOutcome = { kind: 'rewritten'; payload: Buffer; diff: number } | { kind: 'same' } | { kind: 'passed'; why: 'not_227' | 'no_numbers' | 'no_room' };

/** A 227 payload with its address made `addr` (same port), the same length if the free text has room, else (with `resize`) `diff` bytes longer or shorter. */
export function rewrite227(payload: Buffer, addr: string, opts: { resize?: boolean } = {}): RewriteOutcome {
  if (payload.toString('latin1', 0, 4) !== '227 ') return { kind: 'passed', why: 'not_227' };
  const line = firstLine(payload);
  const f = find227(line);
  if (!f) return { kind: 'passed', why: 'no_numbers' };
  if (f.addr === addr) return { kind: 'same' };
  const p = line.slice(f.start, f.end).split(',');
  const tuple = `${addr.split('.').join(',')},${p[4]},${p[5]}`;
  // The free text: from after "227 " to the numbers, without a "(" right before them.
  const open = line[f.start - 1] === '(' ? f.start - 1 : f.start;
  let text = line.slice(4, open);
  const diff = tuple.length - (f.end - f.start);
  if (diff > 0 && text.length < diff) {
    if (!opts.resize) return { kind: 'passed', why: 'no_room' };
    // No room: the numbers alone change, the reply grows by diff (the sequence delta absorbs it).
    const grown = Buffer.concat([Buffer.from(`${line.slice(0, f.start)}${tuple}${line.slice(f.end)}`, 'latin1'), payload.subarray(line.length)]);
    return { kind: 'rewritten', payload: grown, diff: grown.length - payload.length };
  }
  if (diff > 0) text = text.slice(0, text.length - diff);
  else if (diff < 0) text = text + ' '.repeat(-diff);
  const newLine = `227 ${text}${line.slice(open, f.start)}${tuple}${line.slice(f.end)}`;
  const out = Buffer.concat([Buffer.from(newLine, 'latin1'), payload.subarray(line.length)]);
  if (out.length !== payload.length) return { kind: 'passed', why: 'no_room' };   // cannot happen: the sums above keep it
  return { kind: 'rewritten', payload: out, diff: 0 };
}

export type FrameOutcome = { kind: 'rewritten'; frame: Buffer; diff: number } | { kind: 'same' } | { kind: 'passed'; why: 'not_ftp' | 'bad_checksum' | 'not_227' | 'no_numbers' | 'no_room' };

/** The 227 frame with its address made `addr`; the TCP checksum recomputed (and with `resize` the lengths when it grew or shrank). */
export function rewriteFtpFrame(frameIn: Buffer, addr: string, opts: { resize?: boolean } = {}): FrameOutcome {
  let frame = Buffer.from(frameIn);
  const f = parseFtpFrame(frame);
  if (!f) return { kind: 'passed', why: 'not_ftp' };
  const fix = completePartialChecksum(frame);
  if (fix !== 'valid' && fix !== 'completed') return { kind: 'passed', why: fix === 'invalid_left_alone' ? 'bad_checksum' : 'not_ftp' };
  const r = rewrite227(frame.subarray(f.payload, f.end), addr, opts);
  if (r.kind !== 'rewritten') return r;
  let end = f.end;
  if (r.diff === 0) r.payload.copy(frame, f.payload);
  else {
    // The segment's new length: the frame ends at the payload's end (any link padding dropped).
    frame = Buffer.concat([frame.subarray(0, f.payload), r.payload]);
    end = frame.length;
    frame.writeUInt16BE(end - f.l3, f.l3 + 2);
    frame.writeUInt16BE(0, f.l3 + 10);
    frame.writeUInt16BE(inetChecksum(frame.subarray(f.l3, f.l4)), f.l3 + 10);
  }
  const pseudo = Buffer.alloc(12);
  frame.copy(pseudo, 0, f.l3 + 12, f.l3 + 20);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(end - f.l4, 10);
  frame.writeUInt16BE(0, f.l4 + 16);
  frame.writeUInt16BE(inetChecksum(Buffer.concat([pseudo, frame.subarray(f.l4, end)])), f.l4 + 16);
  return { kind: 'rewritten', frame, diff: r.diff };
}
