/**
 * Errors of the part registry, each with a code that is never reused (the
 * control plane's one error catalogue is a later step; these codes move into it
 * as they are).
 */
export const PART_ERROR_CODES = {
  /** Two parts claim the same thing (an ICMP control code, an option type, ...). */
  CLAIM_TAKEN: 'GSCIP_ERR_PART_CLAIM_TAKEN',
  /** A part depends on a part that is not loaded. */
  MISSING_DEPENDENCY: 'GSCIP_ERR_PART_MISSING_DEPENDENCY',
  /** A name no part in the catalogue has. */
  UNKNOWN_PART: 'GSCIP_ERR_PART_UNKNOWN',
  /** A descriptor that contradicts itself (e.g. an option codec's skippable flag vs its type number). */
  BAD_DESCRIPTOR: 'GSCIP_ERR_PART_BAD_DESCRIPTOR',
  /** A second part registered under a name already in the catalogue. */
  DUPLICATE_NAME: 'GSCIP_ERR_PART_DUPLICATE_NAME',
} as const;
export type PartErrorCode = (typeof PART_ERROR_CODES)[keyof typeof PART_ERROR_CODES];

export class PartError extends Error {
  constructor(readonly code: PartErrorCode, message: string) {
    super(message);
    this.name = 'PartError';
  }
}
