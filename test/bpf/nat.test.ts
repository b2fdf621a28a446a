/**
 * BPF_PROG_TEST_RUN tests of the GNAT's NAT stage (bpf/lib/nat.h) on crafted
 * packets: outbound and inbound rewrites of TCP and UDP with both checksums
 * re-verified here from scratch (test/lib/packets.ts, never the code under
 * test), ICMP errors with their quoted headers translated back to the exact
 * bytes the other side sent, port claims (never one port for two flows,
 * collisions, a range used up), a full session table refused and counted, and
 * what an inside host may not send out (other protocols, fragments).
 *
 * The NAT is configured for ifindex 1 (BPF_PROG_TEST_RUN's loopback) as the
 * outside interface; PIT misses pass, so only the NAT changes packets.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, resetNat, TC_ACT } from '../lib/bpf-harness.js';
import { ETH_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, icmpFrame, ip4ToString, onesSum, parseFrame, tcpFrame, udpFrame } from '../lib/packets.js';
import { Dir, NAT_F_IN, NAT_F_SYN_OUT, NatOrigin } from '../../controlplane/maps/abi.js';
import type { Cid, NatCfg } from '../../controlplane/maps/codecs.js';
import { natState } from '../../controlplane/natf/nat-expiry.js';
import { InboundMapper } from '../../controlplane/natf/inbound.js';
import { monotonicNs } from '../../controlplane/maps/accessors.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';

const G2 = '192.0.2.2';        // the GNAT's global address
const P1 = '100.64.1.10';      // a private host behind it
const P2 = '100.64.1.11';
const D = '198.51.100.7';      // a global host
const R = '203.0.113.1';       // a router on the global side (ICMP errors)
const unavailable = bpfUnavailable();

function cfg(lo: number, hi: number): NatCfg {
  return {
    ext_addr: G2, port_lo: lo, port_hi: hi,
    inside: [{ addr: '100.64.1.0', mask: '255.255.255.0' }, ...Array(3).fill({ addr: '0.0.0.0', mask: '0.0.0.0' })],
  };
}

function sessionKey(src: string, sport: number, dst: string, dport: number, proto: number): Cid {
  return { saddr: src, daddr: dst, sport, dport, proto, dir: Dir.EGRESS };
}

/** ICMP message of an IPv4 frame (from the ICMP header on), per the IP total length. */
function icmpOf(f: Buffer): Buffer {
  const ihl = (f[ETH_HLEN] & 0xf) * 4;
  return f.subarray(ETH_HLEN + ihl, ETH_HLEN + f.readUInt16BE(ETH_HLEN + 2));
}

/** ICMP echo request (8) or reply (0) with identifier and sequence number, checksum right. */
function echoFrame(src: string, dst: string, type: number, id: number, seq: number, payload: Buffer): Buffer {
  const f = icmpFrame({ src, dst, type, payload });
  const off = ETH_HLEN + (f[ETH_HLEN] & 0xf) * 4;
  f.writeUInt16BE(id, off + 4);
  f.writeUInt16BE(seq, off + 6);
  f.writeUInt16BE(0, off + 2);
  const l4 = f.subarray(off, ETH_HLEN + f.readUInt16BE(ETH_HLEN + 2));
  f.writeUInt16BE((~onesSum(l4)) & 0xffff, off + 2);
  return f;
}

/** ICMP error (type/code) from `src` to `dst` quoting `quoted` (an IPv4 packet, no Ethernet). */
function icmpError(src: string, dst: string, type: number, code: number, quoted: Buffer): Buffer {
  return icmpFrame({ src, dst, type, code, payload: quoted });
}

function open(opts: { maxNat?: number } = {}): BpfHarness {
  return BpfHarness.open({
    stages: { xlat: true, pccom: true, nat: true },
    maxEntries: { gscip_pit: 1024, gscip_xlat: 1024, ...(opts.maxNat ? { gscip_nat: opts.maxNat } : {}) },
  });
}


