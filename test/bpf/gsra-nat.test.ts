/**
 * BPF_PROG_TEST_RUN tests of a GSRA router's translation in the NAT stage it
 * shares with the GNAT (controlplane/gsra/router-nat.ts, bpf/lib/nat.h): two
 * loads play the router's two instances (outside: NAT external GGR; inside:
 * NAT external PGR, no inside prefix). A mapping {GEN:s<->GGR:t} <=>
 * {PGR:t<->PIN:d} written by GsraRouterNat turns the EN's packet into exactly
 * what PGR:t would send PIN:d, and PIN's answer into exactly what GGR:t
 * would send GEN:s (checksums re-verified from scratch, frames compared byte
 * for byte); anyone else to GGR:t is dropped and counted; removing the mapping
 * stops both at once; a session of another origin never translates a source
 * that is not inside. PCCOM is not in play here (PIT misses pass).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, resetNat, TC_ACT } from '../lib/bpf-harness.js';
import { IPPROTO_TCP, IPPROTO_UDP, parseFrame, tcpFrame, udpFrame } from '../lib/packets.js';
import { Dir, NatOrigin } from '../../controlplane/maps/abi.js';
import { monotonicNs } from '../../controlplane/maps/accessors.js';
import { GsraRouterNat, insideSession } from '../../controlplane/gsra/router-nat.js';
import type { Mapping } from '../../controlplane/gsra/admission.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const GGR = '192.0.2.1';      // the router's global address
const PGR = '100.64.1.1';     // its private address
const PIN = '100.64.1.10';    // the internal server
const GEN = '198.51.100.20';  // the EN
const OTHER = '203.0.113.9';  // someone else on the Internet
const T = 40007, S = 51000, D = 22;
const unavailable = bpfUnavailable();
const NONE = { addr: '0.0.0.0', mask: '0.0.0.0' };

function open(): BpfHarness {
  return BpfHarness.open({ stages: { xlat: true, pccom: true, nat: true }, maxEntries: { gscip_pit: 256, gscip_xlat: 256 } });
}
function mapping(proto: number): Mapping {
  return { t: T, userId: 'alice', group: 1, proto, en: { addr: GEN, port: S }, inside: { addr: PIN, port: D }, createdAt: 0, lastSeenAt: 0 };
}

describe('GSRA router translation in the NAT stage (BPF_PROG_TEST_RUN)', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  let out: BpfHarness;
  let ins: BpfHarness;
  let nat: GsraRouterNat;
  before(() => { out = open(); ins = open(); });
  after(() => { out?.close(); ins?.close(); });
  beforeEach(() => {
    resetNat(out, { ext_addr: GGR, port_lo: 20000, port_hi: 32767, inside: [{ addr: '100.64.1.0', mask: '255.255.255.0' }, NONE, NONE, NONE] });
    resetNat(ins, { ext_addr: PGR, port_lo: 20000, port_hi: 32767, inside: [NONE, NONE, NONE, NONE] });
    nat = new GsraRouterNat(out.maps.nat!, ins.maps.nat!, { ggr: GGR, pgr: PGR }, monotonicNs);
  });

  for (const [name, proto, frame] of [
    ['TCP', IPPROTO_TCP, (src: string, dst: string, sport: number, dport: number, payload: Buffer) => tcpFrame({ src, dst, sport, dport, flags: 0x18, payload })],
    ['UDP', IPPROTO_UDP, (src: string, dst: string, sport: number, dport: number, payload: Buffer) => udpFrame({ src, dst, sport, dport, payload })],
  ] as const) {
    test(`${name}: GEN:s->GGR:t leaves the inside as PGR:t->PIN:d, PIN's answer leaves the outside as GGR:t->GEN:s, byte for byte`, () => {
      assert.deepEqual(nat.install(mapping(proto)), { ok: true });
      const q = Buffer.from('request from the remote user');
      // outside ingress, then (routed) inside egress
      const a = out.progTestRun(INGRESS, frame(GEN, GGR, S, T, q));
      assert.equal(a.retval, TC_ACT.OK);
      const mid = parseFrame(a.dataOut);
      assert.deepEqual([mid.ip!.src, mid.ip!.dst, mid.l4!.sport, mid.l4!.dport], [GEN, PIN, S, D]);
      const b = ins.progTestRun(EGRESS, a.dataOut);
      assert.equal(b.retval, TC_ACT.OK);
      const lan = parseFrame(b.dataOut);
      assert.ok(lan.ip!.checksumOk && lan.l4!.checksumOk, 'checksums right after both rewrites');
      assert.deepEqual(b.dataOut, frame(PGR, PIN, T, D, q), 'what the IN gets is what PGR:t itself would send');
      // the answer: inside ingress, then (routed) outside egress
      const r = Buffer.from('answer from the internal server');
      const c = ins.progTestRun(INGRESS, frame(PIN, PGR, D, T, r));
      assert.equal(c.retval, TC_ACT.OK);
      const e = out.progTestRun(EGRESS, c.dataOut);
      assert.equal(e.retval, TC_ACT.OK);
      assert.deepEqual(e.dataOut, frame(GGR, GEN, T, S, r), 'what the EN gets is what GGR:t itself would send');
      assert.deepEqual(out.nonZeroStats(), { miss_pass: 2n, nat_xlat: 2n });
      assert.deepEqual(ins.nonZeroStats(), { miss_pass: 2n, nat_xlat: 2n });
    });
  }

  test('anyone else to GGR:t is dropped and counted; nothing is translated towards the inside', () => {
    nat.install(mapping(IPPROTO_TCP));
    for (const [src, sport] of [[OTHER, S], [GEN, S + 1]] as const) {
      const r = out.progTestRun(INGRESS, tcpFrame({ src, dst: GGR, sport, dport: T, flags: 0x02 }));
      assert.equal(r.retval, TC_ACT.SHOT);
    }
    assert.deepEqual(out.nonZeroStats(), { nat_filtered: 2n });
  });

  test('removing the mapping stops both directions at once (a cut flow): packets keep their addresses, the IN is never reached as PGR', () => {
    nat.install(mapping(IPPROTO_TCP));
    nat.remove(mapping(IPPROTO_TCP));
    assert.equal([...out.maps.nat!.sessions.keys()].length, 0);
    const a = out.progTestRun(INGRESS, tcpFrame({ src: GEN, dst: GGR, sport: S, dport: T, flags: 0x18 }));
    assert.equal(parseFrame(a.dataOut).ip!.dst, GGR, 'not translated: to the router itself, which forwards nothing addressed to it');
    const b = ins.progTestRun(EGRESS, tcpFrame({ src: GEN, dst: PIN, sport: S, dport: D, flags: 0x18 }));
    assert.equal(parseFrame(b.dataOut).ip!.src, GEN, 'no source rewrite without the gsra session');
    assert.equal(out.nonZeroStats().nat_xlat ?? 0n, 0n);
    assert.equal(ins.nonZeroStats().nat_xlat ?? 0n, 0n);
  });

  test('a session of another origin never translates a source that is not inside; t taken is refused, and neither half stays', () => {
    const key = insideSession(mapping(IPPROTO_TCP));
    const now = monotonicNs();
    ins.maps.nat!.sessions.set(key, { ext_addr: PGR, ext_port: T, origin: NatOrigin.INBOUND, flags: 0, created_ns: now, last_seen_ns: now });
    const b = ins.progTestRun(EGRESS, tcpFrame({ src: GEN, dst: PIN, sport: S, dport: D, flags: 0x18 }));
    assert.equal(parseFrame(b.dataOut).ip!.src, GEN);
    ins.maps.nat!.sessions.delete(key);
    ins.maps.nat!.ports.set({ port: T, proto: IPPROTO_TCP }, { ...key, dir: Dir.EGRESS });
    assert.deepEqual(nat.install(mapping(IPPROTO_TCP)), { ok: false, reason: 'port_taken' });
    assert.equal([...out.maps.nat!.sessions.keys()].length, 0, 'the outside half was undone');
    assert.equal([...out.maps.nat!.ports.keys()].length, 0);
  });
});
