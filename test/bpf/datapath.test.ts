/**
 * BPF_PROG_TEST_RUN tests of the TC datapath (bpf/gscip_tc.bpf.c) on crafted
 * packets: each case names its input packet, seeds the maps, runs one program
 * and asserts the TC verdict, the output bytes (checksums recomputed by
 * test/lib/packets.ts, never by the code under test) and the exact counters.
 *
 * BPF_PROG_TEST_RUN hands the program skb->ifindex 1 (loopback), so the
 * per-interface configuration is seeded for ifindex 1. Packets built here are
 * CHECKSUM_NONE skbs; the CHECKSUM_PARTIAL (veth/GSO) path is exercised by the
 * namespace tests (test/netns/datapath*.test.ts).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import {
  arpFrame, ETH_P_IP, ethernet, icmpFrame, inetChecksum, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ipv4, ipv6UdpFrame, parseFrame, tcpFrame, udpFrame, vlanUdpFrame,
  type TcpOpts, type UdpOpts,
} from '../lib/packets.js';
import { Action, CONTROL_UDP_PORT, Dir, ICMP_TYPE, MARK_CONTROL_TX, MARK_RELEASE_EGRESS, MARK_RELEASE_INGRESS, MissAction, PIT_F_FIN, PIT_F_RST, PitState, PuntReason, Role, XlatKind } from '../../controlplane/maps/abi.js';
import { puntPacket, type Cid, type PitVal } from '../../controlplane/maps/codecs.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';

// Test addresses (documentation ranges only).
const A = '192.0.2.1';   // this host
const B = '192.0.2.2';   // peer
const V = '198.18.0.9';  // virtual address the application uses (VAT-style)
const N = '198.51.100.7'; // peer's new address (CIT-style)

const unavailable = bpfUnavailable();

function cidOf(o: { src: string; dst: string; sport: number; dport: number }, proto: number, dir: number): Cid {
  return { saddr: o.src, daddr: o.dst, sport: o.sport, dport: o.dport, proto, dir };
}

function pitVal(action: number, extra: Partial<PitVal> = {}): PitVal {
  return {
    action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0,
    created_ns: 0n, last_seen_ns: 0n, ...extra,
  };
}

const tcpAB: TcpOpts = { src: A, dst: B, sport: 40000, dport: 80, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') };
const udpBA: UdpOpts = { src: B, dst: A, sport: 53, dport: 5353, payload: Buffer.from('dns-answer-bytes') };

describe('TC datapath (BPF_PROG_TEST_RUN)', { skip: unavailable ?? false }, () => {
  let h: BpfHarness;

  before(() => { h = BpfHarness.open(); });
  after(() => { h?.close(); });

  /** Every case starts from empty maps, zero counters and a drained ring. */
  beforeEach(() => {
    for (const k of [...h.maps.pit.keys()]) h.maps.pit.delete(k);
    for (const k of [...h.maps.xlat.keys()]) h.maps.xlat.delete(k);
    for (const k of [...h.maps.iface.keys()]) h.maps.iface.delete(k);
    for (const k of [...h.maps.keys.keys()]) h.maps.keys.delete(k);
    h.maps.cfg.set(0, { punt_rate_pps: 0n, punt_burst: 0n });
    h.resetStats();
    h.punts();
  });

  const iface = (ingress: number, egress: number): void => {
    h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [ingress, egress], flags: 1 });
  };
  const run = (prog: string, pkt: Buffer, mark?: number) => h.progTestRun(prog, pkt, mark === undefined ? {} : { mark });
  const stats = (): Record<string, bigint> => h.nonZeroStats();

  // ------------------------------------------------------------ PIT actions

  test('PIT pass, egress TCP SYN A:40000->B:80: passed unchanged, counted with bytes', () => {
    const pkt = tcpFrame(tcpAB);
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.PASS));
    iface(MissAction.DROP, MissAction.DROP);
    const r = run(EGRESS, pkt);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, pkt);
    assert.deepEqual(stats(), { pit_pass: 1n });
    assert.equal(h.stat(4).bytes, BigInt(pkt.length));
  });

  test('PIT pass, ingress UDP B:53->A:5353: passed; the same CID with dir=egress does not match ingress', () => {
    const pkt = udpFrame(udpBA);
    iface(MissAction.DROP, MissAction.DROP);
    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.EGRESS), pitVal(Action.PASS));
    assert.equal(run(INGRESS, pkt).retval, TC_ACT.SHOT);
    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.PASS));
    const r = run(INGRESS, pkt);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, pkt);
    assert.deepEqual(stats(), { miss_policy: 1n, pit_pass: 1n });
  });

  test('PIT drop stops exactly one flow: TCP A:40000->B:80 dropped, A:40001->B:80 passes', () => {
    const other = { ...tcpAB, sport: 40001 };
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.DROP));
    h.maps.pit.set(cidOf(other, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.PASS));
    iface(MissAction.PASS, MissAction.PASS);
    assert.equal(run(EGRESS, tcpFrame(tcpAB)).retval, TC_ACT.SHOT);
    assert.equal(run(EGRESS, tcpFrame(other)).retval, TC_ACT.OK);
    assert.deepEqual(stats(), { policy: 1n, pit_pass: 1n });
  });

  test('PIT encrypt/decrypt without the group key in gscip_keys: dropped, never sent in plaintext', () => {
    iface(MissAction.PASS, MissAction.PASS);
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.ENCRYPT, { group_id: 7, key_version: 1 }));
    const e = run(EGRESS, tcpFrame(tcpAB));
    assert.equal(e.retval, TC_ACT.SHOT);
    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.DECRYPT, { group_id: 7, key_version: 1 }));
    const d = run(INGRESS, udpFrame(udpBA));
    assert.equal(d.retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { no_key: 2n });
  });

  test('PIT encrypt (egress) then decrypt (ingress) with group 7 key v1: payload hidden on the wire, same length and headers, restored exactly', () => {
    iface(MissAction.DROP, MissAction.DROP);
    h.maps.keys.set({ group_id: 7, version: 1 }, { key: Buffer.alloc(32, 0x5a), flags: 0, installed_ns: 0n });
    const plain = tcpFrame({ ...tcpAB, flags: 0x18, payload: Buffer.from('the quick brown fox jumps over the lazy dog') });
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.ENCRYPT, { group_id: 7, key_version: 1 }));
    const e = run(EGRESS, plain);
    assert.equal(e.retval, TC_ACT.OK);
    assert.equal(e.dataOut.length, plain.length);
    const pe = parseFrame(e.dataOut);
    assert.deepEqual(e.dataOut.subarray(0, 14 + 20 + 16), plain.subarray(0, 14 + 20 + 16), 'Ethernet, IPv4 and TCP header up to the checksum unchanged');
    assert.notDeepEqual(pe.l4?.payload, parseFrame(plain).l4?.payload);
    assert.equal(pe.l4?.payload.includes(Buffer.from('brown fox')), false, 'plaintext on the wire');

    // the receiving GE sees the same CID on its ingress
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.INGRESS), pitVal(Action.DECRYPT, { group_id: 7, key_version: 1 }));
    const d = run(INGRESS, e.dataOut);
    assert.equal(d.retval, TC_ACT.OK);
    assert.deepEqual(d.dataOut, plain);
    assert.ok(parseFrame(d.dataOut).l4?.checksumOk);
    assert.deepEqual(stats(), { pit_encrypt: 1n, pit_decrypt: 1n });
  });

  test('a packet decrypted under the previous key version (a re-key under way) is translated by XLAT like any other (a moved flow\'s CIT)', () => {
    iface(MissAction.DROP, MissAction.DROP);
    h.maps.keys.set({ group_id: 7, version: 1 }, { key: Buffer.alloc(32, 0x5a), flags: 0, installed_ns: 0n });
    h.maps.keys.set({ group_id: 7, version: 2 }, { key: Buffer.alloc(32, 0xa5), flags: 0, installed_ns: 0n });
    // The peer moved to N: it sends N:80 -> A:40000 on the wire, still under version 1.
    const wire: TcpOpts = { src: N, dst: A, sport: 80, dport: 40000, flags: 0x18, payload: Buffer.from('the quick brown fox jumps over the lazy dog') };
    const stackView: TcpOpts = { ...wire, src: B };
    h.maps.pit.set(cidOf(wire, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.ENCRYPT, { group_id: 7, key_version: 1 }));
    const e = run(EGRESS, tcpFrame(wire));
    assert.equal(e.retval, TC_ACT.OK);
    h.maps.pit.set(cidOf(wire, IPPROTO_TCP, Dir.INGRESS), pitVal(Action.DECRYPT, { group_id: 7, key_version: 2, prev_key_version: 1 }));
    h.maps.xlat.set(cidOf(wire, IPPROTO_TCP, Dir.INGRESS), { saddr: B, daddr: A, sport: 80, dport: 40000, kind: XlatKind.CIT, created_ns: 0n });
    const d = run(INGRESS, e.dataOut);
    assert.equal(d.retval, TC_ACT.OK);
    assert.equal(parseFrame(d.dataOut).ip?.src, B, 'the stack sees the flow\'s original address');
    assert.deepEqual(d.dataOut, tcpFrame(stackView), 'decrypted and translated, checksums valid');
    assert.equal(stats().pit_decrypt_prev, 1n);
    assert.equal(stats().xlat, 1n);
  });

  test('PIT entry with an unknown action (9): dropped as unsupported (fail closed)', () => {
    iface(MissAction.PASS, MissAction.PASS);
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(9));
    assert.equal(run(EGRESS, tcpFrame(tcpAB)).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { unsupported: 1n });
  });

  test('PIT hit refreshes last_seen_ns at most once a second', () => {
    const key = cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS);
    iface(MissAction.DROP, MissAction.DROP);
    h.maps.pit.set(key, pitVal(Action.PASS));
    // CLOCK_MONOTONIC (Node's hrtime) vs the program's coarse CLOCK_MONOTONIC: allow one tick of lag
    const TICK = 20_000_000n;
    const t0 = process.hrtime.bigint() - TICK;
    run(EGRESS, tcpFrame(tcpAB));
    const first = h.maps.pit.get(key)!.last_seen_ns;
    assert.ok(first >= t0, `last_seen_ns ${first} not refreshed (t0 ${t0})`);
    run(EGRESS, tcpFrame(tcpAB));
    assert.equal(h.maps.pit.get(key)!.last_seen_ns, first, 'refreshed twice within a second');
    const old = first - 2_000_000_000n;
    h.maps.pit.set(key, pitVal(Action.PASS, { last_seen_ns: old }));
    const t1 = process.hrtime.bigint() - TICK;
    run(EGRESS, tcpFrame(tcpAB));
    assert.ok(h.maps.pit.get(key)!.last_seen_ns >= t1);
  });

  test('PIT hit records TCP FIN / RST on the hit entry (flags); a plain ACK, UDP and a dropped packet never do', () => {
    iface(MissAction.DROP, MissAction.DROP);
    const fin = { ...tcpAB, flags: 0x11, payload: Buffer.alloc(0) };   // FIN|ACK
    const rst = { ...tcpAB, flags: 0x14, payload: Buffer.alloc(0) };   // RST|ACK
    const ack = { ...tcpAB, flags: 0x10 };
    const eg = cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS);
    const ing = cidOf(tcpAB, IPPROTO_TCP, Dir.INGRESS);
    h.maps.pit.set(eg, pitVal(Action.PASS));
    h.maps.pit.set(ing, pitVal(Action.PASS));

    assert.equal(run(EGRESS, tcpFrame(ack)).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(eg)!.flags, 0, 'ACK marked the entry');
    assert.equal(run(EGRESS, tcpFrame(fin)).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(eg)!.flags, PIT_F_FIN);
    assert.equal(h.maps.pit.get(ing)!.flags, 0, 'the other entry (ingress) was not hit');
    assert.equal(run(EGRESS, tcpFrame(ack)).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(eg)!.flags, PIT_F_FIN, 'a later ACK cleared the FIN bit');
    assert.equal(run(EGRESS, tcpFrame(rst)).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(eg)!.flags, PIT_F_FIN | PIT_F_RST);
    assert.equal(run(INGRESS, tcpFrame(rst)).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(ing)!.flags, PIT_F_RST);

    // UDP never: its byte 13 (checksum low byte) is not TCP flags
    const u = cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS);
    h.maps.pit.set(u, pitVal(Action.PASS));
    const udp = udpFrame({ ...udpBA, payload: Buffer.alloc(16, 0xff) });
    assert.equal(run(INGRESS, udp).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(u)!.flags, 0);

    // a drop entry's FIN is not recorded (nothing reached the other end)
    const other = { ...rst, sport: 40001 };
    const d = cidOf(other, IPPROTO_TCP, Dir.EGRESS);
    h.maps.pit.set(d, pitVal(Action.DROP));
    assert.equal(run(EGRESS, tcpFrame(other)).retval, TC_ACT.SHOT);
    assert.equal(h.maps.pit.get(d)!.flags, 0);
  });

  test('a forged RST failing the decrypt entry\'s keyed checksum does not mark the entry; the genuine encrypted one does', () => {
    iface(MissAction.DROP, MissAction.DROP);
    h.maps.keys.set({ group_id: 7, version: 1 }, { key: Buffer.alloc(32, 0x5a), flags: 0, installed_ns: 0n });
    const rst = tcpFrame({ ...tcpAB, flags: 0x14, payload: Buffer.from('reset-with-some-bytes') });
    const eg = cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS);
    const ing = cidOf(tcpAB, IPPROTO_TCP, Dir.INGRESS);
    h.maps.pit.set(eg, pitVal(Action.ENCRYPT, { group_id: 7, key_version: 1 }));
    h.maps.pit.set(ing, pitVal(Action.DECRYPT, { group_id: 7, key_version: 1 }));
    const forged = run(INGRESS, rst);   // plaintext RST, not PCCOM-protected
    assert.equal(forged.retval, TC_ACT.SHOT);
    assert.equal(h.maps.pit.get(ing)!.flags, 0, 'forged RST marked the decrypt entry');
    const e = run(EGRESS, rst);
    assert.equal(e.retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(eg)!.flags, PIT_F_RST);
    assert.equal(run(INGRESS, e.dataOut).retval, TC_ACT.OK);
    assert.equal(h.maps.pit.get(ing)!.flags, PIT_F_RST);
  });

  // ------------------------------------------------------------ misses

  test('miss on an interface without gscip_iface entry: dropped (no_iface_cfg)', () => {
    const r = run(EGRESS, tcpFrame(tcpAB));
    assert.equal(r.retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { no_iface_cfg: 1n });
    assert.equal(h.punts().length, 0);
  });

  test('miss with miss action pass (egress) / drop (ingress): per direction', () => {
    iface(MissAction.DROP, MissAction.PASS);
    const e = run(EGRESS, tcpFrame(tcpAB));
    assert.equal(e.retval, TC_ACT.OK);
    assert.deepEqual(e.dataOut, tcpFrame(tcpAB));
    assert.equal(run(INGRESS, udpFrame(udpBA)).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { miss_pass: 1n, miss_policy: 1n });
  });

  test('miss with miss action punt, egress TCP SYN: stolen, ring record carries the exact frame and CID', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    const pkt = tcpFrame(tcpAB);
    const r = run(EGRESS, pkt);
    assert.equal(r.retval, TC_ACT.STOLEN);
    assert.deepEqual(stats(), { punt_miss: 1n });
    const recs = h.punts();
    assert.equal(recs.length, 1);
    const rec = recs[0];
    assert.equal(rec.reason, PuntReason.PIT_MISS);
    assert.equal(rec.dir, Dir.EGRESS);
    assert.equal(rec.ifindex, TEST_RUN_IFINDEX);
    assert.equal(rec.pkt_len, pkt.length);
    assert.equal(rec.cap_len, pkt.length);
    assert.deepEqual(puntPacket(rec), pkt);
    assert.deepEqual(rec.cid, cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS));
    assert.ok(rec.ts_ns > 0n);
  });

  test('miss with punt, ingress UDP of 2048+ bytes: not stashed, TRUNCATED record with the CID, dropped', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    const big = udpFrame({ ...udpBA, payload: Buffer.alloc(2100, 0x61) });
    assert.equal(run(INGRESS, big).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { punt_truncated: 1n });
    const [rec] = h.punts();
    assert.equal(rec.reason, PuntReason.TRUNCATED);
    assert.equal(rec.cap_len, 0);
    assert.equal(rec.pkt_len, big.length);
    assert.deepEqual(rec.cid, cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS));
  });

  test('miss with punt, exactly 2048-byte frame: stashed whole (boundary)', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    const pkt = udpFrame({ ...udpBA, payload: Buffer.alloc(2048 - 42, 0x62) });
    assert.equal(pkt.length, 2048);
    assert.equal(run(INGRESS, pkt).retval, TC_ACT.STOLEN);
    const [rec] = h.punts();
    assert.equal(rec.cap_len, 2048);
    assert.deepEqual(puntPacket(rec), pkt);
  });

  test('punt flood: per-CPU token bucket (burst 3) admits 3 of 10 new flows; control messages keep their own bucket', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    h.maps.cfg.set(0, { punt_rate_pps: 1n, punt_burst: 3n });
    // one syscall, repeat=10: every run on the same CPU, i.e. the same bucket
    const r = h.progTestRun(EGRESS, tcpFrame(tcpAB), { repeat: 10 });
    assert.equal(r.retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { punt_miss: 3n, punt_rate: 7n });
    assert.equal(h.punts().length, 3);
    const ctl = run(INGRESS, icmpFrame({ src: B, dst: A, type: ICMP_TYPE, code: 1, payload: Buffer.from('dde') }));
    assert.equal(ctl.retval, TC_ACT.STOLEN);
    assert.equal(h.punts()[0].reason, PuntReason.CONTROL);
  });

  // ------------------------------------------------------------ XLAT

  test('XLAT egress TCP A:40000->V:80 becomes A:40000->B:8080 (addr+port), checksums valid, PIT on the wire view', () => {
    const stack: TcpOpts = { src: A, dst: V, sport: 40000, dport: 80, seq: 0xdeadbeef, flags: 0x18, payload: Buffer.from('hello through a virtual address') };
    h.maps.xlat.set(cidOf(stack, IPPROTO_TCP, Dir.EGRESS), { saddr: A, daddr: B, sport: 40000, dport: 8080, kind: XlatKind.VAT, created_ns: 0n });
    iface(MissAction.DROP, MissAction.DROP);
    // a PIT entry for the stack view does not help: the PIT sees the wire view
    h.maps.pit.set(cidOf(stack, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.PASS));
    assert.equal(run(EGRESS, tcpFrame(stack)).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { miss_policy: 1n, xlat: 1n });
    h.resetStats();

    h.maps.pit.set({ saddr: A, daddr: B, sport: 40000, dport: 8080, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pitVal(Action.PASS));
    const r = run(EGRESS, tcpFrame(stack));
    assert.equal(r.retval, TC_ACT.OK);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip?.dst, B);
    assert.equal(p.ip?.src, A);
    assert.equal(p.l4?.dport, 8080);
    assert.equal(p.l4?.sport, 40000);
    assert.ok(p.ip?.checksumOk, 'IPv4 header checksum');
    assert.ok(p.l4?.checksumOk, 'TCP checksum');
    assert.deepEqual(p.l4?.payload, stack.payload);
    // exactly the bytes a host would have sent to B:8080 in the first place
    assert.deepEqual(r.dataOut, tcpFrame({ ...stack, dst: B, dport: 8080 }));
    assert.deepEqual(stats(), { pit_pass: 1n, xlat: 1n });
  });

  test('XLAT ingress UDP N:53->A:5353 (wire) becomes B:53->A:5353 for the stack; checksums valid', () => {
    const wire: UdpOpts = { ...udpBA, src: N };
    iface(MissAction.DROP, MissAction.DROP);
    h.maps.pit.set(cidOf(wire, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.PASS));
    h.maps.xlat.set(cidOf(wire, IPPROTO_UDP, Dir.INGRESS), { saddr: B, daddr: A, sport: 53, dport: 5353, kind: XlatKind.CIT, created_ns: 0n });
    const r = run(INGRESS, udpFrame(wire));
    assert.equal(r.retval, TC_ACT.OK);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip?.src, B);
    assert.ok(p.ip?.checksumOk);
    assert.ok(p.l4?.checksumOk);
    assert.notEqual(p.l4?.checksum, 0);
    assert.deepEqual(r.dataOut, udpFrame(udpBA));
    assert.deepEqual(stats(), { pit_pass: 1n, xlat: 1n });
  });

  test('XLAT ingress UDP with checksum 0 ("none"): address rewritten, checksum stays 0', () => {
    const wire: UdpOpts = { ...udpBA, src: N, zeroChecksum: true };
    iface(MissAction.PASS, MissAction.PASS);
    h.maps.xlat.set(cidOf(wire, IPPROTO_UDP, Dir.INGRESS), { saddr: B, daddr: A, sport: 53, dport: 5353, kind: XlatKind.CIT, created_ns: 0n });
    const r = run(INGRESS, udpFrame(wire));
    assert.equal(r.retval, TC_ACT.OK);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip?.src, B);
    assert.ok(p.ip?.checksumOk);
    assert.equal(p.l4?.checksum, 0);
    assert.deepEqual(r.dataOut, udpFrame({ ...udpBA, zeroChecksum: true }));
    assert.deepEqual(stats(), { miss_pass: 1n, xlat: 1n });
  });

  test('XLAT whose result checksum would be 0: UDP gets 0xffff, never 0 (RFC 768)', () => {
    iface(MissAction.PASS, MissAction.PASS);
    // Choose the payload so that the translated datagram's checksum computes to 0 (sent as 0xffff).
    const payload = Buffer.alloc(16);
    const base = udpFrame({ ...udpBA, payload });
    const c = parseFrame(base).l4!.checksum; // checksum with zero payload word
    // add a 16-bit payload word w such that the final checksum becomes 0 (stored as 0xffff): w = c in one's complement
    payload.writeUInt16BE(c, 0);
    const target = udpFrame({ ...udpBA, payload });
    assert.equal(parseFrame(target).l4?.checksum, 0xffff, 'constructed datagram should checksum to 0');
    const wire: UdpOpts = { ...udpBA, src: N, payload };
    h.maps.xlat.set(cidOf(wire, IPPROTO_UDP, Dir.INGRESS), { saddr: B, daddr: A, sport: 53, dport: 5353, kind: XlatKind.CIT, created_ns: 0n });
    const r = run(INGRESS, udpFrame(wire));
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip?.src, B);
    assert.equal(p.l4?.checksum, 0xffff);
    assert.ok(p.l4?.checksumOk);
  });

  test('XLAT egress TCP with IPv4 options (ihl 6) and TCP options, ports only: offsets right, checksums valid', () => {
    const stack: TcpOpts = {
      src: A, dst: B, sport: 40000, dport: 80, payload: Buffer.from('opts'),
      ip: { options: Buffer.from([0x94, 0x04, 0x00, 0x00]) }, // Router Alert
      tcpOptions: Buffer.from([0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02]), // MSS, NOP, NOP, SACK-permitted
    };
    iface(MissAction.PASS, MissAction.PASS);
    h.maps.xlat.set(cidOf(stack, IPPROTO_TCP, Dir.EGRESS), { saddr: A, daddr: B, sport: 50000, dport: 443, kind: XlatKind.NAT, created_ns: 0n });
    const r = run(EGRESS, tcpFrame(stack));
    assert.equal(r.retval, TC_ACT.OK);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip?.ihl, 24);
    assert.equal(p.l4?.sport, 50000);
    assert.equal(p.l4?.dport, 443);
    assert.ok(p.ip?.checksumOk);
    assert.ok(p.l4?.checksumOk);
    assert.deepEqual(r.dataOut, tcpFrame({ ...stack, sport: 50000, dport: 443 }));
  });

  test('XLAT no-op entry (value = key): bytes untouched, no xlat counted', () => {
    iface(MissAction.PASS, MissAction.PASS);
    h.maps.xlat.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), { saddr: A, daddr: B, sport: 40000, dport: 80, kind: XlatKind.STATIC, created_ns: 0n });
    const r = run(EGRESS, tcpFrame(tcpAB));
    assert.deepEqual(r.dataOut, tcpFrame(tcpAB));
    assert.deepEqual(stats(), { miss_pass: 1n });
  });

  test('XLAT ingress is not applied to what the PIT drops or punts', () => {
    const wire: UdpOpts = { ...udpBA, src: N };
    h.maps.xlat.set(cidOf(wire, IPPROTO_UDP, Dir.INGRESS), { saddr: B, daddr: A, sport: 53, dport: 5353, kind: XlatKind.CIT, created_ns: 0n });
    iface(MissAction.PUNT, MissAction.PUNT);
    assert.equal(run(INGRESS, udpFrame(wire)).retval, TC_ACT.STOLEN);
    assert.deepEqual(puntPacket(h.punts()[0]), udpFrame(wire), 'punted in the wire view');
    h.maps.pit.set(cidOf(wire, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.DROP));
    assert.equal(run(INGRESS, udpFrame(wire)).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { punt_miss: 1n, policy: 1n });
  });

  // ------------------------------------------------------------ malformed

  const malformed: Array<[string, Buffer, string]> = [
    // (BPF_PROG_TEST_RUN refuses IPv4 frames shorter than 14 + 20 bytes, so a cut ihl=6 header stands in for a runt)
    ['IPv4 ihl=6 header cut after 20 bytes', tcpFrame({ ...tcpAB, payload: Buffer.alloc(0), ip: { options: Buffer.alloc(4, 1) } }).subarray(0, 14 + 20), 'malformed_ip'],
    ['IPv4 ihl=4', tcpFrame({ ...tcpAB, ip: { ihl: 4 } }), 'malformed_ip'],
    ['IPv4 version 6 in an IPv4 ethertype', (() => { const f = tcpFrame(tcpAB); f[14] = 0x65; return f; })(), 'malformed_ip'],
    ['IPv4 total length beyond the frame', tcpFrame({ ...tcpAB, ip: { totalLength: 400 } }), 'malformed_ip'],
    ['IPv4 total length below ihl', tcpFrame({ ...tcpAB, ip: { totalLength: 16 } }), 'malformed_ip'],
    ['IPv4 ihl=15 beyond total length', tcpFrame({ ...tcpAB, ip: { ihl: 15 } }), 'malformed_ip'],
    ['TCP header cut at 12 bytes', tcpFrame({ ...tcpAB, payload: Buffer.alloc(0), ip: { totalLength: 20 + 12 } }), 'malformed_l4'],
    ['TCP doff=4', tcpFrame({ ...tcpAB, doff: 4 }), 'malformed_l4'],
    ['TCP doff=15 beyond the segment', tcpFrame({ ...tcpAB, payload: Buffer.alloc(8), doff: 15 }), 'malformed_l4'],
    ['UDP length 7', udpFrame({ ...udpBA, udpLength: 7 }), 'malformed_l4'],
    ['UDP length beyond the IP payload', udpFrame({ ...udpBA, udpLength: 200 }), 'malformed_l4'],
    ['UDP header cut at 6 bytes', udpFrame({ ...udpBA, payload: Buffer.alloc(0), ip: { totalLength: 20 + 6 } }), 'malformed_l4'],
  ];
  for (const [name, pkt, reason] of malformed) {
    test(`malformed: ${name} -> dropped (${reason}), never rewritten`, () => {
      // an XLAT entry that would match the packet's (apparent) CID, both directions
      for (const dir of [Dir.EGRESS, Dir.INGRESS]) {
        h.maps.xlat.set(cidOf(tcpAB, IPPROTO_TCP, dir), { saddr: V, daddr: V, sport: 1, dport: 1, kind: XlatKind.STATIC, created_ns: 0n });
        h.maps.xlat.set(cidOf(udpBA, IPPROTO_UDP, dir), { saddr: V, daddr: V, sport: 1, dport: 1, kind: XlatKind.STATIC, created_ns: 0n });
      }
      iface(MissAction.PASS, MissAction.PASS);
      for (const prog of [EGRESS, INGRESS]) {
        const r = run(prog, pkt);
        assert.equal(r.retval, TC_ACT.SHOT, prog);
        assert.deepEqual(r.dataOut, pkt, `${prog} modified a malformed packet`);
      }
      assert.deepEqual(stats(), { [reason]: 2n });
    });
  }

  test('UDP with trailing bytes after the datagram (Ethernet padding style) is accepted', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const pkt = udpFrame({ ...udpBA, payload: Buffer.from('abcd'), udpLength: 8 + 2 });
    assert.equal(run(INGRESS, pkt).retval, TC_ACT.OK);
    assert.deepEqual(stats(), { miss_pass: 1n });
  });

  // ------------------------------------------------------------ passed without PIT

  test('IPv6, ARP and 802.1Q-tagged frames pass untouched (counted) even when misses drop', () => {
    iface(MissAction.DROP, MissAction.DROP);
    const cases: Array<[Buffer, string]> = [
      [ipv6UdpFrame(), 'pass_ipv6'],
      [arpFrame(A, B), 'pass_non_ip'],
      [vlanUdpFrame(udpBA), 'pass_non_ip'],
    ];
    for (const [pkt] of cases) {
      for (const prog of [EGRESS, INGRESS]) {
        const r = run(prog, pkt);
        assert.equal(r.retval, TC_ACT.OK);
        assert.deepEqual(r.dataOut, pkt);
      }
    }
    assert.deepEqual(stats(), { pass_ipv6: 2n, pass_non_ip: 4n });
  });

  test('IPv4 fragments: non-first passes (unmatchable); first fragment takes the PIT but refuses encrypt and XLAT', () => {
    iface(MissAction.DROP, MissAction.DROP);
    const later = udpFrame({ ...udpBA, ip: { fragOffset: 185 } });
    let r = run(INGRESS, later);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(stats(), { pass_fragment: 1n });
    h.resetStats();

    const first: UdpOpts = { ...udpBA, payload: Buffer.alloc(64, 1), udpLength: 8 + 3000, ip: { moreFragments: true } };
    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.PASS));
    r = run(INGRESS, udpFrame(first));
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(stats(), { pit_pass: 1n });
    h.resetStats();

    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.DECRYPT, { group_id: 1, key_version: 1 }));
    assert.equal(run(INGRESS, udpFrame(first)).retval, TC_ACT.SHOT);
    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.PASS));
    h.maps.xlat.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), { saddr: V, daddr: A, sport: 53, dport: 5353, kind: XlatKind.CIT, created_ns: 0n });
    r = run(INGRESS, udpFrame(first));
    assert.equal(r.retval, TC_ACT.SHOT);
    assert.deepEqual(r.dataOut, udpFrame(first), 'first fragment rewritten');
    assert.deepEqual(stats(), { fragment: 2n });
  });

  test('ICMP echo and other L4 (GRE) pass both ways, whatever the miss action', () => {
    iface(MissAction.DROP, MissAction.DROP);
    const echo = icmpFrame({ src: B, dst: A, type: 8 });
    assert.equal(run(INGRESS, echo).retval, TC_ACT.OK);
    const gre = Buffer.from(echo);
    gre[14 + 9] = 47;
    assert.equal(run(INGRESS, gre).retval, TC_ACT.OK);
    assert.equal(run(EGRESS, icmpFrame({ src: A, dst: B, type: 8 })).retval, TC_ACT.OK);
    assert.deepEqual(stats(), { pass_other_l4: 3n });
    assert.equal(h.punts().length, 0);
  });

  test('egress control ICMP 253 sent by this GE (SO_MARK CONTROL_TX): passed unchanged, mark cleared, counted control_tx', () => {
    iface(MissAction.DROP, MissAction.DROP);
    const ctlOut = icmpFrame({ src: A, dst: B, type: ICMP_TYPE, code: 1, payload: Buffer.from('DDE from our agent') });
    const r = run(EGRESS, ctlOut, MARK_CONTROL_TX);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, ctlOut);
    assert.equal(r.markOut, 0, 'the mark does not leak past the GE');
    assert.deepEqual(stats(), { control_tx: 1n });
    assert.equal(h.stat(14).bytes, BigInt(ctlOut.length));
    assert.equal(h.punts().length, 0);
    // any other mark keeps its value: it is not ours
    const other = run(EGRESS, icmpFrame({ src: A, dst: B, type: 8 }), 0x1234);
    assert.equal(other.retval, TC_ACT.OK);
    assert.equal(other.markOut, 0x1234);
  });

  test('egress control ICMP 253 without the mark (an RGI a GEN forwards from inside): punted with dir=egress, never passed', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const rgi = icmpFrame({ src: V, dst: B, type: ICMP_TYPE, code: 2, payload: Buffer.from('RGI from a GE behind us') });
    const r = run(EGRESS, rgi);
    assert.equal(r.retval, TC_ACT.STOLEN);
    assert.deepEqual(stats(), { punt_control: 1n });
    const [rec] = h.punts();
    assert.equal(rec.reason, PuntReason.CONTROL);
    assert.equal(rec.dir, Dir.EGRESS);
    assert.deepEqual(puntPacket(rec), rgi);
    // an unrelated mark is no licence either
    assert.equal(run(EGRESS, rgi, MARK_RELEASE_INGRESS + 0x100).retval, TC_ACT.STOLEN);
    // a release mark on a control message is a release that missed: dropped, not punted, not passed
    assert.equal(run(EGRESS, rgi, MARK_RELEASE_EGRESS).retval, TC_ACT.SHOT);
    // and the mark means nothing on ingress: a control message arriving is always punted
    assert.equal(run(INGRESS, icmpFrame({ src: B, dst: A, type: ICMP_TYPE, code: 3 }), MARK_CONTROL_TX).retval, TC_ACT.STOLEN);
    assert.deepEqual(stats(), { punt_control: 3n, release_miss: 1n });
    assert.deepEqual(h.punts().map((p) => p.dir), [Dir.EGRESS, Dir.INGRESS]);
  });

  test('ingress DDE relayed by an end-candidate GEN (candidate depth 1): punted as it came, and the skb answered with a HOLD', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const dde = (depth: number): Buffer => {
      const l4 = Buffer.alloc(8 + 52, 0x5a);                   // ICMP header + DPRP header + some body
      l4[0] = ICMP_TYPE; l4[1] = 1; l4.writeUInt16BE(0, 2);
      l4[4] = depth; l4[5] = 0; l4[6] = 0; l4[7] = 0;
      l4[8] = 1; l4[9] = 1; l4[10] = 0; l4[11] = 3;            // version, DDE, flags, attempt 3
      Buffer.from('0123456789abcdef', 'hex').copy(l4, 12);     // negotiation id
      l4.writeUInt16BE(inetChecksum(l4), 2);
      return ethernet(ETH_P_IP, ipv4({ src: A, dst: V, proto: IPPROTO_ICMP }, l4), { src: Buffer.from('020000000001', 'hex'), dst: Buffer.from('020000000002', 'hex') });
    };
    const relayed = dde(1);
    const r = run(INGRESS, relayed, 0);
    assert.equal(r.retval, TC_ACT.REDIRECT);
    assert.deepEqual(stats(), { dprp_hold: 1n });
    const [rec] = h.punts();
    assert.equal(rec.reason, PuntReason.CONTROL);
    assert.deepEqual(puntPacket(rec), relayed, 'the agent gets the DDE as it arrived');
    const out = r.dataOut;
    assert.equal(out.length, 14 + 20 + 20);
    assert.deepEqual([out.subarray(0, 6), out.subarray(6, 12)], [relayed.subarray(6, 12), relayed.subarray(0, 6)], 'MACs swapped');
    const f = parseFrame(out);
    assert.deepEqual([f.ip?.src, f.ip?.dst, f.ip?.proto, f.ip?.totalLength, f.ip?.ttl, f.ip?.checksumOk], [V, A, IPPROTO_ICMP, 40, 64, true]);
    const icmp = out.subarray(34);
    assert.equal(inetChecksum(icmp), 0, 'ICMP checksum verifies');
    assert.deepEqual([icmp[0], icmp[1], icmp.readUInt32BE(4), icmp[8], icmp[9], icmp[10], icmp[11]], [ICMP_TYPE, 5, 0, 1, 5, 0, 3]);
    assert.equal(icmp.subarray(12, 20).toString('hex'), '0123456789abcdef', 'the negotiation id of the DDE');
    assert.equal(r.markOut, MARK_CONTROL_TX, 'its own egress program passes it');
    // depth 0 (the start GE's own DDE): punted only, no HOLD; egress never answers
    h.resetStats();
    const plain = dde(0);
    const r0 = run(INGRESS, plain);
    assert.equal(r0.retval, TC_ACT.STOLEN);
    assert.deepEqual(stats(), { punt_control: 1n });
    assert.equal(run(EGRESS, relayed).retval, TC_ACT.STOLEN);
  });

  test('control messages over UDP to port 7253: punted on ingress (never to the stack), our marked send passes unmarked, an unmarked egress one is punted; other UDP is not', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const msg = Buffer.concat([Buffer.from([ICMP_TYPE, 2, 0, 0]), Buffer.from('RGI message body')]);
    const ctl = udpFrame({ src: B, dst: A, sport: 40001, dport: CONTROL_UDP_PORT, payload: msg });
    assert.equal(run(INGRESS, ctl).retval, TC_ACT.STOLEN);
    const [rec] = h.punts();
    assert.equal(rec.reason, PuntReason.CONTROL);
    assert.deepEqual(puntPacket(rec), ctl);
    const out = udpFrame({ src: A, dst: B, sport: CONTROL_UDP_PORT, dport: CONTROL_UDP_PORT, payload: msg });
    const sent = run(EGRESS, out, MARK_CONTROL_TX);
    assert.equal(sent.retval, TC_ACT.OK);
    assert.equal(sent.markOut, 0);
    assert.equal(run(EGRESS, out).retval, TC_ACT.STOLEN, 'unmarked: a GEN forwarding from its inside takes part');
    // egress from the control port to another: our answer to a sender whose port a NAT changed
    const answer = run(EGRESS, udpFrame({ src: A, dst: B, sport: CONTROL_UDP_PORT, dport: 40001, payload: msg }), MARK_CONTROL_TX);
    assert.equal(answer.retval, TC_ACT.OK);
    assert.equal(answer.markOut, 0);
    // on ingress only the destination port makes a control message (a NAT maps answers back to 7253)
    assert.equal(run(INGRESS, udpFrame({ src: B, dst: A, sport: CONTROL_UDP_PORT, dport: 40001, payload: msg })).retval, TC_ACT.OK);
    assert.deepEqual(stats(), { punt_control: 2n, control_tx: 2n, miss_pass: 1n });
  });

  test('a UDP DDE relayed by an end-candidate GEN: the HOLD goes back over UDP, ports swapped, so a NAT between maps it like the DDE', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const body = Buffer.alloc(8 + 52, 0x5a);
    body[0] = ICMP_TYPE; body[1] = 1; body.writeUInt16BE(0, 2);
    body[4] = 1; body[5] = 0; body[6] = 0; body[7] = 0;
    body[8] = 1; body[9] = 1; body[10] = 0; body[11] = 2;
    Buffer.from('fedcba9876543210', 'hex').copy(body, 12);
    body.writeUInt16BE(inetChecksum(body), 2);
    const dde = udpFrame({ src: A, dst: V, sport: 40001, dport: CONTROL_UDP_PORT, payload: body });
    const r = run(INGRESS, dde, 0);
    assert.equal(r.retval, TC_ACT.REDIRECT);
    assert.deepEqual(stats(), { dprp_hold: 1n });
    assert.deepEqual(puntPacket(h.punts()[0]), dde, 'the agent gets the DDE as it arrived');
    const f = parseFrame(r.dataOut);
    assert.equal(r.dataOut.length, 14 + 20 + 8 + 20);
    assert.deepEqual([f.ip?.src, f.ip?.dst, f.ip?.proto, f.ip?.totalLength, f.ip?.checksumOk], [V, A, IPPROTO_UDP, 48, true]);
    assert.deepEqual([f.l4?.sport, f.l4?.dport, f.l4?.checksumOk], [CONTROL_UDP_PORT, 40001, true]);
    const hold = r.dataOut.subarray(42);
    assert.equal(r.dataOut.readUInt16BE(38), 28, 'UDP length');
    assert.equal(inetChecksum(hold), 0, 'the message checksum verifies');
    assert.deepEqual([hold[0], hold[1], hold[8], hold[9], hold[11]], [ICMP_TYPE, 5, 1, 5, 2]);
    assert.equal(hold.subarray(12, 20).toString('hex'), 'fedcba9876543210');
    assert.equal(r.markOut, MARK_CONTROL_TX);
  });

  test('egress control ICMP 253 fragmented: dropped (control_malformed), even with the mark', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const frag = icmpFrame({ src: A, dst: B, type: ICMP_TYPE, ip: { moreFragments: true } });
    assert.equal(run(EGRESS, frag, MARK_CONTROL_TX).retval, TC_ACT.SHOT);
    assert.equal(run(EGRESS, frag).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { control_malformed: 2n });
    assert.equal(h.punts().length, 0);
  });

  // ------------------------------------------------------------ control messages

  test('control ICMP type 253 on ingress: punted (CONTROL record, zero CID), never to the stack, whatever the miss action', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const ctl = icmpFrame({ src: B, dst: A, type: ICMP_TYPE, code: 2, payload: Buffer.from('RGI message body') });
    const r = run(INGRESS, ctl);
    assert.equal(r.retval, TC_ACT.STOLEN);
    assert.deepEqual(stats(), { punt_control: 1n });
    const [rec] = h.punts();
    assert.equal(rec.reason, PuntReason.CONTROL);
    assert.equal(rec.dir, Dir.INGRESS);
    assert.deepEqual(puntPacket(rec), ctl);
    assert.deepEqual(rec.cid, { saddr: '0.0.0.0', daddr: '0.0.0.0', sport: 0, dport: 0, proto: 0, dir: 0 });
  });

  test('malformed control messages dropped: fragmented (control_malformed), ICMP header cut (malformed_l4), > 2048 B (control_malformed)', () => {
    iface(MissAction.PASS, MissAction.PASS);
    const frag = icmpFrame({ src: B, dst: A, type: ICMP_TYPE, ip: { moreFragments: true } });
    assert.equal(run(INGRESS, frag).retval, TC_ACT.SHOT);
    const full = icmpFrame({ src: B, dst: A, type: ICMP_TYPE });
    const cut = icmpFrame({ src: B, dst: A, type: ICMP_TYPE, ip: { totalLength: 20 + 4 } });
    assert.ok(cut.length === full.length);
    assert.equal(run(INGRESS, cut).retval, TC_ACT.SHOT);
    const huge = icmpFrame({ src: B, dst: A, type: ICMP_TYPE, payload: Buffer.alloc(2100) });
    assert.equal(run(INGRESS, huge).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { control_malformed: 2n, malformed_l4: 1n });
    assert.equal(h.punts().length, 0);
  });

  // ------------------------------------------------------------ release marks

  test('release (egress mark) of a stashed SYN that now hits the PIT: passed, counted released', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    const pkt = tcpFrame(tcpAB);
    assert.equal(run(EGRESS, pkt).retval, TC_ACT.STOLEN);
    const stashed = puntPacket(h.punts()[0]);
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.PASS));
    const r = run(EGRESS, Buffer.from(stashed), MARK_RELEASE_EGRESS);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, pkt);
    assert.deepEqual(stats(), { punt_miss: 1n, pit_pass: 1n, released: 1n });
  });

  test('release (egress mark) that misses again: dropped (release_miss), never re-punted', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    assert.equal(run(EGRESS, tcpFrame(tcpAB), MARK_RELEASE_EGRESS).retval, TC_ACT.SHOT);
    assert.deepEqual(stats(), { release_miss: 1n });
    assert.equal(h.punts().length, 0);
  });

  test('release (ingress mark) seen by egress: redirected to ingress, nothing counted there', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    const r = run(EGRESS, udpFrame(udpBA), MARK_RELEASE_INGRESS);
    assert.equal(r.retval, TC_ACT.REDIRECT);
    assert.deepEqual(r.dataOut, udpFrame(udpBA));
    assert.deepEqual(stats(), {});
  });

  test('release (ingress mark) seen by ingress: hit -> passed and counted released; miss -> release_miss', () => {
    iface(MissAction.PUNT, MissAction.PUNT);
    assert.equal(run(INGRESS, udpFrame(udpBA), MARK_RELEASE_INGRESS).retval, TC_ACT.SHOT);
    h.maps.pit.set(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS), pitVal(Action.PASS));
    assert.equal(run(INGRESS, udpFrame(udpBA), MARK_RELEASE_INGRESS).retval, TC_ACT.OK);
    // an ingress release mark means nothing to egress-only processing and vice versa
    h.maps.pit.delete(cidOf(udpBA, IPPROTO_UDP, Dir.INGRESS));
    assert.equal(run(INGRESS, udpFrame(udpBA), MARK_RELEASE_EGRESS).retval, TC_ACT.STOLEN);
    assert.deepEqual(stats(), { release_miss: 1n, pit_pass: 1n, released: 1n, punt_miss: 1n });
    assert.equal(h.punts().length, 1);
  });
});

