/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* csum.h - one's-complement arithmetic, and IPv4 address / L4 port rewrites
 * with incremental checksum fix-up. The only place either is written.
 *
 * Needs: pkt.h (struct gscip_pkt, GSCIP_CODE), the BPF helpers.
 * Provides:
 *  - arithmetic (pure, no helpers, no maps): csum_fold32, csum_fold16,
 *    csum_add16, csum_neg16, csum_field_eq, csum_diff32. Users: xlat.h (the
 *    rewrites below), the PCCOM headers (pccom_sums.h, pccom_tcp.h, pccom_udp.h).
 *    Values are in the "little-endian word" view the kernel uses on x86
 *    (__wsum): a sum of memory words read as host u16/u32, which folded and
 *    stored back as a u16 gives the right wire bytes.
 *  - rewrites: csum_rewrite_addrs, csum_rewrite_ports; 0 or
 *    GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE). They write the packet: callers
 *    re-derive packet pointers afterwards.
 *
 * Rewrites apply one delta per rewrite (one's-complement sum over the changed
 * words), to
 * - the IPv4 header checksum (addresses only),
 * - the TCP/UDP checksum: with BPF_F_PSEUDO_HDR for addresses (pseudo-header
 *   fields), without it for ports (covered by the checksum itself).
 * The kernel helpers do the right thing for every ip_summed state: for
 * CHECKSUM_PARTIAL (veth, GSO) the L4 field holds the pseudo-header seed, so
 * only pseudo-header deltas touch it; CHECKSUM_COMPLETE's skb->csum is kept.
 * UDP: BPF_F_MARK_MANGLED_0 keeps a zero ("no checksum") field zero and never
 * writes a computed zero (uses 0xffff). */
#ifndef GSCIP_CSUM_H
#define GSCIP_CSUM_H

#include "codes.h"
#include "pkt.h"

/* ---- arithmetic ---- */

/* A 64-bit sum of 32-bit words folded to 32 bits (end-around carry). The result
 * fits 32 bits; it stays a __u64 so callers can keep adding or fold on. */
static __always_inline __u64 csum_fold32(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return s;
}

/* A 64-bit sum folded to the 16-bit one's-complement sum (0..0xffff, not
 * inverted). Takes bpf_csum_diff()'s result or any sum of u16/u32 words. */
static __always_inline __u32 csum_fold16(__u64 s)
{
	s = csum_fold32(s);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/* a + b and ~a in 16-bit one's complement (inputs 0..0xffff). */
static __always_inline __u32 csum_add16(__u32 a, __u32 b) { return csum_fold16((__u64)a + b); }
static __always_inline __u32 csum_neg16(__u32 a) { return ~a & 0xffff; }

/* Equality of two 16-bit checksum values: 0x0000 and 0xffff both encode zero. */
static __always_inline int csum_field_eq(__u32 a, __u32 b)
{
	if (a == 0)
		a = 0xffff;
	if (b == 0)
		b = 0xffff;
	return a == b;
}

/* One's-complement difference of 32-bit words, as bpf_csum_diff() would return
 * it (sum of ~from and to), computed inline: it is a few adds, not a helper call. */
static __always_inline __s64 csum_diff32(const __be32 *from, const __be32 *to, int words)
{
	__u64 sum = 0;
	int i;

	for (i = 0; i < words; i++)
		sum += (__u32)~from[i] + (__u64)to[i];
	return (__s64)csum_fold32(sum);
}

/* ---- rewrites ---- */

static __always_inline __u32 csum_l4_field_off(const struct gscip_pkt *pkt)
{
	return pkt->l4_off + (pkt->cid.proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							    : offsetof(struct udphdr, check));
}

static __always_inline __u64 csum_l4_flags(const struct gscip_pkt *pkt)
{
	return pkt->cid.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Write saddr|daddr (8 contiguous bytes in the IPv4 header). */
static __always_inline int csum_rewrite_addrs(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					      __be32 new_saddr, __be32 new_daddr)
{
	__be32 from[2] = { pkt->cid.saddr, pkt->cid.daddr };
	__be32 to[2] = { new_saddr, new_daddr };
	__s64 diff;

	diff = csum_diff32(from, to, 2);
	if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, saddr), to, sizeof(to), 0))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	if (bpf_l3_csum_replace(skb, pkt->l3_off + offsetof(struct iphdr, check), 0, diff, 0))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	if (bpf_l4_csum_replace(skb, csum_l4_field_off(pkt), 0, diff,
				BPF_F_PSEUDO_HDR | csum_l4_flags(pkt)))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	return 0;
}

/* Write sport|dport (4 contiguous bytes at the start of TCP and UDP headers). */
static __always_inline int csum_rewrite_ports(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					      __be16 new_sport, __be16 new_dport)
{
	__be16 from[2] = { pkt->cid.sport, pkt->cid.dport };
	__be16 to[2] = { new_sport, new_dport };
	__s64 diff;

	diff = csum_diff32((const __be32 *)from, (const __be32 *)to, 1);
	if (bpf_skb_store_bytes(skb, pkt->l4_off, to, sizeof(to), 0))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	if (bpf_l4_csum_replace(skb, csum_l4_field_off(pkt), 0, diff, csum_l4_flags(pkt)))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	return 0;
}

#endif /* GSCIP_CSUM_H */
