/**
 * Errors of the flow table; the codes live in the control plane's one
 * catalogue (controlplane/errors/catalogue.ts). They are programming errors
 * of a part, not conditions of the network.
 */
import { GscipError } from '../errors/catalogue.js';

export const FLOW_ERROR_CODES = {
  /** A flow (or a re-key) would take wire CIDs another flow owns. */
  CID_TAKEN: 'GSCIP_E_FLOW_CID_TAKEN',
  /** An id the table does not hold (expired, or never created). */
  UNKNOWN_FLOW: 'GSCIP_E_FLOW_UNKNOWN',
  /** An XLAT entry of a kind with no expiry policy (a part must declare one first). */
  NO_EXPIRY_POLICY: 'GSCIP_E_FLOW_NO_EXPIRY_POLICY',
  /** XLAT entries given to a table built without an XLAT map. */
  NO_XLAT_MAP: 'GSCIP_E_FLOW_NO_XLAT_MAP',
  /** An entry whose slot is not one of the flow's wire CIDs (PIT) or that a flow already holds twice. */
  BAD_ENTRY: 'GSCIP_E_FLOW_BAD_ENTRY',
} as const;
export type FlowErrorCode = (typeof FLOW_ERROR_CODES)[keyof typeof FLOW_ERROR_CODES];

export class FlowError extends GscipError<FlowErrorCode> {}
