/**
 * The GSRA router as a part (docs/gsra.md): its request codes (AUTH, BIND,
 * MAP, CLOSE), the GSRA block of the reason space, the `gsra` config
 * section, its metrics. It needs the nat part: the router's translation
 * lives in the NAT stage (router-nat.ts).
 */
import type { PartDescriptor } from '../parts/part.js';
import { REASON_PART_SIZE, ReasonPart } from '../maps/abi.js';
import { GsraCode } from './wire.js';
import { GsraRouterHandler } from './router-handler.js';

export const gsraRouterPart: PartDescriptor = {
  name: 'gsra-router',
  summary: 'GSRA router: admits remote users of an IN\'s group, maps {GEN:s<->GGR:t} <=> {PGR:t<->PIN:d} in the NAT stage',
  claims: {
    puntReasons: ['control'],
    icmpCodes: [GsraCode.AUTH, GsraCode.BIND, GsraCode.MAP, GsraCode.CLOSE],
    counterRange: { first: ReasonPart.GSRA, last: ReasonPart.GSRA + REASON_PART_SIZE - 1 },
    configKey: 'gsra',
    metricsPrefix: 'gscip_gsra_',
    cliCommands: ['gsra'],
  },
  dependsOn: ['nat'],
  create: (ctx) => new GsraRouterHandler(ctx.log, ctx.config?.gsra ?? null, ctx.config?.gms?.dataDir ?? null),
};
