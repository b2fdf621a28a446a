/**
 * Codecs for every struct of bpf/include/gscip_abi.h (map keys, map values,
 * ring-buffer records). Field names and order are the header's; offsets are
 * computed by layout.ts and checked against BTF by test/bpf/btf-layout.test.ts.
 */
import { KEY_BYTES, NAT_MAX_INSIDE, PUNT_MAX_BYTES } from './abi.js';
import { array, be16, bytes, ipv4, pad, s32, struct, u16, u32, u64, u8, StructCodec, type FieldDef, type FieldType } from './layout.js';

/** Anything a BpfMap can (de)serialize (declared with BpfMap, which is generic). */
import type { Codec } from '../bpf/codec.js';
export type { Codec };

/** A codec for a bare scalar key/value (e.g. `__u32 ifindex`). */
export function scalar<T>(t: FieldType<T>, where: string): Codec<T> {
  return {
    size: t.size,
    encode: (v, buf, off = 0) => { const b = buf ?? Buffer.alloc(t.size); t.write(b, off, v, where); return b; },
    decode: (buf, off = 0) => t.read(buf, off),
  };
}

export const u32Codec = scalar(u32, '__u32');

/** struct gscip_cid: the flow key. Addresses dotted, ports in host order. */
export interface Cid {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
  dir: number;
}
export const cidCodec: StructCodec<Cid> = struct<Cid>('gscip_cid', [
  ['saddr', ipv4],
  ['daddr', ipv4],
  ['sport', be16],
  ['dport', be16],
  ['proto', u8],
  ['dir', u8],
  ['pad', pad(array(u8, 2))],
]);

export interface PitVal {
  action: number;
  state: number;
  role: number;
  flags: number;
  group_id: number;
  key_version: number;
  /** Decrypt entries: the version also accepted while a rotation is under way
   * (0 = none). Optional when writing (written as 0); always present when read. */
  prev_key_version?: number;
  created_ns: bigint;
  last_seen_ns: bigint;
}
/** gscip_pit_val codec; a missing prev_key_version is written as 0 (it replaced padding). */
class PitValCodec extends StructCodec<PitVal> {
  override write(buf: Buffer, off: number, v: PitVal, where?: string): void {
    const full = v !== null && typeof v === 'object' ? { ...v, prev_key_version: v.prev_key_version ?? 0 } : v;
    super.write(buf, off, full, where);
  }
}
export const pitValCodec: StructCodec<PitVal> = new PitValCodec('gscip_pit_val', [
  ['action', u8],
  ['state', u8],
  ['role', u8],
  ['flags', u8],
  ['group_id', u32],
  ['key_version', u32],
  ['prev_key_version', u32 as FieldType<number | undefined>],
  ['created_ns', u64],
  ['last_seen_ns', u64],
] as ReadonlyArray<FieldDef<PitVal>>);

export interface XlatVal {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  kind: number;
  created_ns: bigint;
}
export const xlatValCodec: StructCodec<XlatVal> = struct<XlatVal>('gscip_xlat_val', [
  ['saddr', ipv4],
  ['daddr', ipv4],
  ['sport', be16],
  ['dport', be16],
  ['kind', u32],
  ['created_ns', u64],
]);

/** struct gscip_nat_prefix: an inside prefix of the GNAT (mask 0.0.0.0 = unused slot). */
export interface NatPrefix { addr: string; mask: string }
export const natPrefixCodec: StructCodec<NatPrefix> = struct<NatPrefix>('gscip_nat_prefix', [
  ['addr', ipv4],
  ['mask', ipv4],
]);

/** struct gscip_nat_cfg (gscip_nat_cfg, index 0): external address, port range (host order), inside prefixes. */
export interface NatCfg { ext_addr: string; port_lo: number; port_hi: number; inside: NatPrefix[] }
export const natCfgCodec: StructCodec<NatCfg> = struct<NatCfg>('gscip_nat_cfg', [
  ['ext_addr', ipv4],
  ['port_lo', u16],
  ['port_hi', u16],
  ['inside', array(natPrefixCodec, NAT_MAX_INSIDE)],
]);

/** struct gscip_nat_val: one NAT session (key: the inside-view CID, dir egress). */
export interface NatVal {
  ext_addr: string;
  ext_port: number;
  origin: number;
  flags: number;
  created_ns: bigint;
  last_seen_ns: bigint;
}
export const natValCodec: StructCodec<NatVal> = struct<NatVal>('gscip_nat_val', [
  ['ext_addr', ipv4],
  ['ext_port', be16],
  ['origin', u8],
  ['pad', pad(u8)],
  ['flags', u32],
  ['reserved', pad(u32)],
  ['created_ns', u64],
  ['last_seen_ns', u64],
]);

