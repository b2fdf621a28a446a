/**
 * The mover announces its new address on the link (a gratuitous ARP, RFC 5227
 * "ARP announcement": sender = target = the new address, broadcast), as DHCP
 * clients do. Why (docs/mobility.md "Handover time"): a router the GE left a
 * moment ago may still hold an INCOMPLETE neighbour entry for the address
 * (packets in flight to it after the GE left); packets to the address then
 * wait for that entry's next probe, up to the ARP retransmit time (1 s): the
 * bench's ~1 s tail. Any ARP from the address resolves the entry at once; a
 * router without an entry resolves it on first use anyway (an announcement
 * creates none: arp_accept 0).
 *
 * Sent through an AF_PACKET socket on the interface (libc via koffi).
 */
import { spawnSync } from 'node:child_process';
import { AF_PACKET, closeFd, ifNameToIndex, SOCK_RAW, sendto, socket } from '../bpf/libc.js';
import { writeIpv4 } from '../dprp/ipv4.js';

const ETH_P_ARP = 0x0806;

/** The announcement frame (Ethernet + ARP request) of `addr` from `mac`. */
export function arpAnnouncement(mac: Buffer, addr: string): Buffer {
  if (mac.length !== 6) throw new RangeError(`MAC of ${mac.length} bytes`);
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6); // broadcast
  mac.copy(f, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(1, 14); // htype Ethernet
  f.writeUInt16BE(0x0800, 16); // ptype IPv4
  f[18] = 6; f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  mac.copy(f, 22);
  writeIpv4(f, 28, addr, 'announced address');
  // target hardware address stays zero; target protocol address = the sender's
  writeIpv4(f, 38, addr, 'announced address');
  return f;
}

/** The interface's MAC (`ip -j link`), or null. */
export function macOf(dev: string): Buffer | null {
  const r = spawnSync('ip', ['-j', 'link', 'show', 'dev', dev], { encoding: 'utf8', timeout: 5000 });
  try {
    const a = (JSON.parse(r.stdout) as Array<{ address?: string }>)[0]?.address;
    return a && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(a) ? Buffer.from(a.replace(/:/g, ''), 'hex') : null;
  } catch {
    return null;
  }
}

export class AddressAnnouncer {
  private readonly macs = new Map<string, Buffer | null>();

  constructor(private readonly onError: (what: string, err: string) => void) {}

  /** One announcement of `addr` on `dev`. Never throws. */
  announce(dev: string, addr: string): boolean {
    try {
      if (!this.macs.has(dev)) this.macs.set(dev, macOf(dev));
      const mac = this.macs.get(dev);
      if (!mac) { this.onError(`announce ${addr}`, `no MAC on ${dev}`); return false; }
      const fd = socket(AF_PACKET, SOCK_RAW, 0);
      try {
        const ll = Buffer.alloc(20);
        ll.writeUInt16LE(AF_PACKET, 0);
        ll.writeUInt16BE(ETH_P_ARP, 2);
        ll.writeInt32LE(ifNameToIndex(dev), 4);
        ll[11] = 6;
        ll.fill(0xff, 12, 18);
        sendto(fd, arpAnnouncement(mac, addr), ll);
      } finally {
        closeFd(fd);
      }
      return true;
    } catch (e) {
      this.onError(`announce ${addr}`, (e as Error).message);
      return false;
    }
  }
}
