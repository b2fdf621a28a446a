/**
 * fast-check arbitraries for DPRP: structured messages of every type (valid by
 * construction, so they must round-trip), options (the spec's codecs and
 * unknown skippable types), authenticated messages (tags, action MACs, seal
 * made with real group keys), header-shaped random bytes and byte-level
 * mutations of encoded messages. Shared by test/unit/dprp-property.test.ts
 * (short, fixed seed) and bench/fuzz.ts (>= 1,000,000 inputs).
 */
import * as fc from 'fast-check';
import { createHash } from 'node:crypto';
import { sealMac, selector, signActions, signRecord, type GroupKey } from '../../controlplane/dprp/auth.js';
import { inetChecksum } from '../../controlplane/dprp/ipv4.js';
import { OptionType, SPEC_OPTION_CODECS } from '../../controlplane/dprp/spec-options.js';
import {
  DPRP_HDR_LEN, DPRP_VERSION, GE_TYPE_CODES, GSCIP_ICMP_TYPE, ICMP_HDR_LEN, MAX_ACTIONS, MAX_CAND_DEPTH, MAX_MESSAGE_BYTES,
  MODE_CODES, MsgType, OPTION_SKIPPABLE, encodedLength, type ActionEntry, type DprpMessage, type Flow, type GeRecord,
  type GeTypeName, type ModeName, type TlvOption,
} from '../../controlplane/dprp/wire.js';

const buf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));

/** Addresses the Fig. 6 simulation knows, and the special ones a reflector would love. */
export const KNOWN_ADDRS = [
  '192.0.2.11', '192.0.2.12', '192.0.2.13', '192.0.2.1', '198.51.100.10', '192.0.2.20', '203.0.113.10', '198.18.0.1',
  '0.0.0.0', '255.255.255.255', '224.0.0.1', '127.0.0.1',
];

export const ipv4 = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_ADDRS) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.')) },
);

export const flowArb: fc.Arbitrary<Flow> = fc.record({
  saddr: ipv4, daddr: ipv4, sport: fc.nat(65535), dport: fc.nat(65535), proto: fc.constantFrom(6, 17),
}, { noNullPrototype: true });

const hostname = fc.stringMatching(/^[A-Za-z0-9.-]{1,40}$/);

/** The option types the spec's codecs check (an "unknown" option is none of them). */
const SPEC_TYPES = new Set(SPEC_OPTION_CODECS.map((c) => c.type));

/** One option of a type the spec codecs check, or an unknown skippable one (kept raw). */
export const optionArb: fc.Arbitrary<TlvOption> = fc.oneof(
  fc.tuple(fc.constantFrom(OptionType.MOBILE_OLD, OptionType.MOBILE_NEW), buf(6)).map(([type, value]) => ({ type, value })),
  hostname.map((s) => ({ type: OptionType.NATF_NAME, value: Buffer.from(s, 'latin1') })),
  buf(4).map((value) => ({ type: OptionType.NATF_LIP, value })),
  buf(2).map((value) => ({ type: OptionType.NATF_PORT, value })),
  buf(1).map((value) => ({ type: OptionType.PCCOM_CAPS, value })),
  buf(4).map((value) => ({ type: OptionType.NAT_SEEN, value })),
  buf(1).map((value) => ({ type: OptionType.WHY, value })),
  buf(4).map((value) => ({ type: OptionType.FIRST, value })),
  buf(4).map((value) => ({ type: OptionType.PROTECTED, value })),
  // skippable types no codec knows (PCCOM_CAPS, NAT_SEEN, WHY and FIRST have one)
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: OPTION_SKIPPABLE, max: 255 }).filter((t) => !SPEC_TYPES.has(t)), bytes(40)).map(([type, value]) => ({ type, value })) },
);

export const optionsArb = fc.uniqueArray(optionArb, { selector: (o) => o.type, maxLength: 4 });

const geType = fc.constantFrom(...(Object.keys(GE_TYPE_CODES) as GeTypeName[]));
const mode = fc.constantFrom(...(Object.keys(MODE_CODES) as ModeName[]));

export const recordArb: fc.Arbitrary<GeRecord> = fc.record({
  addr: ipv4, geType, mode, flags: fc.nat(3), tags: fc.array(buf(16), { maxLength: 4 }), options: optionsArb,
}, { noNullPrototype: true });

export const actionArb: fc.Arbitrary<ActionEntry> = fc.record({
  addr: ipv4,
  action: fc.integer({ min: 1, max: 4 }) as fc.Arbitrary<ActionEntry['action']>,
  role: fc.integer({ min: 1, max: 3 }) as fc.Arbitrary<ActionEntry['role']>,
  flags: fc.nat(1), selector: buf(16), mac: buf(16),
}, { noNullPrototype: true });

