/**
 * Old object against new, side by side in one run: PCCOM ns/packet through
 * the datapath programs of two builds of gscip_tc.bpf.o, interleaved, so a
 * refactor of bpf/ is shown not to be slower (issue 10: "old and new objects
 * side by side in one run").
 *
 *   node dist/bench/pccom-objects.js [--base main] [--rounds 30] [--repeat 5000] [--singles 400]
 *
 * old: `git archive <base> bpf Makefile` built in a temp dir by that tree's own
 *      Makefile (`make bpf`, its clang flags; this tree's bpf/include/vmlinux.h).
 * new: build/bpf/gscip_tc.bpf.o of this tree (run `make bpf` first).
 * Both are loaded at once, each with its own maps holding the same key and
 * PIT entries, and a third: new loaded with the XLAT stage off (xoff), and a
 * fourth: new with PCCOM per-flow keys (fk: the PIT entries' FLOW_KEY flag,
 * gscip_flow_keys written by the control plane's writer, what DPRP installs
 * since issue 16; old, new and xoff use the group key). Cases, 1400-byte payloads, ChaCha20 and ChaCha8 keys:
 *   encrypt TCP/UDP: BPF_PROG_TEST_RUN repeat=--repeat (each run re-encrypts
 *                    its own output: the same work), ns = the kernel's average;
 *   decrypt TCP/UDP: decrypt verifies first, so a repeat on its own output
 *                    would stop at the check: one run per syscall, --singles
 *                    of them per round (the test-run timer's overhead is in
 *                    both objects' figures alike).
 * Every round runs every case on old, new and xoff back to back, the order
 * rotated each round. Printed: median ns/packet of each, new/old of the medians, and
 * the range of the per-round ratios (the noise). Writes
 * bench/results/pccom-objects.json. Needs root. Under a minute by default.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TEST_RUN_IFINDEX } from '../test/lib/bpf-harness.js';
import { BenchObject } from './shared-maps.js';
import { Action, Dir, KEY_F_ROUNDS_8, MissAction, PIT_F_FLOW_KEY, PitState, Role } from '../controlplane/maps/abi.js';
import { FlowKeyWriter } from '../controlplane/pccom/flow-keys.js';
import { tcpPacket, udpPacket } from '../test/bpf/pccom-fixture.js';
import { intArg } from './args.js';
import { buildBase, ROOT } from './base-object.js';

const BASE = ((): string => { const i = process.argv.indexOf('--base'); return i >= 0 ? process.argv[i + 1] : 'main'; })();
const ROUNDS = intArg('rounds', 30);
const REPEAT = intArg('repeat', 5000);
const SINGLES = intArg('singles', 400);
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** Do the two objects carry the same program bytes (sections tc and .text)? null if llvm-objcopy is missing. */
function sameCode(a: string, b: string, dir: string): boolean | null {
  try {
    for (const sec of ['tc', '.text']) {
      const [fa, fb] = [join(dir, 'a.bin'), join(dir, 'b.bin')];
      execFileSync('llvm-objcopy', ['-O', 'binary', `--only-section=${sec}`, a, fa]);
      execFileSync('llvm-objcopy', ['-O', 'binary', `--only-section=${sec}`, b, fb]);
      execFileSync('cmp', ['-s', fa, fb], { stdio: 'ignore' });  // status 1 (differ) throws
    }
    return true;
  } catch (e) {
    return (e as { status?: number }).status === 1 ? false : null;
  }
}

interface Case { name: string; prog: string; frame: Buffer; repeat: number; /** fk's own ciphertext (decrypt cases) */ fkFrame?: Buffer }

