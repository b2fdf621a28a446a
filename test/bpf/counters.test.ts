/**
 * The (reason, direction) counters of gscip_counters, on crafted packets with
 * BPF_PROG_TEST_RUN: each packet lands in the slot of its reason and of the
 * program's direction, overlays (xlat, released) are counted on top of the one
 * verdict, so the verdict + drop counters sum to exactly the packets run, and
 * the TC action of every verdict is the one GSCIP_REASONS declares.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { arpFrame, IPPROTO_TCP, IPPROTO_UDP, tcpFrame, udpFrame, type TcpOpts, type UdpOpts } from '../lib/packets.js';
import { Action, Dir, MARK_RELEASE_EGRESS, MissAction, PitState, Role, Stat, STAT_BY_ID, TcVerdict, XlatKind } from '../../controlplane/maps/abi.js';
import { readStats } from '../../controlplane/maps/accessors.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const A = '192.0.2.1';
const B = '192.0.2.2';
const V = '198.18.0.9';

const cidOf = (o: { src: string; dst: string; sport: number; dport: number }, proto: number, dir: number): Cid =>
  ({ saddr: o.src, daddr: o.dst, sport: o.sport, dport: o.dport, proto, dir });
const pitVal = (action: number): PitVal => ({ action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n });

const tcpAB: TcpOpts = { src: A, dst: B, sport: 40000, dport: 80, payload: Buffer.from('counted') };
const udpBA: UdpOpts = { src: B, dst: A, sport: 53, dport: 5353, payload: Buffer.from('answer') };

const TC_OF: Record<string, number> = { pass: TcVerdict.PASS, shot: TcVerdict.SHOT, stolen: TcVerdict.STOLEN, redirect: TcVerdict.REDIRECT };

describe('gscip_counters: (reason, direction), overlays apart', { skip: bpfUnavailable() ?? false }, () => {
  let h: BpfHarness;
  before(() => { h = BpfHarness.open(); });
  after(() => { h?.close(); });
  beforeEach(() => {
    for (const k of [...h.maps.pit.keys()]) h.maps.pit.delete(k);
    for (const k of [...h.maps.xlat.keys()]) h.maps.xlat.delete(k);
    h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
    h.resetStats();
    h.punts();
  });

  test('an egress PIT pass counts in (pit_pass, egress) only, with its bytes', () => {
    const pkt = tcpFrame(tcpAB);
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.PASS));
    assert.equal(h.progTestRun(EGRESS, pkt).retval, TcVerdict.PASS);
    assert.deepEqual(h.statDir(Stat.STAT_PIT_PASS, Dir.EGRESS), { packets: 1n, bytes: BigInt(pkt.length) });
    assert.deepEqual(h.statDir(Stat.STAT_PIT_PASS, Dir.INGRESS), { packets: 0n, bytes: 0n });
  });

  test('an ingress miss drop and an ingress non-IP pass count under ingress', () => {
    assert.equal(h.progTestRun(INGRESS, udpFrame(udpBA)).retval, TcVerdict.SHOT);
    assert.equal(h.progTestRun(INGRESS, arpFrame(A, B)).retval, TcVerdict.PASS);
    assert.equal(h.statDir(Stat.DROP_MISS_POLICY, Dir.INGRESS).packets, 1n);
    assert.equal(h.statDir(Stat.STAT_PASS_NON_IP, Dir.INGRESS).packets, 1n);
    assert.equal(h.statDir(Stat.DROP_MISS_POLICY, Dir.EGRESS).packets + h.statDir(Stat.STAT_PASS_NON_IP, Dir.EGRESS).packets, 0n);
  });

  test('overlays are their own kind: verdicts + drops sum to the packets run, xlat and released on top', () => {
    // 1: translated egress TCP (stack V:80 -> wire B:80) that passes: pit_pass + xlat overlay
    const stack = { ...tcpAB, dst: V };
    h.maps.xlat.set(cidOf(stack, IPPROTO_TCP, Dir.EGRESS), { saddr: A, daddr: B, sport: 40000, dport: 80, kind: XlatKind.VAT, created_ns: 0n });
    h.maps.pit.set(cidOf(tcpAB, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.PASS));
    assert.equal(h.progTestRun(EGRESS, tcpFrame(stack)).retval, TcVerdict.PASS);
    // 2: a released egress packet that hits: pit_pass + released overlay
    assert.equal(h.progTestRun(EGRESS, tcpFrame(tcpAB), { mark: MARK_RELEASE_EGRESS }).retval, TcVerdict.PASS);
    // 3: a drop
    assert.equal(h.progTestRun(INGRESS, udpFrame(udpBA)).retval, TcVerdict.SHOT);
    const rows = readStats(h.maps);
    const sum = (k: string): bigint => rows.filter((r) => r.kind === k).reduce((s, r) => s + r.packets, 0n);
    assert.equal(sum('verdict') + sum('drop'), 3n, 'three packets, three verdicts');
    assert.equal(sum('overlay'), 2n);
    assert.equal(rows.find((r) => r.name === 'xlat')?.egress.packets, 1n);
    assert.equal(rows.find((r) => r.name === 'released')?.egress.packets, 1n);
    assert.deepEqual(rows.filter((r) => r.kind === 'overlay').map((r) => r.name).sort(), ['ftp_copy', 'ftp_copy_failed', 'ftp_seq_adj', 'ftp_seq_reset', 'nat_created', 'nat_xlat', 'pccom_rekey', 'released', 'xlat']);
  });

  test('every verdict the programs returned is the TC action its reason declares', () => {
    h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PUNT, MissAction.PASS], flags: 1 });
    const cases: Array<[string, Buffer, string]> = [
      [EGRESS, tcpFrame(tcpAB), 'miss_pass'], [INGRESS, udpFrame(udpBA), 'punt_miss'], [EGRESS, arpFrame(A, B), 'pass_non_ip'],
    ];
    for (const [prog, pkt, name] of cases) {
      h.resetStats();
      const r = h.progTestRun(prog, pkt);
      const rows = readStats(h.maps).filter((x) => x.packets > 0n);
      assert.deepEqual(rows.map((x) => x.name), [name]);
      assert.equal(r.retval, TC_OF[rows[0].action], `${name}: TC action ${rows[0].action}`);
    }
    h.punts();
  });

  test('the UNUSED numbers of retired reasons are not counters', () => {
    for (const id of [Stat.STAT_UNUSED_5, Stat.STAT_UNUSED_6, Stat.STAT_UNUSED_13, Stat.STAT_UNUSED_41, Stat.STAT_UNUSED_42, Stat.STAT_UNUSED_43]) {
      assert.equal(STAT_BY_ID.get(id), undefined);
    }
    assert.equal(STAT_BY_ID.get(Stat.DROP_BAD_KEYED_CSUM)?.part, 'pccom');
    assert.equal(STAT_BY_ID.get(Stat.STAT_PIT_PASS)?.part, 'core');
  });
});
