/**
 * Reading what tcpdump wrote (classic pcap, `tcpdump -w`): the frames, and for
 * each IPv4 TCP/UDP record its addresses and ports. Used by the datapath tests
 * (Ethernet captures on one interface) and by `gscip selftest` (a capture on
 * `-i any`, whose records carry a Linux "cooked" header instead of Ethernet).
 * Independent of the code under test: nothing here comes from the datapath.
 */

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

/** sll_pkttype values (linux/if_packet.h). */
export const PACKET_HOST = 0;
export const PACKET_OUTGOING = 4;

const ETH_P_IP = 0x0800;

export interface PcapFile { linktype: number; records: Buffer[] }

/** The records of a classic pcap file, any link type, in capture order. A record cut short by the writer being stopped is left out. */
export function readPcapFile(file: Buffer): PcapFile {
  if (file.length < 24) throw new RangeError(`pcap: ${file.length} bytes is shorter than the 24-byte file header`);
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) {
    throw new RangeError(`pcap: bad magic 0x${magic.toString(16)}`);
  }
  const u32 = (off: number): number => (le ? file.readUInt32LE(off) : file.readUInt32BE(off));
  const linktype = u32(20);
  const records: Buffer[] = [];
  for (let off = 24; off + 16 <= file.length;) {
    const capLen = u32(off + 8);
    if (off + 16 + capLen > file.length) break;
    records.push(file.subarray(off + 16, off + 16 + capLen));
    off += 16 + capLen;
  }
  return { linktype, records };
}

/** Frames of a classic pcap file (tcpdump -w, linktype Ethernet), in capture order. */
export function readPcap(file: Buffer): Buffer[] {
  const p = readPcapFile(file);
  if (p.linktype !== LINKTYPE_ETHERNET) throw new RangeError(`pcap: linktype ${p.linktype}, expected 1 (Ethernet)`);
  return p.records;
}

export interface CapturedIp {
  /** sll_pkttype for cooked captures (PACKET_HOST: arrived at the capturing host, PACKET_OUTGOING: sent by it); null for Ethernet. */
  pktType: number | null;
  proto: number;
  src: string;
  dst: string;
  /** 0 unless TCP/UDP with the ports captured. */
  sport: number;
  dport: number;
  /** The whole record as captured (link header included). */
  record: Buffer;
}

/** Where the network header starts and which EtherType it has, per link type; null for link types not handled. */
function l3Of(linktype: number, r: Buffer): { off: number; etherType: number; pktType: number | null } | null {
  switch (linktype) {
    case LINKTYPE_ETHERNET: return r.length < 14 ? null : { off: 14, etherType: r.readUInt16BE(12), pktType: null };
    case LINKTYPE_LINUX_SLL: return r.length < 16 ? null : { off: 16, etherType: r.readUInt16BE(14), pktType: r.readUInt16BE(0) };
    case LINKTYPE_LINUX_SLL2: return r.length < 20 ? null : { off: 20, etherType: r.readUInt16BE(0), pktType: r[10] };
    default: return null;
  }
}

/** The IPv4 records of a capture with their addresses and ports (other records are skipped). Throws for a link type it cannot read. */
export function ipv4Records(p: PcapFile): CapturedIp[] {
  if (![LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2].includes(p.linktype)) {
    throw new RangeError(`pcap: linktype ${p.linktype} is not Ethernet (1), LINUX_SLL (113) or LINUX_SLL2 (276)`);
  }
  const out: CapturedIp[] = [];
  for (const r of p.records) {
    const l = l3Of(p.linktype, r);
    if (!l || l.etherType !== ETH_P_IP || r.length < l.off + 20) continue;
    const ip = r.subarray(l.off);
    const ihl = (ip[0] & 0xf) * 4;
    const proto = ip[9];
    const dot = (o: number): string => `${ip[o]}.${ip[o + 1]}.${ip[o + 2]}.${ip[o + 3]}`;
    const hasPorts = (proto === 6 || proto === 17) && ip.length >= ihl + 4;
    out.push({
      pktType: l.pktType, proto, src: dot(12), dst: dot(16),
      sport: hasPorts ? ip.readUInt16BE(ihl) : 0, dport: hasPorts ? ip.readUInt16BE(ihl + 2) : 0, record: r,
    });
  }
  return out;
}

/** How many times `needle` occurs in `hay` (overlaps counted), at most `limit`. */
export function countOccurrences(hay: Buffer, needle: Buffer, limit = 1_000_000): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0 && n < limit; i = hay.indexOf(needle, i + 1)) n++;
  return n;
}
