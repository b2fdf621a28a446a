/**
 * GSRA's FTP sequence delta (docs/gsra.md "FTP passive mode"): when the EN's
 * 227 rewrite changes a segment's length (no room in the reply's free text),
 * the server's later seqs and the client's acks on that control connection
 * are moved by the difference, for the life of the connection. One entry per
 * connection (gscip_ftp_seq, bpf/lib/ftp.h, which applies the same two
 * functions to every other segment): `pos` is the server seq of the last
 * segment whose length changed, `before` the delta of seqs up to and
 * including it, `after` of seqs after it (the scheme of a per-connection
 * correction position, as netfilter's seqadj; written here, not copied).
 * Pure, all arithmetic modulo 2^32.
 */
import type { FtpSeqVal } from '../maps/codecs.js';

export type SeqDelta = FtpSeqVal;

const u32 = (x: number): number => x >>> 0;

/** a after b, modulo 2^32 (RFC 793 comparison). */
export function seqAfter(a: number, b: number): boolean { return ((b - a) | 0) < 0; }

/** A server seq (its own space) in the client's view. */
export function seqFwd(d: SeqDelta, seq: number): number { return u32(seq + (seqAfter(seq, d.pos) ? d.after : d.before)); }

/** A client ack or SACK edge (the client's view) in the server's space. */
export function seqBack(d: SeqDelta, ack: number): number { return u32(ack - (seqAfter(u32(ack - d.before), d.pos) ? d.after : d.before)); }

/** The most a connection's delta may reach; beyond it the rewrite is refused (no realistic FTP session gets near). */
export const MAX_DELTA = 1 << 30;

/**
 * The entry after a rewrite of the server's segment at `seq` changed its length by `diff`.
 * Unchanged (the same object) for diff 0 and for a retransmission (seq not after pos: that
 * segment's change is already in `after`); null when the delta would pass MAX_DELTA.
 */
export function noteRewrite(d: SeqDelta | undefined, seq: number, diff: number): SeqDelta | undefined | null {
  if (diff === 0) return d;
  if (!d) return { pos: u32(seq), before: 0, after: diff };
  if (!seqAfter(seq, d.pos)) return d;
  const after = d.after + diff;
  if (Math.abs(after) > MAX_DELTA) return null;
  return { pos: u32(seq), before: d.after, after };
}

/** RFC 1624 incremental update of a 16-bit one's-complement checksum for a 32-bit field old -> new. */
function csumUpdate32(check: number, oldV: number, newV: number): number {
  let s = (~check & 0xffff) + (~(oldV >>> 16) & 0xffff) + (~oldV & 0xffff) + (newV >>> 16) + (newV & 0xffff);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * The 32-bit TCP field at frame offset `at` (seq: l4 + 4, ack: l4 + 8) moved by `move`,
 * the TCP checksum (at l4 + 16) updated incrementally, so a corrupt segment stays corrupt.
 * Returns whether it changed.
 */
export function moveField(frame: Buffer, l4: number, at: number, move: (v: number) => number): boolean {
  const old = frame.readUInt32BE(at);
  const nv = move(old);
  if (nv === old) return false;
  frame.writeUInt32BE(nv, at);
  frame.writeUInt16BE(csumUpdate32(frame.readUInt16BE(l4 + 16), old, nv), l4 + 16);
  return true;
}
