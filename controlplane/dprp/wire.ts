/**
 * DPRP wire codec: DDE, RGI, MPIT, CDN as ICMPv4 type GSCIP_ICMP_TYPE (253),
 * ICMP code = message type. Byte diagrams: docs/dprp.md.
 *
 * Layout (all integers big-endian):
 *   ICMP header      8  type=253 | code=msgType | checksum | candDepth | reserved(3)
 *   DPRP header     24  version | msgType | flags | attempt | negId(8) | timestampMs(8) | bodyLen(2) | reserved(2)
 *   control header  28  CID(saddr,daddr,sport,dport,proto) | status | nRecords | nActions |
 *                       startGe | endGe | nSeal | reserved | optLen(2)
 *   records   nRecords x (12 + 16*nTags + optLen)
 *   actions   nActions x 40
 *   seal      nSeal(0|1) x 32
 *   options   optLen bytes of TLV
 *
 * Decoding is strict and bounded: every rejection is a DprpWireError carrying a
 * reason from WIRE_REJECT_REASONS (a bounded metric label set). decode() never
 * throws anything else, whatever the input (see test/unit/dprp-fuzz.test.ts).
 */
import { GscipError } from '../errors/catalogue.js';
import { vocabulary, type EntryActionName, type NameOf, type PathRoleName } from '../maps/vocabulary.js';
import { inetChecksum, Ipv4AddressError, readIpv4, writeIpv4 } from './ipv4.js';
import { OPTION_SKIPPABLE_FROM, type OptionCodecs, type OptionRefusalReason } from './option-codecs.js';
import { SPEC_OPTIONS } from './spec-options.js';

export const GSCIP_ICMP_TYPE = 253; // bpf/include/gscip_abi.h
export const DPRP_VERSION = 1;

export const ICMP_HDR_LEN = 8;
export const DPRP_HDR_LEN = 24;
export const CONTROL_HDR_LEN = 28;
export const RECORD_FIXED_LEN = 12;
export const TAG_LEN = 16;
export const ACTION_LEN = 40;
export const SEAL_LEN = 32;
export const NEG_ID_LEN = 8;

/** Bounds: a control message fits one 1500-byte frame with room to spare. */
export const MAX_MESSAGE_BYTES = 1400;
export const MAX_RECORDS = 16;
export const MAX_TAGS = 16;
export const MAX_ACTIONS = 16;
export const MAX_OPTION_BYTES = 256;
/**
 * Hop-by-hop, NOT authenticated: how many end-candidate GEs (GEN/GEA that saw
 * the destination behind them) have already forwarded this DDE inward. A deeper
 * candidate waits less, so the GE nearest the destination answers first.
 */
export const MAX_CAND_DEPTH = 4;

export const MsgType = { DDE: 1, RGI: 2, MPIT: 3, CDN: 4 } as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];
export const MSG_TYPE_NAMES: Record<number, string> = { 1: 'DDE', 2: 'RGI', 3: 'MPIT', 4: 'CDN' };

/** GE type on the wire (controlplane/gms/model.ts GeType). */
export const GE_TYPE_CODES = { GES: 1, GEN: 2, GEA: 3, GNAT: 4, GSRA: 5 } as const;
export type GeTypeName = keyof typeof GE_TYPE_CODES;
export const MODE_CODES = { OP: 1, CL: 2 } as const;
export type ModeName = keyof typeof MODE_CODES;

/** Per-GE decided action; numerically equal to enum gscip_action. */
export const WireAction = { PASS: 1, DISCARD: 2, ENCRYPT: 3, DECRYPT: 4 } as const;
export type WireAction = (typeof WireAction)[keyof typeof WireAction];
/** Role in the negotiation; numerically equal to enum gscip_role. */
export const WireRole = { START: 1, INTERMEDIATE: 2, END: 3 } as const;
export type WireRole = (typeof WireRole)[keyof typeof WireRole];

/** The wire's action names, DPRP's decision (decide.ts): 'pass' | 'discard' | 'encrypt' | 'decrypt'. */
export const WIRE_ACTIONS = vocabulary(WireAction, 'DPRP wire action');
export type WireActionName = NameOf<typeof WireAction>;
/** The wire's role names: 'start' | 'intermediate' | 'end'. */
export const WIRE_ROLES = vocabulary(WireRole, 'DPRP wire role');
export type WireRoleName = NameOf<typeof WireRole>;

