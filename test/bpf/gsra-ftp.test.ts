/**
 * GSRA's FTP stage (bpf/lib/ftp.h, GSCIP_STAGE_FTP) with BPF_PROG_TEST_RUN:
 *  - ingress (the EN): a "227 " reply of a flow the XLAT stage translated
 *    (a VAT flow GGR:t -> GEN:s made VIN:21 -> GEN:s) is punted whole, in the
 *    stack view (reason FTP_REPLY, not stashed); the re-injected reply
 *    (GSCIP_MARK_DNS_REINJECT) passes and is not punted again; other replies,
 *    untranslated flows and a load without the stage are untouched;
 *  - egress (the router): a "227 "/"229 " reply from port 21 is copied to the
 *    agent in the pre-NAT view (reason FTP_COPY) and goes on (verdict
 *    unchanged, counted ftp_copy); other segments are not copied.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { IPPROTO_TCP, parseFrame, tcpFrame } from '../lib/packets.js';
import { Action, Dir, MARK_DNS_REINJECT, MissAction, PitState, PuntReason, Role, XlatKind } from '../../controlplane/maps/abi.js';
import type { PitVal } from '../../controlplane/maps/codecs.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const GEN = '192.0.2.20';
const GGR = '192.0.2.1';
const VIN = '198.19.128.1';
const PIN = '100.64.1.10';
const T = 40001;
const S = 45000;
const unavailable = bpfUnavailable();

const pitVal = (action: number): PitVal => ({ action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n });
const P227 = Buffer.from('227 Entering Passive Mode (100,64,1,10,195,80).\r\n');
const P229 = Buffer.from('229 Entering Extended Passive Mode (|||50000|)\r\n');

function open(ftp: boolean): BpfHarness {
  const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, stages: { xlat: true, pccom: true, ...(ftp ? { ftp: true } : {}) } });
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
  // EN: the wire flow GGR:t -> GEN:s passes the PIT, the VAT makes it VIN:21 -> GEN:s.
  h.maps.pit.set({ saddr: GGR, daddr: GEN, sport: T, dport: S, proto: IPPROTO_TCP, dir: Dir.INGRESS }, pitVal(Action.PASS));
  h.maps.xlat.set({ saddr: GGR, daddr: GEN, sport: T, dport: S, proto: IPPROTO_TCP, dir: Dir.INGRESS }, { saddr: VIN, daddr: GEN, sport: 21, dport: S, kind: XlatKind.VAT, created_ns: 0n });
  // An untranslated flow from port 21.
  h.maps.pit.set({ saddr: PIN, daddr: GEN, sport: 21, dport: S, proto: IPPROTO_TCP, dir: Dir.INGRESS }, pitVal(Action.PASS));
  // Router egress: the IN's reply PIN:21 -> GEN:s passes the PIT (the test load has no NAT stage).
  h.maps.pit.set({ saddr: PIN, daddr: GEN, sport: 21, dport: S, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pitVal(Action.PASS));
  return h;
}

const wire = (payload: Buffer) => tcpFrame({ src: GGR, dst: GEN, sport: T, dport: S, seq: 7, flags: 0x18, payload });
const inside = (payload: Buffer) => tcpFrame({ src: PIN, dst: GEN, sport: 21, dport: S, seq: 7, flags: 0x18, payload });

describe('FTP stage: 227 replies punted on the EN, 227/229 copied on the router', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  const hs: BpfHarness[] = [];
  const h = (ftp: boolean): BpfHarness => { const x = open(ftp); hs.push(x); return x; };
  after(() => { for (const x of hs) x.close(); });

  test('ingress: a translated 227 from VIN:21 is punted whole in the stack view (FTP_REPLY), counted ftp_punt', () => {
    const x = h(true);
    const r = x.progTestRun(INGRESS, wire(P227));
    assert.equal(r.retval, TC_ACT.STOLEN);
    const p = x.punts();
    assert.equal(p.length, 1);
    assert.equal(p[0].reason, PuntReason.FTP_REPLY);
    const f = parseFrame(p[0].data.subarray(0, p[0].cap_len));
    assert.equal(f.ip?.src, VIN, 'after XLAT: the stack view');
    assert.equal(f.l4?.sport, 21);
    assert.deepEqual(x.nonZeroStats(), { ftp_punt: 1n, xlat: 1n });
  });

  test('ingress: the re-injected reply passes to the stack and is not punted again', () => {
    const x = h(true);
    const punted = (() => { x.progTestRun(INGRESS, wire(P227)); const p = x.punts()[0]; return p.data.subarray(0, p.cap_len); })();
    assert.equal(x.progTestRun(EGRESS, punted, { mark: MARK_DNS_REINJECT }).retval, TC_ACT.REDIRECT);
    const r = x.progTestRun(INGRESS, punted, { mark: MARK_DNS_REINJECT });
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, punted, 'unchanged');
    assert.equal(x.punts().length, 0);
  });

  test('ingress: a 229, other text, an untranslated flow from port 21 and a pure ACK are not punted', () => {
    const x = h(true);
    assert.equal(x.progTestRun(INGRESS, wire(P229)).retval, TC_ACT.OK);
    assert.equal(x.progTestRun(INGRESS, wire(Buffer.from('226 Transfer complete.\r\n'))).retval, TC_ACT.OK);
    assert.equal(x.progTestRun(INGRESS, wire(Buffer.alloc(0))).retval, TC_ACT.OK);
    assert.equal(x.progTestRun(INGRESS, tcpFrame({ src: PIN, dst: GEN, sport: 21, dport: S, seq: 7, flags: 0x18, payload: P227 })).retval, TC_ACT.OK);
    assert.equal(x.punts().length, 0);
  });

  test('egress: a 227 and a 229 from port 21 are copied (FTP_COPY) and go on; other segments are not', () => {
    const x = h(true);
    for (const pl of [P227, P229]) {
      const f = inside(pl);
      const r = x.progTestRun(EGRESS, f);
      assert.equal(r.retval, TC_ACT.OK, 'the reply itself goes on');
      assert.deepEqual(r.dataOut, f);
    }
    assert.equal(x.progTestRun(EGRESS, inside(Buffer.from('150 Here comes the directory listing.\r\n'))).retval, TC_ACT.OK);
    const p = x.punts();
    assert.equal(p.length, 2);
    assert.deepEqual(p.map((r) => r.reason), [PuntReason.FTP_COPY, PuntReason.FTP_COPY]);
    assert.equal(p[0].dir, Dir.EGRESS);
    assert.deepEqual(p[1].data.subarray(0, p[1].cap_len), inside(P229), 'the pre-NAT view, whole');
    assert.deepEqual(x.nonZeroStats(), { pit_pass: 3n, ftp_copy: 2n });
  });

  test('without the stage: nothing punted or copied', () => {
    const x = h(false);
    assert.equal(x.progTestRun(INGRESS, wire(P227)).retval, TC_ACT.OK);
    assert.equal(x.progTestRun(EGRESS, inside(P227)).retval, TC_ACT.OK);
    assert.equal(x.punts().length, 0);
    assert.deepEqual(x.nonZeroStats(), { pit_pass: 2n, xlat: 1n });
  });
});
