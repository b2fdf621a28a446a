/**
 * NAT-f's initiator side as a part (docs/natf.md): the DNS answers the DNS
 * stage punts, the virtual addresses (NRT), the VAT kind of translation, and
 * the hooks DPRP's start role calls for a flow to a virtual address. The
 * GNAT's half (ACT check, inbound mapping) is the `nat` part's.
 */
import type { PartDescriptor } from '../parts/part.js';
import { REASON_PART_SIZE, ReasonPart, XlatKind } from '../maps/abi.js';
import { NatfInitiator } from './initiator.js';
import { natfConfigSchema } from './natf-config.js';
import { tablePath } from './tables-file.js';

export const natfPart: PartDescriptor = {
  name: 'natf',
  summary: 'NAT-f initiator: DNS answers naming a GNAT get a virtual address; a flow to it is negotiated with the GNAT by name and translated (VAT)',
  claims: {
    puntReasons: [],
    xlatKinds: [XlatKind.VAT],
    counterRange: { first: ReasonPart.VAT, last: ReasonPart.VAT + REASON_PART_SIZE - 1 },
    configKey: 'natf',
    metricsPrefix: 'gscip_natf_',
  },
  dependsOn: ['dprp'],
  create: (ctx) => new NatfInitiator(ctx.log, ctx.config?.natf ?? natfConfigSchema.parse({}), ctx.config?.gms?.dataDir ?? null,
    ctx.config ? tablePath(ctx.config.runDir, ctx.config.instance, 'nrt') : null),
};