describe('TC datapath with a 4 KiB ring buffer', { skip: unavailable ?? false }, () => {
  test('records are header + captured bytes: 30 SYNs fit in 4 KiB; then a 2048-byte frame finds the ring full (punt_ringbuf)', () => {
    const h = BpfHarness.open({ maxEntries: { gscip_punt: 4096 } });
    try {
      h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PUNT, MissAction.PUNT], flags: 1 });
      const syn = tcpFrame(tcpAB);
      assert.equal(h.progTestRun(EGRESS, syn, { repeat: 30 }).retval, TC_ACT.STOLEN);
      assert.deepEqual(h.nonZeroStats(), { punt_miss: 30n });
      const big = udpFrame({ ...udpBA, payload: Buffer.alloc(2048 - 42, 0x63) });
      assert.equal(h.progTestRun(INGRESS, big).retval, TC_ACT.SHOT);
      assert.deepEqual(h.nonZeroStats(), { punt_miss: 30n, punt_ringbuf: 1n });
      const recs = h.punts();
      assert.equal(recs.length, 30);
      for (const r of recs) assert.deepEqual(puntPacket(r), syn);
      // drained: the big one fits now, alone
      assert.equal(h.progTestRun(INGRESS, big).retval, TC_ACT.STOLEN);
      assert.equal(h.progTestRun(INGRESS, big).retval, TC_ACT.SHOT);
      assert.deepEqual(puntPacket(h.punts()[0]), big);
    } finally {
      h.close();
    }
  });
});
