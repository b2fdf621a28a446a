/**
 * Crafted packets for BPF_PROG_TEST_RUN tests: Ethernet / IPv4 (with options,
 * fragments) / TCP / UDP / ICMP, IPv6 and ARP frames, and an independent
 * parser + checksum verifier (RFC 1071 one's-complement sum computed from
 * scratch here, never by the code under test).
 *
 * Builders produce correct checksums unless told otherwise, so a test can
 * break exactly one thing. Addresses are checked against the test ranges.
 */
import { assertTestAddress } from './netns.js';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const ETH_HLEN = 14;

const SRC_MAC = Buffer.from('02000000000a', 'hex');
const DST_MAC = Buffer.from('02000000000b', 'hex');

/** Dotted IPv4 -> 4 bytes (network order). Only test ranges are accepted. */
export function ip4(addr: string): Buffer {
  assertTestAddress(addr);
  const parts = addr.split('.').map(Number);
  return Buffer.from(parts);
}

export function ip4ToString(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 1071 sum of `data`, folded, NOT complemented (so it can be chained). */
export function onesSum(data: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The Internet checksum of `data` (complemented). */
export function inetChecksum(data: Buffer, initial = 0): number {
  return ~onesSum(data, initial) & 0xffff;
}

function pseudoHeaderSum(src: Buffer, dst: Buffer, proto: number, l4Len: number): number {
  const ph = Buffer.alloc(12);
  src.copy(ph, 0);
  dst.copy(ph, 4);
  ph[9] = proto;
  ph.writeUInt16BE(l4Len, 10);
  return onesSum(ph);
}

export function ethernet(etherType: number, payload: Buffer, opts: { src?: Buffer; dst?: Buffer } = {}): Buffer {
  const h = Buffer.alloc(ETH_HLEN);
  (opts.dst ?? DST_MAC).copy(h, 0);
  (opts.src ?? SRC_MAC).copy(h, 6);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, payload]);
}

export interface Ipv4Opts {
  src: string;
  dst: string;
  proto: number;
  ttl?: number;
  id?: number;
  /** IP options (padded to a multiple of 4 by the builder). */
  options?: Buffer;
  moreFragments?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  /** Override the total length field (to craft malformed packets). */
  totalLength?: number;
  /** Override the IHL field (to craft malformed packets). */
  ihl?: number;
}

/** IPv4 header + l4 bytes, header checksum correct for the fields as given. */
export function ipv4(o: Ipv4Opts, l4: Buffer): Buffer {
  let opts = o.options ?? Buffer.alloc(0);
  if (opts.length % 4) opts = Buffer.concat([opts, Buffer.alloc(4 - (opts.length % 4))]);
  const hlen = 20 + opts.length;
  const h = Buffer.alloc(hlen);
  h[0] = 0x40 | ((o.ihl ?? hlen / 4) & 0xf);
  h.writeUInt16BE(o.totalLength ?? hlen + l4.length, 2);
  h.writeUInt16BE(o.id ?? 0x1234, 4);
  h.writeUInt16BE((o.moreFragments ? 0x2000 : 0) | ((o.fragOffset ?? 0) & 0x1fff), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  ip4(o.src).copy(h, 12);
  ip4(o.dst).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, l4]);
}

export interface FlowOpts {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload?: Buffer;
  ip?: Partial<Ipv4Opts>;
}

export interface TcpOpts extends FlowOpts {
  seq?: number;
  ack?: number;
  /** TCP flags byte (default SYN = 0x02). */
  flags?: number;
  /** TCP options (padded to a multiple of 4). */
  tcpOptions?: Buffer;
  /** Override data offset (in 32-bit words) to craft malformed headers. */
  doff?: number;
}

