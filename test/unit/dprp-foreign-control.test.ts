/**
 * Control messages of a type DPRP does not speak, in transit at a GE that
 * does not run their part (foreign-control.ts; docs/dprp.md "Control messages
 * of other parts in transit"): forwarded byte for byte but for TTL and header
 * checksum, or refused with a reason; never addressed to this host, a
 * special address, past TTL, or beyond the per-source bucket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForeignControlRelay, forwardedCopy, isDprpCode } from '../../controlplane/dprp/foreign-control.js';
import { buildIpv4Packet, inetChecksum, IPPROTO_ICMP } from '../../controlplane/dprp/ipv4.js';
import { MsgType } from '../../controlplane/dprp/wire.js';
import { HOLD_CODE } from '../../controlplane/dprp/hold.js';
import { CU_CODE } from '../../controlplane/mobility/cu-wire.js';

const SRC = '192.0.2.11';
const DST = '203.0.113.10';
const SELF = '198.51.100.1';
const cu = (ttl = 64) => buildIpv4Packet(SRC, DST, IPPROTO_ICMP, Buffer.from([253, CU_CODE.CU, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]), 7, ttl);
const relay = (burst = 4) => new ForeignControlRelay({ burst, ratePerSec: 1, maxKeys: 16 }, (a) => a === SELF || a === '198.51.100.255');

test('DPRP speaks its own message types and HOLD, not a Mobile PPC CU or CU-ACK', () => {
  for (const t of [MsgType.DDE, MsgType.RGI, MsgType.MPIT, MsgType.CDN, HOLD_CODE]) assert.equal(isDprpCode(t), true, `code ${t}`);
  for (const t of [CU_CODE.CU, CU_CODE.CU_ACK]) assert.equal(isDprpCode(t), false, `code ${t}`);
});

test('the forwarded copy differs only in TTL (one less) and a header checksum that verifies', () => {
  const ip = cu(64);
  const out = forwardedCopy(ip);
  assert.ok(Buffer.isBuffer(out));
  assert.equal(out[8], 63);
  assert.equal(inetChecksum(out, 0, 20), 0, 'the header checksum verifies');
  const a = Buffer.from(ip); const b = Buffer.from(out);
  for (const x of [a, b]) { x[8] = 0; x.writeUInt16BE(0, 10); }
  assert.deepEqual(b, a, 'every other byte unchanged');
  assert.notEqual(out, ip, 'a copy: the punted packet is untouched');
  assert.equal(ip[8], 64);
});

test('trailing bytes past the IP total length are not forwarded; TTL 1 or a bad header is refused', () => {
  const ip = cu();
  const out = forwardedCopy(Buffer.concat([ip, Buffer.alloc(6)]));
  assert.ok(Buffer.isBuffer(out) && out.length === ip.length);
  assert.equal(forwardedCopy(cu(1)), 'ttl_exceeded');
  assert.equal(forwardedCopy(cu(0)), 'ttl_exceeded');
  assert.equal(forwardedCopy(ip.subarray(0, 19)), 'malformed');
  const v6 = Buffer.from(ip); v6[0] = 0x65;
  assert.equal(forwardedCopy(v6), 'malformed');
  const long = Buffer.from(ip); long.writeUInt16BE(ip.length + 1, 2);
  assert.equal(forwardedCopy(long), 'malformed', 'total length past the bytes');
  const ihl = Buffer.from(ip); ihl[0] = 0x44;
  assert.equal(forwardedCopy(ihl), 'malformed', 'header shorter than 20 bytes');
});

test('never forwarded: to this host or its broadcast, from or to a special address', () => {
  const r = relay();
  assert.equal(r.decide(cu(), SRC, SELF, 0), 'to_this_host');
  assert.equal(r.decide(cu(), SRC, '198.51.100.255', 0), 'to_this_host');
  for (const [s, d] of [[SRC, '224.0.0.1'], [SRC, '255.255.255.255'], ['0.0.0.0', DST], ['127.0.0.1', DST]]) {
    assert.equal(r.decide(cu(), s, d, 0), 'special_address', `${s} -> ${d}`);
  }
});

test('a per-source bucket: past its burst a source is limited, another source is not, and tokens come back', () => {
  const r = relay(3);
  for (let i = 0; i < 3; i++) assert.ok(Buffer.isBuffer(r.decide(cu(), SRC, DST, 0)), `message ${i}`);
  assert.equal(r.decide(cu(), SRC, DST, 0), 'limited');
  assert.ok(Buffer.isBuffer(r.decide(cu(), '192.0.2.12', DST, 0)), 'another source has its own bucket');
  assert.ok(Buffer.isBuffer(r.decide(cu(), SRC, DST, 1_500)), 'a token earned back after a second');
});
