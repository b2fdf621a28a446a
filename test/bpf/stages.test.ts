/**
 * Datapath stages switched at load (bpf/lib/stages.h, .rodata.gscip_load):
 * a stage switched off is really absent (its map entries have no effect, the
 * programs are smaller), one switched on behaves as before, and the default
 * (nothing written) is every stage. Each case loads its own objects (no pins)
 * and runs them with BPF_PROG_TEST_RUN on crafted packets.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { IPPROTO_TCP, IPPROTO_UDP, parseFrame, tcpFrame, udpFrame, type TcpOpts, type UdpOpts } from '../lib/packets.js';
import { Action, Dir, MissAction, PitState, Role, XlatKind } from '../../controlplane/maps/abi.js';
import { progInfo } from '../../controlplane/bpf/libbpf.js';
import { BpfObject } from '../../controlplane/bpf/object.js';
import { PROG_NAMES } from '../../controlplane/maps/gscip-maps.js';
import { DEFAULT_STAGES, LOAD_CFG_SECTION, stageBits, stageInitialValues, stageList, stageSwitches, type StageSwitches } from '../../controlplane/maps/stages.js';
import type { PitVal } from '../../controlplane/maps/codecs.js';
import { resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

const EGRESS = 'gscip_tc_egress';
const INGRESS = 'gscip_tc_ingress';
const A = '192.0.2.1';     // this host
const B = '192.0.2.2';     // peer
const V = '198.18.0.9';    // virtual address the application uses (VAT-style)
const N = '198.51.100.7';  // peer's new address (CIT-style)
const unavailable = bpfUnavailable();

const pitVal = (action: number, extra: Partial<PitVal> = {}): PitVal => ({
  action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: 0n, last_seen_ns: 0n, ...extra,
});

const stack: TcpOpts = { src: A, dst: V, sport: 40000, dport: 80, seq: 0xdeadbeef, flags: 0x18, payload: Buffer.from('hello through a virtual address') };
const wireUdp: UdpOpts = { src: N, dst: A, sport: 53, dport: 5353, payload: Buffer.from('dns-answer-bytes') };

/** One harness per setting, each seeded alike: an XLAT entry each way, PIT pass for both views. */
function open(stages?: StageSwitches): BpfHarness {
  const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, stages });
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
  // egress: the stack's A->V:80 becomes B:8080 on the wire
  h.maps.xlat.set({ saddr: A, daddr: V, sport: 40000, dport: 80, proto: IPPROTO_TCP, dir: Dir.EGRESS }, { saddr: A, daddr: B, sport: 40000, dport: 8080, kind: XlatKind.VAT, created_ns: 0n });
  h.maps.pit.set({ saddr: A, daddr: B, sport: 40000, dport: 8080, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pitVal(Action.PASS));
  h.maps.pit.set({ saddr: A, daddr: V, sport: 40000, dport: 80, proto: IPPROTO_TCP, dir: Dir.EGRESS }, pitVal(Action.PASS));
  // ingress: the wire's N:53 becomes B:53 for the stack
  h.maps.pit.set({ saddr: N, daddr: A, sport: 53, dport: 5353, proto: IPPROTO_UDP, dir: Dir.INGRESS }, pitVal(Action.PASS));
  h.maps.xlat.set({ saddr: N, daddr: A, sport: 53, dport: 5353, proto: IPPROTO_UDP, dir: Dir.INGRESS }, { saddr: B, daddr: A, sport: 53, dport: 5353, kind: XlatKind.CIT, created_ns: 0n });
  // an encrypt entry (no key needed to tell PCCOM on from off: off refuses before the key lookup)
  h.maps.pit.set({ saddr: A, daddr: B, sport: 41000, dport: 5201, proto: IPPROTO_UDP, dir: Dir.EGRESS }, pitVal(Action.ENCRYPT, { group_id: 7, key_version: 1 }));
  return h;
}

