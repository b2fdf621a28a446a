/**
 * Built-in handler `install-pass`: every new flow is allowed. On a PIT miss it
 * installs pass entries for both directions of the flow (the CID as punted,
 * and its reverse seen in the other direction), then releases the stashed
 * packet(s) so the first packet is not lost. Used by the demo and tests; a
 * GE in production uses DPRP instead.
 */
import { Action, Dir, PitState, PuntReason, Role } from '../../maps/abi.js';
import type { Cid, PitVal } from '../../maps/codecs.js';
import type { PuntHandler, PuntHandlerFactory } from '../handler.js';

export function reverseCid(c: Cid): Cid {
  return { saddr: c.daddr, daddr: c.saddr, sport: c.dport, dport: c.sport, proto: c.proto, dir: c.dir === Dir.INGRESS ? Dir.EGRESS : Dir.INGRESS };
}

export function passEntry(now: bigint): PitVal {
  return { action: Action.PASS, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: 0, key_version: 0, created_ns: now, last_seen_ns: now };
}

export const installPass: PuntHandlerFactory = ({ log }) => {
  const h: PuntHandler = {
    name: 'install-pass',
    onMiss(rec, ctx) {
      const now = ctx.nowNs();
      ctx.maps.pit.setBatch([[rec.cid, passEntry(now)], [reverseCid(rec.cid), passEntry(now)]]);
      log.debug({ cid: rec.cid }, 'installed pass entries for both directions');
      if (rec.reason === PuntReason.PIT_MISS) ctx.releaseFlow(rec.cid);
    },
  };
  return h;
};
