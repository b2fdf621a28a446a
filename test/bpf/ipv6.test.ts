/**
 * BPF_PROG_TEST_RUN tests of the per-interface IPv6 policy (bpf/lib/ipv6.h,
 * gscip_iface_cfg.ipv6_policy): pass, drop and nd-only, both programs, each
 * outcome counted under its own reason and direction. Addresses: 2001:db8::/32
 * and link-local only.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { icmpv6Frame, ipv6Frame, IPPROTO_TCP, ipv6UdpFrame } from '../lib/packets.js';
import { Dir, Ipv6Policy, MissAction, Stat } from '../../controlplane/maps/abi.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const G1 = '2001:db8::1';
const G2 = '2001:db8:1::2';
const LL1 = 'fe80::1';
const LL2 = 'fe80::2';

/** A TCP SYN (20-byte header, no options) as an IPv6 payload; the datapath reads no checksum. */
function tcp6(src: string, dst: string, hopLimit = 64): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(40000, 0);
  t.writeUInt16BE(80, 2);
  t[12] = 5 << 4;
  t[13] = 0x02;
  return ipv6Frame({ src, dst, nextHeader: IPPROTO_TCP, hopLimit, payload: t });
}

const unavailable = bpfUnavailable();

describe('IPv6 policy (BPF_PROG_TEST_RUN)', { skip: unavailable ?? false }, () => {
  let h: BpfHarness;
  before(() => { h = BpfHarness.open(); });
  after(() => { h?.close(); });
  beforeEach(() => {
    for (const k of [...h.maps.iface.keys()]) h.maps.iface.delete(k);
    for (const k of [...h.maps.pit.keys()]) h.maps.pit.delete(k);
    h.maps.cfg.set(0, { punt_rate_pps: 0n, punt_burst: 0n });
    h.resetStats();
    h.punts();
  });

  // misses pass: whatever IPv6 does, it is the IPv6 policy's doing, never the miss action's
  const policy = (p: number | undefined): void => {
    h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 1, ...(p === undefined ? {} : { ipv6_policy: p }) });
  };
  const both = (pkt: Buffer, want: number): void => {
    for (const prog of [EGRESS, INGRESS]) {
      const r = h.progTestRun(prog, pkt);
      assert.equal(r.retval, want, `${prog}: TC verdict`);
      assert.deepEqual(r.dataOut, pkt, `${prog}: IPv6 is never rewritten`);
    }
  };

  test('pass: IPv6 TCP passes untouched both ways (pass_ipv6); an entry without the field (previous release) means pass', () => {
    policy(Ipv6Policy.PASS);
    both(tcp6(G1, G2), TC_ACT.OK);
    assert.deepEqual(h.nonZeroStats(), { pass_ipv6: 2n });
    h.resetStats();
    policy(undefined);
    both(tcp6(G1, G2), TC_ACT.OK);
    assert.deepEqual(h.nonZeroStats(), { pass_ipv6: 2n });
  });

  test('drop: IPv6 TCP, UDP and even ND are dropped (ipv6_policy), per direction', () => {
    policy(Ipv6Policy.DROP);
    both(tcp6(G1, G2), TC_ACT.SHOT);
    both(ipv6UdpFrame(), TC_ACT.SHOT);
    both(icmpv6Frame({ src: LL1, dst: 'ff02::1:ff00:2', type: 135, hopLimit: 255, body: Buffer.alloc(16) }), TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { ipv6_policy: 6n });
    assert.equal(h.statDir(Stat.DROP_IPV6_POLICY, Dir.INGRESS).packets, 3n);
    assert.equal(h.statDir(Stat.DROP_IPV6_POLICY, Dir.EGRESS).packets, 3n);
  });

  test('an unknown policy value fails closed (ipv6_policy)', () => {
    policy(7);
    both(tcp6(G1, G2), TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { ipv6_policy: 2n });
  });

  test('no interface entry: IPv6 is dropped as no_iface_cfg (fail closed)', () => {
    both(tcp6(G1, G2), TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { no_iface_cfg: 2n });
  });

  test('nd-only: RS, RA, NS, NA and redirect with hop limit 255 pass (pass_ipv6_nd), global or unspecified source', () => {
    policy(Ipv6Policy.ND_ONLY);
    for (const type of [133, 134, 135, 136, 137]) both(icmpv6Frame({ src: LL1, dst: 'ff02::1', type, hopLimit: 255, body: Buffer.alloc(16) }), TC_ACT.OK);
    both(icmpv6Frame({ src: '::', dst: 'ff02::1:ff00:1', type: 135, hopLimit: 255, body: Buffer.alloc(16) }), TC_ACT.OK);  // DAD
    both(icmpv6Frame({ src: G1, dst: G2, type: 136, hopLimit: 255, body: Buffer.alloc(16) }), TC_ACT.OK);
    assert.deepEqual(h.nonZeroStats(), { pass_ipv6_nd: 14n });
    assert.equal(h.statDir(Stat.STAT_PASS_IPV6_ND, Dir.INGRESS).packets, 7n);
  });

  test('nd-only: global TCP, global echo, ND below hop limit 255 and ND behind an extension header are dropped (ipv6_nd_only)', () => {
    policy(Ipv6Policy.ND_ONLY);
    both(tcp6(G1, G2), TC_ACT.SHOT);
    both(icmpv6Frame({ src: G1, dst: G2, type: 128, body: Buffer.from('ping') }), TC_ACT.SHOT);
    both(icmpv6Frame({ src: G1, dst: G2, type: 135, hopLimit: 254, body: Buffer.alloc(16) }), TC_ACT.SHOT);
    // hop-by-hop header (next header ICMPv6, PadN) then an NS
    const hbh = Buffer.from([58, 0, 1, 4, 0, 0, 0, 0]);
    const ns = Buffer.concat([Buffer.from([135, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(16)]);
    both(ipv6Frame({ src: G1, dst: 'ff02::1:ff00:2', nextHeader: 0, hopLimit: 255, payload: Buffer.concat([hbh, ns]) }), TC_ACT.SHOT);
    // one link-local end is not enough
    both(tcp6(LL1, G2), TC_ACT.SHOT);
    both(tcp6(G1, LL2), TC_ACT.SHOT);
    // ff0e:: (global scope multicast) from link-local is not link-local scope
    both(icmpv6Frame({ src: LL1, dst: 'ff0e::1', type: 128 }), TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { ipv6_nd_only: 14n });
  });

  test('nd-only: link-local source and destination pass (pass_ipv6_link_local): TCP, echo, MLD behind hop-by-hop', () => {
    policy(Ipv6Policy.ND_ONLY);
    both(tcp6(LL1, LL2), TC_ACT.OK);
    both(icmpv6Frame({ src: LL1, dst: LL2, type: 128, body: Buffer.from('ping') }), TC_ACT.OK);
    const hbh = Buffer.from([58, 0, 5, 2, 0, 0, 1, 0]);  // router alert
    both(ipv6Frame({ src: 'fe80::abcd', dst: 'ff02::16', nextHeader: 0, hopLimit: 1, payload: Buffer.concat([hbh, Buffer.from([143, 0, 0, 0, 0, 0, 0, 0])]) }), TC_ACT.OK);
    assert.deepEqual(h.nonZeroStats(), { pass_ipv6_link_local: 6n });
  });

  test('nd-only: malformed IPv6 is dropped and counted (malformed_ip / malformed_l4)', () => {
    policy(Ipv6Policy.ND_ONLY);
    const bad = tcp6(G1, G2);
    bad.writeUInt16BE(400, 14 + 4);  // payload length beyond the frame
    both(bad, TC_ACT.SHOT);
    const v4 = tcp6(LL1, LL2);
    v4[14] = 0x40;  // version 4 in an IPv6 ethertype
    both(v4, TC_ACT.SHOT);
    both(ipv6Frame({ src: LL1, dst: 'ff02::1', nextHeader: 58, hopLimit: 255, payload: Buffer.from([135, 0]) }), TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { malformed_ip: 4n, malformed_l4: 2n });
  });
});
