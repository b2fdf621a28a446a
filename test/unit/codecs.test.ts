/**
 * Codecs and constants without root: byte-exact encodings of known values,
 * round trips, errors that name the field, and abi.ts checked against the
 * text of gscip_abi.h (every #define and enum constant).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as abi from '../../controlplane/maps/abi.js';
import {
  ALL_STRUCTS, cidCodec, decodePuntRec, flowKeyValCodec, ifaceCfgCodec, keyValCodec, pitValCodec, puntPacket, puntRecCodec, xlatValCodec,
} from '../../controlplane/maps/codecs.js';
import { isIPv4 } from 'node:net';
import { ipv4 } from '../../controlplane/maps/layout.js';

const HEADER = resolve(__dirname, '../../..', 'bpf/include/gscip_abi.h');

/** name -> value for every `#define GSCIP_X <number expr>` and every enum constant of the header. */
function headerConstants(): Map<string, number> {
  const src = readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const out = new Map<string, number>();
  for (const m of src.matchAll(/^#define\s+(GSCIP_\w+)\s+([0-9x()<\s+a-fA-F]+)$/gm)) {
    const expr = m[2].trim();
    if (!/^[0-9xa-fA-F()<\s+]+$/.test(expr)) continue;
    out.set(m[1], Number(Function(`"use strict"; return (${expr});`)()));
  }
  for (const body of src.matchAll(/enum\s+\w+\s*\{([^}]*)\}/g)) {
    for (const e of body[1].matchAll(/(GSCIP_\w+)\s*=\s*(\w+)/g)) out.set(e[1], Number(e[2]));
  }
  return out;
}

test('abi.ts constants equal gscip_abi.h', () => {
  const h = headerConstants();
  const pairs: Array<[string, number]> = [
    ['GSCIP_PIT_MAX_ENTRIES', abi.PIT_MAX_ENTRIES], ['GSCIP_XLAT_MAX_ENTRIES', abi.XLAT_MAX_ENTRIES],
    ['GSCIP_KEYS_MAX_ENTRIES', abi.KEYS_MAX_ENTRIES], ['GSCIP_IFACE_MAX_ENTRIES', abi.IFACE_MAX_ENTRIES],
    ['GSCIP_PUNT_RINGBUF_BYTES', abi.PUNT_RINGBUF_BYTES], ['GSCIP_PUNT_MAX_BYTES', abi.PUNT_MAX_BYTES],
    ['GSCIP_KEY_BYTES', abi.KEY_BYTES], ['GSCIP_ICMP_TYPE', abi.ICMP_TYPE],
    ['GSCIP_CONTROL_UDP_PORT', abi.CONTROL_UDP_PORT], ['GSCIP_CONTROL_UDP_HLEN', abi.CONTROL_UDP_HLEN],
    ['GSCIP_MARK_RELEASE_EGRESS', abi.MARK_RELEASE_EGRESS], ['GSCIP_MARK_RELEASE_INGRESS', abi.MARK_RELEASE_INGRESS],
    ['GSCIP_MARK_CONTROL_TX', abi.MARK_CONTROL_TX],
    ['GSCIP_PIT_F_NONE', abi.PIT_F_NONE], ['GSCIP_PIT_F_WIRE_CSUM', abi.PIT_F_WIRE_CSUM], ['GSCIP_KEY_F_NONE', abi.KEY_F_NONE], ['GSCIP_IFACE_F_PROTECTED', abi.IFACE_F_PROTECTED],
    ['GSCIP_PUNT_RATE_DEFAULT', abi.PUNT_RATE_DEFAULT], ['GSCIP_PUNT_BURST_DEFAULT', abi.PUNT_BURST_DEFAULT],
    ['GSCIP_CODE_BASE', abi.CODE_BASE], ['GSCIP_PIT_WHY_SHIFT', abi.PIT_WHY_SHIFT], ['GSCIP_DPRP_CODE_DDE', abi.DPRP_CODE_DDE], ['GSCIP_DPRP_CODE_HOLD', abi.DPRP_CODE_HOLD],
    ['GSCIP_DPRP_HOLD_BYTES', abi.DPRP_HOLD_BYTES], ['GSCIP_DPRP_CAND_DEPTH_OFF', abi.DPRP_CAND_DEPTH_OFF], ['GSCIP_PIT_WHY_MASK', abi.PIT_WHY_MASK],
  ];
  const enums: Array<[string, Record<string, number>]> = [
    ['GSCIP_DIR_', abi.Dir], ['GSCIP_ACT_', abi.Action], ['GSCIP_PIT_', abi.PitState], ['GSCIP_ROLE_', abi.Role],
    ['GSCIP_MISS_', abi.MissAction], ['GSCIP_IPV6_', abi.Ipv6Policy], ['GSCIP_XLAT_', abi.XlatKind], ['GSCIP_PUNT_', abi.PuntReason], ['GSCIP_', abi.Stat], ['GSCIP_WHY_', abi.PitWhy],
  ];
  for (const [prefix, e] of enums) for (const [k, v] of Object.entries(e)) pairs.push([prefix + k, v]);
  for (const [name, v] of pairs) assert.equal(v, h.get(name), `${name}: TS ${v}, header ${h.get(name)}`);
  // The header must not have stats the TS side lacks (metrics would miss them).
  const statNames = [...h.keys()].filter((k) => /^GSCIP_(STAT|DROP)_/.test(k)).map((k) => k.slice('GSCIP_'.length));
  assert.deepEqual(statNames.filter((k) => !(k in abi.Stat)), []);
});

