/**
 * The ICMP code (= message type) of a punted GSCIP control message, over
 * either transport (control-framing.ts), read from the captured frame.
 * null when the frame is not such a message (then no part's claim applies).
 */
import { puntPacket, type PuntRec } from '../maps/codecs.js';
import { controlOfFrame } from '../parts/control-framing.js';

export function controlCodeOf(rec: PuntRec): number | null {
  const c = controlOfFrame(puntPacket(rec));
  return c ? c.msg[1] : null;
}
