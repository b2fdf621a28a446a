/**
 * ChaCha20 in eBPF (bpf/lib/chacha20.h + the payload pass of bpf/lib/pccom.h),
 * run with BPF_PROG_TEST_RUN through the test-only program chacha_test:
 * RFC 8439 test vectors 2.3.2 (block function) and 2.4.2 (encryption), then
 * random keys/nonces/offsets/lengths against Node's OpenSSL ChaCha20.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CryptoTestProgs, chachaKeystream } from './pccom-fixture.js';

const HDR = 14 + 32 + 4 + 12 + 4;

function input(key: Buffer, counter: number, nonce: Buffer, ksOff: number, data: Buffer): Buffer {
  const h = Buffer.alloc(HDR);
  key.copy(h, 14);
  h.writeUInt32LE(counter >>> 0, 46);
  nonce.copy(h, 50);
  h.writeUInt32LE(ksOff, 62);
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
});
