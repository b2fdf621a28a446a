/**
 * DPRP authentication with group keys (docs/dprp.md "Authentication").
 *
 * - Every group key version (g, v) yields a DPRP authentication key
 *   A(g,v) = HMAC-SHA256(GK(g,v), "GSCIP-DPRP-auth/1"), so DPRP MACs and PCCOM
 *   encryption never use the same key.
 * - A GE record carries one TAG per key version it holds:
 *   HMAC(A, ctx || SHA-256(records before it) || record without tags)[:16].
 *   Only a holder of the same key can recompute it, so only members can claim a
 *   group, and non-members see fresh random-looking bytes each negotiation
 *   (groups stay opaque, flows are unlinkable).
 * - An MPIT action entry carries a SELECTOR (HMAC(A, "sel" || negId || addr)[:16],
 *   which lets its addressee find (g, v) without learning anything else) and a
 *   MAC over ctx and the whole decision (every entry without its MAC).
 * - A CDN carries a seal (selector + MAC over ctx) from the end GE.
 * ctx binds message type, attempt, negotiation id, timestamp, trigger CID,
 * status, start/end GE and the message options.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Stage, stageProfile } from './stage-profile.js';
import {
  encodeAction, encodeOptions, encodeRecord, flowBytes, type ActionEntry, type DprpMessage, type GeRecord,
} from './wire.js';
import { writeIpv4 } from './ipv4.js';

export interface GroupKey {
  group: number;
  version: number;
  /** 32 bytes. Never log. */
  key: Buffer;
}

/** Where the node reads the group keys it currently holds (GMS KeySink fills it). */
export interface KeyRing {
  all(): readonly GroupKey[];
}

/** An in-memory KeyRing (tests, and the agent's mirror of the key map). */
export class StaticKeyRing implements KeyRing {
  private keys: GroupKey[];
  constructor(keys: readonly GroupKey[] = []) {
    this.keys = [...keys];
  }
  all(): readonly GroupKey[] {
    return this.keys;
  }
  set(keys: readonly GroupKey[]): void {
    this.keys = [...keys];
  }
  add(k: GroupKey): void {
    this.keys = this.keys.filter((x) => !(x.group === k.group && x.version === k.version)).concat([k]);
  }
  remove(group: number, version: number): void {
    this.keys = this.keys.filter((x) => !(x.group === group && x.version === version));
  }
}

const AUTH_LABEL = Buffer.from('GSCIP-DPRP-auth/1');
const CTX_LABEL = Buffer.from('GSCIP-DPRP/1');
const SEL_LABEL = Buffer.from('sel');
const KIND = { record: 1, action: 2, seal: 3 } as const;
export const MAC_LEN = 16;

const derived = new WeakMap<Buffer, Buffer>();
/** A(g,v): the DPRP authentication key of a group key (cached per key buffer). */
export function authKey(k: GroupKey): Buffer {
  let a = derived.get(k.key);
  if (!a) {
    a = createHmac('sha256', k.key).update(AUTH_LABEL).digest();
    derived.set(k.key, a);
  }
  return a;
}

function mac16(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, MAC_LEN);
}

/** Constant-time equality of two 16-byte values. */
export function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The context every tag/MAC of message `m` covers. Relays must not change any of it. */
export function context(m: DprpMessage, kind: keyof typeof KIND): Buffer {
  const fixed = Buffer.alloc(1 + 1 + 1 + 8 + 8 + 13 + 1 + 4 + 4 + 2);
  let o = 0;
  fixed[o++] = KIND[kind];
  fixed[o++] = m.type;
  fixed[o++] = m.attempt;
  m.negId.copy(fixed, o); o += 8;
  fixed.writeBigUInt64BE(BigInt(m.timestampMs), o); o += 8;
  flowBytes(m.flow).copy(fixed, o); o += 13;
  fixed[o++] = m.status;
  writeIpv4(fixed, o, m.startGe, 'startGe'); o += 4;
  writeIpv4(fixed, o, m.endGe, 'endGe'); o += 4;
  const opts = encodeOptions(m.options);
  fixed.writeUInt16BE(opts.length, o);
  return Buffer.concat([CTX_LABEL, fixed, opts]);
}

/** Framing only (no codec check): the MAC covers a record's bytes, options included, whatever they mean. */
function recordWithoutTags(r: GeRecord): Buffer {
  return encodeRecord({ ...r, tags: [] }, null);
}

/** SHA-256 over the encoded records that precede index `i` (chains the RGI). */
const NO_RECORDS_HASH = createHash('sha256').digest();

export function precedingRecordsHash(records: readonly GeRecord[], i: number): Buffer {
  if (i === 0) return NO_RECORDS_HASH;
  const h = createHash('sha256');
  for (let k = 0; k < i; k++) h.update(encodeRecord(records[k], null));
  return h.digest();
}

/** What a record tag covers, apart from the key (computed once per record, not per key). */
function recordInput(m: DprpMessage, i: number, rec: GeRecord): Buffer {
  return Buffer.concat([context(m, 'record'), precedingRecordsHash(m.records, i), recordWithoutTags(rec)]);
}