/** Ethernet + IPv4 + TCP frame with correct checksums. */
export function tcpFrame(o: TcpOpts): Buffer {
  let topts = o.tcpOptions ?? Buffer.alloc(0);
  if (topts.length % 4) topts = Buffer.concat([topts, Buffer.alloc(4 - (topts.length % 4))]);
  const payload = o.payload ?? Buffer.alloc(0);
  const hlen = 20 + topts.length;
  const t = Buffer.alloc(hlen);
  t.writeUInt16BE(o.sport, 0);
  t.writeUInt16BE(o.dport, 2);
  t.writeUInt32BE((o.seq ?? 1000) >>> 0, 4);
  t.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  t[12] = ((o.doff ?? hlen / 4) & 0xf) << 4;
  t[13] = o.flags ?? 0x02;
  t.writeUInt16BE(0xffff, 14);
  topts.copy(t, 20);
  const l4 = Buffer.concat([t, payload]);
  const sum = pseudoHeaderSum(ip4(o.src), ip4(o.dst), IPPROTO_TCP, l4.length);
  l4.writeUInt16BE(inetChecksum(l4, sum), 16);
  return ethernet(ETH_P_IP, ipv4({ src: o.src, dst: o.dst, proto: IPPROTO_TCP, ...o.ip }, l4));
}

export interface UdpOpts extends FlowOpts {
  /** Send with checksum 0 ("no checksum", RFC 768). */
  zeroChecksum?: boolean;
  /** Override the UDP length field. */
  udpLength?: number;
}

/** Ethernet + IPv4 + UDP frame with a correct (or zero) checksum. */
export function udpFrame(o: UdpOpts): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const u = Buffer.alloc(8);
  u.writeUInt16BE(o.sport, 0);
  u.writeUInt16BE(o.dport, 2);
  u.writeUInt16BE(o.udpLength ?? 8 + payload.length, 4);
  const l4 = Buffer.concat([u, payload]);
  if (!o.zeroChecksum) {
    const sum = pseudoHeaderSum(ip4(o.src), ip4(o.dst), IPPROTO_UDP, l4.length);
    const c = inetChecksum(l4, sum);
    l4.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  }
  return ethernet(ETH_P_IP, ipv4({ src: o.src, dst: o.dst, proto: IPPROTO_UDP, ...o.ip }, l4));
}

/** Ethernet + IPv4 + ICMP (echo-style 8-byte header + payload). */
export function icmpFrame(o: { src: string; dst: string; type: number; code?: number; payload?: Buffer; ip?: Partial<Ipv4Opts> }): Buffer {
  const h = Buffer.alloc(8);
  h[0] = o.type;
  h[1] = o.code ?? 0;
  h.writeUInt32BE(0x00010001, 4);
  const l4 = Buffer.concat([h, o.payload ?? Buffer.alloc(0)]);
  l4.writeUInt16BE(inetChecksum(l4), 2);
  return ethernet(ETH_P_IP, ipv4({ src: o.src, dst: o.dst, proto: IPPROTO_ICMP, ...o.ip }, l4));
}

/** Minimal IPv6 + UDP frame (documentation prefix 2001:db8::/32). */
export function ipv6UdpFrame(): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(8 + 4, 4);
  h[6] = IPPROTO_UDP;
  h[7] = 64;
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(h, 8);
  Buffer.from('20010db8000000000000000000000002', 'hex').copy(h, 24);
  const u = Buffer.alloc(12);
  u.writeUInt16BE(1000, 0);
  u.writeUInt16BE(2000, 2);
  u.writeUInt16BE(12, 4);
  u.write('ping', 8);
  return ethernet(ETH_P_IPV6, Buffer.concat([h, u]));
}

/** IPv6 address text (full or :: shortened, no embedded IPv4) -> 16 bytes. */
export function ip6(addr: string): Buffer {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new RangeError(`not an IPv6 address: ${addr}`);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** IPv6 frame with a given next header and payload (no checksum is computed: the datapath verifies none). */
export function ipv6Frame(o: { src: string; dst: string; nextHeader: number; hopLimit?: number; payload: Buffer }): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(o.payload.length, 4);
  h[6] = o.nextHeader;
  h[7] = o.hopLimit ?? 64;
  ip6(o.src).copy(h, 8);
  ip6(o.dst).copy(h, 24);
  return ethernet(ETH_P_IPV6, Buffer.concat([h, o.payload]));
}