test('STATS labels are unique, bounded and split into verdicts and drops', () => {
  const names = abi.STATS.map((s) => s.name);
  assert.equal(new Set(names).size, names.length);
  assert.ok(abi.STATS.every((s) => s.id < abi.Stat.STAT__END));
  assert.ok(abi.STATS.filter((s) => s.kind === 'drop').every((s) => s.id >= abi.Stat.STAT_DROP_FIRST));
  assert.equal(abi.STAT_BY_ID.get(abi.Stat.DROP_MALFORMED_IP)?.name, 'malformed_ip');
  assert.equal(abi.STAT_BY_ID.get(abi.Stat.STAT_PIT_PASS)?.name, 'pit_pass');
});

test('gscip_cid encodes addresses and ports in network order, padding zero', () => {
  const b = cidCodec.encode({ saddr: '192.0.2.1', daddr: '198.51.100.7', sport: 0x1234, dport: 443, proto: 6, dir: abi.Dir.EGRESS });
  assert.equal(b.toString('hex'), 'c0000201' + 'c6336407' + '1234' + '01bb' + '06' + '01' + '0000');
  assert.deepEqual(cidCodec.decode(b), { saddr: '192.0.2.1', daddr: '198.51.100.7', sport: 0x1234, dport: 443, proto: 6, dir: 1 });
});

test('gscip_pit_val: host-order integers at computed offsets', () => {
  const v = { action: abi.Action.ENCRYPT, state: abi.PitState.CONFIRMED, role: abi.Role.START, flags: 0, group_id: 7, key_version: 0x01020304, created_ns: 5n, last_seen_ns: 2n ** 63n };
  const b = pitValCodec.encode(v);
  assert.equal(b.length, 32);
  assert.equal(b.toString('hex', 0, 16), '03020100' + '07000000' + '04030201' + '00000000');
  assert.equal(b.readBigUInt64LE(16), 5n);
  assert.deepEqual(pitValCodec.decode(b), { ...v, prev_key_version: 0 }, 'prev_key_version omitted = 0');
  const r = pitValCodec.encode({ ...v, action: abi.Action.DECRYPT, prev_key_version: 0x0a0b0c0d });
  assert.equal(r.toString('hex', 12, 16), '0d0c0b0a', 'prev_key_version at offset 12 (the former pad)');
  assert.equal(pitValCodec.decode(r).prev_key_version, 0x0a0b0c0d);
});

test('every struct round-trips and has the C size', () => {
  const sizes: Record<string, number> = {
    gscip_cid: 16, gscip_pit_val: 32, gscip_xlat_val: 24, gscip_nat_prefix: 8, gscip_nat_cfg: 40, gscip_nat_val: 32, gscip_nat_port_key: 4, gscip_key_id: 8, gscip_key_val: 48, gscip_flow_key_half: 48, gscip_flow_key_val: 128, gscip_iface_cfg: 8,
    gscip_global_cfg: 16, gscip_load_cfg: 8, gscip_punt_rec: 24 + 16 + abi.PUNT_MAX_BYTES, gscip_stat_val: 16, gscip_ftp_seq_val: 16,
  };
  for (const c of ALL_STRUCTS) assert.equal(c.size, sizes[c.cName], c.cName);
  const x = { saddr: '203.0.113.9', daddr: '100.64.0.1', sport: 1, dport: 65535, kind: abi.XlatKind.NAT, created_ns: 9n };
  assert.deepEqual(xlatValCodec.decode(xlatValCodec.encode(x)), x);
  const k = { key: Buffer.alloc(32, 0xab), flags: 0, installed_ns: 1n };
  assert.deepEqual(keyValCodec.decode(keyValCodec.encode(k)), k);
  const i = { miss_action: [abi.MissAction.PUNT, abi.MissAction.DROP], flags: abi.IFACE_F_PROTECTED };
  assert.equal(ifaceCfgCodec.encode(i).toString('hex'), '0002010000000000');
  assert.deepEqual(ifaceCfgCodec.decode(ifaceCfgCodec.encode(i)), i);
});

