/**
 * The ICMP code of a punted GSCIP control message (ICMP type GSCIP_ICMP_TYPE),
 * read from the captured frame: Ethernet, one optional 802.1Q tag, IPv4, ICMP.
 * null when the frame is not such a message (then no part's claim applies).
 */
import { ICMP_TYPE } from '../maps/abi.js';
import { puntPacket, type PuntRec } from '../maps/codecs.js';

export function controlCodeOf(rec: PuntRec): number | null {
  const b = puntPacket(rec);
  if (b.length < 14) return null;
  let off = 12;
  let type = b.readUInt16BE(off);
  if (type === 0x8100) {
    if (b.length < 18) return null;
    off += 4;
    type = b.readUInt16BE(off);
  }
  if (type !== 0x0800) return null;
  const ip = off + 2;
  if (b.length < ip + 20 || b[ip] >> 4 !== 4) return null;
  const ihl = (b[ip] & 0x0f) * 4;
  if (ihl < 20 || b[ip + 9] !== 1) return null;
  const icmp = ip + ihl;
  if (b.length < icmp + 2 || b[icmp] !== ICMP_TYPE) return null;
  return b[icmp + 1];
}
