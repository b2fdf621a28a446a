/**
 * The mark of a flow's first packet (nat-follow.ts): what a GE past a NAT
 * recognises it by. A TCP packet's sequence number: neither a NAT nor PCCOM
 * changes it, and a retransmitted SYN keeps it. A UDP datagram's IP ID: in
 * PCCOM's UDP wire-valid form it is the flow key's counter 0 bits and K
 * (pccom/udp-wire.ts), different for each flow and unchanged by the NAT;
 * otherwise it names nothing and no wait names it. Pure.
 */
import { ipOfFrame } from '../parts/control-framing.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** The mark of the packet in an Ethernet frame, or null. */
export function firstPacketMark(frame: Buffer): number | null {
  const ip = ipOfFrame(frame);
  if (!ip) return null;
  if (ip.proto === IPPROTO_TCP) return ip.payload.length < 8 ? null : ip.payload.readUInt32BE(4);
  if (ip.proto !== IPPROTO_UDP) return null;
  const l3 = frame.readUInt16BE(12) === 0x8100 ? 18 : 14;
  return frame.readUInt16BE(l3 + 4);
}