/**
 * The one table between DPRP's wire vocabulary and the ABI's
 * (maps/vocabulary.ts): the PIT action that carries out each decided action
 * (the protocol says `discard`, the datapath `drop`), and the PIT role of each
 * wire role. test/unit/vocabulary.test.ts checks that both are one-to-one and
 * complete, and that the codes agree as well.
 */
export const WIRE_TO_ABI_ACTION = { pass: 'pass', discard: 'drop', encrypt: 'encrypt', decrypt: 'decrypt' } as const satisfies Record<WireActionName, EntryActionName>;
export const WIRE_TO_ABI_ROLE = { start: 'start', intermediate: 'intermediate', end: 'end' } as const satisfies Record<WireRoleName, PathRoleName>;

function invert<K extends string, V extends string>(t: Readonly<Record<K, V>>): ReadonlyMap<V, K> {
  return new Map(Object.entries(t).map(([k, v]) => [v as V, k as K]));
}
const ABI_TO_WIRE_ACTION = invert<WireActionName, EntryActionName>(WIRE_TO_ABI_ACTION);
const ABI_TO_WIRE_ROLE = invert<WireRoleName, PathRoleName>(WIRE_TO_ABI_ROLE);

/** The PIT action (ABI name) of a decided action (wire name). */
export function abiAction(a: WireActionName): EntryActionName {
  return WIRE_TO_ABI_ACTION[a];
}
/** The decided action (wire name) a PIT action (ABI name) carries out. */
export function wireActionOf(a: EntryActionName): WireActionName {
  return ABI_TO_WIRE_ACTION.get(a)!;
}
/** The PIT role (ABI name) of a wire role. */
export function abiRole(r: WireRoleName): PathRoleName {
  return WIRE_TO_ABI_ROLE[r];
}
/** The wire role of a PIT role (ABI name). */
export function wireRoleOf(r: PathRoleName): WireRoleName {
  return ABI_TO_WIRE_ROLE.get(r)!;
}

/** control header `status`. */
export const Status = { OK: 0, REFUSED: 1 } as const;

/** DPRP header flags. */
export const HDR_F_NONE = 0;
/** GE record flags. */
export const REC_F_IS_DEST = 0x01;       // this GE is the destination host itself
export const REC_F_PROTECTS_DEST = 0x02; // the destination is a Term/server behind this GE
export const REC_F_ALL = 0x03;
/** Action entry flags. */
export const ACT_F_TRANSIT = 0x01;       // relay between two members that encrypt to each other
/** Re-key the flow's PCCOM per-flow keys over this negotiation's id (a re-key signal), not the flow's earlier salt. */
export const ACT_F_NEW_SALT = 0x02;
export const ACT_F_ALL = 0x03;

/**
 * TLV option types: which are known, and how each value is checked, is the
 * option codec registry's (option-codecs.ts; the spec's own in spec-options.ts).
 * Types >= 0x80 may be skipped by a GE that does not know them.
 */
export { OptionType } from './spec-options.js';
export const OPTION_SKIPPABLE = OPTION_SKIPPABLE_FROM;

export const WIRE_REJECT_REASONS = [
  'too_short', 'too_long', 'not_gscip_icmp', 'bad_checksum', 'bad_version', 'unknown_msg_type',
  'code_mismatch', 'bad_length', 'reserved_nonzero', 'too_many_records', 'too_many_tags',
  'too_many_actions', 'bad_seal_count', 'bad_field', 'counts_for_type', 'bad_option', 'trailing_bytes',
] as const;
export type WireRejectReason = (typeof WIRE_REJECT_REASONS)[number];

/** The only error decode() throws. */
export class DprpWireError extends GscipError {
  constructor(
    readonly reason: WireRejectReason,
    detail: string,
    /** Set when the option registry, not the framing, refused (reason is then bad_option): what to count instead. */
    readonly refusal?: OptionRefusalReason,
  ) {
    super('GSCIP_E_DPRP_WIRE', `DPRP ${reason}: ${detail}`);
  }

  /** The label a refusal is counted with (wire_<this>). */
  get countedAs(): WireRejectReason | OptionRefusalReason {
    return this.refusal ?? this.reason;
  }
}

