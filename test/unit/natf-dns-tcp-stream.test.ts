/**
 * NAT-f's DNS answers over TCP put back together across segments
 * (controlplane/natf/dns-tcp-stream.ts), no root: a message split anywhere
 * (inside the length field, inside the A record's address) is rewritten and
 * the same segments go out, patched, each TCP checksum right, nothing
 * released before its bytes are decided; two messages in one segment; a
 * segment after a gap waits for it; a retransmission carries the rewrite
 * (and one of bytes still held is dropped, counted);
 * what cannot be rewritten passes as it came, counted (mid-stream, too long,
 * held too long, gap); an exhausted pool is a same-length SERVFAIL;
 * sequence numbers wrap; the connection table is bounded; a message longer
 * than a punt record, over several segments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteDnsFrame, type TcpDnsSegment } from '../../controlplane/natf/dns-frame.js';
import { TCP_DNS_DEFAULTS, TcpDnsStreams, type TcpDnsLimits } from '../../controlplane/natf/dns-tcp-stream.js';
import { Nrt } from '../../controlplane/natf/nrt.js';
import { inetChecksum } from '../../controlplane/dprp/ipv4.js';
import { tcpFrame } from '../lib/packets.js';

const GNAT = '192.0.2.2';
const ALICE = '192.0.2.1';
const DNS = '198.51.100.53';
const PORT = 40010;

/** A DNS response: `name` A `addrs`, TTL 600 each. */
function answer(addrs = [GNAT], name = 'bob.example.net', id = 0x4242): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0); h.writeUInt16BE(0x8180, 2); h.writeUInt16BE(1, 4); h.writeUInt16BE(addrs.length, 6);
  const q = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
  const rrs = addrs.map((a) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(600, 6); rr.writeUInt16BE(4, 10);
    Buffer.from(a.split('.').map(Number)).copy(rr, 12);
    return rr;
  });
  return Buffer.concat([h, q, ...rrs]);
}

const framed = (m: Buffer): Buffer => { const l = Buffer.alloc(2); l.writeUInt16BE(m.length, 0); return Buffer.concat([l, m]); };

function seg(seq: number, payload: Buffer, flags = 0x18, port = PORT): TcpDnsSegment {
  const out = rewriteDnsFrame(tcpFrame({ src: DNS, dst: ALICE, sport: 53, dport: port, seq: seq >>> 0, ack: 1, flags, payload }), () => null);
  assert.equal(out.kind, 'tcp');
  return (out as { segment: TcpDnsSegment }).segment;
}

function tcpOk(frame: Buffer): boolean {
  const ihl = (frame[14] & 0xf) * 4;
  const l4 = frame.subarray(14 + ihl, 14 + frame.readUInt16BE(16));
  const ph = Buffer.alloc(12);
  frame.copy(ph, 0, 26, 34); ph[9] = 6; ph.writeUInt16BE(l4.length, 10);
  return inetChecksum(Buffer.concat([ph, l4])) === 0;
}

const payloadOf = (frame: Buffer): Buffer => {
  const ihl = (frame[14] & 0xf) * 4;
  const l4 = 14 + ihl;
  return frame.subarray(l4 + (frame[l4 + 12] >> 4) * 4, 14 + frame.readUInt16BE(16));
};
const seqOf = (frame: Buffer): number => frame.readUInt32BE(14 + (frame[14] & 0xf) * 4 + 4);

/** A stream follower over a real NRT, with what it released and counted. */
function rig(limits: Partial<TcpDnsLimits> = {}, nrtOpts: { maxEntries?: number } = {}) {
  let now = 1000;
  const nrt = new Nrt({ lifetimeS: 60, ...nrtOpts }, () => now);
  const out: Buffer[] = [];
  const counts = new Map<string, number>();
  const streams = new TcpDnsStreams({ ...TCP_DNS_DEFAULTS, ...limits }, (m) => {
    const r = nrt.rewrite(m, new Set([GNAT]));
    if (r.kind === 'untouched') return null;
    return { message: r.message, label: r.kind === 'refused' ? `servfail_${r.reason}` : 'rewritten' };
  }, { release: (_i, f) => out.push(f), count: (l) => counts.set(l, (counts.get(l) ?? 0) + 1) }, () => now);
  return { streams, out, counts, nrt, tick: (ms: number) => { now += ms; } };
}

