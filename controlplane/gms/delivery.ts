/** What the GMS sends one GE: pure, from the store's snapshot. */
import { EMPTY_POLICY, type RemoteUser, type DeliveredKey, type GeDef, type GeDelivery, type GroupKey, type NetworkPolicy } from './model.js';

export function keysByGroup(keys: GroupKey[]): Map<number, GroupKey[]> {
  const m = new Map<number, GroupKey[]>();
  for (const k of keys) m.set(k.groupId, [...(m.get(k.groupId) ?? []), k]);
  return m;
}

/** What GSRA adds to a delivery (docs/gsra.md): a directory user's own key; a router's admissible users. */
export interface GsraExtras { userKey?: Buffer; remoteUsers?: RemoteUser[] }

export function buildDelivery(ge: GeDef, byGroup: Map<number, GroupKey[]>, now: number, policy: NetworkPolicy = EMPTY_POLICY, gsra: GsraExtras = {}): GeDelivery {
  const keys: DeliveredKey[] = [];
  for (const g of ge.groups) {
    for (const k of byGroup.get(g) ?? []) {
      if (k.expiresAt !== null && k.expiresAt <= now) continue;
      keys.push({ group: g, version: k.version, key: k.key.toString('base64'), createdAt: k.createdAt, expiresAt: k.expiresAt, cipher: k.cipher });
    }
  }
  const d: GeDelivery = { userId: ge.userId, type: ge.type, mode: ge.mode, groups: [...ge.groups], keys, requireEncryption: [...policy.requireEncryption], issuedAt: now };
  if ((ge.type === 'GNAT' || ge.type === 'GSRA') && ge.act?.length) d.act = ge.act.map((e) => ({ ...e, groups: [...e.groups] }));
  if (gsra.userKey) d.gsraUserKey = gsra.userKey.toString('base64');
  if (ge.type === 'GSRA' && gsra.remoteUsers) d.remoteUsers = gsra.remoteUsers.map((u) => ({ ...u, groups: [...u.groups] }));
  if (policy.gnats?.length) d.gnats = [...policy.gnats];
  if (policy.gsraRouters?.length) d.gsraRouters = [...policy.gsraRouters];
  return d;
}

/** Identity of a delivery's content, to push only what changed. */
export function deliveryDigest(d: GeDelivery): string {
  const users = (d.remoteUsers ?? []).map((u) => [u.userId, u.groups, u.key]);
  return JSON.stringify([d.type, d.mode, d.groups, d.keys.map((k) => [k.group, k.version, k.expiresAt, k.cipher]), d.requireEncryption ?? [], d.act ?? [], d.gsraUserKey ?? null, users, d.gnats ?? [], d.gsraRouters ?? []]);
}