test('punt records decode, including short ones, and expose only cap_len bytes', () => {
  const pkt = Buffer.from('ffffffffffff0200000000010800', 'hex');
  const rec = { ts_ns: 1n, ifindex: 3, pkt_len: 100, cap_len: pkt.length, dir: 0, reason: abi.PuntReason.PIT_MISS,
    cid: { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 1, dport: 2, proto: 17, dir: 0 }, data: Buffer.concat([pkt, Buffer.alloc(abi.PUNT_MAX_BYTES - pkt.length)]) };
  const full = puntRecCodec.encode(rec);
  assert.deepEqual(puntPacket(decodePuntRec(full)), pkt);
  const short = full.subarray(0, 40 + pkt.length);
  assert.deepEqual(decodePuntRec(short), { ...rec, data: pkt }, 'a record holds only its captured bytes');
  assert.deepEqual(decodePuntRec(full).data, pkt, 'also from a full-size record');
  assert.throws(() => decodePuntRec(full.subarray(0, 39)), /shorter than its 40-byte header/);
});

test('bad values are rejected with an error naming the field', () => {
  const cid = { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 1, dport: 2, proto: 6, dir: 0 };
  assert.throws(() => cidCodec.encode({ ...cid, saddr: '10.0.0.256' }), /gscip_cid\.saddr: expected an IPv4 address/);
  assert.throws(() => cidCodec.encode({ ...cid, sport: 70000 }), /gscip_cid\.sport: expected an integer 0\.\.65535/);
  assert.throws(() => cidCodec.encode({ ...cid, proto: -1 }), /gscip_cid\.proto/);
  const { dport: _unused, ...noPort } = cid;
  assert.throws(() => cidCodec.encode(noPort as typeof cid), /gscip_cid\.dport: missing/);
  assert.throws(() => keyValCodec.encode({ key: Buffer.alloc(16), flags: 0, installed_ns: 0n }), /gscip_key_val\.key: expected 32 bytes, got 16/);
  assert.throws(() => abi.enumValue(abi.Action, 'allow', '--action'), /--action: unknown value 'allow' \(expected one of none, pass, drop, encrypt, decrypt\)/);
});

