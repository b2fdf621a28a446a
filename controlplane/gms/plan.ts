/**
 * Plan = what `gms apply` would change to make the GMS match a network file.
 * Pure: computed from two NetworkStates; printed by --dry-run; executed by the store.
 */
import type { ActEntry, GeDef, GroupDef, NetworkPolicy, NetworkState } from './model.js';

export type PlanOp =
  | { op: 'add-group'; group: GroupDef }
  | { op: 'update-group'; group: GroupDef; changes: string[] }
  | { op: 'remove-group'; id: number }
  | { op: 'add-ge'; ge: GeDef }
  | { op: 'update-ge'; ge: GeDef; changes: string[] }
  | { op: 'remove-ge'; userId: string }
  | { op: 'set-policy'; policy: NetworkPolicy; changes: string[] }
  /**
   * A new key version for a group: a member left (the leaver must not follow)
   * and/or the group's cipher changed (the cipher is fixed per version).
   * `cause` names the stronger one for the metrics: member_left wins.
   */
  | { op: 'rotate'; groupId: number; reason: string; cause: RotateCause };

export type RotateCause = 'member_left' | 'cipher_changed';

export interface Plan {
  ops: PlanOp[];
}

export function planIsEmpty(p: Plan): boolean {
  return p.ops.length === 0;
}

