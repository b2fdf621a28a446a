/**
 * An IPv4 address added to an interface by one rtnetlink message (RTM_NEWADDR)
 * from the agent itself: a syscall, where `ip addr add` is a process (5-40 ms
 * on a loaded host) the moved sockets wait for (host-addresses.ts keeps the
 * old address on lo). Fire and forget: the kernel's answer is not read (an
 * error would come back as a message on the socket); AddressKeeper's `ip`
 * call after it confirms ("File exists") and reports a real failure.
 * The message encoder is pure (test/unit/mobility-transit.test.ts checks it
 * byte by byte against rtnetlink(7)).
 */
import { AF_INET, closeFd, ifNameToIndex, sendto, socket, SOCK_RAW } from '../bpf/libc.js';

const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
export const RTM_NEWADDR = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

/** nlmsghdr + ifaddrmsg + IFA_LOCAL + IFA_ADDRESS: `addr`/`prefixLen` on `ifindex` (host byte order, little-endian hosts). */
export function newAddrMessage(seq: number, ifindex: number, addr: string, prefixLen: number): Buffer {
  const ip = Buffer.from(addr.split('.').map((x) => {
    const n = Number(x);
    if (!/^\d{1,3}$/.test(x) || n > 255) throw new RangeError(`not an IPv4 address: ${addr}`);
    return n;
  }));
  if (ip.length !== 4) throw new RangeError(`not an IPv4 address: ${addr}`);
  const b = Buffer.alloc(16 + 8 + 8 + 8);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(RTM_NEWADDR, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, 6);
  b.writeUInt32LE(seq >>> 0, 8);
  b.writeUInt32LE(0, 12);
  b.writeUInt8(AF_INET, 16);
  b.writeUInt8(prefixLen, 17);
  b.writeUInt8(0, 18); // flags
  b.writeUInt8(0, 19); // scope universe, as `ip addr add`
  b.writeUInt32LE(ifindex, 20);
  for (const [off, type] of [[24, IFA_LOCAL], [32, IFA_ADDRESS]] as const) {
    b.writeUInt16LE(8, off);
    b.writeUInt16LE(type, off + 2);
    ip.copy(b, off + 4);
  }
  return b;
}

export class NetlinkAddresses {
  private fd = -1;
  private seq = 1;
  private readonly kernel = Buffer.alloc(12);

  constructor() {
    this.kernel.writeUInt16LE(AF_NETLINK, 0);
  }

  /** Sends the RTM_NEWADDR of addr/32 on lo; throws if the socket or the send fails (the caller falls back to `ip`). */
  addHostAddress(addr: string): void {
    if (this.fd < 0) this.fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    sendto(this.fd, newAddrMessage(this.seq++, ifNameToIndex('lo'), addr, 32), this.kernel);
  }

  close(): void {
    closeFd(this.fd);
    this.fd = -1;
  }
}