/** struct gscip_nat_port_key: (protocol, external port) claimed by one session. */
export interface NatPortKey { port: number; proto: number }
export const natPortKeyCodec: StructCodec<NatPortKey> = struct<NatPortKey>('gscip_nat_port_key', [
  ['port', be16],
  ['proto', u8],
  ['pad', pad(u8)],
]);

export interface KeyId {
  group_id: number;
  version: number;
}
export const keyIdCodec: StructCodec<KeyId> = struct<KeyId>('gscip_key_id', [
  ['group_id', u32],
  ['version', u32],
]);

export interface KeyVal {
  key: Buffer;
  flags: number;
  installed_ns: bigint;
}
export const keyValCodec: StructCodec<KeyVal> = struct<KeyVal>('gscip_key_val', [
  ['key', bytes(KEY_BYTES)],
  ['flags', u32],
  ['pad', pad(u32)],
  ['installed_ns', u64],
]);

/** struct gscip_ftp_seq_val: an FTP control connection's sequence delta (gscip_ftp_seq; controlplane/gsra/ftp-seq.ts). */
export interface FtpSeqVal {
  /** Server seq (host order) of the last segment whose length changed. */
  pos: number;
  /** Delta for server seqs up to and including pos / after it. */
  before: number;
  after: number;
}
export const ftpSeqValCodec: StructCodec<FtpSeqVal> = struct<FtpSeqVal>('gscip_ftp_seq_val', [
  ['pos', u32],
  ['before', s32],
  ['after', s32],
  ['pad', pad(u32)],
]);

/** struct gscip_flow_key_half: one per-flow key and its counter. */
export interface FlowKeyHalf {
  key: Buffer;
  /** Group key version it was derived from; 0 = empty. */
  key_version: number;
  /** GSCIP_KEY_F_ROUNDS_* of that group key. */
  flags: number;
  /** UDP sender: next counter; receiver: highest accepted; TCP sender: FK_SEQ_BASE_SET | first seq. */
  ctr: bigint;
}
export const flowKeyHalfCodec: StructCodec<FlowKeyHalf> = struct<FlowKeyHalf>('gscip_flow_key_half', [
  ['key', bytes(KEY_BYTES)],
  ['key_version', u32],
  ['flags', u32],
  ['ctr', u64],
]);

/** struct gscip_flow_key_val: PIT CID -> the entry's per-flow key (gscip_flow_keys). */
export interface FlowKeyVal {
  cur: FlowKeyHalf;
  prev: FlowKeyHalf;
  /** cur's salt: the DPRP negotiation id (8 bytes as on the wire, read as little-endian u64). */
  salt: bigint;
  prev_salt: bigint;
  /** UDP sender: counter at which the re-key signal is raised (0: UDP_CTR_REKEY). */
  rekey_at: bigint;
  /** enum gscip_flow_leg of cur / prev. */
  leg: number;
  prev_leg: number;
  /** Fast path: re-key wishes (the signal goes out on the first and every 256th). */
  signalled: number;
  /** Fast path: UDP receiver's keyed checksum failures in a row. */
  fails: number;
}
export const flowKeyValCodec: StructCodec<FlowKeyVal> = struct<FlowKeyVal>('gscip_flow_key_val', [
  ['cur', flowKeyHalfCodec],
  ['prev', flowKeyHalfCodec],
  ['salt', u64],
  ['prev_salt', u64],
  ['rekey_at', u64],
  ['leg', u8],
  ['prev_leg', u8],
  ['signalled', u8],
  ['pad', pad(u8)],
  ['fails', u32],
]);