/**
 * Which option codecs encode/decode check values against: a registry, or null
 * for framing only (what the MACs cover, auth.ts: the bytes, whatever they mean).
 */
export type OptionPolicy = OptionCodecs | null;

/** The trigger CID: addresses dotted, ports host order. */
export interface Flow {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
}

export interface TlvOption {
  type: number;
  value: Buffer;
}

export interface GeRecord {
  addr: string;
  geType: GeTypeName;
  mode: ModeName;
  flags: number;
  /** Opaque group-membership tags: HMAC(GK, context) truncated; see auth.ts. */
  tags: Buffer[];
  options: TlvOption[];
}

export interface ActionEntry {
  addr: string;
  action: WireAction;
  role: WireRole;
  flags: number;
  /** The receiving GE's own tag naming the (group, version) used; zeros = none. */
  selector: Buffer;
  /** HMAC with that group key over the message context and this entry; zeros = none. */
  mac: Buffer;
}

export interface Seal {
  selector: Buffer;
  mac: Buffer;
}

export interface DprpMessage {
  type: MsgType;
  /** ICMP byte 4, hop-by-hop (DDE only; 0 elsewhere); not covered by any MAC. */
  candDepth?: number;
  flags: number;
  attempt: number;
  negId: Buffer;
  timestampMs: number;
  flow: Flow;
  status: number;
  startGe: string;
  endGe: string;
  records: GeRecord[];
  actions: ActionEntry[];
  seal: Seal | null;
  options: TlvOption[];
}

const ZERO16 = Buffer.alloc(16);
export function zero16(): Buffer {
  return Buffer.from(ZERO16);
}
export function isZero(b: Buffer): boolean {
  return b.equals(ZERO16.subarray(0, b.length));
}

function fail(reason: WireRejectReason, detail: string): never {
  throw new DprpWireError(reason, detail);
}

const GE_TYPE_BY_CODE = new Map<number, GeTypeName>(Object.entries(GE_TYPE_CODES).map(([k, v]) => [v, k as GeTypeName]));
const MODE_BY_CODE = new Map<number, ModeName>(Object.entries(MODE_CODES).map(([k, v]) => [v, k as ModeName]));

// ---------------------------------------------------------------- options

export function optionsLength(opts: readonly TlvOption[]): number {
  return opts.reduce((n, o) => n + 2 + o.value.length, 0);
}

/** Validates one option: framing, then its codec; a type with no codec passes only when skippable. */
function checkOption(o: TlvOption, where: string, codecs: OptionPolicy): void {
  if (!Number.isInteger(o.type) || o.type < 1 || o.type > 255) fail('bad_option', `${where}: type ${o.type}`);
  if (o.value.length > 255) fail('bad_option', `${where}: value of ${o.value.length} bytes`);
  if (!codecs) return;
  const codec = codecs.get(o.type);
  if (codec) {
    try {
      codec.decode(o.value);
    } catch (e) {
      fail('bad_option', `${where}: ${(e as Error).message}`);
    }
    return;
  }
  if (o.type < OPTION_SKIPPABLE) {
    throw new DprpWireError('bad_option', `${where}: unknown critical option type ${o.type}`, 'unknown_critical_option');
  }
}

function checkOptionSet(opts: readonly TlvOption[], where: string, codecs: OptionPolicy): void {
  const seen = new Set<number>();
  for (const o of opts) {
    checkOption(o, where, codecs);
    if (seen.has(o.type)) fail('bad_option', `${where}: duplicate option type ${o.type}`);
    seen.add(o.type);
  }
}

export function encodeOptions(opts: readonly TlvOption[]): Buffer {
  const b = Buffer.alloc(optionsLength(opts));
  let off = 0;
  for (const o of opts) {
    b[off] = o.type;
    b[off + 1] = o.value.length;
    o.value.copy(b, off + 2);
    off += 2 + o.value.length;
  }
  return b;
}

function decodeOptions(buf: Buffer, where: string, codecs: OptionPolicy): TlvOption[] {
  const out: TlvOption[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 2 > buf.length) fail('bad_option', `${where}: truncated TLV header at ${off}`);
    const type = buf[off];
    const len = buf[off + 1];
    if (off + 2 + len > buf.length) fail('bad_option', `${where}: TLV type ${type} overruns the option area`);
    out.push({ type, value: Buffer.from(buf.subarray(off + 2, off + 2 + len)) });
    off += 2 + len;
  }
  checkOptionSet(out, where, codecs);
  return out;
}