/** What the NRT makes of the message over UDP: the bytes the TCP path must deliver. */
function expected(m: Buffer): Buffer {
  const r = new Nrt({ lifetimeS: 60 }, () => 1000).rewrite(m, new Set([GNAT]));
  assert.equal(r.kind, 'rewritten');
  return (r as { message: Buffer }).message;
}

const ISN = 5000;
const synAck = (isn = ISN, port = PORT) => seg(isn, Buffer.alloc(0), 0x12, port);

test('a message split inside its A record: held until whole, the same segments go out patched, checksums right', () => {
  const r = rig();
  const m = answer();
  const data = framed(m);
  r.streams.segment(synAck(), 1);
  assert.equal(r.out.length, 1, 'the SYN-ACK passes at once');
  const cut1 = 1, cut2 = data.length - 2;  // inside the length field, inside the address
  r.streams.segment(seg(ISN + 1, data.subarray(0, cut1)), 1);
  r.streams.segment(seg(ISN + 1 + cut1, data.subarray(cut1, cut2)), 1);
  assert.equal(r.out.length, 1, 'nothing released before the message is whole');
  assert.equal(r.streams.holding(), 2);
  r.streams.segment(seg(ISN + 1 + cut2, data.subarray(cut2)), 1);
  assert.equal(r.out.length, 4);
  const segs = r.out.slice(1);
  assert.deepEqual(segs.map(seqOf), [ISN + 1, ISN + 1 + cut1, ISN + 1 + cut2], 'the same segments, in order');
  assert.deepEqual(segs.map((f) => payloadOf(f).length), [cut1, cut2 - cut1, data.length - cut2], 'no segment changed length');
  for (const f of segs) assert.ok(tcpOk(f), 'TCP checksum right');
  const got = Buffer.concat(segs.map(payloadOf));
  assert.deepEqual(got, framed(expected(m)), 'the stream carries what the NRT makes of the message');
  assert.notDeepEqual(got.subarray(-4), Buffer.from([192, 0, 2, 2]), 'the GNAT address is gone');
  assert.equal(r.counts.get('rewritten'), 1);
  assert.equal(r.streams.holding(), 0);
});

test('two messages in one segment, a third straddling the next: each decided as it completes; ACKs pass at once', () => {
  const r = rig();
  const m1 = framed(answer([GNAT], 'bob.example.net', 1));
  const m2 = framed(answer(['203.0.113.7'], 'www.example.net', 2));
  const m3 = framed(answer([GNAT, GNAT], 'bob.example.net', 3));
  const all = Buffer.concat([m1, m2, m3]);
  r.streams.segment(synAck(), 1);
  const cut = m1.length + m2.length + 10;
  r.streams.segment(seg(ISN + 1, all.subarray(0, cut)), 1);
  assert.equal(r.out.length, 1, 'the segment holding the start of the third message waits');
  r.streams.segment(seg(ISN + 1 + cut, Buffer.alloc(0), 0x10), 1);
  assert.equal(r.out.length, 2, 'a bare ACK is not held');
  r.streams.segment(seg(ISN + 1 + cut, all.subarray(cut)), 1);
  const got = Buffer.concat(r.out.slice(2).map(payloadOf));
  assert.deepEqual(got, Buffer.concat([framed(expected(unframe(m1))), m2, framed(expected(unframe(m3)))]));
  assert.equal(r.counts.get('rewritten'), 2);
  assert.equal(r.counts.get('untouched'), 1);
});

function unframe(f: Buffer): Buffer { return f.subarray(2); }

