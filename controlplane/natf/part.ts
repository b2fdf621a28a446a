/**
 * The GNAT's NAT as a part (docs/natf.md): the NAT block of the datapath's
 * reason space, the `nat` config section, its metrics, and the `nat` kind of
 * translation. Its fast path (bpf/lib/nat.h) allocates; this part expires.
 * The NAT-f parts to come (NRT, VAT, the extended DPRP) build on it.
 */
import type { PartDescriptor } from '../parts/part.js';
import { REASON_PART_SIZE, ReasonPart, XlatKind } from '../maps/abi.js';
import { NatHandler } from './handler.js';
import { tablePath } from './tables-file.js';

export const natPart: PartDescriptor = {
  name: 'nat',
  summary: 'GNAT outbound NAPT in the fast path: inside hosts reach the global side through this GE\'s address; idle sessions expire',
  claims: {
    puntReasons: [],
    xlatKinds: [XlatKind.NAT],
    counterRange: { first: ReasonPart.NAT, last: ReasonPart.NAT + REASON_PART_SIZE - 1 },
    configKey: 'nat',
    metricsPrefix: 'gscip_nat_',
  },
  create: (ctx) => new NatHandler(ctx.log, ctx.config?.nat ?? null, ctx.config?.gms?.dataDir ?? null,
    ctx.config ? tablePath(ctx.config.runDir, ctx.config.instance, 'act') : null),
};
