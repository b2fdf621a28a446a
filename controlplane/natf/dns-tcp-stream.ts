/**
 * NAT-f's DNS answers over TCP (RFC 7766), docs/natf.md: a DNS message on a
 * TCP connection is a two-byte length and the message, and may be split over
 * any number of segments, or share one with the next message. The DNS stage
 * punts every segment from port 53 (bpf/lib/dns.h); this follows each
 * connection from the server's SYN-ACK, puts its messages back together and
 * has them rewritten, then releases the very segments it was given, with only
 * the changed bytes patched and the TCP checksum recomputed. A rewrite keeps
 * the message's length (an A record's address and TTL change in place), so no
 * sequence number moves; a rewrite to another length (the shorter SERVFAIL of
 * an exhausted virtual pool) is delivered as the original message with the
 * new header's flags and RCODE, which every resolver reads as that error.
 *
 * A segment is held only while its message is incomplete, in order, at most
 * `holdMs` (the server sends a short answer in one burst; one needing more
 * than its first window would wait on ACKs the held segments withhold, so it
 * is given up on and passes as it came). What is not rewritten passes as it
 * came, counted by why: a connection first seen mid-stream (`tcp_unsynced`,
 * e.g. after an agent restart), a message longer than `maxMessageBytes`
 * (`tcp_too_long`), held past `holdMs` (`tcp_held_too_long`), a rewrite that
 * changes the length and is no error (`tcp_length`), a gap that does not fill
 * (`tcp_gap`: a lost segment, or one too big to punt). The bytes a rewrite
 * changed are kept per connection, so a retransmission carries them too; a
 * retransmission of bytes still held is dropped, counted (the held copy goes
 * once decided).
 * Pure (a clock and a sink are given); bounded in connections, held
 * segments, bytes and patches.
 */
import { refreshTcpChecksum, type TcpDnsSegment } from './dns-frame.js';

export interface TcpDnsLimits {
  /** Longest a segment waits for the rest of its message (or for a gap before it to fill), ms. */
  holdMs: number;
  /** A message longer than this (its length field included) is passed as it comes, never held. */
  maxMessageBytes: number;
  /** Out-of-order segments held per connection. */
  maxFuture: number;
  /** Connections followed at once; the one seen longest ago is forgotten first. */
  maxStreams: number;
  /** A connection unseen this long is forgotten (its later segments pass unread). */
  idleMs: number;
  /** Rewritten byte ranges kept per connection, for retransmissions. */
  maxPatches: number;
}

export const TCP_DNS_DEFAULTS: TcpDnsLimits = { holdMs: 250, maxMessageBytes: 16384, maxFuture: 16, maxStreams: 1024, idleMs: 60_000, maxPatches: 256 };

/** A message's rewrite, as the rewriter chain gives it (dns-rewriters.ts). */
export type TcpDnsRewriter = (message: Buffer) => { message: Buffer; label: string } | null;

export interface TcpDnsSink {
  release(ifindex: number, frame: Buffer): void;
  /** One per message ('untouched', the rewriter's label, 'passed_tcp_*'), or per segment passed unread. */
  count(label: string): void;
}

interface Held { s: TcpDnsSegment; ifindex: number; at: number }
interface Patch { seq: number; bytes: Buffer }
interface Stream {
  /** Sequence number of the first byte not yet decided. */
  base: number;
  /** The bytes from `base` to `next` (a message in progress, its length field first). */
  acc: Buffer;
  /** Sequence number after the last in-order byte seen. */
  next: number;
  /** Bytes of a message given up on still to come: passed unread. */
  skip: number;
  /** In-order segments with undecided bytes, in sequence order. */
  held: Held[];
  /** Segments after a gap, in arrival order. */
  future: Held[];
  patches: Patch[];
  seen: number;
}

const EMPTY = Buffer.alloc(0);
const FIN = 0x01, SYN = 0x02, RST = 0x04;
/** a - b in sequence space (RFC 9293 modular). */
const diff = (a: number, b: number): number => (a - b) | 0;
const add = (a: number, n: number): number => (a + n) >>> 0;
const segLen = (s: TcpDnsSegment): number => s.end - s.pay;

/** The same-length message to deliver for a rewrite over TCP; null: the length changed and it is no error answer. */
function sameLength(orig: Buffer, out: Buffer): Buffer | null {
  if (out.length === orig.length) return out;
  if (out.length < 4 || (out[3] & 0x0f) === 0) return null;
  const m = Buffer.from(orig);
  out.copy(m, 2, 2, 4);
  return m;
}

