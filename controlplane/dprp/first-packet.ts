/**
 * The mark of a flow's first packet (nat-follow.ts): what a GE past a NAT
 * recognises it by. A TCP packet's sequence number: neither a NAT nor PCCOM
 * changes it, and a retransmitted SYN keeps it. Nothing for UDP (a datagram
 * has no field both ends see unchanged: PCCOM's per-flow counter rewrites the
 * IP ID): null. Pure.
 */
import { ipOfFrame } from '../parts/control-framing.js';

const IPPROTO_TCP = 6;

/** The mark of the packet in an Ethernet frame, or null. */
export function firstPacketMark(frame: Buffer): number | null {
  const ip = ipOfFrame(frame);
  if (!ip || ip.proto !== IPPROTO_TCP || ip.payload.length < 8) return null;
  return ip.payload.readUInt32BE(4);
}
