/**
 * Test fixture for PCCOM: loads the test-only object build/bpf/gscip_crypto_test.bpf.o
 * with bpftool into a per-run bpffs directory, runs its programs with
 * BPF_PROG_TEST_RUN (`bpftool prog run`), seeds the maps, and offers an
 * independent TypeScript reference of the PCCOM wire format (chacha-ref.ts,
 * itself checked against OpenSSL and the RFC; not the BPF code) plus IPv4/TCP/UDP
 * packet builders.
 *
 * Used by test/bpf/{chacha20,pccom}.test.ts and bench/pccom.ts.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdirOnBpffs } from '../../controlplane/bpf/bpffs.js';
import { ScratchGuard } from '../../controlplane/lab/scratch-guard.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sh } from '../lib/netns.js';
import { chachaStream, type ChachaRounds } from './chacha-ref.js';
import { counterSlot, Dir, Stat } from '../../controlplane/maps/abi.js';
import { MAP_NAMES } from '../../controlplane/maps/gscip-maps.js';

export const CRYPTO_TEST_OBJ = resolve(__dirname, '../../../build/bpf/gscip_crypto_test.bpf.o');

/* enum gscip_stat values used by the tests: from the ABI mirror (abi.ts, itself checked against the header and BTF) */
export const STAT = {
  PIT_ENCRYPT: Stat.STAT_PIT_ENCRYPT,
  PIT_DECRYPT: Stat.STAT_PIT_DECRYPT,
  PIT_DECRYPT_PREV: Stat.STAT_PIT_DECRYPT_PREV,
  DROP_MALFORMED_L4: Stat.DROP_MALFORMED_L4,
  DROP_NO_KEY: Stat.DROP_NO_KEY,
  DROP_BAD_KEYED_CSUM: Stat.DROP_BAD_KEYED_CSUM,
  DROP_CRYPTO: Stat.DROP_CRYPTO,
  DROP_UNSUPPORTED: Stat.DROP_UNSUPPORTED,
  DROP_FRAGMENT: Stat.DROP_FRAGMENT,
} as const;

export const ACT_ENCRYPT = 3;
export const ACT_DECRYPT = 4;

/* gscip_key_val.flags round bits (bpf/include/gscip_abi.h) */
export const KEY_F_ROUNDS_12 = 0x1;
export const KEY_F_ROUNDS_8 = 0x2;
export function roundsFlags(rounds: ChachaRounds): number {
  return rounds === 12 ? KEY_F_ROUNDS_12 : rounds === 8 ? KEY_F_ROUNDS_8 : 0;
}

export interface RunResult { retval: number; out: Buffer; durationNs: number }

function hexBytes(b: Buffer): string[] {
  return [...b].map((x) => x.toString(16).padStart(2, '0'));
}

/** The test object loaded and pinned under /sys/fs/bpf/gscip-test-<prefix>. */
export class CryptoTestProgs {
  readonly dir: string;
  private readonly tmp: string;
  private seq = 0;

  constructor() {
    this.dir = `/sys/fs/bpf/gscip-test-c${randomBytes(4).toString('hex')}`;
    ScratchGuard.get().add('path', this.dir);
    this.tmp = mkdtempSync(join(tmpdir(), 'gscip-pccom-'));
    ScratchGuard.get().add('path', this.tmp);
    mkdirOnBpffs(`${this.dir}/maps`);
    try {
      sh('bpftool', ['prog', 'loadall', CRYPTO_TEST_OBJ, `${this.dir}/progs`, 'pinmaps', `${this.dir}/maps`], { timeoutMs: 60_000 });
    } catch (e) {
      this.cleanup();
      throw e;
    }
  }

  run(prog: 'chacha_test' | 'pccom_test_egress' | 'pccom_test_ingress', data: Buffer, repeat = 1): RunResult {
    const n = this.seq++;
    const inF = join(this.tmp, `in${n}`);
    const outF = join(this.tmp, `out${n}`);
    writeFileSync(inF, data);
    const r = sh('bpftool', ['-j', 'prog', 'run', 'pinned', `${this.dir}/progs/${prog}`, 'data_in', inF, 'data_out', outF,
      'data_size_out', String(data.length + 256), 'repeat', String(repeat)], { timeoutMs: 60_000 });
    const j = JSON.parse(r.stdout) as { retval: number; duration: number };
    const out = readFileSync(outF);
    rmSync(inF); rmSync(outF);
    return { retval: j.retval, out, durationNs: j.duration };
  }

