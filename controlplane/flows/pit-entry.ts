/**
 * A PIT entry as the control plane writes it: its slot (wire CID + hook) and
 * the value's fields by name (the ABI's `enum gscip_action`, `gscip_pit_state`,
 * `gscip_role`, as maps/vocabulary.ts names them; kernel-flow-maps.ts turns
 * them into the numbers).
 */
import type { EntryActionName, PathRoleName, PitStateName, PitWhyName } from '../maps/vocabulary.js';
import type { FiveTuple, MapSlot, PitDir } from './cid.js';

/** 'pass' | 'drop' | 'encrypt' | 'decrypt'. */
export type PitAction = EntryActionName;
/** A control plane's entries are never static: 'tentative' | 'confirmed'. */
export type PitState = Exclude<PitStateName, 'static'>;
/** 'start' | 'intermediate' | 'end'. */
export type PitRole = PathRoleName;

export interface PitEntry extends MapSlot {
  flow: FiveTuple;
  dir: PitDir;
  action: PitAction;
  group: number;
  version: number;
  state: PitState;
  role: PitRole;
  /**
   * Decrypt entries only: the key version a packet failing the keyed checksum
   * under `version` is tried with (lossless re-keying; 0/absent: none).
   */
  prevVersion?: number;
  /**
   * Why the entry is plaintext or a drop (gscip_pit_val.flags bits 4-7, shown
   * by `gscip maps dump pit`); absent/'none' on encrypt, decrypt and transit.
   */
  why?: PitWhyName;
  /**
   * Encrypt entries only: send PCCOM's wire-valid form (GSCIP_PIT_F_WIRE_CSUM):
   * TCP when the receiver said it takes it; UDP across a NAT when the receiver
   * takes the UDP form (with per-flow keys; docs/pccom.md).
   */
  wireCsum?: true;
  /**
   * Encrypt/decrypt entries: the entry's key is a per-flow key (PIT flag
   * FLOW_KEY, the key in gscip_flow_keys), derived from (group, version) and
   * this. Absent: the group key itself (static entries, a peer without
   * per-flow keys, entries of a previous release).
   */
  flowKey?: FlowKeySpec;
  /** Decrypt entries with flowKey: the previous per-flow key (derived from prevVersion, or version when absent), tried on a failed check. */
  prevFlowKey?: FlowKeySpec;
}

/**
 * What a PCCOM per-flow key is derived from (controlplane/pccom/flow-key.ts):
 * the group key (the entry's group, version), the salt DPRP agreed on, and
 * the leg (direction of the negotiated flow).
 */
export interface FlowKeySpec {
  /** The DPRP negotiation id the key was agreed in (16 hex digits). */
  salt: string;
  /** 'fwd': the negotiated flow's direction (start -> end); 'rev': its reverse. */
  leg: 'fwd' | 'rev';
  /**
   * A moved entry (Mobile PPC): the slot whose per-flow key, counter included,
   * this entry takes over. The key is never derived afresh for it: its counter
   * would start again under the same key.
   */
  from?: MapSlot;
}