test('a segment after a gap waits for it; a retransmission of a rewritten segment carries the rewrite', () => {
  const r = rig();
  const data = framed(answer());
  const cut = data.length - 3;
  r.streams.segment(synAck(), 1);
  r.streams.segment(seg(ISN + 1 + cut, data.subarray(cut)), 1);
  assert.equal(r.out.length, 1, 'the later segment waits for the gap');
  r.streams.segment(seg(ISN + 1, data.subarray(0, cut)), 1);
  assert.equal(r.out.length, 3);
  const want = framed(expected(answer()));
  assert.deepEqual(Buffer.concat(r.out.slice(1).sort((a, b) => seqOf(a) - seqOf(b)).map(payloadOf)), want);
  // the server sends the second segment again (its ACK was lost): the rewrite again, not the GNAT's address
  r.streams.segment(seg(ISN + 1 + cut, data.subarray(cut)), 1);
  assert.equal(r.out.length, 4);
  assert.deepEqual(payloadOf(r.out[3]), want.subarray(cut));
  assert.ok(tcpOk(r.out[3]));
  // a retransmission of bytes still held (the server's timer fired while the message was incomplete) is dropped,
  // counted: released, it would reach the client unrewritten ahead of the held copy
  const h = rig();
  h.streams.segment(synAck(), 1);
  h.streams.segment(seg(ISN + 1, data.subarray(0, cut)), 1);
  h.streams.segment(seg(ISN + 1, data.subarray(0, cut)), 1);
  assert.equal(h.out.length, 1, 'neither the held segment nor its copy released');
  assert.equal(h.counts.get('dropped_tcp_retransmission_of_held'), 1);
  h.streams.segment(seg(ISN + 1 + cut, data.subarray(cut)), 1);
  assert.deepEqual(Buffer.concat(h.out.slice(1).map(payloadOf)), want, 'the held copy goes, rewritten');
  // and a retransmission covering the whole message at once
  r.streams.segment(seg(ISN + 1, data), 1);
  assert.deepEqual(payloadOf(r.out[4]), want);
  assert.equal(r.counts.get('rewritten'), 1, 'one message, rewritten once');
});

test('a connection first seen mid-stream passes unread; a FIN ends the connection, a new SYN-ACK starts afresh', () => {
  const r = rig();
  const data = framed(answer());
  r.streams.segment(seg(ISN + 1, data), 1);
  assert.deepEqual(payloadOf(r.out[0]), data, 'passed as it came');
  assert.equal(r.counts.get('passed_tcp_unsynced'), 1);
  r.streams.segment(synAck(9000), 1);
  r.streams.segment(seg(9001, data, 0x19), 1);  // the answer with FIN
  assert.deepEqual(payloadOf(r.out[2]), framed(expected(answer())));
  assert.equal(r.streams.size, 0, 'the FIN ended it');
});

test('held past holdMs: the segments go as they came, the rest of that message passes unread, the next message is rewritten', () => {
  const r = rig({ holdMs: 100 });
  const data = framed(answer());
  r.streams.segment(synAck(), 1);
  r.streams.segment(seg(ISN + 1, data.subarray(0, 20)), 1);
  r.tick(50); r.streams.expire();
  assert.equal(r.out.length, 1, 'still within holdMs');
  assert.equal(r.streams.nextDeadline(), 1100);
  r.tick(60); r.streams.expire();
  assert.equal(r.out.length, 2);
  assert.deepEqual(payloadOf(r.out[1]), data.subarray(0, 20), 'unmodified');
  assert.equal(r.counts.get('passed_tcp_held_too_long'), 1);
  const next = framed(answer([GNAT], 'bob.example.net', 9));
  r.streams.segment(seg(ISN + 1 + 20, Buffer.concat([data.subarray(20), next])), 1);
  const p = payloadOf(r.out[2]);
  assert.deepEqual(p.subarray(0, data.length - 20), data.subarray(20), 'the rest of the given-up message: as it came');
  assert.deepEqual(p.subarray(data.length - 20), framed(expected(unframe(next))), 'the next message: rewritten');
});