  private mapUpdate(map: string, key: Buffer, value: Buffer): void {
    sh('bpftool', ['map', 'update', 'pinned', `${this.dir}/maps/${map}`, 'key', 'hex', ...hexBytes(key), 'value', 'hex', ...hexBytes(value)]);
  }

  /** gscip_keys[(group, version)] = key (struct gscip_key_val) with flags (KEY_F_*). */
  setKey(group: number, version: number, key: Buffer, flags = 0): void {
    if (key.length !== 32) throw new Error(`setKey: key must be 32 bytes, got ${key.length}`);
    const k = Buffer.alloc(8); k.writeUInt32LE(group, 0); k.writeUInt32LE(version, 4);
    const v = Buffer.alloc(48); key.copy(v, 0); v.writeUInt32LE(flags, 32);
    this.mapUpdate('gscip_keys', k, v);
  }

  delKey(group: number, version: number): void {
    const k = Buffer.alloc(8); k.writeUInt32LE(group, 0); k.writeUInt32LE(version, 4);
    sh('bpftool', ['map', 'delete', 'pinned', `${this.dir}/maps/gscip_keys`, 'key', 'hex', ...hexBytes(k)]);
  }

  /** crypto_test_pit[0] = struct gscip_pit_val (prevVersion = prev_key_version). */
  setPit(action: number, group: number, version: number, prevVersion = 0, flags = 0): void {
    const v = Buffer.alloc(32);
    v[0] = action; v[3] = flags; v.writeUInt32LE(group, 4); v.writeUInt32LE(version, 8); v.writeUInt32LE(prevVersion, 12);
    this.mapUpdate('crypto_test_pit', Buffer.alloc(4), v);
  }

  /** Packets counted for a stat id, summed over CPUs and both directions. */
  stat(id: number): number {
    let total = 0;
    for (const dir of [Dir.INGRESS, Dir.EGRESS]) {
      const k = Buffer.alloc(4); k.writeUInt32LE(counterSlot(id, dir), 0);
      const r = sh('bpftool', ['-j', 'map', 'lookup', 'pinned', `${this.dir}/maps/${MAP_NAMES.stats}`, 'key', 'hex', ...hexBytes(k)]);
      const j = JSON.parse(r.stdout) as { values: { value: string[] | { packets: number } }[] };
      for (const cpu of j.values) {
        if (Array.isArray(cpu.value)) total += Number(Buffer.from(cpu.value.map((x) => parseInt(x, 16))).readBigUInt64LE(0));
        else total += cpu.value.packets;
      }
    }
    return total;
  }

  /** Raw bytes of every CPU's cell of the PCCOM scratch map. */
  scratchCells(): Buffer[] {
    const r = sh('bpftool', ['-j', 'map', 'dump', 'pinned', `${this.dir}/maps/gscip_pccom_scratch`]);
    const j = JSON.parse(r.stdout) as { values?: { value: string[] }[]; formatted?: unknown }[];
    const cells: Buffer[] = [];
    for (const e of j) for (const v of e.values ?? []) cells.push(Buffer.from(v.value.map((x) => parseInt(x, 16))));
    return cells;
  }

  cleanup(): void {
    sh('rm', ['-rf', this.dir], { allowFail: true });
    rmSync(this.tmp, { recursive: true, force: true });
    ScratchGuard.get().removed('path', this.dir);
    ScratchGuard.get().removed('path', this.tmp);
  }
}

/* ---------------- reference implementation (independent of the BPF code) ---------------- */

/** ChaCha20 keystream bytes [skip, skip+len) of the stream starting at block `counter`. */
export function chachaKeystream(key: Buffer, counter: number, nonce: Buffer, skip: number, len: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(counter >>> 0, 0);
  nonce.copy(iv, 4);
  const c = createCipheriv('chacha20', key, iv);
  return c.update(Buffer.alloc(skip + len)).subarray(skip);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const o = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) o[i] = a[i] ^ b[i];
  return o;
}

/** One's-complement sum of bytes at even/odd positions, in the little-endian word view. */
export function sumLE(b: Buffer, startOdd = false): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s += ((i + (startOdd ? 1 : 0)) & 1) ? b[i] << 8 : b[i];
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}
const add16 = (a: number, b: number): number => { let s = a + b; while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s; };
const neg16 = (a: number): number => (~a) & 0xffff;

export const DOM = { TCP_DATA: 0x50435401, TCP_CSUM: 0x50435402, UDP_DATA: 0x50435501, UDP_CSUM: 0x50435502 };

export interface Parsed { l3: number; l4: number; proto: number; hlen: number; payOff: number; payLen: number }

