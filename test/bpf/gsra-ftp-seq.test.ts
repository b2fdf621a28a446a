/**
 * GSRA's FTP sequence delta in the fast path (bpf/lib/ftp.h, gscip_ftp_seq)
 * with BPF_PROG_TEST_RUN, through PCCOM as on the EN's Internet leg:
 *  - ingress: a server segment GGR:t -> GEN:s encrypted under the group key
 *    (by a second load's egress, the router's role) is decrypted, translated to
 *    VIN:21 -> GEN:s and then has its seq moved by the connection's delta
 *    (after the correction position; not at it), TCP checksum verifying, the
 *    payload the plaintext; a pure ACK moves too; without an entry nothing moves;
 *  - egress: the client's GEN:s -> VIN:21 segment has its ack and SACK edges
 *    moved back before XLAT and PCCOM: decrypted by the second load's ingress it
 *    arrives with the server's own numbers and a verifying checksum;
 *  - across the wrap of the sequence space; a client SYN on the 4-tuple drops
 *    the entry (counted ftp_seq_reset).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { IPPROTO_TCP, parseFrame, tcpFrame } from '../lib/packets.js';
import { Action, Dir, MissAction, PitState, Role, XlatKind } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const GEN = '192.0.2.20';
const GGR = '192.0.2.1';
const VIN = '198.19.128.1';
const T = 40001;
const S = 45000;
const M = 2 ** 32;
const unavailable = bpfUnavailable();

const pitVal = (action: number): PitVal => ({ action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 7, key_version: 1, created_ns: 0n, last_seen_ns: 0n });
const cid = (saddr: string, sport: number, daddr: string, dport: number, dir: number): Cid => ({ saddr, daddr, sport, dport, proto: IPPROTO_TCP, dir });
const SEQ_KEY = cid(VIN, 21, GEN, S, Dir.INGRESS);

function load(ftp: boolean): BpfHarness {
  const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, stages: { xlat: true, pccom: true, ...(ftp ? { ftp: true } : {}) } });
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
  h.maps.keys.set({ group_id: 7, version: 1 }, { key: Buffer.alloc(32, 0x5a), flags: 0, installed_ns: 0n });
  return h;
}

/** The EN: the control connection's VAT flow and its PIT entries (ENCRYPT out, DECRYPT in). */
function en(): BpfHarness {
  const h = load(true);
  h.maps.pit.set(cid(GGR, T, GEN, S, Dir.INGRESS), pitVal(Action.DECRYPT));
  h.maps.pit.set(cid(GEN, S, GGR, T, Dir.EGRESS), pitVal(Action.ENCRYPT));
  h.maps.xlat.set(cid(GGR, T, GEN, S, Dir.INGRESS), { saddr: VIN, daddr: GEN, sport: 21, dport: S, kind: XlatKind.VAT, created_ns: 0n });
  h.maps.xlat.set(cid(GEN, S, VIN, 21, Dir.EGRESS), { saddr: GEN, daddr: GGR, sport: S, dport: T, kind: XlatKind.VAT, created_ns: 0n });
  return h;
}

/** The router's end of the leg: encrypts the server's segments, decrypts the client's. */
function router(): BpfHarness {
  const h = load(false);
  h.maps.pit.set(cid(GGR, T, GEN, S, Dir.EGRESS), pitVal(Action.ENCRYPT));
  h.maps.pit.set(cid(GEN, S, GGR, T, Dir.INGRESS), pitVal(Action.DECRYPT));
  return h;
}

const seqOf = (f: Buffer): number => f.readUInt32BE(14 + 20 + 4);
const ackOf = (f: Buffer): number => f.readUInt32BE(14 + 20 + 8);
const sack = (edges: number[]): Buffer => {
  const b = Buffer.alloc(2 + 2 + 4 * edges.length);
  b[0] = 1; b[1] = 1;   // NOP NOP
  b[2] = 5; b[3] = 2 + 4 * edges.length;
  edges.forEach((e, i) => b.writeUInt32BE(e >>> 0, 4 + 4 * i));
  return b;
};

