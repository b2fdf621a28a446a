/**
 * Management load (SPEC section 8, seed 002 section 5.2): how many items an
 * administrator writes for a network.
 *
 * Two counts:
 *  - the papers' count (Table 3/4): per GE, GE info = user ID + mode + one per
 *    group it belongs to; group key info = (group number, key, version) = 3 per
 *    group key the GE holds. For Fig. 6 that is 17 + 21 = 38.
 *  - what this GMS makes the administrator write: per GE user ID, type, mode
 *    and one per group; per group its number (the key and version are generated
 *    and rotated by the GMS, so they cost nothing), plus each optional setting
 *    actually written (name, rotation fields, cipher).
 */
import type { NetworkState } from './model.js';

export interface LoadReport {
  ges: number;
  groups: number;
  memberships: number;
  paper: { geInfo: number; groupKeyInfo: number; total: number };
  written: { geInfo: number; groupInfo: number; total: number };
  /** The papers' figures for the Fig. 6 network, to compare against. */
  reference: { gscip: number; ipsecIke: number };
}

/** `rawGroupOptionalItems`: optional group fields present in the file (name, rotation.*, cipher, defaults). */
export function loadReport(net: NetworkState, rawGroupOptionalItems = 0): LoadReport {
  const memberships = net.ges.reduce((n, g) => n + g.groups.length, 0);
  const paperGe = net.ges.length * 2 + memberships;
  const paperKeys = memberships * 3;
  const writtenGe = net.ges.length * 3 + memberships;
  const writtenGroups = net.groups.length + rawGroupOptionalItems;
  return {
    ges: net.ges.length,
    groups: net.groups.length,
    memberships,
    paper: { geInfo: paperGe, groupKeyInfo: paperKeys, total: paperGe + paperKeys },
    written: { geInfo: writtenGe, groupInfo: writtenGroups, total: writtenGe + writtenGroups },
    reference: { gscip: 38, ipsecIke: 174 },
  };
}

/** Count optional group-level settings the administrator actually wrote in the raw file. */
export function countOptionalGroupItems(raw: unknown): number {
  const f = raw as { defaults?: { rotation?: object; cipher?: unknown }; groups?: Array<{ name?: unknown; rotation?: object; cipher?: unknown }> } | null;
  let n = Object.keys(f?.defaults?.rotation ?? {}).length + (f?.defaults?.cipher !== undefined ? 1 : 0);
  for (const g of f?.groups ?? []) {
    if (g && g.name !== undefined) n++;
    if (g && g.cipher !== undefined) n++;
    n += Object.keys(g?.rotation ?? {}).length;
  }
  return n;
}

/**
 * A change to a network (seed 002's other two scenarios, SPEC section 8):
 * the items an operator changes going from `before` to `after`, counted both
 * ways: the papers' way (a GE's user ID and mode, one per group it joins or
 * leaves, and 3 per group key it starts or stops holding) and what this GMS
 * makes the operator write (a GE added or removed: user ID, type, mode and
 * its groups; a changed type or mode: 1 each; a group joined or left: 1; a
 * group added or removed: its number, plus its optional settings written).
 * Nothing in a network definition names an address, so a host moving to
 * another subnet changes nothing here (Mobile PPC and DDNS follow the move).
 */
export interface ChangeReport {
  paper: number;
  written: number;
  gesAdded: string[];
  gesRemoved: string[];
  gesChanged: string[];
  groupsAdded: number[];
  groupsRemoved: number[];
  /** The papers' figures for the Fig. 6 scenarios, to compare against. */
  reference: { hostMoves: { gscip: number; ipsecIke: number }; memberAndGroup: { gscip: number; ipsecIke: number } };
}

export function changeReport(before: NetworkState, after: NetworkState, optionalBefore = 0, optionalAfter = 0): ChangeReport {
  const was = new Map(before.ges.map((g) => [g.userId, g]));
  const now = new Map(after.ges.map((g) => [g.userId, g]));
  let paper = 0;
  let written = 0;
  const r: ChangeReport = {
    paper: 0, written: 0, gesAdded: [], gesRemoved: [], gesChanged: [], groupsAdded: [], groupsRemoved: [],
    reference: { hostMoves: { gscip: 0, ipsecIke: 20 }, memberAndGroup: { gscip: 10, ipsecIke: 72 } },
  };
  for (const [id, g] of now) {
    const o = was.get(id);
    if (!o) {
      r.gesAdded.push(id);
      paper += 2 + g.groups.length * 4;
      written += 3 + g.groups.length;
      continue;
    }
    const joined = g.groups.filter((x) => !o.groups.includes(x)).length + o.groups.filter((x) => !g.groups.includes(x)).length;
    const fields = (g.type !== o.type ? 1 : 0) + (g.mode !== o.mode ? 1 : 0);
    if (!joined && !fields) continue;
    r.gesChanged.push(id);
    paper += joined * 4 + (g.mode !== o.mode ? 1 : 0);
    written += joined + fields;
  }
  for (const [id, o] of was) {
    if (now.has(id)) continue;
    r.gesRemoved.push(id);
    paper += 2 + o.groups.length * 4;
    written += 3 + o.groups.length;
  }
  const gb = new Set(before.groups.map((g) => g.id));
  const ga = new Set(after.groups.map((g) => g.id));
  r.groupsAdded = [...ga].filter((x) => !gb.has(x));
  r.groupsRemoved = [...gb].filter((x) => !ga.has(x));
  written += r.groupsAdded.length + r.groupsRemoved.length + Math.abs(optionalAfter - optionalBefore);
  return { ...r, paper, written };
}

export function formatChangeReport(c: ChangeReport): string {
  const what = [
    c.gesAdded.length ? `GEs added ${c.gesAdded.join(', ')}` : '', c.gesRemoved.length ? `GEs removed ${c.gesRemoved.join(', ')}` : '',
    c.gesChanged.length ? `GEs changed ${c.gesChanged.join(', ')}` : '', c.groupsAdded.length ? `groups added ${c.groupsAdded.join(', ')}` : '',
    c.groupsRemoved.length ? `groups removed ${c.groupsRemoved.join(', ')}` : '',
  ].filter(Boolean).join('; ') || 'nothing';
  return [
    `change: ${what}`,
    `papers' counting: ${c.paper} items; written in the file for the GMS: ${c.written} items`,
    `papers' figures for Fig. 6: a manager's host moves ${c.reference.hostMoves.gscip} (IPsec/IKE ${c.reference.hostMoves.ipsecIke}); a member plus a new group for the server ${c.reference.memberAndGroup.gscip} (IPsec/IKE ${c.reference.memberAndGroup.ipsecIke})`,
  ].join('\n');
}

export function formatLoadReport(r: LoadReport): string {
  return [
    `GEs ${r.ges}, groups ${r.groups}, memberships ${r.memberships}`,
    `papers' counting (seed 002, Table 4): GE info ${r.paper.geInfo} + group key info ${r.paper.groupKeyInfo} = ${r.paper.total} items`,
    `written in this file for the GMS:      GE info ${r.written.geInfo} + group info ${r.written.groupInfo} = ${r.written.total} items (keys and versions generated by the GMS)`,
    `papers' figures for Fig. 6: GSCIP ${r.reference.gscip}, IPsec/IKE ${r.reference.ipsecIke}`,
  ].join('\n');
}
