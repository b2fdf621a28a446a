/**
 * HOLD: the fast path's answer to a DDE relayed by an end-candidate GEN
 * (bpf/lib/dprp_hold.h writes it; docs/dprp.md "Cascades"). 20 bytes of ICMP:
 *
 *   0  type 253 | code 5 (HOLD) | checksum
 *   4  0 (candidate depth, reserved)
 *   8  version 1 | type 5 | flags 0 | attempt      (the DDE's)
 *  12  negotiation id (8 bytes)                    (the DDE's)
 *
 * From the DDE's destination to its source, sent by the GE behind the GEN the
 * moment the DDE reaches it (no control plane in the way). It carries no
 * authentication: it can only make a candidate GEN wait for a real RGI (never
 * choose an action), and only from an address behind that GEN.
 */
import { DPRP_CODE_HOLD, DPRP_HOLD_BYTES, ICMP_TYPE } from '../maps/abi.js';
import { inetChecksum } from './ipv4.js';

export const HOLD_CODE = DPRP_CODE_HOLD;

export interface Hold {
  attempt: number;
  negId: Buffer;
}

export type HoldRejectReason = 'too_short' | 'bad_checksum' | 'bad_version';

/** The HOLD in `icmp` (an ICMP message of code HOLD_CODE), or why it is not one. */
export function decodeHold(icmp: Buffer): Hold | HoldRejectReason {
  if (icmp.length < DPRP_HOLD_BYTES) return 'too_short';
  if (inetChecksum(icmp.subarray(0, DPRP_HOLD_BYTES)) !== 0) return 'bad_checksum';
  if (icmp[8] !== 1 || icmp[9] !== HOLD_CODE) return 'bad_version';
  return { attempt: icmp[11], negId: Buffer.from(icmp.subarray(12, 20)) };
}

/** The HOLD the fast path writes for a DDE (for the simulation and tests; the datapath writes its own). */
export function holdFor(dde: Buffer): Buffer {
  const h = Buffer.alloc(DPRP_HOLD_BYTES);
  h[0] = ICMP_TYPE;
  h[1] = HOLD_CODE;
  h[8] = 1;
  h[9] = HOLD_CODE;
  h[11] = dde[11];
  dde.copy(h, 12, 12, 20);
  h.writeUInt16BE(inetChecksum(h), 2);
  return h;
}