export interface IfaceCfg {
  /** [ingress, egress] -> enum gscip_miss_action */
  miss_action: number[];
  flags: number;
  /** enum gscip_ipv6_policy, both directions. It replaced padding, so 0 (pass)
   * is what a previous release's entry holds: absent means 0, both when written
   * (written as 0) and when read (a 0 is left out, so an entry round-trips as
   * the previous layout's did). Read it with ipv6PolicyOf(). */
  ipv6_policy?: number;
}
/** An entry's IPv6 policy (enum gscip_ipv6_policy): absent = 0 = pass. */
export function ipv6PolicyOf(v: IfaceCfg): number { return v.ipv6_policy ?? 0; }
/** gscip_iface_cfg codec; a missing ipv6_policy is written as 0 (pass), a 0 is read as absent. */
class IfaceCfgCodec extends StructCodec<IfaceCfg> {
  override write(buf: Buffer, off: number, v: IfaceCfg, where?: string): void {
    const full = v !== null && typeof v === 'object' ? { ...v, ipv6_policy: v.ipv6_policy ?? 0 } : v;
    super.write(buf, off, full, where);
  }
  override read(buf: Buffer, off: number): IfaceCfg {
    const v = super.read(buf, off);
    if (v.ipv6_policy === 0) delete v.ipv6_policy;
    return v;
  }
}
export const ifaceCfgCodec: StructCodec<IfaceCfg> = new IfaceCfgCodec('gscip_iface_cfg', [
  ['miss_action', array(u8, 2)],
  ['flags', u8],
  ['ipv6_policy', u8 as FieldType<number | undefined>],
  ['reserved', pad(u32)],
] as ReadonlyArray<FieldDef<IfaceCfg>>);

export interface GlobalCfg {
  punt_rate_pps: bigint;
  punt_burst: bigint;
}
export const globalCfgCodec: StructCodec<GlobalCfg> = struct<GlobalCfg>('gscip_global_cfg', [
  ['punt_rate_pps', u64],
  ['punt_burst', u64],
]);

/** struct gscip_load_cfg: the load-time settings in .rodata.gscip_load (written before load, frozen after). */
export interface LoadCfg { stages: number }
export const loadCfgCodec: StructCodec<LoadCfg> = struct<LoadCfg>('gscip_load_cfg', [
  ['stages', u32],
  ['reserved', pad(u32)],
]);

export interface PuntRec {
  ts_ns: bigint;
  ifindex: number;
  pkt_len: number;
  cap_len: number;
  dir: number;
  reason: number;
  cid: Cid;
  /** The captured bytes (decodePuntRec: cap_len of them; a codec-decoded full record: all GSCIP_PUNT_MAX_BYTES, the packet the first cap_len, see puntPacket). */
  data: Buffer;
}
export const puntRecCodec: StructCodec<PuntRec> = struct<PuntRec>('gscip_punt_rec', [
  ['ts_ns', u64],
  ['ifindex', u32],
  ['pkt_len', u32],
  ['cap_len', u16],
  ['dir', u8],
  ['reason', u8],
  ['pad', pad(u32)],
  ['cid', cidCodec],
  ['data', bytes(PUNT_MAX_BYTES)],
]);

/** The captured packet bytes of a punt record (from the Ethernet header on). */
export function puntPacket(rec: PuntRec): Buffer {
  return rec.data.subarray(0, Math.min(rec.cap_len, rec.data.length));
}

/**
 * Decode a punt record from the ring buffer. Accepts records shorter than the
 * struct (a datapath may submit only header + cap_len bytes in the future).
 */
export function decodePuntRec(buf: Buffer): PuntRec {
  const dataOff = puntRecCodec.field('data').offset;
  if (buf.length < dataOff) throw new RangeError(`gscip_punt_rec: record of ${buf.length} bytes is shorter than its ${dataOff}-byte header`);
  // The header's fields, then only the captured bytes: a record copies what it
  // carries, not GSCIP_PUNT_MAX_BYTES (under a flood of small packets ~20x less
  // memory, and small copies come from Node's pooled slabs, not a malloc each:
  // what kept the agent's malloc heap large after a flood).
  const out: Record<string, unknown> = {};
  for (const f of puntRecCodec.fields) if (!f.isPad && f.name !== 'data') out[f.name] = f.type.read(buf, f.offset);
  const rec = out as unknown as PuntRec;
  const n = Math.min(rec.cap_len, buf.length - dataOff, PUNT_MAX_BYTES);
  rec.data = Buffer.from(buf.subarray(dataOff, dataOff + n));
  return rec;
}

export interface StatVal {
  packets: bigint;
  bytes: bigint;
}
export const statValCodec: StructCodec<StatVal> = struct<StatVal>('gscip_stat_val', [
  ['packets', u64],
  ['bytes', u64],
]);

/** Every struct codec, by C name: what the BTF layout test walks. */
export const ALL_STRUCTS: ReadonlyArray<StructCodec<unknown>> = [
  cidCodec, pitValCodec, xlatValCodec, keyIdCodec, keyValCodec, flowKeyHalfCodec, flowKeyValCodec, ifaceCfgCodec, globalCfgCodec, loadCfgCodec, puntRecCodec, statValCodec,
  natPrefixCodec, natCfgCodec, natValCodec, natPortKeyCodec, ftpSeqValCodec,
] as ReadonlyArray<StructCodec<unknown>>;
