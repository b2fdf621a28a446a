/**
 * PCCOM per-flow keys through the real gscip_tc programs (BPF_PROG_TEST_RUN):
 * the PIT entry's FLOW_KEY flag, gscip_flow_keys written by the control
 * plane's own writer (controlplane/pccom/flow-keys.ts), the UDP per-flow
 * counter (low 16 bits in the IP ID, reconstructed by the receiver), its
 * limit, and the re-key signal on the punt ring. Wire bytes are checked
 * against an independent reference (Node's HKDF and OpenSSL ChaCha20 with the
 * nonce layout of docs/pccom.md "Per-flow keys and nonces").
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BpfHarness, bpfUnavailable, TC_ACT } from '../lib/bpf-harness.js';
import { IPPROTO_TCP, IPPROTO_UDP, tcpFrame, udpFrame, type TcpOpts, type UdpOpts } from '../lib/packets.js';
import {
  Action, Dir, PIT_F_FLOW_KEY, PitState, PuntReason, Role, Stat, UDP_CTR_LIMIT, UDP_REORDER_WINDOW,
} from '../../controlplane/maps/abi.js';
import { cidCodec, flowKeyValCodec, type Cid, type PitVal } from '../../controlplane/maps/codecs.js';
import type { FlowKeyWriter } from '../../controlplane/pccom/flow-keys.js';
import type { PitEntry } from '../../controlplane/flows/pit-entry.js';
import { openFlowKeyHarness, resetFlowKeyHarness } from '../lib/pccom-flow-harness.js';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const A = '192.0.2.1';
const B = '192.0.2.2';
const GROUP = 7;
const GROUP_KEY = randomBytes(32);
const unavailable = bpfUnavailable();

const udpAB: UdpOpts = { src: A, dst: B, sport: 40000, dport: 5001, payload: Buffer.alloc(200, 0x41), ip: { id: 0 } };
const tcpAB: TcpOpts = { src: A, dst: B, sport: 40000, dport: 5201, seq: 1000, ack: 2000, payload: Buffer.alloc(300, 0x42) };

function cid(o: { src?: string; dst?: string; sport?: number; dport?: number }, proto: number, dir: number): Cid {
  return { saddr: o.src!, daddr: o.dst!, sport: o.sport!, dport: o.dport!, proto, dir };
}

function pitVal(action: number, flags: number): PitVal {
  return { action, state: PitState.CONFIRMED, role: Role.START, flags, group_id: GROUP, key_version: 1, created_ns: 0n, last_seen_ns: 0n };
}

/** A PIT entry as DPRP makes it (the flow key writer's input). */
function entry(c: Cid, action: 'encrypt' | 'decrypt', salt: string, extra: Partial<PitEntry> = {}): PitEntry {
  return {
    flow: { saddr: c.saddr, daddr: c.daddr, sport: c.sport, dport: c.dport, proto: c.proto }, dir: c.dir === Dir.EGRESS ? 'egress' : 'ingress',
    action, group: GROUP, version: 1, state: 'confirmed', role: 'start', flowKey: { salt, leg: 'fwd' }, ...extra,
  };
}

/* ---- the reference (independent of the BPF code and of controlplane/pccom/flow-key.ts) ---- */

function refFlowKey(salt: string, leg: number): Buffer {
  const info = Buffer.concat([Buffer.from('gscip pccom flow key v1', 'latin1'), Buffer.from([0, 0, 0, GROUP, 0, 0, 0, 1, leg])]);
  return Buffer.from(hkdfSync('sha256', GROUP_KEY, Buffer.from(salt, 'hex'), info, 32));
}

function sum16(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s += (i & 1) ? b[i] << 8 : b[i];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** UDP data keystream of datagram counter ctr with plaintext sum S: nonce PCU\x01 | ctr bits 0..31 | (bits 32..47) << 16 | S. */
function refUdpCiphertext(key: Buffer, ctr: bigint, plain: Buffer): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(0, 0);
  iv.writeUInt32LE(0x50435501, 4);
  iv.writeUInt32LE(Number(ctr & 0xffffffffn), 8);
  const s = sum16(plain);
  iv.writeUInt32LE(((s === 0xffff ? 0 : s) | (Number((ctr >> 32n) & 0xffffn) << 16)) >>> 0, 12);
  const ks = createCipheriv('chacha20', key, iv).update(Buffer.alloc(plain.length));
  return Buffer.from(plain.map((x, i) => x ^ ks[i]));
}

