/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ipv6.h - the interface's IPv6 policy (gscip_iface_cfg.ipv6_policy).
 *
 * GSCIP speaks IPv4 only in this release: an IPv6 packet is never looked up,
 * negotiated or encrypted. So that IPv6 does not open a closed element, each
 * interface says what happens to it, in both directions (gscip_abi.h, enum
 * gscip_ipv6_policy):
 *
 *   pass     PASS_IPV6, untouched and not parsed beyond the Ethernet header
 *   drop     DROP_IPV6_POLICY, not parsed either
 *   nd-only  the fixed IPv6 header is read (version 6, payload within the
 *            frame, else DROP_MALFORMED_IP), then in this order:
 *            1. neighbour discovery: next header ICMPv6 directly (no extension
 *               header: RFC 6980 forbids fragmented ND, and nothing legitimate
 *               puts ND behind another header), type 133..137 (RS, RA, NS, NA,
 *               redirect), hop limit 255 (RFC 4861: so it was not forwarded):
 *               PASS_IPV6_ND. A truncated ICMPv6 header: DROP_MALFORMED_L4.
 *            2. link-local scope: source fe80::/10 and destination fe80::/10
 *               or ff02::/16 (any next header, e.g. MLD behind its hop-by-hop
 *               option, ping6 to a link-local address): PASS_IPV6_LINK_LOCAL.
 *               No router forwards such a packet, so on a GEN it can never reach
 *               the guarded subnet; on a GEA it does reach the host from its
 *               link neighbours (use drop where that matters).
 *            3. anything else (global or ULA addresses, ND with a hop limit
 *               below 255, ND behind an extension header): DROP_IPV6_ND_ONLY.
 *   other    (a value this program does not know): DROP_IPV6_POLICY.
 *
 * No configuration entry for the interface: DROP_NO_IFACE_CFG, as for misses
 * (an attached but unconfigured interface is a broken installation). */
#ifndef GSCIP_IPV6_H
#define GSCIP_IPV6_H

#include "codes.h"
#include "maps.h"
#include "parse.h"

#define GSCIP_IPPROTO_ICMPV6   58
#define GSCIP_ICMPV6_RS        133
#define GSCIP_ICMPV6_REDIRECT  137
#define GSCIP_IPV6_HDR_LEN     40

/* The fixed IPv6 header as bytes (no bitfields). */
struct gscip_ip6hdr {
	__u8   vtcfl[4];      /* version(4) traffic class(8) flow label(20) */
	__be16 payload_len;
	__u8   nexthdr;
	__u8   hop_limit;
	__u8   saddr[16];
	__u8   daddr[16];
};
_Static_assert(sizeof(struct gscip_ip6hdr) == GSCIP_IPV6_HDR_LEN, "IPv6 header is 40 bytes");

static __always_inline bool ipv6_is_link_local(const __u8 *a)
{
	return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;   /* fe80::/10 */
}

static __always_inline bool ipv6_is_ll_multicast(const __u8 *a)
{
	return a[0] == 0xff && a[1] == 0x02;            /* ff02::/16 */
}

static __always_inline int ipv6_nd_only(struct __sk_buff *skb)
{
	struct gscip_ip6hdr ip6;
	__u32 plen;

	if (parse_copy(skb, ETH_HLEN, &ip6))
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	plen = bpf_ntohs(ip6.payload_len);
	if ((ip6.vtcfl[0] >> 4) != 6 || ETH_HLEN + GSCIP_IPV6_HDR_LEN + plen > skb->len)
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	if (ip6.nexthdr == GSCIP_IPPROTO_ICMPV6) {
		__u8 type;

		if (plen < 4 || bpf_skb_load_bytes(skb, ETH_HLEN + GSCIP_IPV6_HDR_LEN, &type, 1))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		if (type >= GSCIP_ICMPV6_RS && type <= GSCIP_ICMPV6_REDIRECT && ip6.hop_limit == 255)
			return GSCIP_CODE(GSCIP_STAT_PASS_IPV6_ND);
	}
	if (ipv6_is_link_local(ip6.saddr) && (ipv6_is_link_local(ip6.daddr) || ipv6_is_ll_multicast(ip6.daddr)))
		return GSCIP_CODE(GSCIP_STAT_PASS_IPV6_LINK_LOCAL);
	return GSCIP_CODE(GSCIP_DROP_IPV6_ND_ONLY);
}

/* The verdict code for an IPv6 frame on this interface (both directions). */
static __always_inline int ipv6_apply(struct __sk_buff *skb)
{
	const struct gscip_iface_cfg *cfg;
	__u32 ifindex = skb->ifindex;

	cfg = bpf_map_lookup_elem(&gscip_iface, &ifindex);
	if (!cfg)
		return GSCIP_CODE(GSCIP_DROP_NO_IFACE_CFG);
	switch (cfg->ipv6_policy) {
	case GSCIP_IPV6_PASS:
		return GSCIP_CODE(GSCIP_STAT_PASS_IPV6);
	case GSCIP_IPV6_ND_ONLY:
		return ipv6_nd_only(skb);
	default:
		return GSCIP_CODE(GSCIP_DROP_IPV6_POLICY);
	}
}

#endif /* GSCIP_IPV6_H */