export function parse(pkt: Buffer): Parsed {
  const l3 = 14;
  const ihl = (pkt[l3] & 0x0f) * 4;
  const tot = pkt.readUInt16BE(l3 + 2);
  const proto = pkt[l3 + 9];
  const l4 = l3 + ihl;
  const hlen = proto === 6 ? (pkt[l4 + 12] >> 4) * 4 : 8;
  const payLen = proto === 6 ? tot - ihl - hlen : pkt.readUInt16BE(l4 + 4) - 8;
  return { l3, l4, proto, hlen, payOff: l4 + hlen, payLen };
}

/** Keystream parameters and K for a PLAINTEXT packet, exactly as docs/pccom.md defines them. */
export function pccomParams(pkt: Buffer, key: Buffer, rounds: ChachaRounds = 20): { counter: number; nonce: Buffer; skip: number; k: number } {
  const p = parse(pkt);
  const nonce = Buffer.alloc(12);
  const knonce = Buffer.alloc(12);
  let counter: number; let skip: number; let kctr: number;
  if (p.proto === 6) {
    const seq = pkt.readUInt32BE(p.l4 + 4);
    const ackWire = pkt.subarray(p.l4 + 8, p.l4 + 12);
    let tsWire: Buffer = Buffer.alloc(4);
    let ecrWire: Buffer = Buffer.alloc(4);
    if (p.hlen >= 32 && pkt.readUInt32BE(p.l4 + 20) === 0x0101080a) {
      tsWire = pkt.subarray(p.l4 + 24, p.l4 + 28);
      ecrWire = pkt.subarray(p.l4 + 28, p.l4 + 32);
    }
    nonce.writeUInt32LE(DOM.TCP_DATA, 0); ackWire.copy(nonce, 4); tsWire.copy(nonce, 8);
    counter = Math.floor(seq / 64); skip = seq % 64;
    // K: only fields every GSO segment shares and NAT leaves alone (not seq, ports, flags)
    knonce.writeUInt32LE(DOM.TCP_CSUM, 0); ackWire.copy(knonce, 4); tsWire.copy(knonce, 8);
    kctr = ecrWire.readUInt32LE(0);
  } else {
    nonce.writeUInt32LE(DOM.UDP_DATA, 0); pkt.copy(nonce, 4, p.l3 + 4, p.l3 + 6);
    nonce.writeUInt16LE(p.payLen + 8, 6);
    const s = sumLE(pkt.subarray(p.payOff, p.payOff + p.payLen));  // plaintext sum (callers pass the plaintext)
    nonce.writeUInt16LE(s === 0xffff ? 0 : s, 8);
    counter = 0; skip = 0;
    knonce.writeUInt32LE(DOM.UDP_CSUM, 0); nonce.copy(knonce, 4, 4, 8);
    kctr = 0;
  }
  const k = chachaStream(key, kctr, knonce, 0, 2, rounds).readUInt16LE(0);
  return { counter, nonce, skip, k };
}

function pseudoSum(pkt: Buffer, p: Parsed): number {
  const ph = Buffer.alloc(12);
  pkt.copy(ph, 0, p.l3 + 12, p.l3 + 20);
  ph[9] = p.proto;
  ph.writeUInt16BE(p.hlen + p.payLen, 10);
  return sumLE(ph);
}

function csumOff(p: Parsed): number { return p.l4 + (p.proto === 6 ? 16 : 6); }

/** Ordinary L4 checksum field value (word view) over the packet as it is. */
export function ordinaryCsum(pkt: Buffer): number {
  const p = parse(pkt);
  const hdr = Buffer.from(pkt.subarray(p.l4, p.l4 + p.hlen));
  hdr.writeUInt16LE(0, csumOff(p) - p.l4);
  let c = neg16(add16(add16(pseudoSum(pkt, p), sumLE(hdr)), sumLE(pkt.subarray(p.payOff, p.payOff + p.payLen))));
  if (p.proto === 17 && c === 0) c = 0xffff;
  return c;
}

/**
 * Reference PCCOM encryption of a plaintext packet (IP ID must already be the one on the wire).
 * TCP: checksum = ~(pseudo + header + CIPHERTEXT + K); UDP: ~(pseudo + header + PLAINTEXT + K).
 */