describe('FTP sequence delta in the fast path, across PCCOM', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  const hs: BpfHarness[] = [];
  const open = <T extends BpfHarness>(x: T): T => { hs.push(x); return x; };
  after(() => { for (const x of hs) x.close(); });

  /** A server segment as it leaves the router (encrypted), then through the EN's ingress. */
  function serverToEn(r: BpfHarness, e: BpfHarness, seq: number, payload: Buffer, flags = 0x18): Buffer {
    const plain = tcpFrame({ src: GGR, dst: GEN, sport: T, dport: S, seq, ack: 5000, flags, payload });
    const w = r.progTestRun(EGRESS, plain);
    assert.equal(w.retval, TC_ACT.OK);
    assert.notDeepEqual(w.dataOut.subarray(54), plain.subarray(54).length ? plain.subarray(54) : Buffer.from('x'), 'encrypted on the leg');
    const i = e.progTestRun(INGRESS, w.dataOut);
    assert.equal(i.retval, TC_ACT.OK);
    const p = parseFrame(i.dataOut);
    assert.equal(p.ip?.src, VIN);
    assert.equal(p.l4?.sport, 21);
    assert.ok(p.l4?.checksumOk, 'TCP checksum verifies after decryption, XLAT and the seq move');
    assert.ok(p.ip?.checksumOk);
    assert.deepEqual(p.l4?.payload, payload, 'the plaintext');
    return i.dataOut;
  }

  /** A client segment through the EN's egress (moved, translated, encrypted), then decrypted at the router. */
  function clientToRouter(e: BpfHarness, r: BpfHarness, ack: number, opts: Buffer | undefined, flags = 0x10): Buffer {
    const plain = tcpFrame({ src: GEN, dst: VIN, sport: S, dport: 21, seq: 5000, ack, flags, tcpOptions: opts, payload: Buffer.from('RETR f\r\n') });
    const w = e.progTestRun(EGRESS, plain);
    assert.equal(w.retval, TC_ACT.OK);
    const i = r.progTestRun(INGRESS, w.dataOut);
    assert.equal(i.retval, TC_ACT.OK, 'the keyed checksum verifies at the router');
    const p = parseFrame(i.dataOut);
    assert.equal(p.ip?.dst, GGR);
    assert.ok(p.l4?.checksumOk, 'TCP checksum verifies after decryption');
    assert.equal(p.l4?.payload.toString(), 'RETR f\r\n');
    return i.dataOut;
  }

  test('server seqs after the correction move by the delta, the rewritten one does not; without an entry nothing moves', () => {
    const e = open(en()), r = open(router());
    const pos = 100_000;
    assert.equal(seqOf(serverToEn(r, e, pos + 40, Buffer.from('150 ok\r\n'))), pos + 40, 'no entry: unchanged');
    e.maps.ftpSeq.set(SEQ_KEY, { pos, before: 0, after: 8 });
    assert.equal(seqOf(serverToEn(r, e, pos + 40, Buffer.from('150 ok\r\n'))), pos + 48);
    assert.equal(seqOf(serverToEn(r, e, pos + 48, Buffer.alloc(0), 0x10)), pos + 56, 'a pure ACK from the server');
    assert.equal(seqOf(serverToEn(r, e, pos, Buffer.from('200 x\r\n'))), pos, 'the segment at the correction position: `before`');
    assert.equal(seqOf(serverToEn(r, e, pos - 100, Buffer.from('200 y\r\n'))), pos - 100);
    assert.equal(e.nonZeroStats().ftp_seq_adj, 2n);
  });

  test('the client\'s ack and SACK edges move back, before PCCOM encrypts them', () => {
    const e = open(en()), r = open(router());
    const pos = 100_000, len = 30;
    e.maps.ftpSeq.set(SEQ_KEY, { pos, before: 3, after: 11 });
    // the client saw the rewritten segment at pos + 3 .. pos + len + 11, and later data shifted by 11
    const out = clientToRouter(e, r, pos + len + 11, sack([pos + len + 111, pos + len + 211, pos + 3, pos + len + 11]));
    assert.equal(ackOf(out), pos + len);
    const o = 14 + 20 + 20 + 4;
    assert.deepEqual([0, 1, 2, 3].map((i) => out.readUInt32BE(o + 4 * i)), [pos + len + 100, pos + len + 200, pos, pos + len]);
    assert.equal(ackOf(clientToRouter(e, r, pos + 3, undefined)), pos, 'an ack up to the rewritten segment: `before`');
    e.maps.ftpSeq.delete(SEQ_KEY);
    assert.equal(ackOf(clientToRouter(e, r, pos + len + 11, undefined)), pos + len + 11, 'no entry: unchanged');
  });

  test('across the wrap of the sequence space', () => {
    const e = open(en()), r = open(router());
    const pos = M - 20;
    e.maps.ftpSeq.set(SEQ_KEY, { pos, before: 0, after: 8 });
    assert.equal(seqOf(serverToEn(r, e, 10, Buffer.from('150 ok\r\n'))), 18);
    assert.equal(seqOf(serverToEn(r, e, M - 5, Buffer.from('150 ok\r\n'))), 3);
    assert.equal(ackOf(clientToRouter(e, r, 18, undefined)), 10);
    assert.equal(ackOf(clientToRouter(e, r, 3, undefined)), M - 5);
  });

  test('a client SYN on the 4-tuple drops the entry (a new connection), counted', () => {
    const e = open(en());
    e.maps.ftpSeq.set(SEQ_KEY, { pos: 1, before: 0, after: 8 });
    const syn = tcpFrame({ src: GEN, dst: VIN, sport: S, dport: 21, seq: 9, flags: 0x02 });
    assert.equal(e.progTestRun(EGRESS, syn).retval, TC_ACT.OK);
    assert.equal(e.maps.ftpSeq.get(SEQ_KEY), undefined);
    assert.equal(e.nonZeroStats().ftp_seq_reset, 1n);
  });

  test('a load without the FTP stage moves nothing', () => {
    const e = open(load(false)), r = open(router());
    e.maps.pit.set(cid(GGR, T, GEN, S, Dir.INGRESS), pitVal(Action.DECRYPT));
    e.maps.xlat.set(cid(GGR, T, GEN, S, Dir.INGRESS), { saddr: VIN, daddr: GEN, sport: 21, dport: S, kind: XlatKind.VAT, created_ns: 0n });
    e.maps.ftpSeq.set(SEQ_KEY, { pos: 1, before: 0, after: 8 });
    assert.equal(seqOf(serverToEn(r, e, 100, Buffer.from('150 ok\r\n'))), 100);
  });
});
