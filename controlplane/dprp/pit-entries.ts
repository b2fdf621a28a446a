/**
 * Which PIT entries a GE installs for its decided action (pure).
 *
 * PIT keys are the CID as on the wire plus the direction the fast path sees
 * it in (docs/architecture.md). For a flow s->d ("forward") and its reverse:
 *   encrypt side (start, nearest the source):   egress fwd ENCRYPT, ingress rev DECRYPT
 *   decrypt side (nearest the destination):     ingress fwd DECRYPT, egress rev ENCRYPT
 *   pass / discard: all four (fwd/rev x ingress/egress), since a relaying GE
 *   may see the flow on either hook.
 * `fwdDir` overrides the hook the forward direction crosses this GE's guarded
 * interface on. It matters for a GEN whose INSIDE holds the flow's source (a
 * GES or a GEN behind it started): the forward packets come from the inside
 * and leave through the guarded interface's EGRESS, so a decrypting GEN there
 * installs egress fwd DECRYPT, ingress rev ENCRYPT.
 */
import type { Decision, PathRole } from './decide.js';
import { abiAction, type Flow } from './wire.js';
import { reverseFlow, slotKey as pitEntryKey } from '../flows/cid.js';
import type { PitAction, PitEntry, PitState } from '../flows/pit-entry.js';
import type { PitDir } from '../flows/cid.js';
import type { PitWhyName } from '../maps/vocabulary.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

// The PIT entry and its keys are the flow table's vocabulary (controlplane/flows/); re-exported for DPRP's callers.
export { canonicalFlowKey, flowKey, reverseFlow, slotKey as pitEntryKey } from '../flows/cid.js';
export type { PitDir } from '../flows/cid.js';
export type { PitAction, PitEntry, PitState } from '../flows/pit-entry.js';

export interface EntryOptions {
  /** See the module comment. */
  fwdDir?: PitDir;
  /** Why a pass or discard is plaintext or a drop (written into the entries; ignored for encrypt/decrypt). */
  why?: PitWhyName;
  /** The peer's receiver takes PCCOM's TCP wire-valid form: this GE's TCP encrypt entry sends it. */
  wireCsum?: boolean;
  /** A UDP flow across a NAT whose other end takes the UDP wire-valid form (nat-traversal.ts udpWireAcrossNat): this GE's UDP encrypt entry sends it. */
  udpWire?: boolean;
  /**
   * Both ends take per-flow keys: the negotiation id (hex), the salt of the
   * encrypt/decrypt entries' per-flow keys (leg 'fwd' for `flow`, 'rev' for its
   * reverse). withPrevVersions keeps a flow's earlier salt across a key rotation.
   */
  flowKeySalt?: string;
}

export function pitEntriesFor(
  flow: Flow, decision: Decision, role: PathRole, key: { group: number; version: number } | null, state: PitState,
  o: EntryOptions = {},
): PitEntry[] {
  const { fwdDir } = o;
  const rev = reverseFlow(flow);
  // Plain assignments, not conditional spreads: a leading `...(c ? {..} : {})` followed by more of them
  // cost V8 (Node 20) 6-12 µs per entry and left a dictionary-mode object that every later reader
  // paid for (issue 15); the same keys, in the same order.
  const mk = (f: Flow, dir: PitDir, action: PitAction): PitEntry => {
    const crypt = action === 'encrypt' || action === 'decrypt';
    const group = crypt ? (key?.group ?? 0) : 0;
    const version = crypt ? (key?.version ?? 0) : 0;
    const e: PitEntry = crypt && o.flowKeySalt
      ? { flowKey: { salt: o.flowKeySalt, leg: f === flow ? 'fwd' : 'rev' }, flow: f, dir, action, state, role, group, version }
      : { flow: f, dir, action, state, role, group, version };
    if ((action === 'pass' || action === 'drop') && o.why && o.why !== 'none') e.why = o.why;
    if (action === 'encrypt' && ((o.wireCsum && f.proto === IPPROTO_TCP) || (o.udpWire && f.proto === IPPROTO_UDP))) e.wireCsum = true;
    return e;
  };
  if ((decision === 'encrypt' || decision === 'decrypt') && !key) {
    throw new RangeError(`pitEntriesFor: ${decision} needs a group key`);
  }
  const other = (d: PitDir): PitDir => (d === 'egress' ? 'ingress' : 'egress');
  switch (decision) {
    case 'encrypt': {
      const d = fwdDir ?? 'egress';
      return [mk(flow, d, 'encrypt'), mk(rev, other(d), 'decrypt')];
    }
    case 'decrypt': {
      const d = fwdDir ?? 'ingress';
      return [mk(flow, d, 'decrypt'), mk(rev, other(d), 'encrypt')];
    }
    case 'pass':
    case 'discard': {
      const a: PitAction = abiAction(decision);
      return [mk(flow, 'egress', a), mk(flow, 'ingress', a), mk(rev, 'egress', a), mk(rev, 'ingress', a)];
    }
  }
}

