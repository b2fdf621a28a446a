/**
 * GSRA FTP passive mode when the 227 cannot keep its length
 * (controlplane/gsra/ftp-seq.ts, the resize of ftp-reply.ts): the per-connection
 * sequence delta (server seq forward, client ack back; wrap-around modulo 2^32;
 * several rewrites on one connection; a retransmission of a rewritten segment
 * neither counted twice nor moved differently), the grown reply and frame
 * (IPv4 length and both checksums right), and the incremental checksum of a
 * moved field (right on a good segment, a corrupt one stays corrupt).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DELTA, moveField, noteRewrite, seqAfter, seqBack, seqFwd, type SeqDelta } from '../../controlplane/gsra/ftp-seq.js';
import { rewrite227, rewriteFtpFrame } from '../../controlplane/gsra/ftp-reply.js';
import { parseFrame, tcpFrame } from '../lib/packets.js';

const M = 2 ** 32;

describe('FTP sequence delta: arithmetic', () => {
  test('seqAfter is modulo 2^32', () => {
    assert.equal(seqAfter(1, 0), true);
    assert.equal(seqAfter(0, 1), false);
    assert.equal(seqAfter(5, 5), false);
    assert.equal(seqAfter(3, M - 3), true, 'across the wrap');
    assert.equal(seqAfter(M - 3, 3), false);
  });

  test('one rewrite: the segment itself keeps its seq, later ones move; the client\'s acks map back', () => {
    const pos = 1000, len = 40, diff = 8;
    const d = noteRewrite(undefined, pos, diff) as SeqDelta;
    assert.deepEqual(d, { pos, before: 0, after: 8 });
    assert.equal(seqFwd(d, pos), pos, 'the rewritten segment itself');
    assert.equal(seqFwd(d, 900), 900, 'earlier data');
    assert.equal(seqFwd(d, pos + len), pos + len + diff, 'the next segment');
    // the client acks the rewritten segment's end as it saw it: pos + len + diff
    assert.equal(seqBack(d, pos + len + diff), pos + len);
    assert.equal(seqBack(d, pos), pos, 'an ack up to the rewritten segment');
    assert.equal(seqBack(d, 900), 900);
    for (let x = pos + len; x < pos + len + 5000; x += 123) assert.equal(seqBack(d, seqFwd(d, x)), x, `round trip ${x}`);
  });

  test('across the wrap of the sequence space', () => {
    const pos = M - 20, len = 30, diff = 8;
    const d = noteRewrite(undefined, pos, diff) as SeqDelta;
    assert.equal(seqFwd(d, pos), pos);
    const next = (pos + len) % M;   // 10, after the wrap
    assert.equal(next, 10);
    assert.equal(seqFwd(d, next), 18);
    assert.equal(seqBack(d, 18), 10);
    assert.equal(seqFwd(d, M - 1), (M - 1 + 8) % M, 'inside the rewritten segment\'s range but after pos: moved');
    assert.equal(seqBack(d, (pos + len + diff) % M), next);
    // a shrinking delta across the wrap
    const s = noteRewrite(undefined, 5, -7) as SeqDelta;
    assert.equal(seqFwd(s, 100), 93);
    assert.equal(seqBack(s, 93), 100);
    assert.equal(seqFwd(noteRewrite(undefined, M - 2, -7) as SeqDelta, 3), M - 4);
  });

  test('several rewrites on one connection add up; a retransmission counts once', () => {
    let d = noteRewrite(undefined, 1000, 8) as SeqDelta;
    assert.equal(noteRewrite(d, 1000, 8), d, 'retransmission of the first: unchanged');
    d = noteRewrite(d, 2000, 5) as SeqDelta;
    assert.deepEqual(d, { pos: 2000, before: 8, after: 13 });
    assert.equal(seqFwd(d, 2000), 2008, 'the second rewritten segment moves by the first delta');
    assert.equal(seqFwd(d, 2040), 2053);
    assert.equal(seqBack(d, 2053), 2040);
    assert.equal(seqBack(d, 2008), 2000, 'an ack up to the second rewritten segment');
    assert.equal(seqBack(d, 1500 + 8), 1500, 'between the two');
    assert.equal(noteRewrite(d, 2000, 5), d, 'retransmission of the second: unchanged');
    assert.equal(noteRewrite(d, 1500, 5), d, 'an older segment: unchanged');
    assert.equal(noteRewrite(d, 3000, 0), d, 'a rewrite that kept its length: unchanged');
    d = noteRewrite(d, 3000, 8) as SeqDelta;
    assert.deepEqual(d, { pos: 3000, before: 13, after: 21 });
    assert.equal(noteRewrite({ pos: 1, before: 0, after: MAX_DELTA }, 2, 1), null, 'bounded');
  });
});

describe('FTP 227 that must grow', () => {
  const frame = (payload: string) => tcpFrame({ src: '198.19.128.1', dst: '192.0.2.20', sport: 21, dport: 45000, seq: 7, flags: 0x18, payload: Buffer.from(payload) });

  test('no room: with resize only the numbers change and the reply grows', () => {
    for (const [p, want] of [
      ['227 (1,1,1,1,195,80)\r\n', '227 (198,19,128,1,195,80)\r\n'],
      ['227 =1,1,1,1,195,80\r\n', '227 =198,19,128,1,195,80\r\n'],
      ['227 (1,1,1,1,195,80)\r\n226 x\r\n', '227 (198,19,128,1,195,80)\r\n226 x\r\n'],
    ]) {
      const r = rewrite227(Buffer.from(p), '198.19.128.1', { resize: true });
      assert.equal(r.kind, 'rewritten');
      const x = r as { payload: Buffer; diff: number };
      assert.equal(x.payload.toString(), want);
      assert.equal(x.diff, want.length - p.length);
    }
    // with room the length is still kept (no delta)
    const k = rewrite227(Buffer.from('227 Entering Passive Mode (1,1,1,1,195,80).\r\n'), '198.19.128.1', { resize: true });
    assert.equal((k as { diff: number }).diff, 0);
  });

  test('the grown frame: IPv4 total length and both checksums right, link padding dropped', () => {
    const f = Buffer.concat([frame('227 (1,1,1,1,195,80)\r\n'), Buffer.alloc(6)]);   // Ethernet padding after the IP packet
    const out = rewriteFtpFrame(f, '198.19.128.1', { resize: true });
    assert.equal(out.kind, 'rewritten');
    const o = out as { frame: Buffer; diff: number };
    assert.equal(o.diff, 5, '1,1,1,1 -> 198,19,128,1');
    const p = parseFrame(o.frame);
    assert.ok(p.ip?.checksumOk, 'IPv4 checksum');
    assert.ok(p.l4?.checksumOk, 'TCP checksum');
    assert.equal(o.frame.readUInt16BE(16), o.frame.length - 14, 'IPv4 total length');
    assert.equal(p.l4!.payload.toString(), '227 (198,19,128,1,195,80)\r\n');
    assert.deepEqual(rewriteFtpFrame(f, '198.19.128.1'), { kind: 'passed', why: 'no_room' }, 'without resize');
  });

  test('a moved seq/ack keeps a good checksum good and a bad one bad', () => {
    const f = frame('150 Here comes the data\r\n');
    const d = { pos: 0, before: 0, after: 8 };
    assert.equal(moveField(f, 34, 38, (v) => seqFwd(d, v)), true);
    assert.equal(f.readUInt32BE(38), 15);
    assert.ok(parseFrame(f).l4?.checksumOk);
    const w = tcpFrame({ src: '198.19.128.1', dst: '192.0.2.20', sport: 21, dport: 45000, seq: M - 3, flags: 0x18, payload: Buffer.from('150 x\r\n') });
    assert.equal(moveField(w, 34, 38, (v) => seqFwd({ pos: M - 10, before: 0, after: 8 }, v)), true);
    assert.equal(w.readUInt32BE(38), 5, 'across the wrap');
    assert.ok(parseFrame(w).l4?.checksumOk);
    const bad = frame('150 x\r\n');
    bad[bad.length - 2] ^= 1;
    moveField(bad, 34, 38, (v) => seqFwd(d, v));
    assert.equal(parseFrame(bad).l4?.checksumOk, false);
  });
});
