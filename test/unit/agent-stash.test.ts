/** The punt stash (bounds, expiry) and the release checksum fix-up, without root. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Stash } from '../../controlplane/agent/stash.js';
import { completePartialChecksum } from '../../controlplane/agent/checksum-fixup.js';
import { reverseCid } from '../../controlplane/agent/handlers/install-pass.js';
import type { Cid, PuntRec } from '../../controlplane/maps/codecs.js';
import { inetChecksum, onesSum, tcpFrame, udpFrame } from '../lib/packets.js';

const cid = (sport: number): Cid => ({ saddr: '192.0.2.1', daddr: '192.0.2.2', sport, dport: 80, proto: 6, dir: 1 });
const rec = (sport: number): PuntRec => ({ ts_ns: 0n, ifindex: 2, pkt_len: 60, cap_len: 60, dir: 1, reason: 1, cid: cid(sport), data: Buffer.alloc(60) });

test('stash: per-flow and total bounds refuse with a reason', () => {
  const s = new Stash({ perFlowPackets: 2, totalPackets: 3, ttlMs: 1000 });
  assert.equal(s.add(rec(1), 0), null);
  assert.equal(s.add(rec(1), 0), null);
  assert.equal(s.add(rec(1), 0), 'flow_full');
  assert.equal(s.add(rec(2), 0), null);
  assert.equal(s.add(rec(3), 0), 'stash_full');
  assert.equal(s.size, 3);
  assert.equal(s.takeFlow(cid(1)).length, 2);
  assert.equal(s.size, 1);
  assert.equal(s.add(rec(3), 0), null);
});

test('stash: take by identity, expiry by age, oldest first', () => {
  const s = new Stash({ perFlowPackets: 8, totalPackets: 100, ttlMs: 100 });
  const a = rec(1);
  const b = rec(1);
  s.add(a, 0);
  s.add(b, 50);
  assert.equal(s.take(rec(1)), false, 'a different record of the same flow is not taken');
  assert.deepEqual(s.expire(99), []);
  assert.deepEqual(s.expire(100), [a]);
  assert.equal(s.take(b), true);
  assert.equal(s.size, 0);
  assert.equal(s.flowCount, 0);
});

test('install-pass reverses a CID into the other direction', () => {
  assert.deepEqual(reverseCid(cid(1234)), { saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 80, dport: 1234, proto: 6, dir: 0 });
});

/** Make a frame look like CHECKSUM_PARTIAL: the L4 checksum field holds the folded pseudo-header sum. */
function partial(frame: Buffer, csumOff: number): Buffer {
  const f = Buffer.from(frame);
  const ip = f.subarray(14);
  const ihl = (ip[0] & 0xf) * 4;
  const l4len = ip.readUInt16BE(2) - ihl;
  const ph = Buffer.alloc(12);
  ip.copy(ph, 0, 12, 20);
  ph[9] = ip[9];
  ph.writeUInt16BE(l4len, 10);
  f.writeUInt16BE(onesSum(ph), 14 + ihl + csumOff);
  return f;
}

function l4Valid(f: Buffer): boolean {
  const ip = f.subarray(14);
  const ihl = (ip[0] & 0xf) * 4;
  const l4 = ip.subarray(ihl, ip.readUInt16BE(2));
  const ph = Buffer.alloc(12);
  ip.copy(ph, 0, 12, 20);
  ph[9] = ip[9];
  ph.writeUInt16BE(l4.length, 10);
  return inetChecksum(l4, onesSum(ph)) === 0;
}

test('checksum fix-up completes partial TCP/UDP checksums and nothing else', () => {
  const tcp = tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 40000, dport: 80, payload: Buffer.from('hello world') });
  const udp = udpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 5353, dport: 53, payload: Buffer.from('odd') });
  assert.ok(l4Valid(tcp) && l4Valid(udp));
  const good = Buffer.from(tcp);
  assert.equal(completePartialChecksum(good), 'valid');
  assert.deepEqual(good, tcp);
  for (const [frame, off] of [[tcp, 16], [udp, 6]] as const) {
    const p = partial(frame, off);
    assert.ok(!l4Valid(p));
    assert.equal(completePartialChecksum(p), 'completed');
    assert.deepEqual(p, frame, 'completed checksum equals the independently computed one');
  }
  const corrupt = Buffer.from(tcp);
  corrupt[corrupt.length - 1] ^= 0xff;
  const before = Buffer.from(corrupt);
  assert.equal(completePartialChecksum(corrupt), 'invalid_left_alone');
  assert.deepEqual(corrupt, before, 'a corrupted packet is never given a valid checksum');
  assert.equal(completePartialChecksum(partial(tcp, 16).subarray(0, 50)), 'not_applicable', 'truncated capture');
});
