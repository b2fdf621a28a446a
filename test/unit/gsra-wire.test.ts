/** GSRA message codecs: every message round-trips; the MAC binds user, code and body; malformed input is refused with its reason. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inetChecksum } from '../../controlplane/dprp/ipv4.js';
import { decodeGsra, encodeGsra, GsraCode, GsraWireError, REFUSE_REASONS, verifyGsra, type GsraBody, type GsraWireReason } from '../../controlplane/gsra/wire.js';

const KEY = Buffer.alloc(32, 7);
const BODIES: GsraBody[] = [
  { code: GsraCode.AUTH, group: 1, proto: 6, dport: 22, name: 'alice.corp.example.net' },
  { code: GsraCode.AUTH_OK, t: 40001, leaseS: 10 },
  { code: GsraCode.BIND, pen: { addr: '100.64.9.2', port: 51000 }, t: 40001 },
  { code: GsraCode.BIND_OK, seen: { addr: '203.0.113.7', port: 61000 }, t: 40001 },
  { code: GsraCode.MAP, proto: 17, t: 40001, en: { addr: '203.0.113.7', port: 61000 }, dport: 53 },
  { code: GsraCode.MAP_OK, t: 40001, idleS: 300, action: 3 },
  { code: GsraCode.CLOSE, t: 40001 },
  ...REFUSE_REASONS.slice(1).map((reason) => ({ code: GsraCode.REFUSE, reason }) as GsraBody),
];

test('every GSRA message round-trips and verifies under its key only', () => {
  for (const body of BODIES) {
    const m = { userId: 'alice', msgId: randomBytes(8), timestampMs: 1_700_000_000_123, body };
    const w = encodeGsra(m, KEY);
    assert.equal(w[0], 253);
    assert.equal(w[1], body.code);
    assert.equal(inetChecksum(w), 0);
    const d = decodeGsra(w);
    assert.deepEqual({ userId: d.userId, msgId: d.msgId, timestampMs: d.timestampMs, body: d.body }, m);
    assert.ok(verifyGsra(d, KEY));
    assert.ok(!verifyGsra(d, Buffer.alloc(32, 8)), 'another key');
  }
});

test('the MAC covers the user ID and body: one flipped byte fails (checksum fixed up)', () => {
  const w = encodeGsra({ userId: 'alice', msgId: randomBytes(8), timestampMs: 5, body: BODIES[0] }, KEY);
  for (let i = 8; i < w.length - 16; i++) {
    const x = Buffer.from(w);
    x[i] ^= 0x01;
    x.writeUInt16BE(0, 2);
    x.writeUInt16BE(inetChecksum(x), 2);
    let d;
    try { d = decodeGsra(x); } catch { continue; } // malformed now: refused anyway
    assert.ok(!verifyGsra(d, KEY), `byte ${i} flipped still verifies`);
  }
});

test('malformed messages: each refused with its reason', () => {
  const good = encodeGsra({ userId: 'alice', msgId: randomBytes(8), timestampMs: 5, body: BODIES[0] }, KEY);
  const fix = (b: Buffer): Buffer => { b.writeUInt16BE(0, 2); b.writeUInt16BE(inetChecksum(b), 2); return b; };
  const cases: Array<[GsraWireReason, Buffer]> = [
    ['too_short', good.subarray(0, 30)],
    ['bad_type', fix(Buffer.concat([Buffer.from([253, 8]), good.subarray(2)]))],
    ['bad_checksum', (() => { const b = Buffer.from(good); b[2] ^= 1; return b; })()],
    ['bad_version', fix((() => { const b = Buffer.from(good); b[8] = 2; return b; })())],
    ['bad_user', fix((() => { const b = Buffer.from(good); b[10] = 0; return b; })())],
    ['bad_length', fix(Buffer.concat([good.subarray(0, good.length - 16), Buffer.alloc(1), good.subarray(good.length - 16)]))],
    ['bad_reason', fix((() => { const b = Buffer.from(good); b[9] = 1; return b; })())],
  ];
  for (const [reason, b] of cases) {
    assert.throws(() => decodeGsra(b), (e: unknown) => e instanceof GsraWireError && e.reason === reason, reason);
  }
});

test('encode refuses what it cannot say', () => {
  assert.throws(() => encodeGsra({ userId: 'a b', msgId: randomBytes(8), timestampMs: 1, body: BODIES[1] }, KEY), /user ID/);
  assert.throws(() => encodeGsra({ userId: 'a', msgId: randomBytes(4), timestampMs: 1, body: BODIES[1] }, KEY), /msg id/);
  assert.throws(() => encodeGsra({ userId: 'a', msgId: randomBytes(8), timestampMs: 1, body: { code: GsraCode.AUTH_OK, t: 70000, leaseS: 1 } }, KEY), /t: 70000/);
});