const header = fc.record({
  attempt: fc.nat(255),
  negId: buf(8),
  timestampMs: fc.oneof(fc.maxSafeNat(), fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 })),
  flow: flowArb,
  status: fc.constantFrom(0, 1),
  startGe: ipv4,
  endGe: ipv4,
  options: optionsArb,
}, { noNullPrototype: true });

type Header = typeof header extends fc.Arbitrary<infer H> ? H : never;
function msg(type: MsgType, h: Header, rest: Partial<DprpMessage>): DprpMessage {
  return { type, flags: 0, candDepth: 0, records: [], actions: [], seal: null, ...h, ...rest };
}

/** A valid message of any of the four types: what encode() must accept and decode() must give back. */
export const messageArb: fc.Arbitrary<DprpMessage> = fc.oneof(
  fc.tuple(header, recordArb, fc.nat(MAX_CAND_DEPTH)).map(([h, r, d]) => msg(MsgType.DDE, h, { records: [r], candDepth: d })),
  fc.tuple(header, fc.array(recordArb, { minLength: 1, maxLength: 8 })).map(([h, records]) => msg(MsgType.RGI, h, { records })),
  fc.tuple(header, fc.array(actionArb, { minLength: 1, maxLength: MAX_ACTIONS })).map(([h, actions]) => msg(MsgType.MPIT, h, { actions })),
  fc.tuple(header, fc.option(fc.record({ selector: buf(16), mac: buf(16) }, { noNullPrototype: true }), { nil: null })).map(([h, seal]) => msg(MsgType.CDN, h, { seal })),
).filter((m) => encodedLength(m) <= MAX_MESSAGE_BYTES);

/**
 * A message with fields outside what the wire allows (header flags, status,
 * proto, ports, attempt, malformed addresses): encode() must either refuse it
 * with a DprpWireError or produce bytes that decode back to it.
 */
export const looseMessageArb: fc.Arbitrary<DprpMessage> = fc.tuple(
  messageArb,
  fc.record({
    flags: fc.nat(255), status: fc.nat(255), proto: fc.nat(255),
    sport: fc.integer({ min: -1, max: 70_000 }), attempt: fc.integer({ min: -1, max: 300 }),
    startGe: fc.oneof(ipv4, fc.constantFrom('256.1.1.1', '1.2.3', 'x', '')),
  }, { requiredKeys: [] }),
).map(([m, o]) => ({
  ...m, flags: o.flags ?? m.flags, status: o.status ?? m.status, attempt: o.attempt ?? m.attempt, startGe: o.startGe ?? m.startGe,
  flow: { ...m.flow, proto: o.proto ?? m.flow.proto, sport: o.sport ?? m.flow.sport },
}));

// ---------------------------------------------------------------- bytes

export function fixChecksum(b: Buffer): Buffer {
  if (b.length >= 4) {
    b.writeUInt16BE(0, 2);
    b.writeUInt16BE(inetChecksum(b), 2);
  }
  return b;
}

/**
 * Random bytes: some raw, most header-shaped (type 253, version 1, right body
 * length, checksum fixed or not, and half the time a control header whose
 * proto, status, counts and reserved bytes are sane) so they reach the body parser.
 */
export const bytesArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: MAX_MESSAGE_BYTES + 20, size: 'max' }).map((u) => Buffer.from(u)),
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.integer({ min: 1, max: 4 }), fc.nat(MAX_CAND_DEPTH), buf(9),
      fc.uint8Array({ minLength: 28, maxLength: 600, size: 'max' }).map((u) => Buffer.from(u)),
      fc.boolean(), fc.boolean(), fc.nat(3), fc.nat(3),
    ).map(([type, depth, hdr, body, fix, sane, nRec, nAct]) => {
      const b = Buffer.alloc(ICMP_HDR_LEN + DPRP_HDR_LEN + body.length);
      b[0] = GSCIP_ICMP_TYPE;
      b[1] = type;
      b[4] = type === MsgType.DDE ? depth : 0;
      b[ICMP_HDR_LEN] = DPRP_VERSION;
      b[ICMP_HDR_LEN + 1] = type;
      hdr.copy(b, ICMP_HDR_LEN + 3); // attempt + negId
      b.writeUInt16BE(body.length, ICMP_HDR_LEN + 20);
      if (sane) {
        body[12] = 6;
        body[13] = 0;
        body[14] = type === MsgType.DDE ? 1 : type === MsgType.RGI ? 1 + nRec : 0;
        body[15] = type === MsgType.MPIT ? 1 + nAct : 0;
        body[24] = type === MsgType.CDN ? nRec & 1 : 0;
        body[25] = 0;
        body.writeUInt16BE(nAct === 3 ? 0 : nAct * 8, 26);
      }
      body.copy(b, ICMP_HDR_LEN + DPRP_HDR_LEN);
      return fix ? fixChecksum(b) : b;
    }),
  },
);

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'u16'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; data: Buffer }
  | { op: 'delete'; at: number; n: number };

