/**
 * The prompt failure a NAT-f initiator gives an application whose flow to a
 * virtual address was refused (the GNAT's ACT, its NAT table, no answer, the
 * pool): an ICMP destination unreachable, code 13 (communication
 * administratively prohibited, RFC 1812), from the virtual address to the
 * application, quoting its stashed packet (IPv4 header + 8 bytes). The stack
 * ends a connecting TCP socket at once (EHOSTUNREACH) and reports it on a
 * connected UDP socket, instead of retransmitting into nothing. Pure.
 */
import { inetChecksum } from '../dprp/ipv4.js';

export const ICMP_UNREACH = 3;
export const ICMP_CODE_ADMIN_PROHIBITED = 13;

/** An Ethernet frame carrying the ICMP error toward the stashed frame's sender; null if that frame is not IPv4. */
export function unreachableFor(stashed: Buffer): Buffer | null {
  if (stashed.length < 14 + 20 || stashed.readUInt16BE(12) !== 0x0800 || stashed[14] >> 4 !== 4) return null;
  const ihl = (stashed[14] & 0xf) * 4;
  const quoteLen = Math.min(stashed.length - 14, ihl + 8);
  const quote = stashed.subarray(14, 14 + quoteLen);
  const icmp = Buffer.alloc(8 + quoteLen);
  icmp[0] = ICMP_UNREACH;
  icmp[1] = ICMP_CODE_ADMIN_PROHIBITED;
  quote.copy(icmp, 8);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  stashed.copy(ip, 12, 14 + 16, 14 + 20);  // from the address the application sent to (the virtual one)
  stashed.copy(ip, 16, 14 + 12, 14 + 16);  // to the application
  ip.writeUInt16BE(inetChecksum(ip), 10);
  const eth = Buffer.alloc(14);
  stashed.copy(eth, 0, 6, 12);  // to the sender's MAC
  stashed.copy(eth, 6, 0, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, icmp]);
}
