/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* csum.h - rewrite IPv4 addresses / L4 ports with incremental checksum fix-up.
 *
 * One delta per rewrite (one's-complement sum over the changed words), applied to
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

#include "pkt.h"

/* One's-complement difference of 32-bit words, as bpf_csum_diff() would return
 * it (sum of ~from and to), computed inline: it is a few adds, not a helper call. */
static __always_inline __s64 csum_diff32(const __be32 *from, const __be32 *to, int words)
{
	__u64 sum = 0;
	int i;

	for (i = 0; i < words; i++)
		sum += (__u32)~from[i] + (__u64)to[i];
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return (__s64)sum;
}

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