const at = fc.nat(MAX_MESSAGE_BYTES);
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at, bit: fc.nat(7) }, { noNullPrototype: true }),
  fc.record({ op: fc.constant('set' as const), at, value: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 16, 17, 0x7f, 0x80, 0xff), fc.nat(255)) }, { noNullPrototype: true }),
  fc.record({ op: fc.constant('u16' as const), at, value: fc.oneof(fc.constantFrom(0, 1, 255, 256, 0xffff), fc.nat(0xffff)) }, { noNullPrototype: true }),
  fc.record({ op: fc.constant('truncate' as const), at }, { noNullPrototype: true }),
  fc.record({ op: fc.constant('insert' as const), at, data: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((u) => Buffer.from(u)) }, { noNullPrototype: true }),
  fc.record({ op: fc.constant('delete' as const), at, n: fc.integer({ min: 1, max: 40 }) }, { noNullPrototype: true }),
);

/**
 * Applies `ops` to a copy of `src`; then `fix` repairs what the first checks
 * would refuse, so the mutation reaches the body parser: true or 'checksum'
 * the ICMP checksum, 'length' the DPRP body length as well.
 */
export type Fixup = boolean | 'checksum' | 'length';
export const fixupArb: fc.Arbitrary<Fixup> = fc.constantFrom<Fixup>(false, 'checksum', 'length');

export function applyMutations(src: Buffer, ops: readonly Mutation[], fix: Fixup): Buffer {
  let b = Buffer.from(src);
  for (const m of ops) {
    const i = b.length === 0 ? 0 : m.at % b.length;
    switch (m.op) {
      case 'flip': if (b.length) b[i] ^= 1 << m.bit; break;
      case 'set': if (b.length) b[i] = m.value; break;
      case 'u16': if (b.length >= 2) b.writeUInt16BE(m.value, Math.min(i, b.length - 2)); break;
      case 'truncate': b = b.subarray(0, i); break;
      case 'insert': b = Buffer.concat([b.subarray(0, i), m.data, b.subarray(i)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, i), b.subarray(i + m.n)]); break;
    }
  }
  b = Buffer.from(b);
  if (fix === 'length' && b.length >= ICMP_HDR_LEN + DPRP_HDR_LEN) b.writeUInt16BE((b.length - ICMP_HDR_LEN - DPRP_HDR_LEN) & 0xffff, ICMP_HDR_LEN + 20);
  return fix ? fixChecksum(b) : b;
}

// ---------------------------------------------------------------- authenticated messages

/** Deterministic group keys (the same derivation as test/unit/dprp-sim.ts testKey). */
export function groupKey(group: number, version = 1): GroupKey {
  return { group, version, key: createHash('sha256').update(`gk-${group}-${version}`).digest() };
}
export const AUTH_KEYS: readonly GroupKey[] = [groupKey(1), groupKey(2), groupKey(3, 2)];
const keyIdx = fc.nat(AUTH_KEYS.length - 1);
const keySubset = fc.uniqueArray(keyIdx, { minLength: 1, maxLength: AUTH_KEYS.length }).map((ix) => ix.map((i) => AUTH_KEYS[i]));

/**
 * A message whose every element is authenticated with AUTH_KEYS: DDE/RGI
 * records tagged (each with a non-empty subset), every MPIT action signed, the
 * CDN sealed. The receiver holds all of AUTH_KEYS.
 */
export const authenticatedArb: fc.Arbitrary<DprpMessage> = fc.oneof(
  fc.tuple(header, fc.array(fc.tuple(recordArb, keySubset), { minLength: 1, maxLength: 6 }), fc.boolean()).map(([h, recs, isDde]) => {
    const m = msg(isDde ? MsgType.DDE : MsgType.RGI, h, {});
    for (const [r, ks] of isDde ? recs.slice(0, 1) : recs) m.records.push(signRecord(ks, m, { ...r }));
    return m;
  }),
  fc.tuple(header, fc.uniqueArray(fc.tuple(actionArb, keyIdx), { minLength: 1, maxLength: 8, selector: ([a]) => a.addr })).map(([h, acts]) => {
    const m = msg(MsgType.MPIT, h, { actions: acts.map(([a]) => ({ ...a })) });
    const keyOf = new Map(acts.map(([a, k]) => [a.addr, AUTH_KEYS[k]]));
    signActions(m, (addr) => keyOf.get(addr) ?? null);
    return m;
  }),
  fc.tuple(header, keyIdx).map(([h, k]) => {
    const m = msg(MsgType.CDN, h, {});
    const key = AUTH_KEYS[k];
    m.seal = { selector: selector(key, m.negId, m.endGe), mac: sealMac(key, m) };
    return m;
  }),
).filter((m) => encodedLength(m) <= MAX_MESSAGE_BYTES);
