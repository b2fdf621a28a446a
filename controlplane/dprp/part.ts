/**
 * DPRP as a part: what it claims (its four message types as ICMP codes, the
 * control messages nobody claims, the spec's option types until Mobile PPC
 * and NAT-f claim theirs) and how it is made (handler.ts dprpHandlerFactory).
 * An unclaimed control message to another host (another part's, which this
 * GE does not run: a Mobile PPC CU at a DPRP-only GE) is forwarded one hop
 * on (foreign-control.ts); one to this host is counted and dropped.
 */
import type { PartDescriptor } from '../parts/part.js';
import { MISS_ORDER } from '../parts/part.js';
import { dprpHandlerFactory } from './handler.js';
import { SPEC_OPTION_CODECS } from './spec-options.js';
import { MsgType } from './wire.js';
import { HOLD_CODE } from './hold.js';
import { REASON_PART_SIZE, ReasonPart } from '../maps/abi.js';

export const dprpPart: PartDescriptor = {
  name: 'dprp',
  summary: 'DPRP: negotiates every new flow with the GEs on its path (docs/dprp.md)',
  claims: {
    puntReasons: ['pit_miss', 'truncated', 'control'],
    // its four messages, and the HOLD its fast path answers a relayed DDE with (hold.ts)
    icmpCodes: [...Object.values(MsgType), HOLD_CODE],
    otherControl: true,
    dprpOptions: SPEC_OPTION_CODECS,
    // Its block of the datapath's reason space (gscip_abi.h GSCIP_REASON_DPRP): dprp_hold (128).
    counterRange: { first: ReasonPart.DPRP, last: ReasonPart.DPRP + REASON_PART_SIZE - 1 },
    metricsPrefix: 'gscip_dprp_',
  },
  missOrder: MISS_ORDER.NEGOTIATE,
  create: (ctx) => dprpHandlerFactory(ctx),
};
