/**
 * The DPRP codec and authentication properties, as fast-check properties over
 * the arbitraries of dprp-arbitraries.ts. Each takes the codec it checks, so a
 * deliberately broken copy can be put in its place to show the property fails
 * (test/unit/dprp-property.test.ts does, and prints the shrunk counterexample).
 */
import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { findSelected, sealMac, verifyAction, verifyRecord, type GroupKey } from '../../controlplane/dprp/auth.js';
import { OPTION_REFUSAL_REASONS } from '../../controlplane/dprp/option-codecs.js';
import {
  decode, DprpWireError, encode, MsgType, WIRE_REJECT_REASONS, type DprpMessage,
} from '../../controlplane/dprp/wire.js';
import {
  applyMutations, AUTH_KEYS, fixupArb, authenticatedArb, bytesArb, fixChecksum, looseMessageArb, messageArb, mutationArb,
} from './dprp-arbitraries.js';

export interface WireCodec {
  encode(m: DprpMessage): Buffer;
  decode(b: Buffer): DprpMessage;
}
export const REAL_CODEC: WireCodec = { encode: (m) => encode(m), decode: (b) => decode(b) };

const REASONS = new Set<string>(WIRE_REJECT_REASONS);
const COUNTED = new Set<string>([...WIRE_REJECT_REASONS, ...OPTION_REFUSAL_REASONS]);

/** decode() gives every message a candDepth (0 when absent). */
export function normalized(m: DprpMessage): DprpMessage {
  return { ...m, candDepth: m.candDepth ?? 0 };
}

/**
 * What a refusal of decode() must be: a DprpWireError whose reason and counted
 * label are in the bounded sets, and not the catch-all that turns an internal
 * exception (a bug: a RangeError from a Buffer read, say) into bad_field.
 */
export function checkRejection(e: unknown, seen?: Map<string, number>): void {
  if (!(e instanceof DprpWireError)) throw new Error(`decode threw ${(e as Error)?.constructor?.name ?? typeof e}, not DprpWireError: ${String(e)}`);
  if (!REASONS.has(e.reason)) throw new Error(`rejection reason ${e.reason} is not in WIRE_REJECT_REASONS`);
  if (!COUNTED.has(e.countedAs)) throw new Error(`counted label ${e.countedAs} is not a wire or option refusal reason`);
  if (/internal decode error/.test(e.message)) throw new Error(`decode hit an internal error that the catch-all hid: ${e.message}`);
  if (seen) seen.set(e.countedAs, (seen.get(e.countedAs) ?? 0) + 1);
}

/** decode() of `b` refuses correctly, or gives a message that re-encodes to exactly `b` (canonical). */
export function decodeOrRefuse(c: WireCodec, b: Buffer, seen?: Map<string, number>): DprpMessage | null {
  let m: DprpMessage;
  try {
    m = c.decode(b);
  } catch (e) {
    checkRejection(e, seen);
    return null;
  }
  seen?.set('decoded', (seen.get('decoded') ?? 0) + 1);
  const again = c.encode(m);
  if (!again.equals(b)) throw new Error(`non-canonical: decoded bytes re-encode differently\n in:  ${b.toString('hex')}\n out: ${again.toString('hex')}`);
  return m;
}

/** encode∘decode = id for every valid structured message of every type, options included. */
export function roundTripProperty(c: WireCodec = REAL_CODEC) {
  return fc.property(messageArb, (m) => {
    const b = c.encode(m);
    assert.deepStrictEqual(c.decode(b), normalized(m));
    assert.ok(c.encode(c.decode(b)).equals(b), 'encode(decode(b)) = b');
  });
}

/** Arbitrary (mostly header-shaped) bytes: refused with a counted reason, or canonical. */
export function bytesProperty(c: WireCodec = REAL_CODEC, seen?: Map<string, number>) {
  return fc.property(bytesArb, (b) => { decodeOrRefuse(c, b, seen); });
}

/** Valid messages after 1..6 byte-level mutations (checksum and body length repaired or not): refused with a counted reason, or canonical. */
export function mutationProperty(c: WireCodec = REAL_CODEC, seen?: Map<string, number>) {
  return fc.property(messageArb, fc.array(mutationArb, { minLength: 1, maxLength: 6 }), fixupArb, (m, ops, fix) => {
    decodeOrRefuse(c, applyMutations(c.encode(m), ops, fix), seen);
  });
}

