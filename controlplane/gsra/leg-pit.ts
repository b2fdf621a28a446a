/**
 * PCCOM on GSRA's Internet leg (docs/gsra.md "PCCOM on the Internet leg"):
 * the PIT entries of an admitted flow's wire view {GEN:s <-> GGR:t}, under
 * the group key of the group the flow was admitted with (newest version
 * held). On the EN the wire flow leaves (egress ENCRYPT, its reverse ingress
 * DECRYPT); on the router's outside instance it arrives (ingress DECRYPT
 * before the NAT stage makes it PGR:t -> PIN:d; the IN's answer, made GGR:t
 * -> GEN:s by the NAT stage, egress ENCRYPT). The inside leg stays plaintext.
 * Pure.
 */
import { Action, Dir, PIT_F_WIRE_CSUM, PitState, Role } from '../maps/abi.js';
import type { Cid, KeyId, PitVal } from '../maps/codecs.js';

export interface WireFlow { saddr: string; sport: number; daddr: string; dport: number; proto: number }

/** The newest version of `group` in the key ring (the fast path's key map keys), or undefined: no key held. */
export function newestKeyVersion(keys: Iterable<KeyId>, group: number): number | undefined {
  let v: number | undefined;
  for (const k of keys) if (k.group_id === group && (v === undefined || k.version > v)) v = k.version;
  return v;
}

/** The two PIT entries of `wire` (the EN -> router direction, GEN:s -> GGR:t) on `side`. */
export function legPitEntries(side: 'en' | 'router', wire: WireFlow, group: number, version: number, nowNs: bigint, o: { acrossNat?: boolean } = {}): Array<[Cid, PitVal]> {
  const fwd: Cid = { ...wire, dir: side === 'en' ? Dir.EGRESS : Dir.INGRESS };
  const rev: Cid = { saddr: wire.daddr, daddr: wire.saddr, sport: wire.dport, dport: wire.sport, proto: wire.proto, dir: side === 'en' ? Dir.INGRESS : Dir.EGRESS };
  // Across a home NAT (a BIND was made) TCP is encrypted in the wire-valid form (docs/pccom.md): a NAT that
  // verifies checksums (Linux conntrack, nf_conntrack_checksum=1) would not translate the keyed form.
  const wireValid = o.acrossNat && wire.proto === 6;
  const v = (action: number): PitVal => ({
    action, state: PitState.CONFIRMED, role: side === 'en' ? Role.START : Role.END, flags: action === Action.ENCRYPT && wireValid ? PIT_F_WIRE_CSUM : 0,
    group_id: group, key_version: version, created_ns: nowNs, last_seen_ns: nowNs,
  });
  return side === 'en'
    ? [[fwd, v(Action.ENCRYPT)], [rev, v(Action.DECRYPT)]]
    : [[fwd, v(Action.DECRYPT)], [rev, v(Action.ENCRYPT)]];
}

/** The keys of those entries (to delete them). */
export function legPitKeys(side: 'en' | 'router', wire: WireFlow): Cid[] {
  return legPitEntries(side, wire, 0, 0, 0n).map(([k]) => k);
}