export class TcpDnsStreams {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly limits: TcpDnsLimits, private readonly rewrite: TcpDnsRewriter, private readonly sink: TcpDnsSink, private readonly now: () => number) {}

  get size(): number { return this.streams.size; }

  /** Segments held now, across connections. */
  holding(): number {
    let n = 0;
    for (const st of this.streams.values()) n += st.held.length + st.future.length;
    return n;
  }

  /** When the oldest held segment is due (ms on the given clock); null: none held. */
  nextDeadline(): number | null {
    let t: number | null = null;
    for (const st of this.streams.values()) {
      for (const h of [st.held[0], st.future[0]]) if (h && (t === null || h.at + this.limits.holdMs < t)) t = h.at + this.limits.holdMs;
    }
    return t;
  }

  /** A segment from port 53 (checksum verified): released now, or held and released by a later segment or `expire`. */
  segment(s: TcpDnsSegment, ifindex: number): void {
    const now = this.now();
    if (s.flags & SYN) {
      this.open(s.key, add(s.seq, 1), now);
      this.sink.release(ifindex, s.frame);
      return;
    }
    const st = this.streams.get(s.key);
    if (!st) {
      if (segLen(s)) this.sink.count('passed_tcp_unsynced');
      this.sink.release(ifindex, s.frame);
      return;
    }
    this.streams.delete(s.key);
    this.streams.set(s.key, st);  // most recently seen last
    st.seen = now;
    if (s.flags & RST) {
      this.releaseAll(st);
      this.streams.delete(s.key);
      this.sink.release(ifindex, s.frame);
      return;
    }
    if (!segLen(s) && !(s.flags & FIN)) { this.sink.release(ifindex, s.frame); return; }  // an ACK: nothing to read
    if (diff(s.seq, st.next) > 0) {
      if (s.flags & FIN && !segLen(s)) {  // the end, after bytes never seen (one too big to punt): nothing more to follow
        this.lose(s.key, st, 'passed_tcp_gap');
        this.sink.release(ifindex, s.frame);
        return;
      }
      if (st.future.length >= this.limits.maxFuture) {
        this.lose(s.key, st, 'passed_tcp_gap');
        this.sink.release(ifindex, s.frame);
        return;
      }
      st.future.push({ s, ifindex, at: now });
      return;
    }
    this.inOrder(s.key, st, { s, ifindex, at: now });
    // Segments that waited behind a gap, now in order (or old).
    for (let again = true; again && this.streams.get(s.key) === st;) {
      again = false;
      const i = st.future.findIndex((h) => diff(h.s.seq, st.next) <= 0);
      if (i >= 0) { const [h] = st.future.splice(i, 1); this.inOrder(s.key, st, h); again = true; }
    }
  }

  /** Held segments past `holdMs` go as they are (their message given up on); idle connections are forgotten. */
  expire(): void {
    const now = this.now();
    for (const [key, st] of [...this.streams]) {
      if (st.future.length && now - st.future[0].at >= this.limits.holdMs) { this.lose(key, st, 'passed_tcp_gap'); continue; }
      if (st.held.length && now - st.held[0].at >= this.limits.holdMs) {
        if (st.acc.length < 2) { this.lose(key, st, 'passed_tcp_held_too_long'); continue; }
        this.sink.count('passed_tcp_held_too_long');
        this.giveUp(st);
        this.releaseDecided(st);
        continue;
      }
      if (!st.held.length && !st.future.length && now - st.seen >= this.limits.idleMs) this.streams.delete(key);
    }
  }

  /** Everything held goes as it is; nothing more is followed. */
  close(): void {
    for (const st of this.streams.values()) this.releaseAll(st);
    this.streams.clear();
  }

  private open(key: string, next: number, now: number): void {
    const old = this.streams.get(key);
    if (old) { this.releaseAll(old); this.streams.delete(key); }
    if (this.streams.size >= this.limits.maxStreams) {
      const [k, st] = this.streams.entries().next().value as [string, Stream];
      this.releaseAll(st);
      this.streams.delete(k);
    }
    this.streams.set(key, { base: next, acc: EMPTY, next, skip: 0, held: [], future: [], patches: [], seen: now });
  }

  /** A segment starting at or before `next`: its new bytes read, it is held until they are decided. */
  private inOrder(key: string, st: Stream, h: Held): void {
    const len = segLen(h.s);
    const fresh = diff(add(h.s.seq, len), st.next);
    if (fresh <= 0 && diff(add(h.s.seq, len), st.base) > 0) {
      // A retransmission of bytes still held undecided: released now it would carry them unrewritten
      // ahead of the held copy; the held copy goes once decided (TCP sends again if that is lost).
      this.sink.count('dropped_tcp_retransmission_of_held');
      return;
    }
    if (fresh <= 0) {
      this.patch(st, h.s);
      this.sink.release(h.ifindex, h.s.frame);
    } else {
      st.next = add(h.s.seq, len);
      st.held.push(h);
      this.consume(st, h.s.frame.subarray(h.s.end - fresh, h.s.end));
      this.releaseDecided(st);
    }
    if (h.s.flags & FIN && diff(add(h.s.seq, len), st.next) === 0) {
      this.releaseAll(st);
      this.streams.delete(key);
    }
  }

  /** New in-order bytes: passed through a skip, or gathered into messages that are decided as they complete. */
  private consume(st: Stream, bytes: Buffer): void {
    let b = bytes;
    while (b.length) {
      if (st.skip > 0) {
        const n = Math.min(st.skip, b.length);
        st.skip -= n;
        st.base = add(st.base, n);
        b = b.subarray(n);
        continue;
      }
      st.acc = st.acc.length ? Buffer.concat([st.acc, b]) : Buffer.from(b);
      b = EMPTY;
      while (st.acc.length >= 2) {
        const need = 2 + st.acc.readUInt16BE(0);
        if (need > this.limits.maxMessageBytes) {
          this.sink.count('passed_tcp_too_long');
          b = this.giveUp(st);
          break;
        }
        if (st.acc.length < need) break;
        this.decide(st, st.acc.subarray(2, need), add(st.base, 2));
        st.base = add(st.base, need);
        st.acc = st.acc.subarray(need);
      }
    }
    if (!st.acc.length) st.acc = EMPTY;
  }

  /** The message in progress passes unread: what is gathered of it is decided as it is; returns the bytes gathered past its end. */
  private giveUp(st: Stream): Buffer {
    const need = 2 + st.acc.readUInt16BE(0);
    const have = Math.min(need, st.acc.length);
    const rest = st.acc.subarray(have);
    st.base = add(st.base, have);
    st.skip = need - have;
    st.acc = EMPTY;
    return rest;
  }

  private decide(st: Stream, msg: Buffer, seq: number): void {
    const r = this.rewrite(Buffer.from(msg));
    if (!r) { this.sink.count('untouched'); return; }
    const out = sameLength(msg, r.message);
    if (!out) { this.sink.count('passed_tcp_length'); return; }
    for (let i = 0; i < msg.length;) {
      if (out[i] === msg[i]) { i++; continue; }
      let j = i;
      while (j < msg.length && out[j] !== msg[j]) j++;
      st.patches.push({ seq: add(seq, i), bytes: Buffer.from(out.subarray(i, j)) });
      i = j;
    }
    if (st.patches.length > this.limits.maxPatches) st.patches.splice(0, st.patches.length - this.limits.maxPatches);
    this.sink.count(r.label);
  }

  /** The rewritten bytes a segment covers, written into it. */
  private patch(st: Stream, s: TcpDnsSegment): void {
    const len = segLen(s);
    let changed = false;
    for (const p of st.patches) {
      const from = Math.max(0, diff(p.seq, s.seq));
      const to = Math.min(len, diff(add(p.seq, p.bytes.length), s.seq));
      if (from >= to) continue;
      p.bytes.copy(s.frame, s.pay + from, from - diff(p.seq, s.seq), to - diff(p.seq, s.seq));
      changed = true;
    }
    if (changed) refreshTcpChecksum(s);
  }

  /** Held segments whose every byte is decided go, patched, in sequence order. */
  private releaseDecided(st: Stream): void {
    while (st.held.length && diff(add(st.held[0].s.seq, segLen(st.held[0].s)), st.base) <= 0) {
      const h = st.held.shift()!;
      this.patch(st, h.s);
      this.sink.release(h.ifindex, h.s.frame);
    }
  }

  private releaseAll(st: Stream): void {
    for (const h of [...st.held, ...st.future]) { this.patch(st, h.s); this.sink.release(h.ifindex, h.s.frame); }
    st.held = [];
    st.future = [];
  }

  private lose(key: string, st: Stream, label: string): void {
    this.sink.count(label);
    this.releaseAll(st);
    this.streams.delete(key);
  }
}