/** The rows of GSCIP_REASONS in the header: [name without GSCIP_, kind, TC action], lower-cased like abi.ts. */
function headerReasonRows(): Array<[string, string, string]> {
  const src = readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const table = /#define\s+GSCIP_REASONS\(X\)((?:.*\\\n)*.*)/.exec(src);
  assert.ok(table, 'GSCIP_REASONS in the header');
  return [...table[1].matchAll(/X\(\s*GSCIP_(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)/g)].map((m) => [m[1], m[2].toLowerCase(), m[3].toLowerCase()]);
}

test('abi.ts REASONS is the header\'s GSCIP_REASONS row for row; every reason has exactly one row, retired numbers none', () => {
  const rows = headerReasonRows();
  assert.deepEqual(abi.REASONS.map((r) => [...r]), rows);
  const named = new Set(rows.map((r) => r[0]));
  assert.equal(named.size, rows.length, 'one row per reason');
  const markers = new Set(['STAT__VERDICT_END', 'STAT_DROP_FIRST', 'STAT__END']);
  for (const k of Object.keys(abi.Stat)) {
    const retired = /^STAT_UNUSED_\d+$/.test(k);
    if (markers.has(k)) continue;
    assert.equal(named.has(k), !retired, `${k}: ${retired ? 'a retired number has no row' : 'a reason needs its row'}`);
    if (retired) assert.equal(abi.Stat[k as abi.StatName], Number(k.slice('STAT_UNUSED_'.length)), `${k} keeps its number`);
  }
  // Each reason inside its part's range; kinds and actions consistent.
  for (const s of abi.STATS) {
    const base = abi.ReasonPart[s.part.toUpperCase() as keyof typeof abi.ReasonPart];
    assert.ok(s.id >= base && s.id < base + abi.REASON_PART_SIZE && s.id < abi.REASON__END, `${s.name} (${s.id}) inside ${s.part}`);
    if (s.kind === 'drop') assert.equal(s.action, 'shot', `${s.name}: a drop ends in shot`);
    assert.equal(s.kind === 'overlay', s.action === 'none', `${s.name}: only overlays have no TC action`);
  }
  assert.deepEqual(abi.STATS.filter((s) => s.part === 'pccom').map((s) => s.name),
    ['pit_encrypt', 'pit_decrypt', 'pit_decrypt_prev', 'pccom_rekey', 'no_key', 'bad_keyed_csum', 'crypto', 'nonce_limit', 'flow_key_changed']);
});

test('counter slots: (reason, direction) -> reason * 2 + dir, as GSCIP_COUNTER_SLOT', () => {
  assert.equal(abi.counterSlot(abi.Stat.STAT_PIT_PASS, abi.Dir.INGRESS), 8);
  assert.equal(abi.counterSlot(abi.Stat.STAT_PIT_PASS, abi.Dir.EGRESS), 9);
  assert.equal(abi.counterSlot(abi.REASON__END - 1, abi.Dir.EGRESS), abi.COUNTER_SLOTS - 1);
  const src = readFileSync(HEADER, 'utf8');
  assert.match(src, /#define GSCIP_COUNTER_SLOT\(reason, dir\) \(\(reason\) \* GSCIP_COUNTER_DIRS \+ \(dir\)\)/);
  assert.match(src, /#define GSCIP_COUNTER_DIRS\s+2\b/);
  assert.match(src, /#define GSCIP_REASON__END\s+1024\b/);
});

test('ipv4 fields take exactly what node:net isIPv4 takes (the allocation-free parser), byte for byte', () => {
  const cases = ['0.0.0.0', '255.255.255.255', '192.0.2.10', '1.2.3.4', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1.2.3', '1.2.3.4.5', '1..2.3',
    '1.2.3.', '.1.2.3', 'a.b.c.d', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.-1', '1.2.3.1000', '999.1.1.1', '00.0.0.0', '1.2.3.4\n', '', '1.2.3.25a'];
  // And random strings of digits and dots (a fixed seed: the same on every run).
  let x = 12345;
  const rnd = () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x; };
  for (let i = 0; i < 20_000; i++) cases.push(Array.from({ length: 7 + (rnd() % 9) }, () => '0123456789.'[rnd() % 11]).join(''));
  for (const c of cases) {
    const b = Buffer.alloc(4);
    let ok = true;
    try { ipv4.write(b, 0, c, 'f'); } catch { ok = false; }
    assert.equal(ok, isIPv4(c), `"${c}"`);
    if (ok) assert.equal(b.join('.'), c);
  }
});

test('struct codecs (compiled field code): nested fields read and written as the field list says, errors name the nested field', () => {
  const half = { key: Buffer.alloc(32, 7), key_version: 3, flags: 1, ctr: 2n ** 40n + 5n };
  const v = { cur: half, prev: { ...half, key: Buffer.alloc(32, 9), key_version: 2, ctr: 0n }, salt: 0x0123456789abcdefn, prev_salt: 1n, rekey_at: 2n ** 47n, leg: 1, prev_leg: 2, signalled: 3, fails: 4 };
  const b = flowKeyValCodec.encode(v);
  assert.deepEqual(flowKeyValCodec.decode(b), v);
  for (const f of flowKeyValCodec.fields) if (f.isPad) assert.ok(b.subarray(f.offset, f.offset + f.size).every((x) => x === 0), `${f.name} is zero`);
  assert.throws(() => flowKeyValCodec.encode({ ...v, cur: { ...half, key: Buffer.alloc(31) } }), /gscip_flow_key_val\.cur\.key: expected 32 bytes, got 31/);
  assert.throws(() => flowKeyValCodec.encode({ ...v, prev: { ...half, ctr: -1n } }), /gscip_flow_key_val\.prev\.ctr: expected an integer/);
  const { leg: _l, ...noLeg } = v;
  assert.throws(() => flowKeyValCodec.encode(noLeg as typeof v), /gscip_flow_key_val\.leg: missing/);
});