test('a message longer than maxMessageBytes is never held; a gap that does not fill lets everything go', () => {
  const r = rig({ maxMessageBytes: 40, holdMs: 100 });
  const data = framed(answer());
  r.streams.segment(synAck(), 1);
  r.streams.segment(seg(ISN + 1, data.subarray(0, 10)), 1);
  assert.equal(r.out.length, 2, 'released at once');
  assert.equal(r.counts.get('passed_tcp_too_long'), 1);
  r.streams.segment(seg(ISN + 1 + 10, data.subarray(10)), 1);
  assert.equal(r.out.length, 3);
  assert.deepEqual(Buffer.concat(r.out.slice(1).map(payloadOf)), data);
  const g = rig({ holdMs: 100 });
  g.streams.segment(synAck(), 1);
  g.streams.segment(seg(ISN + 1 + 30, data.subarray(30)), 1);
  g.tick(100); g.streams.expire();
  assert.equal(g.out.length, 2);
  assert.equal(g.counts.get('passed_tcp_gap'), 1);
  assert.equal(g.streams.size, 0, 'the connection is no longer followed');
  // a bare FIN after bytes never seen (a segment too big to punt passed the fast path) is not held
  const f = rig({ holdMs: 100 });
  f.streams.segment(synAck(), 1);
  f.streams.segment(seg(ISN + 1 + data.length, Buffer.alloc(0), 0x11), 1);
  assert.equal(f.out.length, 2, 'released at once');
  assert.equal(f.streams.size, 0);
});

test('an exhausted virtual pool over TCP: the same length, RCODE SERVFAIL', () => {
  const r = rig({}, { maxEntries: 1 });
  r.streams.segment(synAck(), 1);
  const one = framed(answer([GNAT], 'bob.example.net', 1));
  const two = framed(answer([GNAT], 'carol.example.net', 2));
  r.streams.segment(seg(ISN + 1, one), 1);
  r.streams.segment(seg(ISN + 1 + one.length, two), 1);
  assert.equal(r.counts.get('rewritten'), 1, 'the first name took the one virtual address');
  const p = payloadOf(r.out[r.out.length - 1]);
  assert.equal(p.length, two.length);
  assert.equal(p[5] & 0x0f, 2, 'RCODE SERVFAIL');
  assert.equal(r.counts.get('servfail_pool_exhausted'), 1);
});

test('sequence numbers wrap; the connection table is bounded (the one seen longest ago goes, its held segments with it)', () => {
  const r = rig();
  const data = framed(answer());
  const isn = 0xffffffff - 5;
  r.streams.segment(synAck(isn), 1);
  r.streams.segment(seg(isn + 1, data.subarray(0, 10)), 1);
  r.streams.segment(seg((isn + 11) >>> 0, data.subarray(10)), 1);
  assert.deepEqual(Buffer.concat(r.out.slice(1).map(payloadOf)), framed(expected(answer())));
  const b = rig({ maxStreams: 2 });
  b.streams.segment(synAck(ISN, 41000), 1);
  b.streams.segment(seg(ISN + 1, data.subarray(0, 10), 0x18, 41000), 1);
  b.streams.segment(synAck(ISN, 41001), 1);
  b.streams.segment(synAck(ISN, 41002), 1);
  assert.equal(b.streams.size, 2);
  assert.equal(b.streams.holding(), 0, 'the evicted connection\'s segment was released, not lost');
  assert.equal(b.out.length, 4);
});

test('an answer longer than a punt record (3,000 bytes) over three segments of at most 1,448: rewritten whole', () => {
  const r = rig();
  const big = answer();
  const m = Buffer.concat([big, Buffer.alloc(3000 - big.length, 0x61)]);  // bytes after the records, as a long additional section would be
  const data = framed(m);
  r.streams.segment(synAck(), 1);
  for (let off = 0; off < data.length; off += 1448) r.streams.segment(seg(ISN + 1 + off, data.subarray(off, off + 1448)), 1);
  assert.equal(r.out.length, 4);
  assert.ok(r.out.slice(1).every((f) => payloadOf(f).length <= 1448 && tcpOk(f)));
  assert.deepEqual(Buffer.concat(r.out.slice(1).map(payloadOf)), framed(expected(m)));
});