function setup(h: BenchObject, key: Buffer, flowKeys = false): void {
  const pit = (action: number, version: number) => ({ action, state: PitState.STATIC, role: Role.NONE, flags: flowKeys ? PIT_F_FLOW_KEY : 0, group_id: 1, key_version: version, created_ns: 0n, last_seen_ns: 0n });
  const w = flowKeys ? new FlowKeyWriter(h.flowKeys(), (_g, v) => ({ key, flags: v === 8 ? KEY_F_ROUNDS_8 : 0 })) : null;
  const salt = randomBytes(8).toString('hex');
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 1 });  // as bench/pccom.ts
  h.maps.keys.set({ group_id: 1, version: 20 }, { key, flags: 0, installed_ns: 0n });
  h.maps.keys.set({ group_id: 1, version: 8 }, { key, flags: KEY_F_ROUNDS_8, installed_ns: 0n });
  for (const [proto, sport, version] of [[IPPROTO_TCP, 40020, 20], [IPPROTO_TCP, 40008, 8], [IPPROTO_UDP, 40020, 20], [IPPROTO_UDP, 40008, 8]]) {
    const cid = { saddr: '192.0.2.1', daddr: '198.51.100.2', sport, dport: 5201, proto };
    h.maps.pit.set({ ...cid, dir: Dir.EGRESS }, pit(Action.ENCRYPT, version));
    h.maps.pit.set({ ...cid, dir: Dir.INGRESS }, pit(Action.DECRYPT, version));
    if (w) {
      const e = { flow: cid, group: 1, version, state: 'confirmed' as const, role: 'start' as const, flowKey: { salt, leg: 'fwd' as const } };
      w.install({ ...e, dir: 'egress', action: 'encrypt' }, { ...cid, dir: Dir.EGRESS });
      w.install({ ...e, dir: 'ingress', action: 'decrypt' }, { ...cid, dir: Dir.INGRESS });
    }
  }
}

/** ns/packet of one case on one object: the kernel's average over c.repeat, or the median of SINGLES single runs. */
function measure(h: BenchObject, c: Case): number {
  if (c.repeat > 1) {
    const r = h.testRun(c.prog, c.frame, { repeat: c.repeat });
    if (r.retval !== 0) throw new Error(`${c.name}: verdict ${r.retval}`);
    return r.durationNs;
  }
  const xs: number[] = [];
  for (let i = 0; i < SINGLES; i++) {
    const r = h.testRun(c.prog, c.frame);
    if (r.retval !== 0) throw new Error(`${c.name}: verdict ${r.retval}`);
    xs.push(r.durationNs);
  }
  return median(xs);
}