/** ICMPv6 message (type, code, 4 bytes of rest-of-header, then body) inside IPv6. */
export function icmpv6Frame(o: { src: string; dst: string; type: number; code?: number; hopLimit?: number; body?: Buffer }): Buffer {
  const m = Buffer.concat([Buffer.from([o.type, o.code ?? 0, 0, 0, 0, 0, 0, 0]), o.body ?? Buffer.alloc(0)]);
  return ipv6Frame({ src: o.src, dst: o.dst, nextHeader: 58, hopLimit: o.hopLimit, payload: m });
}

/** ARP request (who-has dst tell src). */
export function arpFrame(src: string, dst: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(ETH_P_IP, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6); // request
  SRC_MAC.copy(a, 8);
  ip4(src).copy(a, 14);
  ip4(dst).copy(a, 24);
  return ethernet(ETH_P_ARP, a, { dst: Buffer.from('ffffffffffff', 'hex') });
}

/** 802.1Q-tagged IPv4/UDP frame (VLAN 100). */
export function vlanUdpFrame(o: UdpOpts): Buffer {
  const inner = udpFrame(o);
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(ETH_P_8021Q, 0);
  tag.writeUInt16BE(100, 2);
  return Buffer.concat([inner.subarray(0, 12), tag, inner.subarray(12)]);
}

export interface ParsedFrame {
  etherType: number;
  ip?: {
    ihl: number;
    totalLength: number;
    proto: number;
    src: string;
    dst: string;
    ttl: number;
    checksum: number;
    /** Header checksum verifies. */
    checksumOk: boolean;
  };
  l4?: {
    sport: number;
    dport: number;
    checksum: number;
    /** L4 checksum over pseudo-header + segment verifies (UDP 0 = "none" counts as ok). */
    checksumOk: boolean;
    payload: Buffer;
  };
}

/** Independent parse of an Ethernet/IPv4/TCP|UDP frame (for assertions). */
export function parseFrame(f: Buffer): ParsedFrame {
  const etherType = f.readUInt16BE(12);
  const out: ParsedFrame = { etherType };
  if (etherType !== ETH_P_IP) return out;
  const l3 = f.subarray(ETH_HLEN);
  const ihl = (l3[0] & 0xf) * 4;
  const totalLength = l3.readUInt16BE(2);
  const proto = l3[9];
  const ipHdr = l3.subarray(0, ihl);
  out.ip = {
    ihl,
    totalLength,
    proto,
    src: ip4ToString(l3, 12),
    dst: ip4ToString(l3, 16),
    ttl: l3[8],
    checksum: l3.readUInt16BE(10),
    checksumOk: onesSum(ipHdr) === 0xffff,
  };
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return out;
  const seg = l3.subarray(ihl, totalLength);
  const csumOff = proto === IPPROTO_TCP ? 16 : 6;
  const l4hlen = proto === IPPROTO_TCP ? (seg[12] >> 4) * 4 : 8;
  const checksum = seg.readUInt16BE(csumOff);
  const ph = pseudoHeaderSum(l3.subarray(12, 16), l3.subarray(16, 20), proto, seg.length);
  const ok = proto === IPPROTO_UDP && checksum === 0 ? true : onesSum(seg, ph) === 0xffff;
  out.l4 = {
    sport: seg.readUInt16BE(0),
    dport: seg.readUInt16BE(2),
    checksum,
    checksumOk: ok,
    payload: seg.subarray(l4hlen),
  };
  return out;
}

/** The pcap reader lives in the product (gscip selftest reads captures too). */
export { readPcap } from '../../controlplane/lab/pcap.js';
