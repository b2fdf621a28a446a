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
   * Encrypt entries of TCP flows only: send PCCOM's wire-valid form (the
   * receiver said it takes it: GSCIP_PIT_F_WIRE_CSUM).
   */
  wireCsum?: true;
}
