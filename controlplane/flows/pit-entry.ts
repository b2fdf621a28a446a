/**
 * A PIT entry as the control plane writes it: its slot (wire CID + hook) and
 * the value's fields by name (the ABI's `enum gscip_action`, `gscip_pit_state`,
 * `gscip_role`; kernel-flow-maps.ts turns them into the numbers).
 */
import type { FiveTuple, MapSlot, PitDir } from './cid.js';

export type PitAction = 'pass' | 'drop' | 'encrypt' | 'decrypt';
export type PitState = 'tentative' | 'confirmed';
export type PitRole = 'start' | 'intermediate' | 'end';

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
}
