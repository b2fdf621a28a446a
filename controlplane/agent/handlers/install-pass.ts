/**
 * Built-in handler `install-pass`: every new flow is allowed. On a PIT miss it
 * installs pass entries for both directions of the flow (the CID as punted,
 * and its reverse seen in the other direction), then releases the stashed
 * packet(s) so the first packet is not lost. Used by the demo and tests; a
 * GE in production uses DPRP instead.
 */
import { PuntReason } from '../../maps/abi.js';
import { passEntry, reverseCid } from '../../maps/accessors.js';
import type { PuntHandler, PuntHandlerFactory } from '../../parts/handler.js';
import type { PartDescriptor } from '../../parts/part.js';

export { reverseCid } from '../../maps/accessors.js';

export const installPass: PuntHandlerFactory = ({ log }) => {
  const h: PuntHandler = {
    name: 'install-pass',
    onMiss(rec, ctx) {
      const e = passEntry();
      ctx.maps.pit.setBatch([[rec.cid, e], [reverseCid(rec.cid), e]]);
      log.debug({ cid: rec.cid }, 'installed pass entries for both directions');
      if (rec.reason === PuntReason.PIT_MISS) ctx.releaseFlow(rec.cid);
    },
  };
  return h;
};

/** The part: takes PIT misses (after any part earlier in the chain), claims nothing else. */
export const installPassPart: PartDescriptor = {
  name: 'install-pass',
  summary: 'passes every new flow (both directions) and releases its first packet; demo and tests',
  claims: { puntReasons: ['pit_miss', 'truncated'] },
  create: installPass,
};
