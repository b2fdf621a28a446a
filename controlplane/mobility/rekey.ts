/**
 * Key rotation of moved flows (docs/mobility.md "Key rotation"): the PIT
 * entries of a moved flow, on its current wire CIDs, under a newer version of
 * their group's key, switched in DPRP's order (dprp/rekeying.ts) so every
 * packet sent stays decryptable:
 *   1. the end that starts it (either: both see the rotation) switches its
 *      decrypt entries to the new version, the old one kept as prevVersion
 *      (tried when the keyed checksum fails), and sends a CU flagged REKEY
 *      under the new version;
 *   2. the other end, on that CU: its decrypt and encrypt entries switch (the
 *      sender decrypts the new version already) and it answers;
 *   3. the starting end, on the answer: its encrypt entries switch.
 * Per-flow keys keep their salt and leg (both ends derive the new version's
 * keys over them, as a DPRP rotation does). Pure.
 */
import type { PitEntry } from '../flows/pit-entry.js';
import { withPrevVersions } from '../dprp/pit-entries.js';

/** The newest version of `group` in the key ring, or undefined. */
export function newestVersion(keys: readonly { group: number; version: number }[], group: number): number | undefined {
  let v: number | undefined;
  for (const k of keys) if (k.group === group && (v === undefined || k.version > v)) v = k.version;
  return v;
}

/** The encrypt/decrypt entries of group `group` below `version`: the flow wants re-keying. */
export function wantsRekey(pit: readonly PitEntry[], group: number, version: number): boolean {
  return pit.some((e) => (e.action === 'encrypt' || e.action === 'decrypt') && e.group === group && e.version < version);
}

/**
 * `pit` with the entries of `which` (decrypt only: step 1; every keyed entry:
 * steps 2 and 3 alike, decrypt entries already switched stay as they are)
 * moved to `version`; decrypt entries keep the key they had as prev.
 */
export function rekeyed(pit: readonly PitEntry[], group: number, version: number, which: 'decrypt' | 'all'): PitEntry[] {
  const next = pit.map((e) => {
    if (e.group !== group || e.version >= version) return e;
    if (e.action === 'decrypt' || (which === 'all' && e.action === 'encrypt')) {
      const { prevVersion: _p, prevFlowKey: _k, ...rest } = e;
      return { ...rest, version, ...(e.flowKey ? { flowKey: { salt: e.flowKey.salt, leg: e.flowKey.leg } } : {}) };
    }
    return e;
  });
  return withPrevVersions(next, pit.map((e) => (e.flowKey ? { ...e, flowKey: { salt: e.flowKey.salt, leg: e.flowKey.leg } } : e)));
}
