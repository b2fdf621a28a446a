/**
 * PCCOM on GSRA's Internet leg (docs/gsra.md "PCCOM on the Internet leg"):
 * the PIT entries of an admitted flow's wire view {GEN:s <-> GGR:t}, under
 * the group key of the group the flow was admitted with (newest version
 * held). On the EN the wire flow leaves (egress ENCRYPT, its reverse ingress
 * DECRYPT); on the router's outside instance it arrives (ingress DECRYPT
 * before the NAT stage makes it PGR:t -> PIN:d; the IN's answer, made GGR:t
 * -> GEN:s by the NAT stage, egress ENCRYPT). The inside leg stays plaintext.
 * A bound UDP flow with a salt (MAP_OK) is sent in PCCOM's UDP wire-valid form
 * under per-flow keys (legFlowKeys): a home NAT that verifies checksums
 * translates it. Pure.
 */
import { Action, Dir, PIT_F_FLOW_KEY, PIT_F_WIRE_CSUM, PitState, Role } from '../maps/abi.js';
import type { Cid, FlowKeyHalf, FlowKeyVal, KeyId, PitVal } from '../maps/codecs.js';
import { deriveFlowKey, legCode, saltToU64, type FlowLegName } from '../pccom/flow-key.js';

export interface WireFlow { saddr: string; sport: number; daddr: string; dport: number; proto: number }

/** The newest version of `group` in the key ring (the fast path's key map keys), or undefined: no key held. */
export function newestKeyVersion(keys: Iterable<KeyId>, group: number): number | undefined {
  let v: number | undefined;
  for (const k of keys) if (k.group_id === group && (v === undefined || k.version > v)) v = k.version;
  return v;
}

/** The two PIT entries of `wire` (the EN -> router direction, GEN:s -> GGR:t) on `side`. */
export function legPitEntries(side: 'en' | 'router', wire: WireFlow, group: number, version: number, nowNs: bigint, o: { acrossNat?: boolean; flowKey?: boolean } = {}): Array<[Cid, PitVal]> {
  const fwd: Cid = { ...wire, dir: side === 'en' ? Dir.EGRESS : Dir.INGRESS };
  const rev: Cid = { saddr: wire.daddr, daddr: wire.saddr, sport: wire.dport, dport: wire.sport, proto: wire.proto, dir: side === 'en' ? Dir.INGRESS : Dir.EGRESS };
  // Across a home NAT (a BIND was made) TCP is encrypted in the wire-valid form (docs/pccom.md): a NAT that
  // verifies checksums (Linux conntrack, nf_conntrack_checksum=1) would not translate the keyed form.
  // UDP across it: the UDP wire-valid form, which needs per-flow keys (legFlowKeys, written first).
  const udpWire = o.acrossNat && o.flowKey && wire.proto === 17;
  const wireValid = o.acrossNat && (wire.proto === 6 || udpWire);
  const v = (action: number): PitVal => ({
    action, state: PitState.CONFIRMED, role: side === 'en' ? Role.START : Role.END,
    flags: (action === Action.ENCRYPT && wireValid ? PIT_F_WIRE_CSUM : 0) | (udpWire ? PIT_F_FLOW_KEY : 0),
    group_id: group, key_version: version, created_ns: nowNs, last_seen_ns: nowNs,
  });
  return side === 'en'
    ? [[fwd, v(Action.ENCRYPT)], [rev, v(Action.DECRYPT)]]
    : [[fwd, v(Action.DECRYPT)], [rev, v(Action.ENCRYPT)]];
}

const EMPTY_HALF: FlowKeyHalf = { key: Buffer.alloc(32), key_version: 0, flags: 0, ctr: 0n };

/**
 * The per-flow keys (gscip_flow_keys) of a bound UDP flow's two entries on `side`, keyed by the same CIDs:
 * HKDF of the group key with MAP_OK's salt (pccom/flow-key.ts), leg 'fwd' for EN -> router, 'rev' back, so
 * the EN's ENCRYPT key is the router's DECRYPT key and the other way round; counters from 0.
 */
export function legFlowKeys(side: 'en' | 'router', wire: WireFlow, group: number, version: number, groupKey: { key: Buffer; flags: number }, salt: string): Array<[Cid, FlowKeyVal]> {
  const [fwd, rev] = legPitKeys(side, wire);
  const val = (leg: FlowLegName): FlowKeyVal => ({
    cur: { key: deriveFlowKey(groupKey.key, group, version, salt, leg), key_version: version, flags: groupKey.flags, ctr: 0n },
    prev: EMPTY_HALF, salt: saltToU64(salt), prev_salt: 0n, rekey_at: 0n, leg: legCode(leg), prev_leg: 0, signalled: 0, fails: 0,
  });
  return [[fwd, val('fwd')], [rev, val('rev')]];
}

/**
 * Write `keys` unless the entry already holds that key (same salt, version, leg): a retried MAP re-installs
 * the flow, and rewriting an ENCRYPT value would hand the fast path counters it has used (docs/pccom.md).
 */
export function writeFlowKeys(map: { get(k: Cid): FlowKeyVal | undefined; set(k: Cid, v: FlowKeyVal): void }, keys: Array<[Cid, FlowKeyVal]>): void {
  for (const [k, v] of keys) {
    const old = map.get(k);
    if (old && old.salt === v.salt && old.leg === v.leg && old.cur.key_version === v.cur.key_version) continue;
    map.set(k, v);
  }
}

/** The keys of those entries (to delete them). */
export function legPitKeys(side: 'en' | 'router', wire: WireFlow): Cid[] {
  return legPitEntries(side, wire, 0, 0, 0n).map(([k]) => k);
}