export function computePlan(current: NetworkState, desired: NetworkState): Plan {
  const ops: PlanOp[] = [];
  const curGroups = new Map(current.groups.map((g) => [g.id, g]));
  const desGroups = new Map(desired.groups.map((g) => [g.id, g]));
  const cipherChanged = new Map<number, string>(); // group -> "chacha20 -> chacha8"
  for (const g of desired.groups) {
    const c = curGroups.get(g.id);
    if (!c) { ops.push({ op: 'add-group', group: g }); continue; }
    const changes: string[] = [];
    if (c.name !== g.name) changes.push(`name ${JSON.stringify(c.name)} -> ${JSON.stringify(g.name)}`);
    if (c.rotation.schedule !== g.rotation.schedule) changes.push(`schedule "${c.rotation.schedule}" -> "${g.rotation.schedule}"`);
    if (c.rotation.timezone !== g.rotation.timezone) changes.push(`timezone ${c.rotation.timezone} -> ${g.rotation.timezone}`);
    if (c.rotation.graceSeconds !== g.rotation.graceSeconds) changes.push(`graceSeconds ${c.rotation.graceSeconds} -> ${g.rotation.graceSeconds}`);
    if (c.cipher !== g.cipher) {
      changes.push(`cipher ${c.cipher} -> ${g.cipher}`);
      cipherChanged.set(g.id, `cipher ${c.cipher} -> ${g.cipher}`);
    }
    if (changes.length) ops.push({ op: 'update-group', group: g, changes });
  }
  const curGes = new Map(current.ges.map((g) => [g.userId, g]));
  const desGes = new Map(desired.ges.map((g) => [g.userId, g]));
  const leavers = new Map<number, string[]>(); // group -> user IDs leaving it
  const leave = (gid: number, uid: string): void => {
    if (!desGroups.has(gid)) return; // group removed altogether: its keys go with it
    leavers.set(gid, [...(leavers.get(gid) ?? []), uid]);
  };
  for (const ge of desired.ges) {
    const c = curGes.get(ge.userId);
    if (!c) { ops.push({ op: 'add-ge', ge }); continue; }
    const changes: string[] = [];
    if (c.type !== ge.type) changes.push(`type ${c.type} -> ${ge.type}`);
    if (c.mode !== ge.mode) changes.push(`mode ${c.mode} -> ${ge.mode}`);
    const added = ge.groups.filter((x) => !c.groups.includes(x));
    const removed = c.groups.filter((x) => !ge.groups.includes(x));
    if (added.length || removed.length) {
      changes.push(`groups ${[...added.map((x) => `+${x}`), ...removed.map((x) => `-${x}`)].join(' ')}`);
    }
    const act = actChanges(c.act ?? [], ge.act ?? []);
    if (act) changes.push(act);
    for (const gid of removed) leave(gid, ge.userId);
    if (changes.length) ops.push({ op: 'update-ge', ge, changes });
  }
  for (const c of current.ges) {
    if (desGes.has(c.userId)) continue;
    ops.push({ op: 'remove-ge', userId: c.userId });
    for (const gid of c.groups) leave(gid, c.userId);
  }
  for (const c of current.groups) if (!desGroups.has(c.id)) ops.push({ op: 'remove-group', id: c.id });
  const curReq = current.policy?.requireEncryption ?? [];
  const desReq = desired.policy?.requireEncryption ?? [];
  const reqAdded = desReq.filter((x) => !curReq.includes(x));
  const reqRemoved = curReq.filter((x) => !desReq.includes(x));
  const curG = current.policy?.gnats ?? [];
  const desG = desired.policy?.gnats ?? [];
  const gAdded = desG.filter((x) => !curG.includes(x));
  const gRemoved = curG.filter((x) => !desG.includes(x));
  const curR = current.policy?.gsraRouters ?? [];
  const desR = desired.policy?.gsraRouters ?? [];
  const rAdded = desR.filter((x) => !curR.includes(x));
  const rRemoved = curR.filter((x) => !desR.includes(x));
  const owners = (p: typeof current.policy): string => JSON.stringify(Object.entries(p?.gnatOwners ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const ownersChanged = owners(current.policy) !== owners(desired.policy);
  if (reqAdded.length || reqRemoved.length || gAdded.length || gRemoved.length || rAdded.length || rRemoved.length || ownersChanged) {
    const changes = [
      ...(reqAdded.length || reqRemoved.length ? [`requireEncryption ${[...reqAdded.map((x) => `+${x}`), ...reqRemoved.map((x) => `-${x}`)].join(' ')}`] : []),
      ...(gAdded.length || gRemoved.length ? [`gnats ${[...gAdded.map((x) => `+${x}`), ...gRemoved.map((x) => `-${x}`)].join(' ')}`] : []),
      ...(rAdded.length || rRemoved.length ? [`gsraRouters ${[...rAdded.map((x) => `+${x}`), ...rRemoved.map((x) => `-${x}`)].join(' ')}`] : []),
      ...(ownersChanged && !gAdded.length && !gRemoved.length ? ['gnats: which GNAT has which address'] : []),
    ];
    const desO = desired.policy?.gnatOwners;
    ops.push({ op: 'set-policy', policy: { requireEncryption: [...desReq], ...(desG.length ? { gnats: [...desG], ...(desO ? { gnatOwners: { ...desO } } : {}) } : {}), ...(desR.length ? { gsraRouters: [...desR] } : {}) }, changes });
  }
  // One rotation per group, after the group's update (which sets the cipher the new version is created with).
  const rotating = [...new Set([...leavers.keys(), ...cipherChanged.keys()])].sort((a, b) => a - b);
  for (const gid of rotating) {
    const uids = leavers.get(gid);
    const why = [...(uids ? [`${uids.sort().join(', ')} left`] : []), ...(cipherChanged.has(gid) ? [cipherChanged.get(gid)!] : [])];
    ops.push({ op: 'rotate', groupId: gid, reason: why.join('; '), cause: uids ? 'member_left' : 'cipher_changed' });
  }
  return { ops };
}

/** "act +bob.example.net ~carol.example.net (outsideAccess allow -> deny) -dave.example.net", or null when equal. */
function actChanges(cur: readonly ActEntry[], des: readonly ActEntry[]): string | null {
  const byName = new Map(cur.map((e) => [e.name, e]));
  const out: string[] = [];
  for (const e of des) {
    const c = byName.get(e.name);
    if (!c) { out.push(`+${e.name}`); continue; }
    const d: string[] = [];
    if (c.address !== e.address) d.push(`address ${c.address} -> ${e.address}`);
    if (c.outsideAccess !== e.outsideAccess) d.push(`outsideAccess ${c.outsideAccess} -> ${e.outsideAccess}`);
    if (c.groups.join(',') !== e.groups.join(',')) d.push(`groups [${c.groups.join(',')}] -> [${e.groups.join(',')}]`);
    if ((c.ports ?? []).join(',') !== (e.ports ?? []).join(',')) d.push(`ports [${(c.ports ?? ['any']).join(',')}] -> [${(e.ports ?? ['any']).join(',')}]`);
    if ((c.ge === true) !== (e.ge === true)) d.push(`ge ${c.ge === true} -> ${e.ge === true}`);
    if ((c.via ?? '') !== (e.via ?? '')) d.push(`via ${c.via ?? 'none'} -> ${e.via ?? 'none'}`);
    if (d.length) out.push(`~${e.name} (${d.join(', ')})`);
  }
  for (const c of cur) if (!des.some((e) => e.name === c.name)) out.push(`-${c.name}`);
  return out.length ? `act ${out.join(' ')}` : null;
}

export function formatPlan(p: Plan): string {
  if (planIsEmpty(p)) return 'no changes: the GMS already matches the file';
  const lines = p.ops.map((o) => {
    switch (o.op) {
      case 'add-group': return `+ group ${o.group.id} (${o.group.name}) schedule "${o.group.rotation.schedule}" ${o.group.rotation.timezone} grace ${o.group.rotation.graceSeconds}s, new key v1 (${o.group.cipher})`;
      case 'update-group': return `~ group ${o.group.id}: ${o.changes.join('; ')}`;
      case 'remove-group': return `- group ${o.id} (its keys are withdrawn from every GE)`;
      case 'add-ge': return `+ ge ${o.ge.userId} type=${o.ge.type} mode=${o.ge.mode} groups=[${o.ge.groups.join(',')}]${o.ge.act?.length ? ` act=[${o.ge.act.map((e) => `${e.name} ${e.address} ${e.outsideAccess}`).join('; ')}]` : ''}`;
      case 'update-ge': return `~ ge ${o.ge.userId}: ${o.changes.join('; ')}`;
      case 'remove-ge': return `- ge ${o.userId} (certificates revoked)`;
      case 'rotate': return `! rotate group ${o.groupId} (${o.reason})`;
      case 'set-policy': return `~ policy: ${o.changes.join('; ')}`;
    }
  });
  const n = (k: PlanOp['op']): number => p.ops.filter((o) => o.op === k).length;
  lines.push(`${n('add-group') + n('add-ge')} to add, ${n('update-group') + n('update-ge') + n('set-policy')} to change, ${n('remove-group') + n('remove-ge')} to remove, ${n('rotate')} key rotation(s)`);
  return lines.join('\n');
}
