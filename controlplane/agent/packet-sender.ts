/**
 * Re-injects packets: the release of a stashed (punted) packet and the send
 * of GSCIP control messages.
 *
 * Release: the exact stashed bytes (from the Ethernet header on) go out of
 * the interface through an AF_PACKET socket whose SO_MARK tells the egress
 * program what to do (gscip_abi.h, bpf/lib/release.h):
 *   GSCIP_MARK_RELEASE_EGRESS  -> processed as egress (takes its PIT hit)
 *   GSCIP_MARK_RELEASE_INGRESS -> redirected to the same interface's ingress
 * Control: raw IPv4 (IP_HDRINCL) bound to the interface, so the kernel routes
 * and resolves the next hop, with SO_MARK = GSCIP_MARK_CONTROL_TX: the egress
 * program passes (and unmarks) control messages carrying it and punts the
 * ones that do not (a message a GEN forwards from its inside), so the agent
 * sees every control message that crosses a guarded interface exactly once.
 */
import { Dir, MARK_CONTROL_TX, MARK_DNS_REINJECT, MARK_RELEASE_EGRESS, MARK_RELEASE_INGRESS } from '../maps/abi.js';
import {
  AF_INET, AF_PACKET, IPPROTO_IP, IPPROTO_RAW, IP_HDRINCL, SOCK_RAW, SOL_SOCKET, SO_BINDTODEVICE, SO_MARK, closeFd, ifIndexToName,
  sendto, setsockoptBytes, setsockoptU32, socket,
} from '../bpf/libc.js';

/** struct sockaddr_ll for sending on ifindex (protocol 0: this socket never receives). */
function sockaddrLl(ifindex: number): Buffer {
  const a = Buffer.alloc(20);
  a.writeUInt16LE(AF_PACKET, 0); // sll_family
  a.writeUInt16BE(0, 2);         // sll_protocol
  a.writeInt32LE(ifindex, 4);    // sll_ifindex
  return a;
}

/** struct sockaddr_in for a raw IPv4 send (the header inside the packet decides; this is for routing). */
function sockaddrIn(daddr: Buffer): Buffer {
  const a = Buffer.alloc(16);
  a.writeUInt16LE(AF_INET, 0);
  daddr.copy(a, 4, 0, 4);
  return a;
}

export class PacketSender {
  private readonly egressFd: number;
  private readonly ingressFd: number;
  private readonly rawByIf = new Map<number, number>();
  /** NAT-f's DNS re-injection (bpf/lib/dns.h), made on first use. */
  private dnsFd: number | null = null;
  private closed = false;

  constructor() {
    // Protocol 0: transmit-only, never copies received traffic to user space.
    this.egressFd = socket(AF_PACKET, SOCK_RAW, 0);
    try {
      setsockoptU32(this.egressFd, SOL_SOCKET, SO_MARK, MARK_RELEASE_EGRESS);
      this.ingressFd = socket(AF_PACKET, SOCK_RAW, 0);
    } catch (e) { closeFd(this.egressFd); throw e; }
    try {
      setsockoptU32(this.ingressFd, SOL_SOCKET, SO_MARK, MARK_RELEASE_INGRESS);
    } catch (e) { closeFd(this.egressFd); closeFd(this.ingressFd); throw e; }
  }

  /** Re-send a stashed frame so the fast path processes it again in direction `dir`. */
  release(ifindex: number, dir: number, frame: Buffer): void {
    if (this.closed) throw new Error('packet sender closed');
    if (frame.length < 14) throw new RangeError(`release: frame of ${frame.length} bytes is shorter than an Ethernet header`);
    sendto(dir === Dir.INGRESS ? this.ingressFd : this.egressFd, frame, sockaddrLl(ifindex));
  }

  /** Re-inject a (rewritten) DNS answer frame punted on ifindex's ingress: it reaches the stack past the PIT and the DNS stage. */
  reinjectDns(ifindex: number, frame: Buffer): void {
    if (this.closed) throw new Error('packet sender closed');
    if (frame.length < 14) throw new RangeError(`reinjectDns: frame of ${frame.length} bytes is shorter than an Ethernet header`);
    if (this.dnsFd === null) {
      const fd = socket(AF_PACKET, SOCK_RAW, 0);
      try { setsockoptU32(fd, SOL_SOCKET, SO_MARK, MARK_DNS_REINJECT); } catch (e) { closeFd(fd); throw e; }
      this.dnsFd = fd;
    }
    sendto(this.dnsFd, frame, sockaddrLl(ifindex));
  }

  /** Send a complete IPv4 packet (header included) out of ifindex, routed by the kernel. */
  sendIpv4(ifindex: number, packet: Buffer): void {
    if (this.closed) throw new Error('packet sender closed');
    if (packet.length < 20 || packet[0] >> 4 !== 4) throw new RangeError('sendControl: not an IPv4 packet');
    let fd = this.rawByIf.get(ifindex);
    if (fd === undefined) {
      const name = ifIndexToName(ifindex);
      if (name === null) throw new RangeError(`sendControl: no interface with ifindex ${ifindex}`);
      fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
      try {
        setsockoptU32(fd, IPPROTO_IP, IP_HDRINCL, 1);
        setsockoptU32(fd, SOL_SOCKET, SO_MARK, MARK_CONTROL_TX);
        setsockoptBytes(fd, SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${name}\0`, 'latin1'));
      } catch (e) { closeFd(fd); throw e; }
      this.rawByIf.set(ifindex, fd);
    }
    sendto(fd, packet, sockaddrIn(packet.subarray(16, 20)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.egressFd);
    closeFd(this.ingressFd);
    if (this.dnsFd !== null) closeFd(this.dnsFd);
    for (const fd of this.rawByIf.values()) closeFd(fd);
    this.rawByIf.clear();
  }
}