/** Mobile PPC / NAT-f address+port option value. */
export function addrPortOption(type: number, addr: string, port: number): TlvOption {
  const v = Buffer.alloc(6);
  writeIpv4(v, 0, addr, 'option address');
  v.writeUInt16BE(port, 4);
  return { type, value: v };
}

// ---------------------------------------------------------------- sizes

export function recordLength(r: GeRecord): number {
  return RECORD_FIXED_LEN + TAG_LEN * r.tags.length + optionsLength(r.options);
}

export function encodedLength(m: DprpMessage): number {
  return ICMP_HDR_LEN + DPRP_HDR_LEN + CONTROL_HDR_LEN +
    m.records.reduce((n, r) => n + recordLength(r), 0) +
    ACTION_LEN * m.actions.length + (m.seal ? SEAL_LEN : 0) + optionsLength(m.options);
}

/** Which element lists each message type may carry: [records min,max], [actions min,max]. */
const SHAPE: Record<number, { rec: [number, number]; act: [number, number] }> = {
  // DDE: the start's record; a second only from a GNAT relaying the DDE inward to a private GE (NAT-f, NATF_LIP).
  [MsgType.DDE]: { rec: [1, 2], act: [0, 0] },
  [MsgType.RGI]: { rec: [1, MAX_RECORDS], act: [0, 0] },
  [MsgType.MPIT]: { rec: [0, 0], act: [1, MAX_ACTIONS] },
  [MsgType.CDN]: { rec: [0, 0], act: [0, 0] },
};

function checkShape(type: number, nRec: number, nAct: number): void {
  const s = SHAPE[type];
  if (nRec < s.rec[0] || nRec > s.rec[1] || nAct < s.act[0] || nAct > s.act[1]) {
    fail('counts_for_type', `${MSG_TYPE_NAMES[type]} with ${nRec} records and ${nAct} actions`);
  }
}

// ---------------------------------------------------------------- encode

/** writeIpv4 for encode(): a malformed address is a DprpWireError (bad_field), as every encode refusal is. */
function putAddr(b: Buffer, off: number, addr: string, field: string): void {
  try { writeIpv4(b, off, addr, field); } catch (e) {
    if (e instanceof Ipv4AddressError) fail('bad_field', e.message);
    throw e;
  }
}

function isPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 0xffff;
}

function writeFlow(b: Buffer, off: number, f: Flow): void {
  if (!isPort(f.sport) || !isPort(f.dport)) fail('bad_field', `flow ports ${f.sport} -> ${f.dport}`);
  if (f.proto !== 6 && f.proto !== 17) fail('bad_field', `flow proto ${f.proto}`);
  putAddr(b, off, f.saddr, 'flow.saddr');
  putAddr(b, off + 4, f.daddr, 'flow.daddr');
  b.writeUInt16BE(f.sport, off + 8);
  b.writeUInt16BE(f.dport, off + 10);
  b[off + 12] = f.proto;
}

/** The 13 wire bytes of a CID (used by auth contexts too). */
export function flowBytes(f: Flow): Buffer {
  const b = Buffer.alloc(13);
  writeFlow(b, 0, f);
  return b;
}

export function encodeRecord(r: GeRecord, codecs: OptionPolicy = SPEC_OPTIONS): Buffer {
  if (r.tags.length > MAX_TAGS) fail('too_many_tags', `record ${r.addr}: ${r.tags.length} tags`);
  if ((r.flags & ~REC_F_ALL) !== 0) fail('bad_field', `record ${r.addr}: flags ${r.flags}`);
  checkOptionSet(r.options, `record ${r.addr} options`, codecs);
  const b = Buffer.alloc(recordLength(r));
  putAddr(b, 0, r.addr, 'record.addr');
  const t = GE_TYPE_CODES[r.geType];
  const m = MODE_CODES[r.mode];
  if (t === undefined) fail('bad_field', `record ${r.addr}: geType ${r.geType}`);
  if (m === undefined) fail('bad_field', `record ${r.addr}: mode ${r.mode}`);
  b[4] = t;
  b[5] = m;
  b[6] = r.flags;
  b[7] = r.tags.length;
  b.writeUInt16BE(optionsLength(r.options), 8);
  let off = RECORD_FIXED_LEN;
  for (const tag of r.tags) {
    if (tag.length !== TAG_LEN) fail('bad_field', `record ${r.addr}: tag of ${tag.length} bytes`);
    tag.copy(b, off);
    off += TAG_LEN;
  }
  encodeOptions(r.options).copy(b, off);
  return b;
}

