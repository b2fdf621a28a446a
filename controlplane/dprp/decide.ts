/**
 * The DPRP decision engine: a PURE function from the on-path GE records, as the
 * start GE verified them, to every GE's action. Rules (SPEC section 3, seed 002
 * Fig. 6 / Table 2, seed 001), written out in docs/dprp.md "Decision":
 *
 *  1. Let j be the GE farthest toward the destination that shares a group with
 *     the start GE (path[0]). If there is one, the start encrypts and path[j]
 *     decrypts with the lowest shared group id at the highest key version both
 *     hold; every GE strictly between them passes the ciphertext through.
 *     GEs beyond j see the flow in plaintext from a non-member: if any of them
 *     is CL the flow is refused, otherwise they pass it.
 *  2. With no shared group at all the flow is plaintext end to end; if any GE on
 *     the path is CL it is refused.
 *  3. A refused flow is discarded by every GE on the path (the start drops the
 *     stashed packet and counts the refusal).
 */
import { GscipError } from '../errors/catalogue.js';
import type { PathRoleName, PitWhyName } from '../maps/vocabulary.js';
import type { GeTypeName, ModeName, WireActionName } from './wire.js';
import { Stage, stageProfile } from './stage-profile.js';

/** A GE's decided action, in the protocol's words (the wire's: 'pass' | 'discard' | 'encrypt' | 'decrypt'). */
export type Decision = WireActionName;
/** A GE's role on the path, in the ABI's words ('start' | 'intermediate' | 'end'). */
export type PathRole = PathRoleName;

export interface GroupVersion {
  group: number;
  version: number;
}

export interface PathGe {
  addr: string;
  type: GeTypeName;
  mode: ModeName;
  /**
   * For path[0] (the start): every (group, version) it holds. For the others:
   * the (group, version) pairs the start VERIFIED they hold (tags matched).
   */
  keys: GroupVersion[];
}

export interface GeAction {
  addr: string;
  role: PathRole;
  action: Decision;
  /** Set for encrypt/decrypt. */
  group?: number;
  version?: number;
  /** True for a GE that relays ciphertext between the two members. */
  transit: boolean;
}

/**
 * Why a flow is plaintext: 'no_ge' (no GE toward the destination answered: the
 * start decided alone), 'not_member' (GEs answered, none shares a group with
 * the start). Why it is refused: 'closed' (a CL GE will not carry it in
 * plaintext), 'encryption_required' (the network definition requires
 * encryption to the destination: encryption-required.ts). The start writes it
 * into its PIT entries (gscip_pit_val.flags), counts and logs it.
 */
export type PlaintextWhy = Extract<PitWhyName, 'no_ge' | 'not_member' | 'nat_checksum'>;
export type RefusedWhy = Extract<PitWhyName, 'closed' | 'encryption_required' | 'nat_checksum'>;

export type Outcome =
  | { verdict: 'encrypted'; group: number; version: number; peer: string; actions: GeAction[] }
  | { verdict: 'plaintext'; why: PlaintextWhy; actions: GeAction[] }
  | { verdict: 'refused'; refusedBy: string; why: RefusedWhy; actions: GeAction[] };

export class DecisionInputError extends GscipError {
  constructor(readonly field: string, detail: string) {
    super('GSCIP_E_DPRP_DECISION_INPUT', `decide: ${field}: ${detail}`);
  }
}

function roleAt(i: number, n: number): PathRole {
  if (i === 0) return 'start';
  return i === n - 1 ? 'end' : 'intermediate';
}

/** The best common (group, version) of two key lists: lowest group id, then highest version both hold. */
export function commonKey(a: readonly GroupVersion[], b: readonly GroupVersion[]): GroupVersion | null {
  let best: GroupVersion | null = null;
  for (const x of a) {
    for (const y of b) {
      if (x.group !== y.group || x.version !== y.version) continue;
      if (!best || x.group < best.group || (x.group === best.group && x.version > best.version)) best = x;
    }
  }
  return best ? { group: best.group, version: best.version } : null;
}

/**
 * Decides every GE's action. `path[0]` is the start GE, `path[n-1]` the end GE
 * (the GE nearest the destination; n = 1 when no GE answered, i.e. the
 * destination is not behind any GE).
 */
export function decide(path: readonly PathGe[]): Outcome {
  if (!stageProfile.on) return decideNow(path);
  const t0 = stageProfile.now();
  try { return decideNow(path); } finally { stageProfile.sub(Stage.decide, t0); }
}
function decideNow(path: readonly PathGe[]): Outcome {
  if (path.length === 0) throw new DecisionInputError('path', 'empty (the start GE is path[0])');
  const seen = new Set<string>();
  for (const [i, g] of path.entries()) {
    if (seen.has(g.addr)) throw new DecisionInputError(`path[${i}].addr`, `${g.addr} appears twice (routing loop?)`);
    seen.add(g.addr);
    if (g.mode !== 'OP' && g.mode !== 'CL') throw new DecisionInputError(`path[${i}].mode`, String(g.mode));
  }
  const n = path.length;
  const start = path[0];

  let j = -1;
  let key: GroupVersion | null = null;
  for (let i = n - 1; i >= 1; i--) {
    const k = commonKey(start.keys, path[i].keys);
    if (k) {
      j = i;
      key = k;
      break;
    }
  }

  const discardAll = (refusedBy: string): Outcome => refusedOutcome(path.map((g) => g.addr), refusedBy, 'closed');

  if (j > 0 && key) {
    for (let i = j + 1; i < n; i++) if (path[i].mode === 'CL') return discardAll(path[i].addr);
    const actions: GeAction[] = path.map((g, i) => {
      const role = roleAt(i, n);
      if (i === 0) return { addr: g.addr, role, action: 'encrypt', group: key.group, version: key.version, transit: false };
      if (i === j) return { addr: g.addr, role, action: 'decrypt', group: key.group, version: key.version, transit: false };
      return { addr: g.addr, role, action: 'pass', transit: i < j };
    });
    return { verdict: 'encrypted', group: key.group, version: key.version, peer: path[j].addr, actions };
  }
  for (const g of path) if (g.mode === 'CL') return discardAll(g.addr);
  return {
    verdict: 'plaintext',
    why: n === 1 ? 'no_ge' : 'not_member',
    actions: path.map((g, i) => ({ addr: g.addr, role: roleAt(i, n), action: 'pass', transit: false })),
  };
}

/** Every GE of the path (addresses, start first) discards: the flow is refused by `refusedBy`. */
export function refusedOutcome(addrs: readonly string[], refusedBy: string, why: RefusedWhy): Outcome {
  const n = addrs.length;
  return { verdict: 'refused', refusedBy, why, actions: addrs.map((addr, i) => ({ addr, role: roleAt(i, n), action: 'discard', transit: false })) };
}