export function referenceEncrypt(plain: Buffer, key: Buffer, rounds: ChachaRounds = 20): Buffer {
  const p = parse(plain);
  const out = Buffer.from(plain);
  const prm = pccomParams(plain, key, rounds);
  const pt = plain.subarray(p.payOff, p.payOff + p.payLen);
  const ct = xor(pt, chachaStream(key, prm.counter, prm.nonce, prm.skip, p.payLen, rounds));
  ct.copy(out, p.payOff);
  const hdr = Buffer.from(plain.subarray(p.l4, p.l4 + p.hlen));
  hdr.writeUInt16LE(0, csumOff(p) - p.l4);
  let c = neg16(add16(add16(add16(pseudoSum(plain, p), sumLE(hdr)), sumLE(p.proto === 6 ? ct : pt)), prm.k));
  if (p.proto === 17 && c === 0) c = 0xffff;
  out.writeUInt16LE(c, csumOff(p));
  return out;
}

/** K of a packet (TCP: from ack, TSval, TSecr only), for tests that check additivity. */
export function referenceK(pkt: Buffer, key: Buffer, rounds: ChachaRounds = 20): number {
  return pccomParams(pkt, key, rounds).k;
}

/* ---------------- packet builders ---------------- */

function ip4(a: string): Buffer { return Buffer.from(a.split('.').map(Number)); }

function ipv4Header(proto: number, src: string, dst: string, l4len: number, id: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45; h.writeUInt16BE(20 + l4len, 2); h.writeUInt16BE(id, 4); h.writeUInt16BE(0x4000, 6);
  h[8] = 64; h[9] = proto; ip4(src).copy(h, 12); ip4(dst).copy(h, 16);
  let s = 0; for (let i = 0; i < 20; i += 2) s += h.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  h.writeUInt16BE((~s) & 0xffff, 10);
  return h;
}

const ETH = Buffer.from('02000000000102000000000208 00'.replace(/ /g, ''), 'hex');

export interface TcpOpts { src?: string; dst?: string; sport?: number; dport?: number; seq?: number; ack?: number; tsval?: number | null; payload: Buffer; ipId?: number }

export function tcpPacket(o: TcpOpts): Buffer {
  const opts = o.tsval === null ? Buffer.alloc(0) : Buffer.from([1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
  if (o.tsval !== null) opts.writeUInt32BE((o.tsval ?? 0x01020304) >>> 0, 4);
  const th = Buffer.alloc(20 + opts.length);
  th.writeUInt16BE(o.sport ?? 40000, 0); th.writeUInt16BE(o.dport ?? 5001, 2);
  th.writeUInt32BE((o.seq ?? 0x12345678) >>> 0, 4); th.writeUInt32BE((o.ack ?? 0x9abcdef0) >>> 0, 8);
  th[12] = (th.length / 4) << 4; th[13] = 0x18; th.writeUInt16BE(502, 14);
  opts.copy(th, 20);
  const pkt = Buffer.concat([ETH, ipv4Header(6, o.src ?? '192.0.2.1', o.dst ?? '198.51.100.2', th.length + o.payload.length, o.ipId ?? 1), th, o.payload]);
  pkt.writeUInt16LE(ordinaryCsum(pkt), 14 + 20 + 16);
  return pkt;
}

export interface UdpOpts { src?: string; dst?: string; sport?: number; dport?: number; payload: Buffer; ipId?: number }

export function udpPacket(o: UdpOpts): Buffer {
  const uh = Buffer.alloc(8);
  uh.writeUInt16BE(o.sport ?? 40000, 0); uh.writeUInt16BE(o.dport ?? 5001, 2); uh.writeUInt16BE(8 + o.payload.length, 4);
  const pkt = Buffer.concat([ETH, ipv4Header(17, o.src ?? '192.0.2.1', o.dst ?? '198.51.100.2', 8 + o.payload.length, o.ipId ?? 0), uh, o.payload]);
  pkt.writeUInt16LE(ordinaryCsum(pkt), 14 + 20 + 6);
  return pkt;
}

/** IPv4 header checksum is valid. */
export function ipCsumOk(pkt: Buffer): boolean {
  let s = 0; for (let i = 14; i < 34; i += 2) s += pkt.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s === 0xffff;
}

/** Largest packet BPF_PROG_TEST_RUN accepts for a tc program on this kernel (bounded search). */
export function maxRunBytes(progs: CryptoTestProgs): number {
  let lo = 128; let hi = 8192;  // lo works, hi fails
  for (let i = 0; i < 16 && hi - lo > 1; i++) {
    const mid = (lo + hi) >> 1;
    try {
      progs.run('chacha_test', Buffer.alloc(mid));
      lo = mid;
    } catch { hi = mid; }
  }
  return lo;
}