describe('datapath stages switched at load', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  const hs: BpfHarness[] = [];
  const h = (s?: StageSwitches): BpfHarness => { const x = open(s); hs.push(x); return x; };
  after(() => { for (const x of hs) x.close(); });

  test('names <-> bits: the default is every stage, unknown bits are refused', () => {
    assert.equal(stageBits(DEFAULT_STAGES), 0b11);
    assert.deepEqual(stageSwitches(0b01), { xlat: true, pccom: false });
    assert.equal(stageList({ xlat: false, pccom: false }), 'none');
    assert.throws(() => stageSwitches(0b100), /knows only 0x73/);
    assert.equal(stageInitialValues(DEFAULT_STAGES)[LOAD_CFG_SECTION].length, 8);
  });

  test('default load (nothing written) and every stage on: XLAT rewrites egress TCP and ingress UDP, as before', () => {
    for (const x of [h(), h(DEFAULT_STAGES)]) {
      const r = x.progTestRun(EGRESS, tcpFrame(stack));
      assert.equal(r.retval, TC_ACT.OK);
      assert.deepEqual(r.dataOut, tcpFrame({ ...stack, dst: B, dport: 8080 }));
      const i = x.progTestRun(INGRESS, udpFrame(wireUdp));
      assert.equal(i.retval, TC_ACT.OK);
      const p = parseFrame(i.dataOut);
      assert.equal(p.ip?.src, B);
      assert.ok(p.l4?.checksumOk, 'UDP checksum after the rewrite');
      assert.deepEqual(x.nonZeroStats(), { pit_pass: 2n, xlat: 2n });
    }
  });

  test('XLAT off: the XLAT entries are ignored, both packets pass untranslated (PIT on the untranslated view), no xlat counted', () => {
    const x = h({ xlat: false, pccom: true });
    const out = tcpFrame(stack);
    const r = x.progTestRun(EGRESS, out);
    assert.equal(r.retval, TC_ACT.OK);
    assert.deepEqual(r.dataOut, out, 'egress bytes untouched');
    const inn = udpFrame(wireUdp);
    const i = x.progTestRun(INGRESS, inn);
    assert.equal(i.retval, TC_ACT.OK);
    assert.deepEqual(i.dataOut, inn, 'ingress bytes untouched');
    assert.deepEqual(x.nonZeroStats(), { pit_pass: 2n });
    // without the PIT entry for the untranslated view, it is an ordinary miss (iface: drop)
    x.maps.pit.delete({ saddr: A, daddr: V, sport: 40000, dport: 80, proto: IPPROTO_TCP, dir: Dir.EGRESS });
    x.resetStats();
    assert.equal(x.progTestRun(EGRESS, out).retval, TC_ACT.SHOT);
    assert.deepEqual(x.nonZeroStats(), { miss_policy: 1n });
  });

  test('PCCOM off: an encrypt entry is dropped and counted as unsupported (never sent in the clear); on: PCCOM runs (no key: no_key)', () => {
    const pkt = udpFrame({ src: A, dst: B, sport: 41000, dport: 5201, payload: Buffer.from('plaintext that must not leave') });
    const off = h({ xlat: true, pccom: false });
    assert.equal(off.progTestRun(EGRESS, pkt).retval, TC_ACT.SHOT);
    assert.deepEqual(off.nonZeroStats(), { unsupported: 1n });
    const on = h();
    assert.equal(on.progTestRun(EGRESS, pkt).retval, TC_ACT.SHOT);
    assert.deepEqual(on.nonZeroStats(), { no_key: 1n });
  });

  test('a stage off is not in the loaded program (smaller after verification); the tag is the same for every setting', () => {
    const info = (s?: StageSwitches) => {
      const o = BpfObject.load(resolve(__dirname, '../../../build/bpf/gscip_tc.bpf.o'), { maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 }, initialValues: s ? stageInitialValues(s) : undefined });
      try { return (['egress', 'ingress'] as const).map((d) => progInfo(o.progFd(PROG_NAMES[d]))); } finally { o.close(); }
    };
    const all = info();
    const noXlat = info({ xlat: false, pccom: true });
    const noPccom = info({ xlat: true, pccom: false });
    for (const i of [0, 1]) {
      assert.ok(noXlat[i].xlatedLen < all[i].xlatedLen, `${all[i].name}: XLAT off ${noXlat[i].xlatedLen} B < all ${all[i].xlatedLen} B`);
      assert.ok(noPccom[i].xlatedLen < all[i].xlatedLen / 2, `${all[i].name}: PCCOM off ${noPccom[i].xlatedLen} B < half of ${all[i].xlatedLen} B`);
      assert.equal(noXlat[i].tag, all[i].tag);
      assert.equal(noPccom[i].tag, all[i].tag);
    }
  });

  test('no program reads the reason table per packet: every code carries its TC action from compile time (bpf/lib/codes.h)', () => {
    // a GSCIP_CODE() whose argument is not a constant leaves a load of gscip_reason_info (.rodata) in a program
    for (const o of ['gscip_tc.bpf.o', 'gscip_crypto_test.bpf.o']) {
      // maxBuffer: the listing (debug relocations included) passed the 1 MiB default when the FTP sequence delta was added
      const relocs = execFileSync('llvm-objdump', ['-r', resolve(__dirname, '../../../build/bpf', o)], { encoding: 'utf8', maxBuffer: 64 << 20 });
      let section = '';
      const rodata: string[] = [];
      for (const line of relocs.split('\n')) {
        const head = /^RELOCATION RECORDS FOR \[(.+)\]:/.exec(line);
        if (head) section = head[1];
        else if (!section.startsWith('.rel.debug') && !section.startsWith('.debug') && !section.includes('BTF') && /\s\.rodata$/.test(line)) rodata.push(`${section}: ${line.trim()}`);
      }
      assert.deepEqual(rodata, [], `${o}: programs load .rodata (the reason table) at run time`);
    }
  });

  test('an object without the section refuses stage settings, naming the section', () => {
    const nop = resolve(__dirname, '../../../build/bpf/gscip_nop_test.bpf.o');
    assert.throws(() => BpfObject.load(nop, { initialValues: stageInitialValues(DEFAULT_STAGES) }), /no section \.rodata\.gscip_load/);
  });
});
