/**
 * The GNAT's ACT as the agent holds it (SPEC section 6, docs/natf.md "ACT"):
 * read from the GMS delivery (it arrives over the wire: checked here), and
 * the decision a DDE naming a private host will get. Pure.
 */
import type { ActEntry } from '../gms/model.js';

export type { ActEntry };

const NAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A delivered ACT (GeDelivery.act): entries of the right shape, or an error naming the first bad one. Absent = empty. */
export function parseDeliveredAct(v: unknown): ActEntry[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new RangeError('delivered act: not a list');
  return v.map((e: unknown, i: number) => {
    const x = e as Partial<ActEntry> | null;
    if (!x || typeof x.name !== 'string' || !NAME.test(x.name)) throw new RangeError(`delivered act[${i}].name: not a lower-case DNS name`);
    if (typeof x.address !== 'string' || !IPV4.test(x.address)) throw new RangeError(`delivered act[${i}].address: not an IPv4 address`);
    if (x.outsideAccess !== 'allow' && x.outsideAccess !== 'deny') throw new RangeError(`delivered act[${i}].outsideAccess: must be allow or deny`);
    if (!Array.isArray(x.groups) || !x.groups.every((g) => Number.isInteger(g) && g > 0)) throw new RangeError(`delivered act[${i}].groups: not a list of group numbers`);
    if (x.ge !== undefined && typeof x.ge !== 'boolean') throw new RangeError(`delivered act[${i}].ge: must be true or false`);
    if (x.via !== undefined && (typeof x.via !== 'string' || !IPV4.test(x.via))) throw new RangeError(`delivered act[${i}].via: not an IPv4 address`);
    if (x.via !== undefined && x.ge) throw new RangeError(`delivered act[${i}].via: a host that is its own GE (ge: true) has no GEN in front of it`);
    if (x.via !== undefined && x.via === x.address) throw new RangeError(`delivered act[${i}].via: the host's own address`);
    return { name: x.name, address: x.address, outsideAccess: x.outsideAccess, groups: [...x.groups], ...(x.ge ? { ge: true } : {}), ...(x.via ? { via: x.via } : {}) };
  });
}

export type ActDecision =
  /** `via`: the GEN in front of the host (a Term), the end GE the GNAT relays to (ACT `via`). */
  | { allow: true; address: string; ge: boolean; via?: string }
  | { allow: false; reason: 'unknown_name' | 'outside_access_denied' | 'not_member' };

/**
 * May a peer proving membership of `peerGroups` (authenticated by DPRP) reach
 * `name` from outside? Names compare case-insensitively, a trailing dot ignored.
 */
export function actDecide(act: readonly ActEntry[], name: string, peerGroups: readonly number[]): ActDecision {
  const n = name.toLowerCase().replace(/\.$/, '');
  const e = act.find((x) => x.name === n);
  if (!e) return { allow: false, reason: 'unknown_name' };
  if (e.outsideAccess !== 'allow') return { allow: false, reason: 'outside_access_denied' };
  if (!e.groups.some((g) => peerGroups.includes(g))) return { allow: false, reason: 'not_member' };
  return { allow: true, address: e.address, ge: e.ge === true, ...(e.via ? { via: e.via } : {}) };
}

/**
 * Where the GNAT relays a negotiation for an allowed host instead of answering
 * for it (docs/natf.md "A private GE behind the GNAT", "A GEN inside"): to the
 * host when it is a GE (`ge`), to the GEN in front of it (`via`), with the
 * host's address for NATF_LIP; null: a plain Term the GNAT answers for.
 */
export function relayTarget(e: { address: string; ge?: boolean; via?: string }): { inside: string; host?: string } | null {
  if (e.ge) return { inside: e.address };
  if (e.via) return { inside: e.via, host: e.address };
  return null;
}

/** The names this GNAT publishes in DDNS: those outside access is allowed to (a denied name is not advertised). */
export function publishedNames(act: readonly ActEntry[]): string[] {
  return act.filter((e) => e.outsideAccess === 'allow').map((e) => e.name).sort();
}