describe('GNAT NAT stage (BPF_PROG_TEST_RUN)', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  let h: BpfHarness;
  before(() => { h = open(); });
  after(() => { h?.close(); });
  beforeEach(() => resetNat(h, cfg(40000, 40999)));

  test('outbound TCP: source becomes G2:z in the range, checksums verify, payload untouched; the session and its claim are in the maps', () => {
    const payload = Buffer.from('GET / HTTP/1.0\r\n\r\n');
    const r = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 5555, dport: 80, flags: 0x02, payload }));
    assert.equal(r.retval, TC_ACT.OK);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip!.src, G2);
    assert.equal(p.ip!.dst, D);
    assert.ok(p.ip!.checksumOk, 'IPv4 header checksum');
    assert.ok(p.l4!.checksumOk, 'TCP checksum over the new pseudo-header');
    assert.ok(p.l4!.sport >= 40000 && p.l4!.sport <= 40999, `port ${p.l4!.sport} in the range`);
    assert.equal(p.l4!.dport, 80);
    assert.deepEqual(p.l4!.payload, payload);
    const key = sessionKey(P1, 5555, D, 80, IPPROTO_TCP);
    const s = h.maps.nat!.sessions.get(key)!;
    assert.equal(s.ext_addr, G2);
    assert.equal(s.ext_port, p.l4!.sport);
    assert.equal(s.origin, NatOrigin.OUTBOUND);
    assert.equal(s.flags & NAT_F_SYN_OUT, NAT_F_SYN_OUT);
    assert.deepEqual(h.maps.nat!.ports.get({ port: p.l4!.sport, proto: IPPROTO_TCP }), key);
    assert.deepEqual(h.nonZeroStats(), { miss_pass: 1n, nat_xlat: 1n, nat_created: 1n });

    // the next packet of the flow keeps its port and creates nothing
    const r2 = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 5555, dport: 80, flags: 0x10 }));
    assert.equal(parseFrame(r2.dataOut).l4!.sport, p.l4!.sport);
    assert.deepEqual(h.nonZeroStats(), { miss_pass: 2n, nat_xlat: 2n, nat_created: 1n });
  });

  test('inbound answer D:80 -> G2:z becomes D:80 -> P1:5555 with both checksums right; the session is now established', () => {
    const out = parseFrame(h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 5555, dport: 80, flags: 0x02 })).dataOut);
    const z = out.l4!.sport;
    const payload = Buffer.from('HTTP/1.0 200 OK\r\n\r\nhello');
    const r = h.progTestRun(INGRESS, tcpFrame({ src: D, dst: G2, sport: 80, dport: z, flags: 0x12, payload }));
    assert.equal(r.retval, TC_ACT.OK);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip!.src, D);
    assert.equal(p.ip!.dst, P1);
    assert.equal(p.l4!.sport, 80);
    assert.equal(p.l4!.dport, 5555);
    assert.ok(p.ip!.checksumOk && p.l4!.checksumOk);
    assert.deepEqual(p.l4!.payload, payload);
    // byte for byte what the private host would get from a direct connection
    assert.deepEqual(r.dataOut, tcpFrame({ src: D, dst: P1, sport: 80, dport: 5555, flags: 0x12, payload }));
    const s = h.maps.nat!.sessions.get(sessionKey(P1, 5555, D, 80, IPPROTO_TCP))!;
    assert.equal(s.flags & NAT_F_IN, NAT_F_IN);
    assert.equal(natState(IPPROTO_TCP, s.flags), 'tcp_established');
    assert.deepEqual(h.statDir(640, Dir.INGRESS).packets, 1n, 'nat_xlat counted on ingress');
  });

  test('UDP both ways; a zero UDP checksum stays zero', () => {
    const payload = Buffer.from('dns-query');
    const r = h.progTestRun(EGRESS, udpFrame({ src: P1, dst: D, sport: 5353, dport: 53, payload }));
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip!.src, G2);
    assert.ok(p.ip!.checksumOk && p.l4!.checksumOk);
    assert.ok(p.l4!.checksum !== 0);
    const back = h.progTestRun(INGRESS, udpFrame({ src: D, dst: G2, sport: 53, dport: p.l4!.sport, payload: Buffer.from('answer') }));
    assert.deepEqual(back.dataOut, udpFrame({ src: D, dst: P1, sport: 53, dport: 5353, payload: Buffer.from('answer') }));
    const z0 = parseFrame(h.progTestRun(EGRESS, udpFrame({ src: P1, dst: D, sport: 6000, dport: 53, payload, zeroChecksum: true })).dataOut);
    assert.equal(z0.ip!.src, G2);
    assert.equal(z0.l4!.checksum, 0, 'no checksum stays no checksum');
  });

  test('inbound to a claimed port from anyone but its peer is dropped (nat_filtered); to an unclaimed port it passes untouched', () => {
    const z = parseFrame(h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 5555, dport: 80 })).dataOut).l4!.sport;
    h.resetStats();
    const stranger = tcpFrame({ src: R, dst: G2, sport: 80, dport: z, flags: 0x12 });
    assert.equal(h.progTestRun(INGRESS, stranger).retval, TC_ACT.SHOT);
    const otherPort = tcpFrame({ src: D, dst: G2, sport: 81, dport: z, flags: 0x12 });
    assert.equal(h.progTestRun(INGRESS, otherPort).retval, TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { nat_filtered: 2n }, 'the PIT let them through (miss pass), the NAT refused them: one outcome each');
    const own = tcpFrame({ src: D, dst: G2, sport: 80, dport: z === 40999 ? 40000 : z + 1, flags: 0x12 });
    const r = h.progTestRun(INGRESS, own);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, own, 'not a NAT port: the GNAT\'s own traffic, untouched');
  });

  test('never one port for two flows: a range of 4 gives 4 flows 4 ports, the 5th is refused (nat_no_port) and leaves nothing behind', () => {
    resetNat(h, cfg(41000, 41003));
    const ports = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const r = h.progTestRun(EGRESS, tcpFrame({ src: i % 2 ? P2 : P1, dst: D, sport: 7000 + i, dport: 443 }));
      assert.equal(r.retval, TC_ACT.OK);
      ports.add(parseFrame(r.dataOut).l4!.sport);
    }
    assert.deepEqual([...ports].sort(), [41000, 41001, 41002, 41003]);
    const r = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 7999, dport: 443 }));
    assert.equal(r.retval, TC_ACT.SHOT);
    assert.equal(h.nonZeroStats().nat_no_port, 1n);
    assert.equal([...h.maps.nat!.sessions.keys()].length, 4);
    assert.equal([...h.maps.nat!.ports.keys()].length, 4);
    // UDP has its own ports: the same numbers are free for it
    const u = h.progTestRun(EGRESS, udpFrame({ src: P1, dst: D, sport: 7999, dport: 53 }));
    assert.equal(u.retval, TC_ACT.OK);
  });

  test('collision: with 3 of 4 ports already claimed, a new flow gets the 4th, whatever its random start', () => {
    resetNat(h, cfg(42000, 42003));
    const taken = sessionKey(P2, 1, D, 1, IPPROTO_TCP);
    for (const port of [42000, 42001, 42003]) h.maps.nat!.ports.set({ port, proto: IPPROTO_TCP }, taken);
    for (let i = 0; i < 8; i++) {
      const r = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 8000 + i, dport: 80 }));
      if (i === 0) {
        assert.equal(parseFrame(r.dataOut).l4!.sport, 42002);
      } else {
        assert.equal(r.retval, TC_ACT.SHOT, 'range used up');
      }
    }
    assert.equal(h.nonZeroStats().nat_no_port, 7n);
  });

  test('claimed ports in a run do not stop a new flow: 800 of 1,000 ports claimed in one block, 50 new flows get a free port (candidates drawn at random, not the ports after one start)', () => {
    resetNat(h, cfg(43000, 43999));
    const taken = sessionKey(P2, 1, D, 1, IPPROTO_TCP);
    h.maps.nat!.ports.setBatch(Array.from({ length: 800 }, (_, i) => [{ port: 43000 + i, proto: IPPROTO_TCP }, taken] as const));
    let refused = 0;
    const got = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const r = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 9000 + i, dport: 80 }));
      if (r.retval === TC_ACT.SHOT) { refused++; continue; }
      got.add(parseFrame(r.dataOut).l4!.sport);
    }
    // With the ports after one random start, ~77 % of starts fall 32 or more ports deep in the block (~38 of 50
    // refused); drawn at random, all 32 candidates claimed has a chance of 0.85^32 < 0.6 % per flow.
    assert.ok(refused <= 3, `${refused} of 50 new flows refused (nat_no_port) with 150-200 ports free`);
    assert.ok([...got].every((p) => p >= 43800 && p <= 43999), 'only free ports handed out');
    assert.equal(got.size, 50 - refused, 'each flow its own port');
  });

  test('ICMP error from the global side (fragmentation needed) quoting G2:z -> D:80: outer and quoted headers go back to P1:5555, every checksum right', () => {
    const orig = tcpFrame({ src: P1, dst: D, sport: 5555, dport: 80, flags: 0x18, payload: Buffer.from('x'.repeat(64)) });
    const wire = h.progTestRun(EGRESS, orig).dataOut;
    const z = parseFrame(wire).l4!.sport;
    // RFC 1812 routers quote as much as fits; quote the IP header and the whole TCP header
    const quotedWire = wire.subarray(ETH_HLEN, ETH_HLEN + 20 + 20);
    const err = icmpError(R, G2, 3, 4, quotedWire);
    h.resetStats();
    const r = h.progTestRun(INGRESS, err);
    assert.equal(r.retval, TC_ACT.OK);
    const f = r.dataOut;
    const outer = parseFrame(f);
    assert.equal(outer.ip!.src, R);
    assert.equal(outer.ip!.dst, P1);
    assert.ok(outer.ip!.checksumOk, 'outer IPv4 checksum');
    const icmp = icmpOf(f);
    assert.equal(onesSum(icmp), 0xffff, 'ICMP checksum over the rewritten message');
    assert.equal(icmp[0], 3);
    assert.equal(icmp[1], 4);
    // the quote is now exactly what P1 sent (addresses, port, IP and TCP checksums)
    assert.deepEqual(icmp.subarray(8), orig.subarray(ETH_HLEN, ETH_HLEN + 40));
    assert.equal(ip4ToString(icmp, 8 + 12), P1);
    assert.equal(icmp.readUInt16BE(8 + 20), 5555);
    assert.notEqual(z, 5555);
    assert.deepEqual(h.nonZeroStats(), { nat_icmp: 1n });
  });

  test('ICMP error with an 8-byte quote (RFC 792): addresses and port translated, the ICMP checksum still right', () => {
    const orig = udpFrame({ src: P1, dst: D, sport: 5353, dport: 53, payload: Buffer.from('q') });
    const wire = h.progTestRun(EGRESS, orig).dataOut;
    const err = icmpError(R, G2, 11, 0, wire.subarray(ETH_HLEN, ETH_HLEN + 28));
    const f = h.progTestRun(INGRESS, err).dataOut;
    assert.equal(parseFrame(f).ip!.dst, P1);
    assert.ok(parseFrame(f).ip!.checksumOk);
    const icmp = icmpOf(f);
    assert.equal(onesSum(icmp), 0xffff);
    assert.deepEqual(icmp.subarray(8), orig.subarray(ETH_HLEN, ETH_HLEN + 28), 'quoted IP header + UDP header, checksum included, as P1 sent them');
  });

  test('ICMP error from the inside (port unreachable from P1 about D:53 -> P1:5353) goes out from G2 quoting the G2:z view', () => {
    const wire = h.progTestRun(EGRESS, udpFrame({ src: P1, dst: D, sport: 5353, dport: 53, payload: Buffer.from('q') })).dataOut;
    const z = parseFrame(wire).l4!.sport;
    const inboundOnWire = udpFrame({ src: D, dst: G2, sport: 53, dport: z, payload: Buffer.from('late answer') });
    const seenByP1 = h.progTestRun(INGRESS, inboundOnWire).dataOut;
    h.resetStats();
    const err = icmpError(P1, D, 3, 3, seenByP1.subarray(ETH_HLEN));
    const r = h.progTestRun(EGRESS, err);
    assert.equal(r.retval, TC_ACT.OK);
    const outer = parseFrame(r.dataOut);
    assert.equal(outer.ip!.src, G2);
    assert.equal(outer.ip!.dst, D);
    assert.ok(outer.ip!.checksumOk);
    const icmp = icmpOf(r.dataOut);
    assert.equal(onesSum(icmp), 0xffff);
    assert.deepEqual(icmp.subarray(8), inboundOnWire.subarray(ETH_HLEN), 'the quote is the datagram as D sent it');
    assert.deepEqual(h.nonZeroStats(), { nat_icmp: 1n });
  });

  test('ICMP echo: P1\'s request leaves from G2 with a claimed identifier, the reply comes back to P1 with its own; byte-exact, checksums right, filtered, counted', () => {
    const payload = Buffer.from('ping-payload-0123456789');
    const r = h.progTestRun(EGRESS, echoFrame(P1, D, 8, 0x1234, 7, payload));
    assert.equal(r.retval, TC_ACT.OK);
    const out = icmpOf(r.dataOut);
    const p = parseFrame(r.dataOut);
    assert.equal(p.ip!.src, G2);
    assert.ok(p.ip!.checksumOk, 'IPv4 header checksum');
    assert.equal(onesSum(out), 0xffff, 'ICMP checksum');
    const z = out.readUInt16BE(4);
    assert.ok(z >= 40000 && z <= 40999, `identifier ${z} claimed from the range`);
    assert.deepEqual(r.dataOut, echoFrame(G2, D, 8, z, 7, payload), 'what G2 would send itself');
    const key = sessionKey(P1, 0x1234, D, 0, IPPROTO_ICMP);
    assert.equal(h.maps.nat!.sessions.get(key)!.ext_port, z);
    assert.deepEqual(h.maps.nat!.ports.get({ port: z, proto: IPPROTO_ICMP }), key);
    // the reply from D comes back to P1 with its identifier, byte for byte
    const back = h.progTestRun(INGRESS, echoFrame(D, G2, 0, z, 7, payload));
    assert.equal(back.retval, TC_ACT.OK);
    assert.deepEqual(back.dataOut, echoFrame(D, P1, 0, 0x1234, 7, payload));
    // the same request again keeps its identifier; a reply from anyone else is filtered; an unclaimed one is the GNAT's
    assert.equal(icmpOf(h.progTestRun(EGRESS, echoFrame(P1, D, 8, 0x1234, 8, payload)).dataOut).readUInt16BE(4), z);
    assert.equal(h.progTestRun(INGRESS, echoFrame(R, G2, 0, z, 7, payload)).retval, TC_ACT.SHOT);
    const own = echoFrame(D, G2, 0, z === 40000 ? 40001 : 40000, 1, payload);
    assert.deepEqual(h.progTestRun(INGRESS, own).dataOut, own);
    // an echo reply from an inside host (nobody outside has a session to it) is not sent out with its private source
    assert.equal(h.progTestRun(EGRESS, echoFrame(P1, D, 0, 5, 1, payload)).retval, TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { pass_other_l4: 4n, nat_xlat: 3n, nat_created: 1n, nat_filtered: 1n, nat_proto: 1n });
  });

  test('what an inside host may not send out untranslated is dropped and counted: an ICMP type the NAT does not translate, a fragment, an ICMP error about no session', () => {
    assert.equal(h.progTestRun(EGRESS, icmpFrame({ src: P1, dst: D, type: 13 })).retval, TC_ACT.SHOT);
    const frag = udpFrame({ src: P1, dst: D, sport: 1, dport: 2, payload: Buffer.alloc(16), ip: { fragOffset: 100 } });
    assert.equal(h.progTestRun(EGRESS, frag).retval, TC_ACT.SHOT);
    const first = udpFrame({ src: P1, dst: D, sport: 1, dport: 2, payload: Buffer.alloc(16), ip: { moreFragments: true } });
    assert.equal(h.progTestRun(EGRESS, first).retval, TC_ACT.SHOT);
    const stray = icmpError(P1, D, 3, 3, udpFrame({ src: D, dst: P1, sport: 9, dport: 9 }).subarray(ETH_HLEN));
    assert.equal(h.progTestRun(EGRESS, stray).retval, TC_ACT.SHOT);
    assert.deepEqual(h.nonZeroStats(), { nat_proto: 1n, nat_fragment: 2n, nat_icmp_no_session: 1n });
    // the GNAT's own traffic (source G2) is not the NAT's business
    const own = tcpFrame({ src: G2, dst: D, sport: 50000, dport: 22 });
    assert.deepEqual(h.progTestRun(EGRESS, own).dataOut, own);
    assert.deepEqual(h.progTestRun(EGRESS, icmpFrame({ src: G2, dst: D, type: 8 })).retval, TC_ACT.OK);
  });
});