/**
 * Re-keying: the new decrypt entries that replace a decrypt entry of the same
 * group under another version keep accepting that version (prevVersion), so
 * packets the peer still encrypts with it decrypt while both ends switch.
 * An entry replacing one of the same version keeps that entry's prevVersion.
 * Per-flow keys: the entries keep the old entries' salt unless `newSalt`; a
 * decrypt entry whose key changes (version or salt) keeps the old key as
 * prevFlowKey (with prevVersion its version).
 */
export function withPrevVersions(entries: readonly PitEntry[], old: readonly PitEntry[] | undefined, newSalt = false): PitEntry[] {
  if (!old || old.length === 0) return [...entries];
  const byKey = new Map(old.map((e) => [pitEntryKey(e), e]));
  return entries.map((e0) => {
    const o = byKey.get(pitEntryKey(e0));
    // A re-negotiation (a rotation) keeps the flow's salt: both ends derive the new version's per-flow
    // keys over the salt they agreed first, so two re-keying negotiations running at once (both ends
    // rotate) agree. Only a re-key for a new salt (PCCOM's signal, ACT_F_NEW_SALT) takes the new one.
    const e = !newSalt && e0.flowKey && o?.flowKey && o.action === e0.action && o.group === e0.group
      ? { ...e0, flowKey: { salt: o.flowKey.salt, leg: o.flowKey.leg } } : e0;
    if (e.action !== 'decrypt') return e;
    if (!o || o.action !== 'decrypt' || o.group !== e.group) return e;
    if (e.flowKey) {
      if (!o.flowKey) return e;  // the group key before: a per-flow key entry cannot try it
      const sameKey = o.version === e.version && o.flowKey.salt === e.flowKey.salt && o.flowKey.leg === e.flowKey.leg;
      if (!sameKey) return { ...e, prevVersion: o.version, prevFlowKey: { salt: o.flowKey.salt, leg: o.flowKey.leg } };
      return o.prevFlowKey ? { ...e, prevVersion: o.prevVersion ?? o.version, prevFlowKey: o.prevFlowKey } : e;
    }
    const prev = o.version !== e.version ? o.version : o.prevVersion;
    return prev ? { ...e, prevVersion: prev } : e;
  });
}

/** Whether two entries at one slot use different keys (another version, or another per-flow key salt). */
function keyChanges(e: PitEntry, o: PitEntry): boolean {
  return o.version !== e.version || (!!e.flowKey && (!o.flowKey || o.flowKey.salt !== e.flowKey.salt || o.flowKey.leg !== e.flowKey.leg));
}

/**
 * Whether installing `e` over `old` would switch an encrypt entry to another
 * key of the same group: another version, or another per-flow key (what must
 * wait until the peer decrypts it).
 */
export function isEncryptVersionSwitch(e: PitEntry, old: readonly PitEntry[] | undefined): boolean {
  if (e.action !== 'encrypt' || !old) return false;
  const k = pitEntryKey(e);
  const o = old.find((x) => pitEntryKey(x) === k);
  return !!o && o.action === 'encrypt' && o.group === e.group && keyChanges(e, o);
}

/** True when a decrypt entry of `old` at the same slot, same group, uses another key (version or per-flow key). */
export function isDecryptVersionSwitch(e: PitEntry, old: readonly PitEntry[] | undefined): boolean {
  if (e.action !== 'decrypt' || !old) return false;
  const k = pitEntryKey(e);
  const o = old.find((x) => pitEntryKey(x) === k);
  return !!o && o.action === 'decrypt' && o.group === e.group && keyChanges(e, o);
}