const PAY_UDP = 14 + 20 + 8;
const PAY_TCP = 14 + 20 + 20;
const ipId = (f: Buffer) => f.readUInt16BE(14 + 4);
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('PCCOM per-flow keys (BPF_PROG_TEST_RUN, gscip_tc)', { skip: unavailable ?? false }, () => {
  let h: BpfHarness;
  let w: FlowKeyWriter;
  before(() => { ({ h, w } = openFlowKeyHarness(GROUP, GROUP_KEY)); });
  after(() => { h?.close(); });
  beforeEach(() => resetFlowKeyHarness(h, GROUP, GROUP_KEY));

  /** The sender (egress, encrypt) and receiver (ingress, decrypt) of one flow, keyed with salt. */
  function flow(o: { src?: string; dst?: string; sport?: number; dport?: number }, proto: number, salt: string, extra: Partial<PitEntry> = {}) {
    const eg = cid(o, proto, Dir.EGRESS);
    const ing = cid(o, proto, Dir.INGRESS);
    w.install(entry(eg, 'encrypt', salt, extra), eg);
    w.install(entry(ing, 'decrypt', salt, { ...extra, role: 'end' }), ing);
    h.maps.pit.set(eg, pitVal(Action.ENCRYPT, PIT_F_FLOW_KEY));
    h.maps.pit.set(ing, pitVal(Action.DECRYPT, PIT_F_FLOW_KEY));
    return { eg, ing };
  }
  const enc = (f: Buffer) => h.progTestRun(EGRESS, f);
  const dec = (f: Buffer) => h.progTestRun(INGRESS, f);

  test('two UDP flows of one group, identical plaintexts, headers and IP IDs: different ciphertext; wire bytes = reference; both decrypt', () => {
    const s1 = randomBytes(8).toString('hex');
    const s2 = randomBytes(8).toString('hex');
    const c1 = (() => { flow(udpAB, IPPROTO_UDP, s1); return enc(udpFrame(udpAB)); })();
    const c2 = (() => { flow(udpAB, IPPROTO_UDP, s2); return enc(udpFrame(udpAB)); })();  // another negotiation of the same 5-tuple
    assert.equal(c1.retval, TC_ACT.OK);
    assert.equal(c2.retval, TC_ACT.OK);
    assert.equal(ipId(c1.dataOut), 0, 'the IP ID is the per-flow counter: 0 for the first datagram');
    assert.equal(ipId(c2.dataOut), 0);
    assert.deepEqual(c1.dataOut.subarray(0, PAY_UDP - 2), c2.dataOut.subarray(0, PAY_UDP - 2), 'identical headers (but the checksum field)');
    assert.notDeepEqual(c1.dataOut.subarray(PAY_UDP), c2.dataOut.subarray(PAY_UDP), 'different keys: different ciphertext');
    assert.deepEqual(c1.dataOut.subarray(PAY_UDP), refUdpCiphertext(refFlowKey(s1, 1), 0n, udpAB.payload!), 'wire bytes = HKDF + ChaCha20 reference (key 1)');
    assert.deepEqual(c2.dataOut.subarray(PAY_UDP), refUdpCiphertext(refFlowKey(s2, 1), 0n, udpAB.payload!), 'wire bytes = reference (key 2)');
    assert.notDeepEqual(refFlowKey(s1, 1), GROUP_KEY);
    // the receiver (flow 2 installed last) decrypts its own flow's datagram, refuses the other key's
    const d2 = dec(c2.dataOut);
    assert.equal(d2.retval, TC_ACT.OK);
    assert.equal(hash(d2.dataOut.subarray(PAY_UDP)), hash(udpAB.payload!));
    assert.equal(dec(c1.dataOut).retval, TC_ACT.SHOT, 'another flow key: bad keyed checksum');
    assert.equal(h.stat(Stat.DROP_BAD_KEYED_CSUM).packets, 1n);
  });

  test('two TCP flows of one group, identical plaintext, seq, ack and TSval: the group key gives identical ciphertext, per-flow keys do not', () => {
    const other: TcpOpts = { ...tcpAB, sport: 40001 };
    // Without per-flow keys (what this test sees without the change): the keystream ignores the flow.
    for (const o of [tcpAB, other]) h.maps.pit.set(cid(o, IPPROTO_TCP, Dir.EGRESS), pitVal(Action.ENCRYPT, 0));
    const g1 = enc(tcpFrame(tcpAB)).dataOut.subarray(PAY_TCP);
    const g2 = enc(tcpFrame(other)).dataOut.subarray(PAY_TCP);
    assert.deepEqual(g1, g2, 'the group key: two flows share keystream');
    flow(tcpAB, IPPROTO_TCP, randomBytes(8).toString('hex'));
    flow(other, IPPROTO_TCP, randomBytes(8).toString('hex'));
    const f1 = enc(tcpFrame(tcpAB));
    const f2 = enc(tcpFrame(other));
    assert.equal(f1.retval, TC_ACT.OK);
    assert.notDeepEqual(f1.dataOut.subarray(PAY_TCP), f2.dataOut.subarray(PAY_TCP), 'per-flow keys: different keystreams');
    assert.notDeepEqual(f1.dataOut.subarray(PAY_TCP), g1, 'and not the group key\'s');
    const d = dec(f1.dataOut);
    assert.equal(d.retval, TC_ACT.OK);
    assert.deepEqual(d.dataOut.subarray(PAY_TCP), tcpAB.payload);
  });

  test('UDP counter: IP IDs count 0, 1, 2, ...; the receiver reconstructs across the 16-bit wrap and takes reordering within the window', () => {
    const { eg, ing } = flow(udpAB, IPPROTO_UDP, randomBytes(8).toString('hex'));
    const ids = [0, 1, 2].map(() => ipId(enc(udpFrame(udpAB)).dataOut));
    assert.deepEqual(ids, [0, 1, 2]);
    // jump both ends near a wrap of the low 16 bits
    const sv = h.maps.flowKeys.get(eg)!;
    h.maps.flowKeys.set(eg, { ...sv, cur: { ...sv.cur, ctr: 0x2fffen } });
    const rv = h.maps.flowKeys.get(ing)!;
    h.maps.flowKeys.set(ing, { ...rv, cur: { ...rv.cur, ctr: 0x2fffdn } });
    const sent = [0, 1, 2, 3].map((i) => enc(udpFrame({ ...udpAB, payload: Buffer.alloc(100, i) })).dataOut);
    assert.deepEqual(sent.map(ipId), [0xfffe, 0xffff, 0, 1]);
    // arrival order 0xfffe, 0, 1, 0xffff (the last one late, behind the highest)
    for (const i of [0, 2, 3, 1]) {
      const d = dec(sent[i]);
      assert.equal(d.retval, TC_ACT.OK, `datagram ${i} decrypts`);
      assert.deepEqual(d.dataOut.subarray(PAY_UDP), Buffer.alloc(100, i));
    }
    assert.equal(h.maps.flowKeys.get(ing)!.cur.ctr, 0x30001n, 'the receiver\'s highest counter, high bits reconstructed');
    // a datagram further behind than the reorder window is refused (its counter guessed one epoch ahead)
    h.maps.flowKeys.set(eg, { ...h.maps.flowKeys.get(eg)!, cur: { ...h.maps.flowKeys.get(eg)!.cur, ctr: 0x30001n - BigInt(UDP_REORDER_WINDOW) } });
    assert.equal(dec(enc(udpFrame(udpAB)).dataOut).retval, TC_ACT.SHOT, 'outside the window: bad keyed checksum, counted');
    assert.equal(h.stat(Stat.DROP_BAD_KEYED_CSUM).packets, 1n);
  });

  test('UDP counter at its limit (2^48): the last counter is sent, the next datagram refused and counted; the re-key signal names the entry', () => {
    const { eg } = flow(udpAB, IPPROTO_UDP, randomBytes(8).toString('hex'));
    const v = h.maps.flowKeys.get(eg)!;
    h.maps.flowKeys.set(eg, { ...v, cur: { ...v.cur, ctr: UDP_CTR_LIMIT - 1n }, rekey_at: UDP_CTR_LIMIT + 1n });
    const last = enc(udpFrame(udpAB));
    assert.equal(last.retval, TC_ACT.OK, 'counter 2^48 - 1 is the last one used');
    assert.equal(ipId(last.dataOut), 0xffff);
    assert.equal(h.punts().length, 0, 'no signal before the limit (rekey_at beyond it)');
    for (let i = 0; i < 3; i++) assert.equal(enc(udpFrame(udpAB)).retval, TC_ACT.SHOT, 'refused, never a reused nonce');
    assert.equal(h.stat(Stat.DROP_NONCE_LIMIT).packets, 3n);
    const sig = h.punts();
    assert.equal(sig.length, 1, 'one signal (again every 256 wishes), not one per packet');
    assert.equal(sig[0].reason, PuntReason.REKEY);
    assert.deepEqual(sig[0].cid, eg);
    assert.equal(sig[0].cap_len, 0, 'no packet data');
    assert.equal(h.stat(Stat.STAT_PCCOM_REKEY).packets, 1n);
    assert.equal(h.maps.flowKeys.get(eg)!.signalled, 3);
  });

  test('UDP re-key point (rekey_at): the signal goes out at that counter, and again 256 wishes later', () => {
    const { eg } = flow(udpAB, IPPROTO_UDP, randomBytes(8).toString('hex'));
    h.maps.flowKeys.set(eg, { ...h.maps.flowKeys.get(eg)!, rekey_at: 5n });
    for (let i = 0; i < 5; i++) assert.equal(enc(udpFrame(udpAB)).retval, TC_ACT.OK);
    assert.equal(h.punts().length, 0);
    for (let i = 0; i < 256 + 1; i++) assert.equal(enc(udpFrame(udpAB)).retval, TC_ACT.OK, 'still sent: far from the limit');
    const sig = h.punts();
    assert.deepEqual(sig.map((r) => r.reason), [PuntReason.REKEY, PuntReason.REKEY]);
  });

  test(`a receiver out of step (a loss burst beyond the window) asks for a re-key after its failures in a row`, () => {
    const { eg, ing } = flow(udpAB, IPPROTO_UDP, randomBytes(8).toString('hex'));
    const v = h.maps.flowKeys.get(eg)!;
    h.maps.flowKeys.set(eg, { ...v, cur: { ...v.cur, ctr: 70_000n } });  // the receiver still at 0: lost track
    for (let i = 0; i < 64; i++) assert.equal(dec(enc(udpFrame(udpAB)).dataOut).retval, TC_ACT.SHOT);
    const sig = h.punts();
    assert.equal(sig.length, 1);
    assert.deepEqual(sig[0].cid, ing);
    assert.equal(h.maps.flowKeys.get(ing)!.fails, 64);
  });

  test('re-key without loss: the decrypt entry takes the new key and the previous one (pit_decrypt_prev), each with its own counter', () => {
    const oldSalt = randomBytes(8).toString('hex');
    const newSalt = randomBytes(8).toString('hex');
    const { eg, ing } = flow(udpAB, IPPROTO_UDP, oldSalt);
    const underOld = enc(udpFrame(udpAB)).dataOut;
    w.install(entry(ing, 'decrypt', newSalt, { prevFlowKey: { salt: oldSalt, leg: 'fwd' }, prevVersion: 1 }), ing);
    w.install(entry(eg, 'encrypt', newSalt), eg);
    const underNew = enc(udpFrame(udpAB)).dataOut;
    assert.equal(ipId(underNew), 0, 'a new key: its counter starts at 0');
    assert.equal(dec(underNew).retval, TC_ACT.OK);
    assert.equal(dec(underOld).retval, TC_ACT.OK);
    assert.equal(h.stat(Stat.STAT_PIT_DECRYPT_PREV).packets, 1n);
    // the writer never rewinds a sender: re-installing the same key keeps its counter
    w.install(entry(eg, 'encrypt', newSalt), eg);
    assert.equal(ipId(enc(udpFrame(udpAB)).dataOut), 1);
  });

  test('a per-flow key entry never falls back to the group key: without its value it drops (no_key), and the group key can go', () => {
    const { eg } = flow(udpAB, IPPROTO_UDP, randomBytes(8).toString('hex'));
    h.maps.keys.delete({ group_id: GROUP, version: 1 });
    assert.equal(enc(udpFrame(udpAB)).retval, TC_ACT.OK, 'the flow key is all the fast path needs');
    h.maps.flowKeys.delete(eg);
    assert.equal(enc(udpFrame(udpAB)).retval, TC_ACT.SHOT);
    assert.equal(h.stat(Stat.DROP_NO_KEY).packets, 1n);
  });

  test('TCP without timestamps: the re-key signal once the sequence is 2^31 past the key\'s first segment', () => {
    const { eg } = flow(tcpAB, IPPROTO_TCP, randomBytes(8).toString('hex'));
    const seg = (seq: number) => enc(tcpFrame({ ...tcpAB, seq: seq >>> 0 }));
    assert.equal(seg(1000).retval, TC_ACT.OK);
    assert.equal(seg(1000 + 0x7fff0000).retval, TC_ACT.OK);
    assert.equal(seg(1000 - 5000).retval, TC_ACT.OK, 'a retransmission from before the first: not a wrap');
    assert.equal(h.punts().length, 0);
    assert.equal(seg(1000 + 0x80000000).retval, TC_ACT.OK);
    const sig = h.punts();
    assert.equal(sig.length, 1);
    assert.deepEqual(sig[0].cid, eg);
  });
  test('a re-key written while a datagram is in the fast path: its counter goes to the key it was accepted under, never to the new key', async (tc) => {
    // The receiver's state after a datagram is written through a second lookup
    // (pccom_flow_key_after). A re-key replaces the value in between: before
    // this was keyed, a datagram accepted under the old cur wrote its counter
    // (~2^15 in a loaded namespace run) into the NEW cur, whose datagrams
    // (counters from 0) then all failed (seen: ~500 lost, the receiver
    // re-keying on its own). Here a worker thread swaps the value between
    // V1 {cur k1} and V2 {cur k2 at 0, prev k1} while this thread decrypts k1
    // datagrams; after each V2 period it reads V2's cur counter, which only
    // a k2 datagram may move (none is sent).
    const s1 = randomBytes(8).toString('hex');
    const s2 = randomBytes(8).toString('hex');
    const { ing } = flow(udpAB, IPPROTO_UDP, s1);
    const frames = Array.from({ length: 4000 }, () => enc(udpFrame(udpAB)).dataOut);
    const v1 = h.maps.flowKeys.get(ing)!;
    w.install(entry(ing, 'decrypt', s2, { role: 'end', prevFlowKey: { salt: s1, leg: 'fwd' }, prevVersion: 1 }), ing);
    const v2 = h.maps.flowKeys.get(ing)!;
    assert.equal(v2.prev.key_version, 1);
    const codecs = resolve(__dirname, '../../controlplane/maps/codecs.js');
    const bpfMap = resolve(__dirname, '../../controlplane/bpf/bpf-map.js');
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads');
      const { BpfMap } = require(workerData.bpfMap);
      const { cidCodec, flowKeyValCodec } = require(workerData.codecs);
      const m = new BpfMap('gscip_flow_keys', workerData.fd, cidCodec, flowKeyValCodec, false);
      const key = cidCodec.decode(Buffer.from(workerData.key));
      const v1 = flowKeyValCodec.decode(Buffer.from(workerData.v1));
      const v2 = flowKeyValCodec.decode(Buffer.from(workerData.v2));
      let swaps = 0, wrong = 0;
      const t0 = Date.now();
      while (Atomics.load(workerData.stop, 0) === 0 && Date.now() - t0 < 10000 && swaps < 2000000) {
        m.set(key, v1);
        m.set(key, v2);
        const now = m.get(key);
        if (now && now.cur.ctr !== 0n) wrong++;
        swaps++;
      }
      parentPort.postMessage({ swaps, wrong });
    `, { eval: true, workerData: { fd: h.maps.flowKeys.fd, key: cidCodec.encode(ing), v1: flowKeyValCodec.encode({ ...v1, cur: { ...v1.cur, ctr: 0n } }), v2: flowKeyValCodec.encode(v2), stop, codecs, bpfMap } });
    const done = new Promise<{ swaps: number; wrong: number }>((res, rej) => { worker.once('message', res); worker.once('error', rej); });
    try {
      await new Promise((r) => setTimeout(r, 50));  // the worker is swapping
      const t0 = Date.now();
      let runs = 0;
      for (let round = 0; round < 20 && Date.now() - t0 < 3000; round++) {
        for (const f of frames) { dec(f); runs++; }
      }
      Atomics.store(stop, 0, 1);
      const r = await done;
      tc.diagnostic(`${r.swaps} swaps, ${runs} datagrams, new key's counter moved ${r.wrong} times, ${h.stat(Stat.DROP_FLOW_KEY_CHANGED).packets} datagrams refused as flow_key_changed`);
      assert.ok(r.swaps > 100 && runs > 1000, `the race was exercised (${r.swaps} swaps, ${runs} datagrams)`);
      // Without the change: 713 in 43,478 swaps (1.6 %). With it, what is left is the kernel reusing a
      // replaced value's memory between the state's identity check and its write (a datagram preempted
      // there on a loaded machine: 4 in 94,999 once in CI); it costs the receiver a re-key, never a
      // wrong decryption (docs/pccom.md). Bounded here at 0.1 %.
      assert.ok(r.wrong * 1000 <= r.swaps, `the new key's counter moved by an old key's datagram ${r.wrong} times in ${r.swaps} swaps`);
      assert.ok(h.stat(Stat.STAT_PIT_DECRYPT_PREV).packets > 0n, "datagrams were taken under V2's prev");
    } finally {
      Atomics.store(stop, 0, 1);
      await worker.terminate();
    }
  });
});