describe('GNAT NAT stage: on-demand inbound mappings (written by the control plane)', { skip: unavailable ?? false, timeout: 30_000 }, () => {
  const PEER = '203.0.113.9';
  test('a mapping for peer G1:X -> P1:80: the peer\'s SYN reaches P1:80, the answer leaves as G2:Z, nobody else gets in; the session ends established', () => {
    const h = open();
    try {
      resetNat(h, cfg(44000, 44999));
      const m = new InboundMapper(h.maps.nat!, { external: G2, ports: { first: 44000, last: 44999 } }, monotonicNs);
      const r = m.map({ proto: IPPROTO_TCP, inside: { addr: P1, port: 80 }, peer: { addr: PEER, port: 40000 } });
      assert.ok(r.ok && r.created);
      const z = r.ok ? r.extPort : 0;
      assert.ok(z >= 44000 && z <= 44999);
      assert.deepEqual(m.map({ proto: IPPROTO_TCP, inside: { addr: P1, port: 80 }, peer: { addr: PEER, port: 40000 } }), { ok: true, extPort: z, created: false }, 'asked again: the same mapping');
      const syn = h.progTestRun(INGRESS, tcpFrame({ src: PEER, dst: G2, sport: 40000, dport: z, flags: 0x02 }));
      assert.deepEqual(syn.dataOut, tcpFrame({ src: PEER, dst: P1, sport: 40000, dport: 80, flags: 0x02 }));
      const synAck = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: PEER, sport: 80, dport: 40000, flags: 0x12 }));
      assert.deepEqual(synAck.dataOut, tcpFrame({ src: G2, dst: PEER, sport: z, dport: 40000, flags: 0x12 }));
      const s = h.maps.nat!.sessions.get(sessionKey(P1, 80, PEER, 40000, IPPROTO_TCP))!;
      assert.equal(s.origin, NatOrigin.INBOUND);
      assert.equal(natState(IPPROTO_TCP, s.flags), 'tcp_established');
      assert.equal(h.progTestRun(INGRESS, tcpFrame({ src: D, dst: G2, sport: 40000, dport: z, flags: 0x02 })).retval, TC_ACT.SHOT, 'another peer: filtered');
      assert.deepEqual(h.nonZeroStats(), { miss_pass: 2n, nat_xlat: 2n, nat_filtered: 1n }, 'no session created by the fast path');
    } finally { h.close(); }
  });

  test('inbound and outbound share the claims: a range of 2 with one inbound mapping leaves one port for the fast path; a used-up range is refused', () => {
    const h = open();
    try {
      resetNat(h, cfg(45000, 45001));
      const m = new InboundMapper(h.maps.nat!, { external: G2, ports: { first: 45000, last: 45001 } }, monotonicNs);
      const a = m.map({ proto: IPPROTO_TCP, inside: { addr: P1, port: 80 }, peer: { addr: PEER, port: 1 } });
      assert.ok(a.ok);
      const out = parseFrame(h.progTestRun(EGRESS, tcpFrame({ src: P2, dst: D, sport: 5000, dport: 80 })).dataOut).l4!.sport;
      assert.notEqual(out, a.ok ? a.extPort : -1);
      assert.deepEqual(m.map({ proto: IPPROTO_TCP, inside: { addr: P1, port: 80 }, peer: { addr: PEER, port: 2 } }), { ok: false, reason: 'no_port' });
      assert.equal(h.progTestRun(EGRESS, tcpFrame({ src: P2, dst: D, sport: 5001, dport: 80 })).retval, TC_ACT.SHOT);
    } finally { h.close(); }
  });

  test('an inbound mapping finds a free port past a block of claimed ones: 800 of 1,000 claimed in a row, 50 mappings, at most 3 no_port', () => {
    const h = open();
    try {
      resetNat(h, cfg(47000, 47999));
      const taken = sessionKey(P2, 1, D, 1, IPPROTO_TCP);
      h.maps.nat!.ports.setBatch(Array.from({ length: 800 }, (_, i) => [{ port: 47000 + i, proto: IPPROTO_TCP }, taken] as const));
      const m = new InboundMapper(h.maps.nat!, { external: G2, ports: { first: 47000, last: 47999 } }, monotonicNs);
      const rs = Array.from({ length: 50 }, (_, i) => m.map({ proto: IPPROTO_TCP, inside: { addr: P1, port: 80 }, peer: { addr: PEER, port: 20000 + i } }));
      const refused = rs.filter((r) => !r.ok).length;
      assert.ok(refused <= 3, `${refused} of 50 mappings refused with 150-200 ports free`);
      assert.ok(rs.every((r) => !r.ok || r.extPort >= 47800), 'only free ports');
    } finally { h.close(); }
  });

  test('a full session table refuses an inbound mapping (table_full) and releases its claim', () => {
    const h = open({ maxNat: 1 });
    try {
      resetNat(h, cfg(46000, 46999));
      const m = new InboundMapper(h.maps.nat!, { external: G2, ports: { first: 46000, last: 46999 } }, monotonicNs);
      assert.ok(m.map({ proto: IPPROTO_UDP, inside: { addr: P1, port: 53 }, peer: { addr: PEER, port: 1 } }).ok);
      assert.deepEqual(m.map({ proto: IPPROTO_UDP, inside: { addr: P1, port: 53 }, peer: { addr: PEER, port: 2 } }), { ok: false, reason: 'table_full' });
      assert.equal([...h.maps.nat!.ports.keys()].length, 1);
    } finally { h.close(); }
  });
});