/** Tag of `rec` for key `k`, placed at index `i` of `m.records` (records before it as in m). */
export function recordTag(k: GroupKey, m: DprpMessage, i: number, rec: GeRecord): Buffer {
  return mac16(authKey(k), recordInput(m, i, rec));
}

/** The record a GE appends: its info, and one tag per key version it holds. */
export function signRecord(keys: readonly GroupKey[], m: DprpMessage, rec: Omit<GeRecord, 'tags'>): GeRecord {
  if (!stageProfile.on) return signRecordNow(keys, m, rec);
  const t0 = stageProfile.now();
  try { return signRecordNow(keys, m, rec); } finally { stageProfile.sub(Stage.auth, t0); }
}
function signRecordNow(keys: readonly GroupKey[], m: DprpMessage, rec: Omit<GeRecord, 'tags'>): GeRecord {
  const base: GeRecord = { ...rec, tags: [] };
  const input = recordInput(m, m.records.length, base);
  // Sorted so the tag order reveals nothing about which group is which.
  const tags = keys.map((k) => mac16(authKey(k), input)).sort(Buffer.compare);
  return { ...base, tags };
}

/** Which of `keys` the record at index i of m proves membership for. */
export function verifyRecord(keys: readonly GroupKey[], m: DprpMessage, i: number): GroupKey[] {
  if (!stageProfile.on) return verifyRecordNow(keys, m, i);
  const t0 = stageProfile.now();
  try { return verifyRecordNow(keys, m, i); } finally { stageProfile.sub(Stage.auth, t0); }
}
function verifyRecordNow(keys: readonly GroupKey[], m: DprpMessage, i: number): GroupKey[] {
  const rec = m.records[i];
  if (rec.tags.length === 0) return [];
  const input = recordInput(m, i, rec);
  const out: GroupKey[] = [];
  for (const k of keys) {
    const want = mac16(authKey(k), input);
    if (rec.tags.some((t) => same(t, want))) out.push(k);
  }
  return out;
}

/** Selector naming key k to GE `addr` within negotiation `negId`. */
export function selector(k: GroupKey, negId: Buffer, addr: string): Buffer {
  const a = Buffer.alloc(4);
  writeIpv4(a, 0, addr, 'selector addr');
  return mac16(authKey(k), SEL_LABEL, negId, a);
}

/** The key among `keys` that `sel` names for GE `addr`, or null. */
export function findSelected(keys: readonly GroupKey[], negId: Buffer, addr: string, sel: Buffer): GroupKey | null {
  if (!stageProfile.on) return findSelectedNow(keys, negId, addr, sel);
  const t0 = stageProfile.now();
  try { return findSelectedNow(keys, negId, addr, sel); } finally { stageProfile.sub(Stage.auth, t0); }
}
function findSelectedNow(keys: readonly GroupKey[], negId: Buffer, addr: string, sel: Buffer): GroupKey | null {
  for (const k of keys) if (same(selector(k, negId, addr), sel)) return k;
  return null;
}

function decisionBytes(actions: readonly ActionEntry[]): Buffer {
  return Buffer.concat(actions.map((a) => encodeAction(a, false)));
}

export function actionMac(k: GroupKey, m: DprpMessage, a: ActionEntry): Buffer {
  return mac16(authKey(k), context(m, 'action'), decisionBytes(m.actions), encodeAction(a, false));
}

/** Fills selector+MAC of every action whose addressee shares key `keyFor(addr)`; others stay zero. */
export function signActions(m: DprpMessage, keyFor: (addr: string) => GroupKey | null): void {
  if (!stageProfile.on) return signActionsNow(m, keyFor);
  const t0 = stageProfile.now();
  try { return signActionsNow(m, keyFor); } finally { stageProfile.sub(Stage.auth, t0); }
}
function signActionsNow(m: DprpMessage, keyFor: (addr: string) => GroupKey | null): void {
  for (const a of m.actions) {
    const k = keyFor(a.addr);
    a.selector = k ? selector(k, m.negId, a.addr) : Buffer.alloc(16);
    a.mac = Buffer.alloc(16);
  }
  for (const a of m.actions) {
    const k = keyFor(a.addr);
    if (k) a.mac = actionMac(k, m, a);
  }
}

/** Verifies the action entry `a` of `m` with `k`. */
export function verifyAction(k: GroupKey, m: DprpMessage, a: ActionEntry): boolean {
  if (!stageProfile.on) return verifyActionNow(k, m, a);
  const t0 = stageProfile.now();
  try { return verifyActionNow(k, m, a); } finally { stageProfile.sub(Stage.auth, t0); }
}
function verifyActionNow(k: GroupKey, m: DprpMessage, a: ActionEntry): boolean {
  return same(actionMac(k, m, a), a.mac);
}

export function sealMac(k: GroupKey, m: DprpMessage): Buffer {
  if (!stageProfile.on) return sealMacNow(k, m);
  const t0 = stageProfile.now();
  try { return sealMacNow(k, m); } finally { stageProfile.sub(Stage.auth, t0); }
}
function sealMacNow(k: GroupKey, m: DprpMessage): Buffer {
  return mac16(authKey(k), context(m, 'seal'));
}
