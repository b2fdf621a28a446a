/**
 * GSRA's EN side as a part (docs/gsra.md "The EN part"): a remote user's
 * laptop. Names behind a GSRA router get a VIN through NAT-f's DNS rewriter
 * chain (so it needs natf), the first packet to a VIN is taken from the miss
 * chain before DPRP, and the router's answers (AUTH_OK, BIND_OK, MAP_OK,
 * REFUSE) are claimed by ICMP code. The VAT entries it writes are NAT-f's
 * kind (natf/vat.ts), which the natf part claims.
 */
import type { PartDescriptor } from '../parts/part.js';
import { MISS_ORDER } from '../parts/part.js';
import { GsraCode } from './wire.js';
import { GsraEnHandler } from './en-handler.js';

export const gsraEnPart: PartDescriptor = {
  name: 'gsra-en',
  summary: 'GSRA remote user (EN): names behind a GSRA router get a VIN; the first packet to it waits for the admission, then is translated to GGR:t (VAT)',
  claims: {
    puntReasons: ['pit_miss', 'control'],
    icmpCodes: [GsraCode.AUTH_OK, GsraCode.BIND_OK, GsraCode.MAP_OK, GsraCode.REFUSE],
    configKey: 'gsraEn',
    metricsPrefix: 'gscip_gsraen_',
  },
  dependsOn: ['natf'],
  missOrder: MISS_ORDER.GATEWAY,
  create: (ctx) => {
    const cfg = ctx.config?.gsraEn;
    if (!cfg) throw new Error('part gsra-en needs a gsraEn config section (routers, group)');
    return new GsraEnHandler(ctx.log, cfg, ctx.config?.gms?.dataDir ?? null, () => ctx.extensions.dnsRewriters?.() ?? null);
  },
};