function main(): void {
  const newObj = resolve(ROOT, 'build/bpf/gscip_tc.bpf.o');
  if (!existsSync(newObj)) throw new Error(`${newObj} missing: run make bpf`);
  const base = buildBase(BASE);
  const identical = sameCode(base.obj, newObj, base.dir);
  // xoff: this tree's object loaded with the XLAT stage off (what a GES that never translates runs)
  const objs = { old: BenchObject.load(base.obj), new: BenchObject.load(newObj),
    xoff: BenchObject.load(newObj, { xlat: false, pccom: true }), fk: BenchObject.load(newObj) };
  try {
    const key = randomBytes(32);
    const payload = randomBytes(1400);
    for (const [n, h] of Object.entries(objs)) setup(h, key, n === 'fk');
    const cases: Case[] = [];
    for (const rounds of [20, 8] as const) {
      const sport = rounds === 20 ? 40020 : 40008;
      for (const [proto, plain] of [['tcp', tcpPacket({ sport, dport: 5201, payload })], ['udp', udpPacket({ sport, dport: 5201, payload })]] as const) {
        cases.push({ name: `${proto} encrypt chacha${rounds}`, prog: 'gscip_tc_egress', frame: plain, repeat: REPEAT });
        // the ciphertext both objects decrypt: the new object's, checked against the old one's
        // (TCP only: a UDP sender's IP ID comes from a random per-CPU counter)
        const ctNew = objs.new.testRun('gscip_tc_egress', plain).dataOut;
        const ctOld = objs.old.testRun('gscip_tc_egress', plain).dataOut;
        if (ctNew.subarray(-1400).compare(payload) === 0) throw new Error(`${proto} chacha${rounds}: egress did not encrypt`);
        if (proto === 'tcp' && ctNew.compare(ctOld) !== 0) throw new Error(`${proto} chacha${rounds}: old and new ciphertexts differ`);
        // fk: its own ciphertext (its per-flow key), which the group key objects cannot decrypt
        const ctFk = objs.fk.testRun('gscip_tc_egress', plain).dataOut;
        if (ctFk.subarray(-1400).compare(ctNew.subarray(-1400)) === 0) throw new Error(`${proto} chacha${rounds}: the per-flow key encrypted like the group key`);
        for (const [n, h] of Object.entries(objs)) {
          const back = h.testRun('gscip_tc_ingress', n === 'fk' ? ctFk : ctNew);
          // from the L4 header on: a UDP sender rewrites the IP ID (and the IP checksum)
          if (back.retval !== 0 || back.dataOut.subarray(34).compare(plain.subarray(34)) !== 0) throw new Error(`${proto} chacha${rounds}: ${n} object does not decrypt its ciphertext`);
        }
        cases.push({ name: `${proto} decrypt chacha${rounds}`, prog: 'gscip_tc_ingress', frame: ctNew, fkFrame: ctFk, repeat: 1 });
      }
    }
    const per: Record<string, { old: number[]; new: number[]; xoff: number[]; fk: number[] }> = {};
    for (const c of cases) per[c.name] = { old: [], new: [], xoff: [], fk: [] };
    // every object in every position equally often: the four rotations of the order, forwards and backwards, in turn
    const names = ['old', 'new', 'xoff', 'fk'] as const;
    const orders = [0, 1, 2, 3].flatMap((k) => [names.map((_, i) => names[(i + k) % 4]), names.map((_, i) => names[(k + 4 - i) % 4])]);
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of cases) for (const o of orders[r % orders.length]) per[c.name][o].push(measure(objs[o], o === 'fk' && c.fkFrame ? { ...c, frame: c.fkFrame } : c));
    }
    const rows = cases.map((c) => {
      const p = per[c.name];
      const ratios = p.old.map((o, i) => p.new[i] / o);
      return { case: c.name, repeat: c.repeat, singles: c.repeat > 1 ? 0 : SINGLES, old_ns: median(p.old), new_ns: median(p.new),
        ratio: median(p.new) / median(p.old), ratio_min: Math.min(...ratios), ratio_max: Math.max(...ratios),
        xlat_off_ns: median(p.xoff), xlat_off_ratio: median(p.xoff) / median(p.old),
        flow_key_ns: median(p.fk), flow_key_ratio: median(p.fk) / median(p.old),
        flow_key_ratio_min: Math.min(...p.old.map((o, i) => p.fk[i] / o)), flow_key_ratio_max: Math.max(...p.old.map((o, i) => p.fk[i] / o)) };
    });

    const pad = (s: string, n: number): string => s.padEnd(n);
    console.log(`PCCOM, old object (${BASE} = ${base.commit.slice(0, 12)}) vs new (this tree), BPF_PROG_TEST_RUN, 1400-byte payload, ${ROUNDS} interleaved rounds`);
    console.log(`kernel ${release()}, ${cpus()[0]?.model ?? '?'}; program bytes identical: ${identical === null ? 'unknown (no llvm-objcopy)' : identical ? 'yes' : 'no'}`);
    console.log(`${pad('case', 22)} ${pad('how', 16)} ${pad('old ns', 8)} ${pad('new ns', 8)} new/old  per-round range  ${pad('xoff ns', 8)} xoff/old  ${pad('fk ns', 8)} fk/old  per-round range`);
    for (const r of rows) {
      console.log(`${pad(r.case, 22)} ${pad(r.repeat > 1 ? `repeat ${r.repeat}` : `${SINGLES} single runs`, 16)} ${pad(String(r.old_ns), 8)} ${pad(String(r.new_ns), 8)} ${r.ratio.toFixed(3)}    ${r.ratio_min.toFixed(3)}..${r.ratio_max.toFixed(3)}     ${pad(String(r.xlat_off_ns), 8)} ${r.xlat_off_ratio.toFixed(3)}     ${pad(String(r.flow_key_ns), 8)} ${r.flow_key_ratio.toFixed(3)}   ${r.flow_key_ratio_min.toFixed(3)}..${r.flow_key_ratio_max.toFixed(3)}`);
    }
    console.log('xoff = this tree\'s object loaded with the XLAT stage off (--stages pccom); fk = this tree\'s object with per-flow keys (PIT FLOW_KEY, gscip_flow_keys)');
    const out = resolve(ROOT, 'bench/results');
    mkdirSync(out, { recursive: true });
    const json = { bench: 'pccom-objects', date: new Date().toISOString(), kernel: release(), cpu: cpus()[0]?.model ?? null,
      base: { ref: BASE, commit: base.commit }, new_object: newObj, program_bytes_identical: identical,
      rounds: ROUNDS, unit: 'ns_per_packet', rows };
    writeFileSync(resolve(out, 'pccom-objects.json'), JSON.stringify(json, null, 2) + '\n');
    console.log(`wrote ${resolve(out, 'pccom-objects.json')}`);
  } finally {
    for (const h of Object.values(objs)) h.close();
    rmSync(base.dir, { recursive: true, force: true });
  }
}

main();
