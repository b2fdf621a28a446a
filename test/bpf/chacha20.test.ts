/**
 * ChaCha20 in eBPF (bpf/lib/chacha20.h + the payload pass of bpf/lib/pccom_keystream.h),
 * run with BPF_PROG_TEST_RUN through the test-only program chacha_test:
 * RFC 8439 test vectors 2.3.2 (block function) and 2.4.2 (encryption), then
 * random keys/nonces/offsets/lengths against Node's OpenSSL ChaCha20. The
 * reduced-round variants (ChaCha12/ChaCha8, key flags) are checked against the
 * TypeScript reference (chacha-ref.ts), which is itself proved here on the RFC
 * vector, against OpenSSL at 20 rounds, and on the published all-zero-key
 * known answers for 20/12/8 rounds (draft-strombergson-chacha-test-vectors TC1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CryptoTestProgs, chachaKeystream } from './pccom-fixture.js';
import { chachaBlock, chachaStream, type ChachaRounds } from './chacha-ref.js';

const HDR = 14 + 32 + 4 + 12 + 4;

function input(key: Buffer, counter: number, nonce: Buffer, ksOff: number, data: Buffer, rounds = 0): Buffer {
  const h = Buffer.alloc(HDR);
  key.copy(h, 14);
  h.writeUInt32LE(counter >>> 0, 46);
  nonce.copy(h, 50);
  h.writeUInt32LE(ksOff | (rounds << 8), 62);
  return Buffer.concat([h, data]);
}

test('chacha20 in eBPF', async (t) => {
  const progs = new CryptoTestProgs();
  t.after(() => progs.cleanup());

  const rfcKey = Buffer.from([...Array(32).keys()]);

  await t.test('RFC 8439 2.3.2: block function (key 00..1f, counter 1)', () => {
    const nonce = Buffer.from('000000090000004a00000000', 'hex');
    const r = progs.run('chacha_test', input(rfcKey, 1, nonce, 0, Buffer.alloc(64)));
    assert.equal(r.retval, 0);
    const expected = Buffer.from(
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' +
      'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e', 'hex');
    assert.deepEqual(r.out.subarray(HDR), expected);
  });

  await t.test('RFC 8439 2.4.2: encryption of the sunscreen text (counter 1)', () => {
    const nonce = Buffer.from('000000000000004a00000000', 'hex');
    const pt = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    assert.equal(pt.length, 114);
    const r = progs.run('chacha_test', input(rfcKey, 1, nonce, 0, pt));
    assert.equal(r.retval, 0);
    const expected = Buffer.from(
      '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b' +
      'f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8' +
      '07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736' +
      '5af90bbf74a35be6b40b8eedf2785e42874d', 'hex');
    assert.deepEqual(r.out.subarray(HDR), expected);
    assert.deepEqual(r.out.subarray(0, HDR), input(rfcKey, 1, nonce, 0, pt).subarray(0, HDR), 'bytes before the data untouched');
  });

  await t.test('random key/nonce/counter/offset/length match OpenSSL ChaCha20', () => {
    // Lengths cover empty, head-only, head+tail, whole blocks, and the largest packet test-run takes.
    const lengths = [0, 1, 2, 62, 63, 64, 65, 127, 128, 129, 700, 1400, 1459, 3000];
    for (let i = 0; i < lengths.length; i++) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const counter = i === 0 ? 0xffffffff : randomBytes(4).readUInt32LE(0) >>> 6;
      const ksOff = [0, 1, 17, 63][i % 4];
      const data = randomBytes(lengths[i]);
      const r = progs.run('chacha_test', input(key, counter, nonce, ksOff, data));
      assert.equal(r.retval, 0, `len ${lengths[i]}`);
      // OpenSSL's 32-bit counter rolls over into the nonce; keep reference blocks inside one counter span
      const ks = counter === 0xffffffff ? Buffer.alloc(0) : chachaKeystream(key, counter, nonce, ksOff, data.length);
      if (counter !== 0xffffffff) {
        const expected = Buffer.from(data.map((b, j) => b ^ ks[j]));
        assert.deepEqual(r.out.subarray(HDR), expected, `len ${lengths[i]} off ${ksOff}`);
      }
      // XOR twice restores the data (the cipher is its own inverse)
      const back = progs.run('chacha_test', Buffer.concat([r.out.subarray(0, HDR), r.out.subarray(HDR)]));
      assert.deepEqual(back.out.subarray(HDR), data);
    }
  });

  // All-zero key and nonce, block 0: the same input in RFC 8439's layout and in the
  // original 64-bit-counter layout, so the published TC1 known answers apply.
  const KAT: Record<ChachaRounds, string> = {
    20: '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
    12: '9bf49a6a0755f953811fce125f2683d50429c3bb49e074147e0089a52eae155f0564f879d27ae3c02ce82834acfa8c793a629f2ca0de6919610be82f411326be',
    8: '3e00ef2f895f40d67f5bb8e81f09a5a12c840ec3ce9a7f3b181be188ef711a1e984ce172b9216f419f445367456d5619314a42a3da86b001387bfdb80e0cfe42',
  };

  await t.test('TypeScript reference: RFC 8439 2.3.2, OpenSSL at 20 rounds, TC1 known answers at 20/12/8', () => {
    const nonce = Buffer.from('000000090000004a00000000', 'hex');
    assert.equal(chachaBlock(rfcKey, 1, nonce).toString('hex'),
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' +
      'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e');
    for (let i = 0; i < 8; i++) {
      const key = randomBytes(32); const n = randomBytes(12); const ctr = randomBytes(4).readUInt32LE(0) >>> 8;
      assert.deepEqual(chachaStream(key, ctr, n, i * 7, 300), chachaKeystream(key, ctr, n, i * 7, 300));
    }
    for (const r of [20, 12, 8] as const) assert.equal(chachaBlock(Buffer.alloc(32), 0, Buffer.alloc(12), r).toString('hex'), KAT[r], `TC1 ${r} rounds`);
    assert.notEqual(KAT[12], KAT[8]);
  });

  await t.test('eBPF ChaCha12 and ChaCha8 = TC1 known answers and the TypeScript reference', () => {
    for (const r of [12, 8] as const) {
      const kat = progs.run('chacha_test', input(Buffer.alloc(32), 0, Buffer.alloc(12), 0, Buffer.alloc(64), r));
      assert.equal(kat.retval, 0);
      assert.equal(kat.out.subarray(HDR).toString('hex'), KAT[r], `TC1 ${r} rounds`);
      for (const [len, ksOff] of [[1, 0], [63, 1], [65, 17], [700, 63], [1400, 5], [3000, 0]]) {
        const key = randomBytes(32); const nonce = randomBytes(12); const ctr = randomBytes(4).readUInt32LE(0) >>> 6;
        const data = randomBytes(len);
        const res = progs.run('chacha_test', input(key, ctr, nonce, ksOff, data, r));
        assert.equal(res.retval, 0);
        const ks = chachaStream(key, ctr, nonce, ksOff, len, r);
        assert.deepEqual(res.out.subarray(HDR), Buffer.from(data.map((b, j) => b ^ ks[j])), `${r} rounds len ${len} off ${ksOff}`);
      }
    }
    assert.equal(progs.run('chacha_test', input(rfcKey, 0, Buffer.alloc(12), 0, Buffer.alloc(64), 10)).retval, 1, 'unknown round count refused');
  });
});
