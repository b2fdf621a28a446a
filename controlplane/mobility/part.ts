/**
 * Mobile PPC as a part (docs/mobility.md): its CU and CU-ACK as ICMP control
 * codes (only it sees them), the CIT kind of XLAT entry, the CIT block of the
 * datapath's reason space, its metrics, and DPRP as a dependency (the flows it
 * moves are the ones DPRP negotiated; its keys are the group keys).
 */
import { MISS_ORDER, type PartDescriptor } from '../parts/part.js';
import { REASON_PART_SIZE, ReasonPart, XlatKind } from '../maps/abi.js';
import { CU_CODE } from './cu-wire.js';
import { MobilePpcHandler } from './handler.js';
import { publishedTablePath } from '../parts/published-table.js';
import { MOVES_TABLE } from './published-moves.js';

export const mobilePpcPart: PartDescriptor = {
  name: 'mobile-ppc',
  summary: 'Mobile PPC: live flows survive this GE\'s address change (CU exchange, CIT on both ends)',
  claims: {
    puntReasons: ['control'],
    icmpCodes: [CU_CODE.CU, CU_CODE.CU_ACK],
    xlatKinds: [XlatKind.CIT],
    counterRange: { first: ReasonPart.CIT, last: ReasonPart.CIT + REASON_PART_SIZE - 1 },
    configKey: 'mobility',
    metricsPrefix: 'gscip_mobility_',
  },
  dependsOn: ['dprp'],
  missOrder: MISS_ORDER.NEGOTIATE,
  create: (ctx) => new MobilePpcHandler(ctx.log, { ddns: ctx.config?.mobility.ddns ?? null, rendezvous: ctx.config?.mobility.rendezvous ?? null, subnetNat: ctx.config?.mobility.subnetNat ?? null,
    citFile: ctx.config ? publishedTablePath(ctx.config.runDir, ctx.config.instance, MOVES_TABLE) : null }),
};
