/**
 * PCCOM's UDP wire-valid form through the real gscip_tc programs
 * (BPF_PROG_TEST_RUN; docs/pccom.md "UDP across a checksum-verifying NAT"): a
 * UDP encrypt entry with GSCIP_PIT_F_WIRE_CSUM and a per-flow key sends the
 * ordinary UDP checksum over the ciphertext (re-verified here from the bytes,
 * independently of the BPF code) and carries membership in the IP ID
 * (counter bits 0..5 | K bits 0..9 << 6, K and the ciphertext checked against
 * Node's HKDF + OpenSSL ChaCha20). The receiver takes it whatever its entry
 * says, reorders within its window, and refuses and counts a tampered
 * datagram and a non-member's.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { BpfHarness, bpfUnavailable, TC_ACT } from '../lib/bpf-harness.js';
import { inetChecksum, IPPROTO_UDP, onesSum, udpFrame, type UdpOpts } from '../lib/packets.js';
import {
  Action, Dir, PIT_F_FLOW_KEY, PIT_F_WIRE_CSUM, PitState, Role, Stat, UDP_WIRE_CTR_BITS, UDP_WIRE_WINDOW,
} from '../../controlplane/maps/abi.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';
import type { FlowKeyWriter } from '../../controlplane/pccom/flow-keys.js';
import type { PitEntry } from '../../controlplane/flows/pit-entry.js';
import { openFlowKeyHarness, resetFlowKeyHarness } from '../lib/pccom-flow-harness.js';
import { udpWireIpId } from '../../controlplane/pccom/udp-wire.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const A = '192.0.2.1';
const B = '192.0.2.2';
const GROUP = 7;
const GROUP_KEY = randomBytes(32);
const unavailable = bpfUnavailable();

const udpAB: UdpOpts = { src: A, dst: B, sport: 40000, dport: 5001, payload: Buffer.alloc(1201, 0x41), ip: { id: 0 } };
const L3 = 14;
const L4 = 14 + 20;
const PAY = L4 + 8;
const ipId = (f: Buffer) => f.readUInt16BE(L3 + 4);
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function cid(proto: number, dir: number): Cid {
  return { saddr: A, daddr: B, sport: udpAB.sport!, dport: udpAB.dport!, proto, dir };
}

function pitVal(action: number, flags: number): PitVal {
  return { action, state: PitState.CONFIRMED, role: Role.START, flags, group_id: GROUP, key_version: 1, created_ns: 0n, last_seen_ns: 0n };
}

function entry(c: Cid, action: 'encrypt' | 'decrypt', salt: string): PitEntry {
  return {
    flow: { saddr: c.saddr, daddr: c.daddr, sport: c.sport, dport: c.dport, proto: c.proto }, dir: c.dir === Dir.EGRESS ? 'egress' : 'ingress',
    action, group: GROUP, version: 1, state: 'confirmed', role: action === 'encrypt' ? 'start' : 'end', flowKey: { salt, leg: 'fwd' },
  };
}

/* ---- the reference: RFC 768/1071 by hand, HKDF and OpenSSL ChaCha20 ---- */

/** The UDP checksum of frame f verifies as an ordinary one (pseudo-header + header + payload). */
function udpChecksumValid(f: Buffer): boolean {
  const udp = f.subarray(L4, L4 + f.readUInt16BE(L4 + 4));
  const pseudo = Buffer.concat([f.subarray(L3 + 12, L3 + 20), Buffer.from([0, IPPROTO_UDP]), udp.subarray(4, 6)]);
  return f.readUInt16BE(L4 + 6) !== 0 && inetChecksum(udp, onesSum(pseudo)) === 0;
}
const ipHeaderValid = (f: Buffer) => inetChecksum(f.subarray(L3, L3 + 20)) === 0;

