/**
 * The framing of a GSCIP control message on the wire (gscip_abi.h "control
 * protocol on the wire", docs/dprp.md "Across NATs and firewalls"). The
 * message itself is the same bytes either way, an ICMP-format message (type
 * 253, code = message type, checksum, body); it travels
 *
 *   - as the payload of a UDP datagram to CONTROL_UDP_PORT (the default:
 *     NATs and stateful firewalls track and translate UDP), from that port
 *     unless it answers a message whose source port a NAT changed, or
 *   - as ICMP type 253 itself (agents that predate the UDP transport; NATs
 *     drop it as INVALID).
 *
 * Pure: building and reading the IPv4 packet; the sockets are packet-sender.ts.
 */
import { CONTROL_UDP_HLEN, CONTROL_UDP_PORT, ICMP_TYPE } from '../maps/abi.js';
import { buildIpv4Packet, IPPROTO_ICMP, parseIpv4, writeIpv4, type Ipv4View } from '../dprp/ipv4.js';
import type { ControlVia } from '../dprp/node-deps.js';

export const IPPROTO_UDP = 17;

/** A tcpdump/pcap filter for control messages over either transport (benches, `tcpdump` by hand). */
export const CONTROL_PCAP_FILTER = `udp port ${CONTROL_UDP_PORT} or (icmp and icmp[0] = ${ICMP_TYPE})`;

/** The UDP checksum over the IPv4 pseudo header and `udp` (header with checksum 0, then payload); never 0 (RFC 768). */
export function udpChecksum(src: string, dst: string, udp: Buffer): number {
  const ph = Buffer.alloc(12);
  writeIpv4(ph, 0, src, 'src');
  writeIpv4(ph, 4, dst, 'dst');
  ph[9] = IPPROTO_UDP;
  ph.writeUInt16BE(udp.length, 10);
  let sum = 0;
  const add = (b: Buffer): void => {
    let i = 0;
    for (; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
    if (i < b.length) sum += b[i] << 8;
  };
  add(ph);
  add(udp);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** The IPv4 packet carrying control message `msg` from src to dst, framed as `via` says. */
export function frameControl(src: string, dst: string, msg: Buffer, via?: ControlVia): Buffer {
  if (via?.icmp) return buildIpv4Packet(src, dst, IPPROTO_ICMP, msg);
  const udp = Buffer.alloc(CONTROL_UDP_HLEN + msg.length);
  udp.writeUInt16BE(via?.sport ?? CONTROL_UDP_PORT, 0);
  udp.writeUInt16BE(via?.dport ?? CONTROL_UDP_PORT, 2);
  udp.writeUInt16BE(udp.length, 4);
  msg.copy(udp, CONTROL_UDP_HLEN);
  udp.writeUInt16BE(udpChecksum(src, dst, udp), 6);
  return buildIpv4Packet(src, dst, IPPROTO_UDP, udp);
}

export interface ControlPacket {
  src: string;
  dst: string;
  /** UDP source port; undefined when it came as ICMP type 253. */
  sport?: number;
  /** The ICMP-format message (a view into the input). */
  msg: Buffer;
}

/**
 * The control message inside an IPv4 view, or null when it is none: ICMP of
 * type 253, or UDP to or from CONTROL_UDP_PORT whose payload is such a message (the
 * UDP checksum, when not 0, must be right: the message's own is checked by
 * its decoder).
 */
export function unframeControl(ip: Ipv4View): ControlPacket | null {
  if (ip.proto === IPPROTO_ICMP) {
    if (ip.payload.length < 2 || ip.payload[0] !== ICMP_TYPE) return null;
    return { src: ip.src, dst: ip.dst, msg: ip.payload };
  }
  if (ip.proto !== IPPROTO_UDP || ip.payload.length < CONTROL_UDP_HLEN + 2) return null;
  const u = ip.payload;
  // To the control port, or from it (an answer to a sender whose port a NAT changed).
  if (u.readUInt16BE(2) !== CONTROL_UDP_PORT && u.readUInt16BE(0) !== CONTROL_UDP_PORT) return null;
  const len = u.readUInt16BE(4);
  if (len < CONTROL_UDP_HLEN + 2 || len > u.length) return null;
  const msg = u.subarray(CONTROL_UDP_HLEN, len);
  if (msg[0] !== ICMP_TYPE) return null;
  return { src: ip.src, dst: ip.dst, sport: u.readUInt16BE(0), msg };
}

/** The bytes of the IPv4 packet inside an Ethernet frame (one optional 802.1Q tag; a view), or null when it carries none. */
export function ipBytesOfFrame(frame: Buffer): Buffer | null {
  if (frame.length < 14) return null;
  let off = 12;
  let type = frame.readUInt16BE(off);
  if (type === 0x8100 && frame.length >= 18) {
    off += 4;
    type = frame.readUInt16BE(off);
  }
  return type === 0x0800 ? frame.subarray(off + 2) : null;
}

/** The IPv4 packet inside an Ethernet frame (one optional 802.1Q tag), or null. */
export function ipOfFrame(frame: Buffer): Ipv4View | null {
  const ip = ipBytesOfFrame(frame);
  return ip ? parseIpv4(ip) : null;
}

/** The control message of a punted frame, or null. */
export function controlOfFrame(frame: Buffer): ControlPacket | null {
  const ip = ipOfFrame(frame);
  return ip ? unframeControl(ip) : null;
}
