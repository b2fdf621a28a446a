/**
 * DPRP wire codec: round trips of every message type, exact byte positions,
 * and one test per rejection reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addrPortOption, decode, DprpWireError, encode, encodedLength, GSCIP_ICMP_TYPE, MAX_RECORDS, MsgType, OptionType,
  REC_F_IS_DEST, Status, WIRE_REJECT_REASONS, WireAction, WireRole, withCandDepth, type DprpMessage, type WireRejectReason,
} from '../../controlplane/dprp/wire.js';
import { buildIpv4Packet, inetChecksum, parseIpv4 } from '../../controlplane/dprp/ipv4.js';

const flow = { saddr: '192.0.2.11', daddr: '198.51.100.10', sport: 40000, dport: 443, proto: 6 };
const tag = (n: number) => Buffer.alloc(16, n);

function base(type: MsgType): DprpMessage {
  return {
    type, flags: 0, attempt: 1, negId: Buffer.from('0102030405060708', 'hex'), timestampMs: 1_700_000_000_123,
    flow, status: Status.OK, startGe: '192.0.2.11', endGe: type === MsgType.DDE ? '0.0.0.0' : '192.0.2.1',
    records: [], actions: [], seal: null, options: [],
  };
}

function sample(type: MsgType): DprpMessage {
  const m = base(type);
  if (type === MsgType.DDE || type === MsgType.RGI) {
    m.records.push({ addr: '192.0.2.1', geType: 'GEN', mode: 'CL', flags: REC_F_IS_DEST, tags: [tag(1), tag(2)], options: [] });
  }
  if (type === MsgType.RGI) {
    m.records.push({
      addr: '192.0.2.2', geType: 'GNAT', mode: 'OP', flags: 0, tags: [],
      options: [{ type: OptionType.NATF_PORT, value: Buffer.from([0x1f, 0x90]) }],
    });
  }
  if (type === MsgType.MPIT) {
    m.actions.push({ addr: '192.0.2.1', action: WireAction.DECRYPT, role: WireRole.END, flags: 0, selector: tag(3), mac: tag(4) });
    m.actions.push({ addr: '192.0.2.2', action: WireAction.PASS, role: WireRole.INTERMEDIATE, flags: 1, selector: tag(0), mac: tag(0) });
  }
  if (type === MsgType.CDN) m.seal = { selector: tag(5), mac: tag(6) };
  m.options = [
    addrPortOption(OptionType.MOBILE_OLD, '192.0.2.11', 40000),
    addrPortOption(OptionType.MOBILE_NEW, '203.0.113.5', 40000),
    { type: OptionType.NATF_NAME, value: Buffer.from('bob.example') },
    { type: 0x90, value: Buffer.from([1, 2, 3]) }, // skippable unknown: kept opaque
  ];
  return m;
}

for (const type of [MsgType.DDE, MsgType.RGI, MsgType.MPIT, MsgType.CDN]) {
  test(`round trip: message type ${type}`, () => {
    const m = sample(type);
    const b = encode(m);
    assert.equal(b.length, encodedLength(m));
    assert.equal(b[0], GSCIP_ICMP_TYPE);
    assert.equal(b[1], type, 'ICMP code is the message type');
    assert.equal(inetChecksum(b), 0, 'ICMP checksum valid');
    const d = decode(b);
    assert.deepEqual(d, { ...m, candDepth: 0 });
    assert.deepEqual(encode(d), b, 'canonical: re-encoding gives the same bytes');
  });
}

test('byte positions match docs/dprp.md', () => {
  const b = encode(sample(MsgType.MPIT));
  assert.equal(b[8], 1, 'version');
  assert.equal(b[9], MsgType.MPIT);
  assert.equal(b[11], 1, 'attempt');
  assert.equal(b.subarray(12, 20).toString('hex'), '0102030405060708', 'negotiation id');
  assert.equal(b.readBigUInt64BE(20), 1_700_000_000_123n, 'timestamp');
  assert.equal(b.readUInt16BE(28), b.length - 32, 'body length');
  assert.deepEqual([...b.subarray(32, 36)], [192, 0, 2, 11], 'CID saddr');
  assert.equal(b.readUInt16BE(40), 40000, 'CID sport');
  assert.equal(b.readUInt16BE(42), 443, 'CID dport');
  assert.equal(b[44], 6, 'CID proto');
  assert.equal(b[46], 0, 'records');
  assert.equal(b[47], 2, 'actions');
  assert.deepEqual([...b.subarray(52, 56)], [192, 0, 2, 1], 'end GE');
  assert.deepEqual([...b.subarray(60, 64)], [192, 0, 2, 1], 'first action: addressee');
  assert.equal(b[64], WireAction.DECRYPT, 'first action: action');
  assert.equal(b[65], WireRole.END, 'first action: role');
  assert.deepEqual(b.subarray(68, 84), tag(3), 'first action: selector');
  assert.deepEqual(b.subarray(84, 100), tag(4), 'first action: MAC');
});

test('IPv4 framing: build and parse', () => {
  const icmp = encode(sample(MsgType.CDN));
  const p = buildIpv4Packet('192.0.2.1', '192.0.2.11', 1, icmp);
  assert.equal(inetChecksum(p, 0, 20), 0);
  const v = parseIpv4(p)!;
  assert.equal(v.src, '192.0.2.1');
  assert.equal(v.dst, '192.0.2.11');
  assert.deepEqual(v.payload, icmp);
  assert.equal(parseIpv4(p.subarray(0, 10)), null);
});

test('candidate depth is hop-by-hop on DDE only', () => {
  const b = withCandDepth(encode(sample(MsgType.DDE)), 2);
  assert.equal(decode(b).candDepth, 2);
  assert.throws(() => decode(withCandDepth(encode(sample(MsgType.RGI)), 1)), (e: DprpWireError) => e.reason === 'bad_field');
});

function rejects(b: Buffer, reason: WireRejectReason) {
  assert.throws(() => decode(b), (e: unknown) => e instanceof DprpWireError && e.reason === reason, `expected ${reason}`);
}
/** Re-checksums after an edit so the edit itself is what is tested. */
function fix(b: Buffer): Buffer {
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}
function edit(type: MsgType, f: (b: Buffer) => void): Buffer {
  const b = Buffer.from(encode(sample(type)));
  f(b);
  return fix(b);
}