function refFlowKey(salt: string, leg: number): Buffer {
  const info = Buffer.concat([Buffer.from('gscip pccom flow key v1', 'latin1'), Buffer.from([0, 0, 0, GROUP, 0, 0, 0, 1, leg])]);
  return Buffer.from(hkdfSync('sha256', GROUP_KEY, Buffer.from(salt, 'hex'), info, 32));
}

function chacha(key: Buffer, dom: number, ctr: bigint, w2: number, len: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(dom, 4);
  iv.writeUInt32LE(Number(ctr & 0xffffffffn), 8);
  iv.writeUInt32LE(w2 >>> 0, 12);
  return createCipheriv('chacha20', key, iv).update(Buffer.alloc(len));
}
const hi = (ctr: bigint) => Number((ctr >> 32n) & 0xffffn) << 16;
/** K of counter ctr: 16 bits of block 0 of PCU\x02 | ctr bits 0..31 | bits 32..47 << 16. */
const refK = (key: Buffer, ctr: bigint) => chacha(key, 0x50435502, ctr, hi(ctr), 4).readUInt32LE(0) & 0xffff;
/** The wire-valid form's IP ID of counter ctr. */
const refIpId = (key: Buffer, ctr: bigint) => (Number(ctr & 0x3fn) | ((refK(key, ctr) & 0x3ff) << UDP_WIRE_CTR_BITS)) & 0xffff;
/** Its ciphertext: PCU\x01 | ctr | bits 32..47 << 16 (S = 0). */
function refCiphertext(key: Buffer, ctr: bigint, plain: Buffer): Buffer {
  const ks = chacha(key, 0x50435501, ctr, hi(ctr), plain.length);
  return Buffer.from(plain.map((x, i) => x ^ ks[i]));
}

/** Set a frame's IP ID and fix its IPv4 header checksum. */
function withIpId(f: Buffer, id: number): Buffer {
  const g = Buffer.from(f);
  g.writeUInt16BE(id, L3 + 4);
  g.writeUInt16BE(0, L3 + 10);
  g.writeUInt16BE(inetChecksum(g.subarray(L3, L3 + 20)), L3 + 10);
  return g;
}