/** The action entry without its MAC (what the MAC covers) or with it. */
export function encodeAction(a: ActionEntry, withMac = true): Buffer {
  const b = Buffer.alloc(ACTION_LEN);
  putAddr(b, 0, a.addr, 'action.addr');
  if (!Object.values(WireAction).includes(a.action)) fail('bad_field', `action ${a.addr}: action ${a.action}`);
  if (!Object.values(WireRole).includes(a.role)) fail('bad_field', `action ${a.addr}: role ${a.role}`);
  if ((a.flags & ~ACT_F_ALL) !== 0) fail('bad_field', `action ${a.addr}: flags ${a.flags}`);
  if (a.selector.length !== 16 || a.mac.length !== 16) fail('bad_field', `action ${a.addr}: selector/mac must be 16 bytes`);
  b[4] = a.action;
  b[5] = a.role;
  b[6] = a.flags;
  a.selector.copy(b, 8);
  if (withMac) a.mac.copy(b, 24);
  return b;
}

/** Encodes the ICMP message (checksum filled in). Throws DprpWireError for an invalid message. */
export function encode(m: DprpMessage, codecs: OptionCodecs = SPEC_OPTIONS): Buffer {
  if (!(m.type in MSG_TYPE_NAMES)) fail('unknown_msg_type', `type ${m.type}`);
  if (m.negId.length !== NEG_ID_LEN) fail('bad_field', `negId must be ${NEG_ID_LEN} bytes`);
  if (!Number.isInteger(m.attempt) || m.attempt < 0 || m.attempt > 255) fail('bad_field', `attempt ${m.attempt}`);
  if (!Number.isSafeInteger(m.timestampMs) || m.timestampMs < 0) fail('bad_field', `timestampMs ${m.timestampMs}`);
  if (m.flags !== HDR_F_NONE) fail('bad_field', `header flags ${m.flags}`);
  if (m.status !== Status.OK && m.status !== Status.REFUSED) fail('bad_field', `status ${m.status}`);
  if (m.records.length > MAX_RECORDS) fail('too_many_records', `${m.records.length} records`);
  if (m.actions.length > MAX_ACTIONS) fail('too_many_actions', `${m.actions.length} actions`);
  checkShape(m.type, m.records.length, m.actions.length);
  checkOptionSet(m.options, 'message options', codecs);
  const optLen = optionsLength(m.options);
  if (optLen > MAX_OPTION_BYTES) fail('bad_option', `option area of ${optLen} bytes`);
  const total = encodedLength(m);
  if (total > MAX_MESSAGE_BYTES) fail('too_long', `${total} bytes`);

  const b = Buffer.alloc(total);
  b[0] = GSCIP_ICMP_TYPE;
  b[1] = m.type;
  const depth = m.candDepth ?? 0;
  if (!Number.isInteger(depth) || depth < 0 || depth > MAX_CAND_DEPTH || (depth !== 0 && m.type !== MsgType.DDE)) fail('bad_field', `candDepth ${depth}`);
  b[4] = depth;
  let off = ICMP_HDR_LEN;
  b[off] = DPRP_VERSION;
  b[off + 1] = m.type;
  b[off + 2] = m.flags;
  b[off + 3] = m.attempt;
  m.negId.copy(b, off + 4);
  b.writeBigUInt64BE(BigInt(m.timestampMs), off + 12);
  b.writeUInt16BE(total - ICMP_HDR_LEN - DPRP_HDR_LEN, off + 20);
  off += DPRP_HDR_LEN;
  writeFlow(b, off, m.flow);
  b[off + 13] = m.status;
  b[off + 14] = m.records.length;
  b[off + 15] = m.actions.length;
  putAddr(b, off + 16, m.startGe, 'startGe');
  putAddr(b, off + 20, m.endGe, 'endGe');
  b[off + 24] = m.seal ? 1 : 0;
  b.writeUInt16BE(optLen, off + 26);
  off += CONTROL_HDR_LEN;
  for (const r of m.records) {
    const rb = encodeRecord(r, codecs);
    rb.copy(b, off);
    off += rb.length;
  }
  for (const a of m.actions) {
    encodeAction(a).copy(b, off);
    off += ACTION_LEN;
  }
  if (m.seal) {
    if (m.seal.selector.length !== 16 || m.seal.mac.length !== 16) fail('bad_field', 'seal selector/mac must be 16 bytes');
    m.seal.selector.copy(b, off);
    m.seal.mac.copy(b, off + 16);
    off += SEAL_LEN;
  }
  encodeOptions(m.options).copy(b, off);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

// ---------------------------------------------------------------- decode

/** Decodes one ICMP message, options checked against `codecs`. Throws only DprpWireError. */
export function decode(icmp: Buffer, codecs: OptionCodecs = SPEC_OPTIONS): DprpMessage {
  try {
    return decodeUnchecked(icmp, codecs);
  } catch (e) {
    if (e instanceof DprpWireError) throw e;
    // A bug here must still not take the agent down: report it as malformed.
    throw new DprpWireError('bad_field', `internal decode error: ${(e as Error).message}`);
  }
}

function decodeUnchecked(b: Buffer, codecs: OptionCodecs): DprpMessage {
  const min = ICMP_HDR_LEN + DPRP_HDR_LEN + CONTROL_HDR_LEN;
  if (b.length < min) fail('too_short', `${b.length} bytes < ${min}`);
  if (b.length > MAX_MESSAGE_BYTES) fail('too_long', `${b.length} bytes`);
  if (b[0] !== GSCIP_ICMP_TYPE) fail('not_gscip_icmp', `ICMP type ${b[0]}`);
  if (inetChecksum(b) !== 0) fail('bad_checksum', 'ICMP checksum');
  if (b[5] !== 0 || b[6] !== 0 || b[7] !== 0) fail('reserved_nonzero', 'ICMP rest-of-header');
  const candDepth = b[4];
  if (candDepth > MAX_CAND_DEPTH || (candDepth !== 0 && b[1] !== MsgType.DDE)) fail('bad_field', `candDepth ${candDepth}`);
  let off = ICMP_HDR_LEN;
  if (b[off] !== DPRP_VERSION) fail('bad_version', `version ${b[off]}`);
  const type = b[off + 1];
  if (!(type in MSG_TYPE_NAMES)) fail('unknown_msg_type', `type ${type}`);
  if (b[1] !== type) fail('code_mismatch', `ICMP code ${b[1]} vs DPRP type ${type}`);
  const flags = b[off + 2];
  if (flags !== HDR_F_NONE) fail('bad_field', `header flags ${flags}`);
  const attempt = b[off + 3];
  const negId = Buffer.from(b.subarray(off + 4, off + 12));
  const ts = b.readBigUInt64BE(off + 12);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) fail('bad_field', 'timestamp out of range');
  const bodyLen = b.readUInt16BE(off + 20);
  if (b.readUInt16BE(off + 22) !== 0) fail('reserved_nonzero', 'DPRP header reserved');
  if (bodyLen !== b.length - ICMP_HDR_LEN - DPRP_HDR_LEN) fail('bad_length', `bodyLen ${bodyLen} vs ${b.length - ICMP_HDR_LEN - DPRP_HDR_LEN}`);
  off += DPRP_HDR_LEN;

  const flow: Flow = {
    saddr: readIpv4(b, off), daddr: readIpv4(b, off + 4),
    sport: b.readUInt16BE(off + 8), dport: b.readUInt16BE(off + 10), proto: b[off + 12],
  };
  if (flow.proto !== 6 && flow.proto !== 17) fail('bad_field', `flow proto ${flow.proto}`);
  const status = b[off + 13];
  if (status !== Status.OK && status !== Status.REFUSED) fail('bad_field', `status ${status}`);
  const nRec = b[off + 14];
  const nAct = b[off + 15];
  const startGe = readIpv4(b, off + 16);
  const endGe = readIpv4(b, off + 20);
  const nSeal = b[off + 24];
  if (b[off + 25] !== 0) fail('reserved_nonzero', 'control header reserved');
  const optLen = b.readUInt16BE(off + 26);
  if (nRec > MAX_RECORDS) fail('too_many_records', `${nRec} records`);
  if (nAct > MAX_ACTIONS) fail('too_many_actions', `${nAct} actions`);
  if (nSeal > 1) fail('bad_seal_count', `${nSeal} seals`);
  if (optLen > MAX_OPTION_BYTES) fail('bad_option', `option area of ${optLen} bytes`);
  checkShape(type, nRec, nAct);
  off += CONTROL_HDR_LEN;

  const need = (n: number, what: string) => {
    if (off + n > b.length) fail('bad_length', `${what} overruns the message at ${off}`);
  };
  const records: GeRecord[] = [];
  for (let i = 0; i < nRec; i++) {
    need(RECORD_FIXED_LEN, `record ${i}`);
    const addr = readIpv4(b, off);
    const geType = GE_TYPE_BY_CODE.get(b[off + 4]);
    const mode = MODE_BY_CODE.get(b[off + 5]);
    const rflags = b[off + 6];
    const nTags = b[off + 7];
    const rOptLen = b.readUInt16BE(off + 8);
    if (!geType) fail('bad_field', `record ${i}: GE type ${b[off + 4]}`);
    if (!mode) fail('bad_field', `record ${i}: mode ${b[off + 5]}`);
    if ((rflags & ~REC_F_ALL) !== 0) fail('bad_field', `record ${i}: flags ${rflags}`);
    if (nTags > MAX_TAGS) fail('too_many_tags', `record ${i}: ${nTags} tags`);
    if (rOptLen > MAX_OPTION_BYTES) fail('bad_option', `record ${i}: option area of ${rOptLen} bytes`);
    if (b.readUInt16BE(off + 10) !== 0) fail('reserved_nonzero', `record ${i} reserved`);
    off += RECORD_FIXED_LEN;
    need(TAG_LEN * nTags + rOptLen, `record ${i} tags/options`);
    const tags: Buffer[] = [];
    for (let t = 0; t < nTags; t++) {
      tags.push(Buffer.from(b.subarray(off, off + TAG_LEN)));
      off += TAG_LEN;
    }
    const options = decodeOptions(b.subarray(off, off + rOptLen), `record ${i} options`, codecs);
    off += rOptLen;
    records.push({ addr, geType, mode, flags: rflags, tags, options });
  }
  const actions: ActionEntry[] = [];
  for (let i = 0; i < nAct; i++) {
    need(ACTION_LEN, `action ${i}`);
    const action = b[off + 4];
    const role = b[off + 5];
    const aflags = b[off + 6];
    if (action < WireAction.PASS || action > WireAction.DECRYPT) fail('bad_field', `action ${i}: action ${action}`);
    if (role < WireRole.START || role > WireRole.END) fail('bad_field', `action ${i}: role ${role}`);
    if ((aflags & ~ACT_F_ALL) !== 0) fail('bad_field', `action ${i}: flags ${aflags}`);
    if (b[off + 7] !== 0) fail('reserved_nonzero', `action ${i} reserved`);
    actions.push({
      addr: readIpv4(b, off), action: action as WireAction, role: role as WireRole, flags: aflags,
      selector: Buffer.from(b.subarray(off + 8, off + 24)), mac: Buffer.from(b.subarray(off + 24, off + 40)),
    });
    off += ACTION_LEN;
  }
  let seal: Seal | null = null;
  if (nSeal === 1) {
    need(SEAL_LEN, 'seal');
    seal = { selector: Buffer.from(b.subarray(off, off + 16)), mac: Buffer.from(b.subarray(off + 16, off + 32)) };
    off += SEAL_LEN;
  }
  need(optLen, 'options');
  const options = decodeOptions(b.subarray(off, off + optLen), 'message options', codecs);
  off += optLen;
  if (off !== b.length) fail('trailing_bytes', `${b.length - off} bytes after the option area`);
  return { type: type as MsgType, candDepth, flags, attempt, negId, timestampMs: Number(ts), flow, status, startGe, endGe, records, actions, seal, options };
}

/** A copy of an encoded DDE with the hop-by-hop candidate depth set (checksum fixed). */
export function withCandDepth(icmp: Buffer, depth: number): Buffer {
  if (depth < 0 || depth > MAX_CAND_DEPTH) fail('bad_field', `candDepth ${depth}`);
  const b = Buffer.from(icmp);
  b[4] = depth;
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}