describe('GNAT NAT stage: a full session table', { skip: unavailable ?? false, timeout: 30_000 }, () => {
  test('gscip_nat with room for 2: the 3rd flow is refused (nat_table_full), its port claim released; existing flows go on', () => {
    const h = open({ maxNat: 2 });
    try {
      resetNat(h, cfg(43000, 43999));
      for (let i = 0; i < 2; i++) assert.equal(h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 9000 + i, dport: 80 })).retval, TC_ACT.OK);
      const r = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 9002, dport: 80 }));
      assert.equal(r.retval, TC_ACT.SHOT);
      assert.equal(h.nonZeroStats().nat_table_full, 1n);
      assert.equal([...h.maps.nat!.ports.keys()].length, 2, 'the refused flow\'s claim is gone');
      const again = h.progTestRun(EGRESS, tcpFrame({ src: P1, dst: D, sport: 9000, dport: 80, flags: 0x10 }));
      assert.equal(again.retval, TC_ACT.OK);
      assert.equal(parseFrame(again.dataOut).ip!.src, G2);
    } finally { h.close(); }
  });
});

describe('NAT stage off (every element but a GNAT)', { skip: unavailable ?? false, timeout: 30_000 }, () => {
  test('the default load has no NAT: an inside source passes untranslated even with gscip_nat_cfg filled', () => {
    const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 } });
    try {
      resetNat(h, cfg(40000, 40999));
      const f = tcpFrame({ src: P1, dst: D, sport: 5555, dport: 80 });
      const r = h.progTestRun(EGRESS, f);
      assert.deepEqual(r.dataOut, f);
      assert.deepEqual(h.nonZeroStats(), { miss_pass: 1n });
      assert.equal(h.progTestRun(EGRESS, icmpFrame({ src: P1, dst: D, type: 8 })).retval, TC_ACT.OK);
      assert.equal(IPPROTO_ICMP, 1);
    } finally { h.close(); }
  });
});