describe('PCCOM UDP wire-valid form (BPF_PROG_TEST_RUN, gscip_tc)', { skip: unavailable ?? false }, () => {
  let h: BpfHarness;
  let w: FlowKeyWriter;
  before(() => { ({ h, w } = openFlowKeyHarness(GROUP, GROUP_KEY)); });
  after(() => { h?.close(); });
  beforeEach(() => resetFlowKeyHarness(h, GROUP, GROUP_KEY));

  /** One direction, sender wire-valid (its entry's flag) and receiver with a plain decrypt entry. */
  function flow(salt = randomBytes(8).toString('hex')) {
    const eg = cid(IPPROTO_UDP, Dir.EGRESS);
    const ing = cid(IPPROTO_UDP, Dir.INGRESS);
    w.install(entry(eg, 'encrypt', salt), eg);
    w.install(entry(ing, 'decrypt', salt), ing);
    h.maps.pit.set(eg, pitVal(Action.ENCRYPT, PIT_F_FLOW_KEY | PIT_F_WIRE_CSUM));
    h.maps.pit.set(ing, pitVal(Action.DECRYPT, PIT_F_FLOW_KEY));
    return { eg, ing, key: refFlowKey(salt, 1) };
  }
  const enc = (f: Buffer) => h.progTestRun(EGRESS, f);
  const dec = (f: Buffer) => h.progTestRun(INGRESS, f);

  test('the sender: an ordinary valid UDP checksum over the ciphertext; IP ID = counter bits | K; ciphertext = reference; the receiver restores the plaintext', () => {
    const { key } = flow();
    for (let i = 0; i < 3; i++) {
      const plain = randomBytes(1201 + i);
      const out = enc(udpFrame({ ...udpAB, payload: plain }));
      assert.equal(out.retval, TC_ACT.OK);
      const f = out.dataOut;
      assert.ok(udpChecksumValid(f), `datagram ${i}: the UDP checksum on the wire is an ordinary valid one (a NAT verifying it translates it)`);
      assert.ok(ipHeaderValid(f), 'the IPv4 header checksum follows the new IP ID');
      assert.equal(ipId(f), refIpId(key, BigInt(i)), 'IP ID = counter bits 0..5 | K bits 0..9 << 6 (reference)');
      assert.equal(udpWireIpId(key, BigInt(i)), ipId(f), 'the control plane\'s view of it (a first datagram\'s mark) agrees');
      assert.deepEqual(f.subarray(PAY), refCiphertext(key, BigInt(i), plain), 'ciphertext = HKDF + ChaCha20 reference, nonce = the counter');
      const d = dec(f);
      assert.equal(d.retval, TC_ACT.OK, 'the receiver takes the wire-valid form');
      assert.equal(hash(d.dataOut.subarray(PAY)), hash(plain));
      assert.ok(udpChecksumValid(d.dataOut), 'the ordinary checksum over the plaintext, restored');
    }
    assert.equal(h.stat(Stat.STAT_PIT_DECRYPT).packets, 3n);
  });

  test('reordering within the window and a loss burst ahead decrypt; the receiver\'s highest counter follows', () => {
    const { ing, key } = flow();
    const sent = Array.from({ length: 50 }, (_, i) => enc(udpFrame({ ...udpAB, payload: Buffer.alloc(300, i) })).dataOut);
    // 0, 3, 1, 2, then 40 (37 lost), 30 (behind, within the window), 49
    for (const i of [0, 3, 1, 2, 40, 30, 49]) {
      const d = dec(sent[i]);
      assert.equal(d.retval, TC_ACT.OK, `datagram ${i} decrypts`);
      assert.deepEqual(d.dataOut.subarray(PAY), Buffer.alloc(300, i));
    }
    assert.equal(h.maps.flowKeys.get(ing)!.cur.ctr, 49n);
    // behind the window (49 - 16 = 33 and older): its counter is guessed one epoch ahead (97), K fails
    // (unless K(97) shares K(33)'s 10 bits, probability 2^-10: the documented wrong-guess rate; then not asserted)
    const late = 49 - UDP_WIRE_WINDOW;
    if ((refIpId(key, BigInt(late + 64)) >> UDP_WIRE_CTR_BITS) !== (ipId(sent[late]) >> UDP_WIRE_CTR_BITS)) {
      assert.equal(dec(sent[late]).retval, TC_ACT.SHOT, 'outside the window: refused, counted');
      assert.equal(h.stat(Stat.DROP_BAD_KEYED_CSUM).packets, 1n);
    }
  });

  test('a tampered datagram is refused and counted: a payload byte (checksum then wrong), the IP ID\'s K bits', () => {
    flow();
    const f = enc(udpFrame(udpAB)).dataOut;
    const g = Buffer.from(f);
    g[PAY + 10] ^= 0x01;
    assert.equal(dec(g).retval, TC_ACT.SHOT, 'a flipped payload bit');
    assert.equal(dec(withIpId(f, ipId(f) ^ (1 << UDP_WIRE_CTR_BITS))).retval, TC_ACT.SHOT, 'a flipped K bit in the IP ID');
    assert.equal(h.stat(Stat.DROP_BAD_KEYED_CSUM).packets, 2n);
    assert.equal(h.stat(Stat.STAT_PIT_DECRYPT).packets, 0n);
    assert.equal(dec(f).retval, TC_ACT.OK, 'the untouched datagram still decrypts');
  });

  test('a non-member\'s datagram is refused and counted: another key\'s wire-valid form, a plaintext datagram with a valid checksum', () => {
    const { key } = flow();
    // another negotiation's key (a host that does not hold this flow's key) sends the same counter
    h.maps.pit.delete(cid(IPPROTO_UDP, Dir.EGRESS));
    const otherSalt = randomBytes(8).toString('hex');
    w.install(entry(cid(IPPROTO_UDP, Dir.EGRESS), 'encrypt', otherSalt), cid(IPPROTO_UDP, Dir.EGRESS));
    h.maps.pit.set(cid(IPPROTO_UDP, Dir.EGRESS), pitVal(Action.ENCRYPT, PIT_F_FLOW_KEY | PIT_F_WIRE_CSUM));
    const forged = enc(udpFrame(udpAB)).dataOut;
    assert.ok(udpChecksumValid(forged));
    const other = refFlowKey(otherSalt, 1);
    if (refIpId(other, 0n) !== refIpId(key, 0n)) {  // equal with probability 2^-10: then it would pass, as documented
      assert.equal(dec(forged).retval, TC_ACT.SHOT, 'another key: K does not match');
    }
    // a plaintext datagram with an ordinary checksum, IP ID chosen not to be this counter's
    const id = (refIpId(key, 0n) ^ 0x8000) & 0xffff;
    assert.equal(dec(udpFrame({ ...udpAB, ip: { id } })).retval, TC_ACT.SHOT, 'plaintext: refused');
    assert.ok(h.stat(Stat.DROP_BAD_KEYED_CSUM).packets >= 1n);
    assert.equal(h.stat(Stat.STAT_PIT_DECRYPT).packets, 0n);
  });

  test('a sender without a per-flow key (group key) keeps the keyed form: the flag alone never drops membership', () => {
    const eg = cid(IPPROTO_UDP, Dir.EGRESS);
    h.maps.pit.set(eg, pitVal(Action.ENCRYPT, PIT_F_WIRE_CSUM));
    const out = enc(udpFrame(udpAB));
    assert.equal(out.retval, TC_ACT.OK);
    assert.ok(!udpChecksumValid(out.dataOut), 'the keyed checksum (not an ordinary one)');
  });

  test('a keyed-form datagram whose checksum field is by chance also its ordinary checksum (2^-16) still decrypts: K\'s failure in the IP ID hands it to the keyed check', () => {
    const eg = cid(IPPROTO_UDP, Dir.EGRESS);
    const ing = cid(IPPROTO_UDP, Dir.INGRESS);
    const { key } = flow();
    h.maps.pit.set(eg, pitVal(Action.ENCRYPT, PIT_F_FLOW_KEY));  // the sender in the keyed form
    let hit: { frame: Buffer; plain: Buffer } | null = null;
    for (let i = 0; i < 600_000 && !hit; i++) {  // ~65,536 expected
      const plain = randomBytes(64);
      const out = enc(udpFrame({ ...udpAB, payload: plain })).dataOut;
      // Left out: the 2^-10 of those whose IP ID (the keyed form's counter bits 0..15) is by chance
      // also the wire-valid form's (counter bits | K): such a datagram is a valid wire-valid one in
      // every field the receiver can check and is delivered as noise (2^-26 per keyed datagram, below
      // the keyed checksum's own 2^-16; docs/pccom.md). Not excluding them failed ~1 run in 1,000.
      if (udpChecksumValid(out) && udpWireIpId(key, h.maps.flowKeys.get(eg)!.cur.ctr - 1n) !== ipId(out)) hit = { frame: out, plain };
    }
    assert.ok(hit, 'found a keyed-form datagram that looks like the wire-valid form');
    const ctr = h.maps.flowKeys.get(eg)!.cur.ctr - 1n;
    const rv = h.maps.flowKeys.get(ing)!;
    h.maps.flowKeys.set(ing, { ...rv, cur: { ...rv.cur, ctr: ctr - 1n } });
    h.resetStats();
    const d = dec(hit.frame);
    assert.equal(d.retval, TC_ACT.OK, 'not lost (it was, before: counted bad_keyed_csum)');
    assert.deepEqual(d.dataOut.subarray(PAY), hit.plain);
    assert.equal(h.stat(Stat.DROP_BAD_KEYED_CSUM).packets, 0n);
  });
});
