/**
 * A packet punted on a virtual or offloading device may still carry a
 * CHECKSUM_PARTIAL TCP/UDP checksum: the field holds only the pseudo-header
 * sum and the NIC (or the veth peer) was to finish it. Re-sent as raw bytes
 * through AF_PACKET it would arrive with a wrong checksum and be dropped, and
 * the sender would wait for a retransmission: exactly what release must avoid.
 *
 * completePartialChecksum() finishes such a checksum and touches nothing
 * else: a correct checksum is left alone, and a checksum that is neither
 * correct nor partial (a corrupted packet) is left alone too, so corruption is
 * never masked. Pure; operates on a frame from its Ethernet header on.
 */

function sum16(b: Buffer, start: number, end: number, initial = 0): number {
  let s = initial;
  let i = start;
  for (; i + 1 < end; i += 2) s += b.readUInt16BE(i);
  if (i < end) s += b[i] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export type ChecksumFixup = 'not_applicable' | 'valid' | 'completed' | 'invalid_left_alone';

export function completePartialChecksum(frame: Buffer): ChecksumFixup {
  if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800) return 'not_applicable';
  const l3 = 14;
  if (frame[l3] >> 4 !== 4) return 'not_applicable';
  const ihl = (frame[l3] & 0xf) * 4;
  const tot = frame.readUInt16BE(l3 + 2);
  const frag = frame.readUInt16BE(l3 + 6);
  if (ihl < 20 || tot < ihl || l3 + tot > frame.length) return 'not_applicable'; // truncated capture: cannot sum the payload
  if (frag & 0x3fff) return 'not_applicable';                                    // fragment: payload incomplete
  const proto = frame[l3 + 9];
  const l4 = l3 + ihl;
  const l4len = tot - ihl;
  let csumOff: number;
  if (proto === 6 && l4len >= 20) csumOff = l4 + 16;
  else if (proto === 17 && l4len >= 8) {
    csumOff = l4 + 6;
    if (frame.readUInt16BE(csumOff) === 0) return 'valid'; // UDP without checksum
  } else return 'not_applicable';
  const pseudo = sum16(frame, l3 + 12, l3 + 20, proto + l4len);
  const field = frame.readUInt16BE(csumOff);
  if (sum16(frame, l4, l4 + l4len, pseudo) === 0xffff) return 'valid';
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented.
  if (field !== pseudo) return 'invalid_left_alone';
  frame.writeUInt16BE(0, csumOff);
  let c = (~sum16(frame, l4, l4 + l4len, pseudo)) & 0xffff;
  if (proto === 17 && c === 0) c = 0xffff; // RFC 768: a computed zero is sent as all ones
  frame.writeUInt16BE(c, csumOff);
  return 'completed';
}
