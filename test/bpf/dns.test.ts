/**
 * NAT-f's DNS stage (bpf/lib/dns.h, GSCIP_STAGE_DNS) with BPF_PROG_TEST_RUN:
 * an answer from port 53 that the PIT lets through on ingress is punted
 * (GSCIP_PUNT_DNS, the whole frame, not stashed); the agent's re-injected
 * answer (GSCIP_MARK_DNS_REINJECT) is redirected by egress to ingress, where
 * it skips the PIT and this stage and still gets its XLAT translation; an
 * answer too big to punt passes unmodified (counted); other traffic and a load
 * without the stage are untouched.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { IPPROTO_TCP, IPPROTO_UDP, parseFrame, tcpFrame, udpFrame, type UdpOpts } from '../lib/packets.js';
import { Action, Dir, MARK_DNS_REINJECT, MissAction, PitState, PuntReason, Role, Stat, XlatKind } from '../../controlplane/maps/abi.js';
import type { PitVal } from '../../controlplane/maps/codecs.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const A = '192.0.2.1';
const DNS = '198.51.100.53';
const MOVED = '198.51.100.54';
const unavailable = bpfUnavailable();

const pitVal = (action: number): PitVal => ({ action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n });
const answer: UdpOpts = { src: DNS, dst: A, sport: 53, dport: 40000, payload: Buffer.from('a dns answer, as bytes') };

function open(dns: boolean): BpfHarness {
  const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, stages: { xlat: true, pccom: true, ...(dns ? { dns: true } : {}) } });
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
  h.maps.pit.set({ saddr: DNS, daddr: A, sport: 53, dport: 40000, proto: IPPROTO_UDP, dir: Dir.INGRESS }, pitVal(Action.PASS));
  h.maps.pit.set({ saddr: DNS, daddr: A, sport: 53, dport: 40001, proto: IPPROTO_TCP, dir: Dir.INGRESS }, pitVal(Action.PASS));
  h.maps.pit.set({ saddr: DNS, daddr: A, sport: 5353, dport: 40000, proto: IPPROTO_UDP, dir: Dir.INGRESS }, pitVal(Action.PASS));
  return h;
}

describe('DNS stage: answers punted on ingress, re-injected past the PIT', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  const hs: BpfHarness[] = [];
  const h = (dns: boolean): BpfHarness => { const x = open(dns); hs.push(x); return x; };
  after(() => { for (const x of hs) x.close(); });

  test('a UDP and a TCP answer from port 53 the PIT lets through are punted whole (reason DNS), counted dns_punt', () => {
    const x = h(true);
    const f = udpFrame(answer);
    const r = x.progTestRun(INGRESS, f);
    assert.equal(r.retval, TC_ACT.STOLEN);
    const t = tcpFrame({ src: DNS, dst: A, sport: 53, dport: 40001, seq: 1, flags: 0x18, payload: Buffer.from('\x00\x10tcp dns answer..') });
    assert.equal(x.progTestRun(INGRESS, t).retval, TC_ACT.STOLEN);
    const p = x.punts();
    assert.equal(p.length, 2);
    assert.equal(p[0].reason, PuntReason.DNS);
    assert.deepEqual(p[0].data.subarray(0, p[0].cap_len), f, 'the whole frame');
    assert.equal(p[1].reason, PuntReason.DNS);
    assert.deepEqual(x.nonZeroStats(), { dns_punt: 2n });
  });

  test('the re-injected answer: egress redirects it to ingress, ingress skips the PIT and the DNS stage and applies XLAT', () => {
    const x = h(true);
    const f = udpFrame(answer);
    assert.equal(x.progTestRun(EGRESS, f, { mark: MARK_DNS_REINJECT }).retval, TC_ACT.REDIRECT);
    // a CIT-style translation of the answer's flow still applies to it
    x.maps.xlat.set({ saddr: DNS, daddr: A, sport: 53, dport: 40000, proto: IPPROTO_UDP, dir: Dir.INGRESS }, { saddr: MOVED, daddr: A, sport: 53, dport: 40000, kind: XlatKind.CIT, created_ns: 0n });
    x.maps.pit.delete({ saddr: DNS, daddr: A, sport: 53, dport: 40000, proto: IPPROTO_UDP, dir: Dir.INGRESS });
    const r = x.progTestRun(INGRESS, f, { mark: MARK_DNS_REINJECT });
    assert.equal(r.retval, TC_ACT.OK, 'passed to the stack though no PIT entry matches any more');
    const out = parseFrame(r.dataOut);
    assert.equal(out.ip?.src, MOVED);
    assert.ok(out.ip?.checksumOk, 'IPv4 header checksum right after the rewrite');
    assert.equal(x.punts().length, 0, 'never punted again');
    assert.deepEqual(x.nonZeroStats(), { dns_reinjected: 1n, xlat: 1n });
  });

  test('an answer longer than a punt record passes unmodified (dns_too_big); another port is untouched', () => {
    const x = h(true);
    const big = udpFrame({ ...answer, payload: Buffer.alloc(2100, 7) });
    const r = x.progTestRun(INGRESS, big);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, big);
    const other = udpFrame({ ...answer, sport: 5353 });
    assert.equal(x.progTestRun(INGRESS, other).retval, TC_ACT.OK);
    assert.equal(x.punts().length, 0);
    assert.deepEqual(x.nonZeroStats(), { dns_too_big: 1n, pit_pass: 1n });
    assert.equal(x.stat(Stat.STAT_DNS_TOO_BIG).packets, 1n);
  });

  test('without the stage (every other GE): the answer passes, nothing punted, a DNS mark is not honoured on ingress', () => {
    const x = h(false);
    assert.equal(x.progTestRun(INGRESS, udpFrame(answer)).retval, TC_ACT.OK);
    x.maps.pit.delete({ saddr: DNS, daddr: A, sport: 53, dport: 40000, proto: IPPROTO_UDP, dir: Dir.INGRESS });
    assert.equal(x.progTestRun(INGRESS, udpFrame(answer), { mark: MARK_DNS_REINJECT }).retval, TC_ACT.SHOT, 'takes the PIT (miss: drop)');
    assert.equal(x.punts().length, 0);
    assert.deepEqual(x.nonZeroStats(), { pit_pass: 1n, miss_policy: 1n });
  });
});
