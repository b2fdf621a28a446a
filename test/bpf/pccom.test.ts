/**
 * PCCOM hooks (bpf/lib/pccom.h) on crafted packets with BPF_PROG_TEST_RUN:
 * encrypt -> decrypt round trips for TCP and UDP, wire bytes checked against an
 * independent reference (Node's OpenSSL ChaCha20 + the checksum rules of
 * docs/pccom.md), and every rejection counted under its drop reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PIT_F_WIRE_CSUM } from '../../controlplane/maps/abi.js';
import {
  ACT_DECRYPT, ACT_ENCRYPT, CryptoTestProgs, KEY_F_ROUNDS_12, KEY_F_ROUNDS_8, STAT, ipCsumOk, maxRunBytes, ordinaryCsum, parse,
  referenceEncrypt, referenceK, tcpPacket, udpPacket,
} from './pccom-fixture.js';

const add16 = (a: number, b: number): number => { let s = a + b; while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s; };
const neg16 = (a: number): number => (~a) & 0xffff;

const GROUP = 7;
const KEY_V1 = randomBytes(32);
const KEY_V2 = randomBytes(32);

function csumField(pkt: Buffer): number {
  const p = parse(pkt);
  return pkt.readUInt16LE(p.l4 + (p.proto === 6 ? 16 : 6));
}

test('PCCOM hooks under BPF_PROG_TEST_RUN', async (t) => {
  const progs = new CryptoTestProgs();
  t.after(() => progs.cleanup());
  progs.setKey(GROUP, 1, KEY_V1);
  progs.setKey(GROUP, 2, KEY_V2);
  const maxBytes = maxRunBytes(progs);

  const encrypt = (pkt: Buffer, version = 1) => { progs.setPit(ACT_ENCRYPT, GROUP, version); return progs.run('pccom_test_egress', pkt); };
  const decrypt = (pkt: Buffer, version = 1, prev = 0) => { progs.setPit(ACT_DECRYPT, GROUP, version, prev); return progs.run('pccom_test_ingress', pkt); };

  const tcpHdrBytes = 14 + 20 + 32;
  const udpHdrBytes = 14 + 20 + 8;
  // 511..1025: the payload sum's 512-byte chunks (bpf_csum_diff) and its zero-padded remainder
  const sizes = (hdr: number) => [0, 1, 63, 64, 65, 511, 512, 513, 1024, 1025, 1400, maxBytes - hdr];

  await t.test(`TCP round trip at payload sizes ${sizes(tcpHdrBytes).join(', ')}`, () => {
    for (const n of sizes(tcpHdrBytes)) {
      for (const seq of [0x12345678, 0xffffffc1, 64 * 1000]) {  // mid-block, wrapping, block-aligned
        const payload = randomBytes(n);
        const plain = tcpPacket({ seq, payload });
        const enc = encrypt(plain);
        assert.equal(enc.retval, 0, `encrypt n=${n}`);
        assert.equal(enc.out.length, plain.length, 'length unchanged');
        const p = parse(plain);
        assert.deepEqual(enc.out.subarray(0, p.l4 + 16), plain.subarray(0, p.l4 + 16), 'headers unchanged up to the checksum');
        assert.deepEqual(enc.out.subarray(p.l4 + 18, p.payOff), plain.subarray(p.l4 + 18, p.payOff), 'headers unchanged after the checksum');
        assert.deepEqual(enc.out, referenceEncrypt(plain, KEY_V1), `wire bytes = reference n=${n} seq=${seq}`);
        if (n >= 16) assert.notDeepEqual(enc.out.subarray(p.payOff), payload, 'payload encrypted');
        if (n > 0) assert.notEqual(csumField(enc.out), ordinaryCsum(enc.out), 'checksum is not the ordinary one');
        const dec = decrypt(enc.out);
        assert.equal(dec.retval, 0, `decrypt n=${n}`);
        assert.deepEqual(dec.out, plain, 'decrypted packet = original, ordinary checksum restored');
      }
    }
  });

  await t.test(`UDP round trip at payload sizes ${sizes(udpHdrBytes).join(', ')}`, () => {
    for (const n of sizes(udpHdrBytes)) {
      const payload = randomBytes(n);
      const plain = udpPacket({ payload });
      const enc = encrypt(plain);
      assert.equal(enc.retval, 0, `encrypt n=${n}`);
      assert.equal(enc.out.length, plain.length);
      assert.ok(ipCsumOk(enc.out), 'IPv4 header checksum valid after the IP ID rewrite');
      // the sender chose the IP ID (nonce); everything else in the headers is unchanged
      const expectPlain = Buffer.from(plain);
      enc.out.copy(expectPlain, 14 + 4, 14 + 4, 14 + 6);
      enc.out.copy(expectPlain, 14 + 10, 14 + 10, 14 + 12);
      expectPlain.writeUInt16LE(ordinaryCsum(expectPlain), 14 + 20 + 6);
      assert.deepEqual(enc.out.subarray(14 + 20, 14 + 26), plain.subarray(14 + 20, 14 + 26), 'ports and length unchanged');
      assert.deepEqual(enc.out, referenceEncrypt(expectPlain, KEY_V1), `wire bytes = reference n=${n}`);
      assert.notEqual(csumField(enc.out), 0, 'never "no checksum"');
      const dec = decrypt(enc.out);
      assert.equal(dec.retval, 0, `decrypt n=${n}`);
      assert.deepEqual(dec.out, expectPlain);
    }
  });

  await t.test('equal plaintext gives different ciphertext (UDP: two packets; TCP: two sequence numbers)', () => {
    const payload = Buffer.alloc(256, 0x41);
    const u1 = encrypt(udpPacket({ payload })).out;
    const u2 = encrypt(udpPacket({ payload })).out;
    assert.notDeepEqual(u1.subarray(42), u2.subarray(42));
    assert.notEqual(u1.readUInt16BE(18), u2.readUInt16BE(18), 'fresh IP ID per datagram');
    const t1 = encrypt(tcpPacket({ seq: 1000, payload })).out;
    const t2 = encrypt(tcpPacket({ seq: 1000 + 256, payload })).out;
    assert.notDeepEqual(t1.subarray(66), t2.subarray(66));
    // a retransmission (same seq, ack, TSval) encrypts identically: same plaintext, same keystream
    const t3 = encrypt(tcpPacket({ seq: 1000, payload })).out;
    assert.deepEqual(t3, t1);
    // a segment cut at another boundary still decrypts (keystream position = seq)
    const half = tcpPacket({ seq: 1000 + 100, payload: payload.subarray(100) });
    const eh = encrypt(half).out;
    assert.deepEqual(eh.subarray(66), t1.subarray(66 + 100), 'resegmented bytes encrypt to the same ciphertext');
  });

  await t.test('tampering is rejected and counted as bad keyed checksum', () => {
    const before = progs.stat(STAT.DROP_BAD_KEYED_CSUM);
    const plain = tcpPacket({ payload: randomBytes(1400) });
    const enc = encrypt(plain).out;
    const flipped = Buffer.from(enc); flipped[66 + 700] ^= 0x04;
    assert.equal(decrypt(flipped).retval, STAT.DROP_BAD_KEYED_CSUM, 'flipped payload bit');
    const port = Buffer.from(enc); port.writeUInt16BE(40001, 34);
    assert.equal(decrypt(port).retval, STAT.DROP_BAD_KEYED_CSUM, 'changed source port');
    const seq = Buffer.from(enc); seq.writeUInt32BE(enc.readUInt32BE(38) + 1, 38);
    assert.equal(decrypt(seq).retval, STAT.DROP_BAD_KEYED_CSUM, 'changed sequence number');
    assert.equal(decrypt(enc, 2).retval, STAT.DROP_BAD_KEYED_CSUM, 'wrong key version');
    const uplain = udpPacket({ payload: randomBytes(300) });
    const uenc = encrypt(uplain).out;
    const uflip = Buffer.from(uenc); uflip[42 + 299] ^= 0x80;
    assert.equal(decrypt(uflip).retval, STAT.DROP_BAD_KEYED_CSUM, 'UDP flipped bit');
    const uport = Buffer.from(uenc); uport.writeUInt16BE(5002, 36);
    assert.equal(decrypt(uport).retval, STAT.DROP_BAD_KEYED_CSUM, 'UDP changed port');
    const uzero = Buffer.from(uenc); uzero.writeUInt16BE(0, 40);
    assert.equal(decrypt(uzero).retval, STAT.DROP_BAD_KEYED_CSUM, 'UDP zero checksum');
    assert.equal(decrypt(plain).retval, STAT.DROP_BAD_KEYED_CSUM, 'plaintext with an ordinary checksum');
    assert.equal(progs.stat(STAT.DROP_BAD_KEYED_CSUM) - before, 8, 'each rejection counted');
  });

  await t.test('wire-valid TCP form (PIT flag WIRE_CSUM): ordinary checksum, K in the urgent pointer; the receiver takes both forms', () => {
    for (const n of [0, 1, 100, 1400]) {
      const plain = tcpPacket({ seq: 0x1000 + n, payload: randomBytes(n) });
      const p = parse(plain);
      const keyed = encrypt(plain);
      progs.setPit(ACT_ENCRYPT, GROUP, 1, 0, PIT_F_WIRE_CSUM);
      const wire = progs.run('pccom_test_egress', plain);
      assert.equal(wire.retval, 0);
      assert.equal(csumField(wire.out), ordinaryCsum(wire.out), `n=${n}: the ordinary checksum (what conntrack verifies)`);
      assert.equal(wire.out.readUInt16LE(p.l4 + 18), referenceK(plain, KEY_V1), 'K in the urgent pointer');
      assert.equal(wire.out[p.l4 + 13] & 0x20, 0, 'URG stays clear');
      assert.equal(csumField(wire.out), csumField(keyed.out), 'the same field value as the keyed form');
      assert.deepEqual(wire.out.subarray(p.payOff), keyed.out.subarray(p.payOff), 'the same ciphertext');
      for (const form of [wire.out, keyed.out]) {
        const dec = decrypt(form);
        assert.equal(dec.retval, 0, `n=${n} decrypts`);
        assert.deepEqual(dec.out, plain, 'plaintext, zero urgent pointer, ordinary checksum');
      }
      // K moved off its value: refused, and so is the wire form of another key
      const bad = Buffer.from(wire.out);
      bad.writeUInt16LE(bad.readUInt16LE(p.l4 + 18) ^ 0x0100, p.l4 + 18);
      bad.writeUInt16LE(ordinaryCsum(bad), p.l4 + 16);
      const before = progs.stat(STAT.DROP_BAD_KEYED_CSUM);
      assert.equal(decrypt(bad).retval, STAT.DROP_BAD_KEYED_CSUM);
      assert.equal(progs.stat(STAT.DROP_BAD_KEYED_CSUM), before + 1);
    }
    // the application's urgent data: the keyed form, its urgent pointer untouched
    const urgent = tcpPacket({ payload: randomBytes(64) });
    const ul4 = parse(urgent).l4;
    urgent[ul4 + 13] |= 0x20;
    urgent.writeUInt16BE(7, ul4 + 18);
    urgent.writeUInt16LE(ordinaryCsum(urgent), ul4 + 16);
    progs.setPit(ACT_ENCRYPT, GROUP, 1, 0, PIT_F_WIRE_CSUM);
    const u = progs.run('pccom_test_egress', urgent);
    assert.equal(u.retval, 0);
    assert.equal(u.out.readUInt16BE(ul4 + 18), 7, 'urgent pointer kept');
    assert.notEqual(csumField(u.out), ordinaryCsum(u.out), 'keyed form');
    assert.deepEqual(decrypt(u.out).out, urgent);
  });

  await t.test('two key versions at once (rotation); a missing key drops, never plaintext', () => {
    const plain = tcpPacket({ payload: randomBytes(500) });
    const e2 = encrypt(plain, 2);
    assert.equal(e2.retval, 0);
    assert.deepEqual(e2.out, referenceEncrypt(plain, KEY_V2));
    assert.deepEqual(decrypt(e2.out, 2).out, plain);
    assert.deepEqual(decrypt(encrypt(plain, 1).out, 1).out, plain, 'version 1 still works');
    const before = progs.stat(STAT.DROP_NO_KEY);
    const r = encrypt(plain, 3);
    assert.equal(r.retval, STAT.DROP_NO_KEY);
    assert.equal(decrypt(e2.out, 3).retval, STAT.DROP_NO_KEY);
    progs.delKey(GROUP, 1);
    assert.equal(encrypt(plain, 1).retval, STAT.DROP_NO_KEY, 'deleted key');
    assert.equal(progs.stat(STAT.DROP_NO_KEY) - before, 3);
    progs.setKey(GROUP, 1, KEY_V1);
  });

  await t.test('no key material stays in the per-CPU scratch after a packet', () => {
    encrypt(tcpPacket({ payload: randomBytes(700) }));
    decrypt(encrypt(udpPacket({ payload: randomBytes(70) })).out);
    const cells = progs.scratchCells();
    assert.ok(cells.length > 0 && cells.every((c) => c.length >= 32 + 12 + 64));
    for (const c of cells) {
      assert.equal(c.indexOf(KEY_V1.subarray(0, 8)), -1, 'key bytes wiped');
      assert.ok(c.subarray(0, 32).every((b) => b === 0), 'key copy zeroed');
    }
  });

  await t.test('fragments are refused', () => {
    const plain = udpPacket({ payload: randomBytes(100) });
    plain.writeUInt16BE(0x2000, 14 + 6);  // MF
    assert.equal(encrypt(plain).retval, STAT.DROP_FRAGMENT);
  });

  await t.test('GSO/TSO: segments cut from one encrypted skb, each with ordinary(ciphertext segment) + K, all decrypt', () => {
    // What software GSO or a NIC's TSO does after TC egress: cut the payload, advance seq,
    // change flags on the last segment, compute each checksum from the seed (= pseudo + K).
    const payload = randomBytes(3000);
    const plain = tcpPacket({ seq: 0xfffff000, payload });
    const enc = encrypt(plain).out;
    const p = parse(enc);
    const k = referenceK(plain, KEY_V1);
    // K is the difference between the field and the ordinary checksum of the ciphertext (also
    // what any observer of one packet learns: docs/pccom.md, "What K reveals")
    assert.equal(add16(neg16(csumField(enc)), ordinaryCsum(enc)), k, 'field = ordinary(ciphertext) + K');
    let off = 0;
    for (const [i, len] of [1000, 1448, 552].entries()) {
      const seg = tcpPacket({ seq: (0xfffff000 + off) >>> 0, payload: enc.subarray(p.payOff + off, p.payOff + off + len) });
      if (i === 2) seg[14 + 20 + 13] = 0x19;  // FIN|PSH|ACK on the last segment only
      seg.writeUInt16LE(neg16(add16(neg16(ordinaryCsum(seg)), k)), 14 + 20 + 16);
      const dec = decrypt(seg);
      assert.equal(dec.retval, 0, `segment ${i} accepted`);
      assert.deepEqual(dec.out.subarray(66), payload.subarray(off, off + len), `segment ${i} decrypts to its plaintext`);
      assert.equal(csumField(dec.out), ordinaryCsum(dec.out), `segment ${i} carries the ordinary checksum after decryption`);
      off += len;
    }
    // K depends on ack, TSval and TSecr: a segment with another ack needs another K
    const other = tcpPacket({ ack: 1, payload: Buffer.alloc(64) });
    assert.notEqual(referenceK(other, KEY_V1), k);
  });

  await t.test('rotation: a decrypt entry (version 2, prev 1) takes both versions and counts the fallback', () => {
    for (const mk of [() => tcpPacket({ payload: randomBytes(1400) }), () => udpPacket({ payload: randomBytes(900) })]) {
      const plain = mk();
      const e1 = encrypt(plain, 1).out;
      const e2 = encrypt(plain, 2).out;
      const expect1 = decrypt(e1, 1).out;  // UDP: plaintext with the sender's IP ID
      const expect2 = decrypt(e2, 2).out;
      const prev0 = progs.stat(STAT.PIT_DECRYPT_PREV);
      const bad0 = progs.stat(STAT.DROP_BAD_KEYED_CSUM);
      const r1 = decrypt(e1, 2, 1);
      assert.equal(r1.retval, 0, 'old-version packet accepted');
      assert.deepEqual(r1.out, expect1, 'and decrypted under version 1 (a failed try leaves no trace)');
      assert.equal(progs.stat(STAT.PIT_DECRYPT_PREV) - prev0, 1, 'counted as decrypt under prev_key_version');
      const r2 = decrypt(e2, 2, 1);
      assert.equal(r2.retval, 0);
      assert.deepEqual(r2.out, expect2);
      assert.equal(progs.stat(STAT.PIT_DECRYPT_PREV) - prev0, 1, 'a current-version packet is not a fallback');
      assert.equal(decrypt(e1, 2, 0).retval, STAT.DROP_BAD_KEYED_CSUM, 'no prev: old version rejected');
      assert.equal(decrypt(e1, 2, 5).retval, STAT.DROP_BAD_KEYED_CSUM, 'prev names a missing key: bad keyed checksum');
      const flipped = Buffer.from(e1); flipped[flipped.length - 1] ^= 1;
      assert.equal(decrypt(flipped, 2, 1).retval, STAT.DROP_BAD_KEYED_CSUM, 'tampered packet fails under both versions');
      assert.equal(progs.stat(STAT.DROP_BAD_KEYED_CSUM) - bad0, 3);
    }
  });

  await t.test('ChaCha12 / ChaCha8 keys: wire bytes = TS reference at that round count; both bits refused', () => {
    const key = randomBytes(32);
    for (const [flags, rounds] of [[KEY_F_ROUNDS_12, 12], [KEY_F_ROUNDS_8, 8]] as const) {
      progs.setKey(GROUP, 40 + rounds, key, flags);
      for (const n of [0, 1, 63, 65, 1400]) {
        const plain = tcpPacket({ seq: 0x12345678 + n, payload: randomBytes(n) });
        const enc = encrypt(plain, 40 + rounds);
        assert.equal(enc.retval, 0);
        assert.deepEqual(enc.out, referenceEncrypt(plain, key, rounds), `${rounds} rounds n=${n}`);
        if (n > 0) assert.notDeepEqual(enc.out, referenceEncrypt(plain, key, 20), 'not the 20-round stream');
        assert.deepEqual(decrypt(enc.out, 40 + rounds).out, plain);
      }
      const u = udpPacket({ payload: randomBytes(300) });
      const ue = encrypt(u, 40 + rounds);
      assert.equal(ue.retval, 0);
      const uplain = Buffer.from(u); ue.out.copy(uplain, 14, 14, 34);
      uplain.writeUInt16LE(ordinaryCsum(uplain), 14 + 20 + 6);
      assert.deepEqual(ue.out, referenceEncrypt(uplain, key, rounds), `UDP ${rounds} rounds`);
    }
    progs.setKey(GROUP, 60, key, KEY_F_ROUNDS_12 | KEY_F_ROUNDS_8);
    assert.equal(encrypt(tcpPacket({ payload: randomBytes(10) }), 60).retval, STAT.DROP_UNSUPPORTED);
  });
});