/**
 * encode() of a message with fields the wire cannot carry (header flags,
 * status, proto, ports, attempt, malformed addresses) refuses it with a
 * DprpWireError, or its bytes decode back to it.
 */
export function encodeStrictProperty(c: WireCodec = REAL_CODEC) {
  return fc.property(looseMessageArb, (m) => {
    let b: Buffer;
    try {
      b = c.encode(m);
    } catch (e) {
      if (e instanceof DprpWireError) return;
      throw new Error(`encode threw ${(e as Error).constructor.name}, not DprpWireError: ${(e as Error).message}`);
    }
    let d: DprpMessage;
    try {
      d = c.decode(b);
    } catch (e) {
      throw new Error(`encode accepted a message decode refuses: ${(e as Error).message}`);
    }
    assert.deepStrictEqual(d, normalized(m));
  });
}

// ---------------------------------------------------------------- authentication

/**
 * What receivers holding `keys` verify in `b`: each (record, key) whose tag
 * checks, each (action addressee, key) whose selector and MAC check, the seal's
 * key; null when decode() refuses the bytes. Each part is meant for its own
 * receivers (a record's tag for key K proves K to K's holders only), so a
 * change is refused when one of the pairs the original had is lost.
 */
export function verifiedBy(b: Buffer, keys: readonly GroupKey[] = AUTH_KEYS, c: WireCodec = REAL_CODEC): Set<string> | null {
  let m: DprpMessage;
  try {
    m = c.decode(b);
  } catch (e) {
    checkRejection(e);
    return null;
  }
  const out = new Set<string>();
  const id = (k: GroupKey) => `${k.group}/${k.version}`;
  if (m.type === MsgType.DDE || m.type === MsgType.RGI) {
    m.records.forEach((_r, i) => { for (const k of verifyRecord(keys, m, i)) out.add(`record ${i}: ${id(k)}`); });
  } else if (m.type === MsgType.MPIT) {
    for (const a of m.actions) {
      const k = findSelected(keys, m.negId, a.addr, a.selector);
      if (k && verifyAction(k, m, a)) out.add(`action ${a.addr}: ${id(k)}`);
    }
  } else if (m.seal) {
    const k = findSelected(keys, m.negId, m.endGe, m.seal.selector);
    if (k && sealMac(k, m).equals(m.seal.mac)) out.add(`seal: ${id(k)}`);
  }
  return out;
}

/**
 * Bytes no MAC covers, by design (docs/dprp.md): the ICMP checksum (recomputed
 * after the change, so the MACs and not the checksum are what refuse) and, in a
 * DDE, the hop-by-hop candidate depth (ICMP byte 4).
 */
export function unauthenticatedOffsets(type: number): number[] {
  return type === MsgType.DDE ? [2, 3, 4] : [2, 3];
}

/** Any single-byte change of an authenticated message (checksum made right again) is refused by a receiver it was meant for. */
export function authSingleByteProperty(c: WireCodec = REAL_CODEC, exempt: (type: number) => number[] = unauthenticatedOffsets,
  messages: typeof authenticatedArb = authenticatedArb) {
  return fc.property(messages, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, delta) => {
    const b = c.encode(m);
    const want = verifiedBy(b, AUTH_KEYS, c);
    const parts = m.records.length + m.actions.length + (m.seal ? 1 : 0);
    assert.ok(want && want.size >= parts, 'every part of the unchanged message authenticates');
    const skip = new Set(exempt(m.type));
    const offsets = [...Array(b.length).keys()].filter((i) => !skip.has(i));
    const i = offsets[pos % offsets.length];
    const x = Buffer.from(b);
    x[i] ^= delta;
    fixChecksum(x);
    const got = verifiedBy(x, AUTH_KEYS, c);
    if (got && [...want].every((v) => got.has(v))) {
      throw new Error(`${['', 'DDE', 'RGI', 'MPIT', 'CDN'][m.type]}: byte ${i} changed 0x${b[i].toString(16)} -> 0x${x[i].toString(16)} and every receiver still accepts it`);
    }
  });
}