test('every rejection reason is reachable and named', () => {
  const seen = new Set<WireRejectReason>();
  const r = (b: Buffer, reason: WireRejectReason) => { rejects(b, reason); seen.add(reason); };
  r(Buffer.alloc(10), 'too_short');
  r(Buffer.alloc(2000), 'too_long');
  r(edit(MsgType.CDN, (b) => { b[0] = 8; }), 'not_gscip_icmp');
  const bad = Buffer.from(encode(sample(MsgType.CDN))); bad[40] ^= 1; r(bad, 'bad_checksum');
  r(edit(MsgType.CDN, (b) => { b[8] = 2; }), 'bad_version');
  r(edit(MsgType.CDN, (b) => { b[1] = 9; b[9] = 9; }), 'unknown_msg_type');
  r(edit(MsgType.CDN, (b) => { b[1] = 3; }), 'code_mismatch');
  r(edit(MsgType.CDN, (b) => { b.writeUInt16BE(b.readUInt16BE(28) + 1, 28); }), 'bad_length');
  r(edit(MsgType.CDN, (b) => { b[7] = 1; }), 'reserved_nonzero');
  r(edit(MsgType.RGI, (b) => { b[46] = MAX_RECORDS + 1; }), 'too_many_records');
  r(edit(MsgType.RGI, (b) => { b[60 + 7] = 17; }), 'too_many_tags');
  r(edit(MsgType.MPIT, (b) => { b[47] = 17; }), 'too_many_actions');
  r(edit(MsgType.CDN, (b) => { b[56] = 2; }), 'bad_seal_count');
  r(edit(MsgType.RGI, (b) => { b[60 + 5] = 7; }), 'bad_field'); // mode
  r(edit(MsgType.MPIT, (b) => { b[46] = 1; }), 'counts_for_type');
  r(edit(MsgType.CDN, (b) => { b[b.length - 4] = 200; }), 'bad_option'); // skippable TLV length overruns
  const extra = Buffer.concat([encode(sample(MsgType.CDN)), Buffer.alloc(2)]);
  extra.writeUInt16BE(extra.readUInt16BE(28) + 2, 28);
  r(fix(extra), 'trailing_bytes');
  assert.deepEqual([...seen].sort(), [...WIRE_REJECT_REASONS].sort(), 'all reasons covered');
});

test('options: fixed lengths, host names, duplicates and unknown critical types are refused', () => {
  const m = sample(MsgType.DDE);
  const enc = (opts: DprpMessage['options']) => () => encode({ ...m, options: opts });
  assert.throws(enc([{ type: OptionType.NATF_LIP, value: Buffer.alloc(3) }]), /NATF_LIP|needs 4/);
  assert.throws(enc([{ type: OptionType.NATF_NAME, value: Buffer.from('bad name!') }]), /host name/);
  assert.throws(enc([addrPortOption(1, '192.0.2.1', 1), addrPortOption(1, '192.0.2.1', 2)]), /duplicate/);
  assert.throws(enc([{ type: 0x10, value: Buffer.alloc(1) }]), /unknown critical/);
  assert.doesNotThrow(enc([{ type: 0xfe, value: Buffer.alloc(1) }]));
});

test('encode refuses what decode would refuse', () => {
  assert.throws(() => encode({ ...base(MsgType.MPIT) }), (e: DprpWireError) => e.reason === 'counts_for_type');
  assert.throws(() => encode({ ...sample(MsgType.CDN), negId: Buffer.alloc(4) }), (e: DprpWireError) => e.reason === 'bad_field');
  assert.throws(() => encode({ ...sample(MsgType.CDN), startGe: '300.1.1.1' }), /startGe/);
  const big = sample(MsgType.RGI);
  big.records = Array.from({ length: 16 }, (_, i) => ({ addr: `192.0.2.${i}`, geType: 'GES' as const, mode: 'OP' as const, flags: 0, tags: Array.from({ length: 16 }, () => tag(i)), options: [] }));
  assert.throws(() => encode(big), (e: DprpWireError) => e.reason === 'too_long');
});
