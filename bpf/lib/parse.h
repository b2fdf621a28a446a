/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* parse.h - Ethernet / IPv4 / TCP / UDP / ICMP parsing into struct gscip_pkt.
 *
 * Headers are copied straight from the linear area when they are there (the
 * common case, no helper call), else with bpf_skb_load_bytes(), so a header in
 * the non-linear part of an skb (GRO/GSO) is read correctly without pulling
 * (a pull would unclone every TCP clone).
 *
 * Outcomes (0 = carry on, else a GSCIP_CODE for the entry program):
 *  - not IPv4 (ARP, LLDP, 802.1Q/802.1ad VLAN-tagged frames, ...): PASS_NON_IP.
 *    VLAN-tagged traffic is NOT inspected: on a protected interface use
 *    untagged frames or attach to the VLAN sub-interface.
 *  - IPv6: the code PASS_IPV6, meaning "an IPv6 frame" (GSCIP is IPv4 in this
 *    release): the caller hands it to the interface's IPv6 policy (ipv6.h),
 *    which may pass, drop or parse it further.
 *  - runt frame: DROP_MALFORMED_L2; bad IPv4 version/ihl/total length or a
 *    header beyond the frame: DROP_MALFORMED_IP; truncated TCP/UDP header, TCP
 *    doff < 5 or beyond the IP payload, UDP length outside [8, IP payload]:
 *    DROP_MALFORMED_L4. Nothing malformed ever reaches a rewrite.
 *  - non-first IPv4 fragments carry no ports, so they cannot be matched:
 *    the caller passes and counts them (PASS_FRAGMENT). PCCOM keeps packet
 *    lengths unchanged, so PCCOM flows do not fragment by design.
 */
#ifndef GSCIP_PARSE_H
#define GSCIP_PARSE_H

#include "codes.h"
#include "consts.h"
#include "pkt.h"

/* Offsets beyond this never hold a header we parse (14 + 60 + 60). */
#define PARSE_MAX_OFF 160

/* Copy *hdr from packet offset off; 0 or a negative errno. */
#define parse_copy(skb, off, hdr) ({						\
	void *data_ = (void *)(long)(skb)->data;				\
	void *end_ = (void *)(long)(skb)->data_end;				\
	__u32 off_ = (off);							\
	int rc_ = 0;								\
	if (off_ <= PARSE_MAX_OFF && data_ + off_ + sizeof(*(hdr)) <= end_)	\
		__builtin_memcpy((hdr), data_ + off_, sizeof(*(hdr)));		\
	else									\
		rc_ = bpf_skb_load_bytes((skb), off_, (hdr), sizeof(*(hdr)));	\
	rc_;									\
})

/* IPv4 total length 0 with a GSO skb = BIG TCP (length from skb->len). */
static __always_inline int parse_ipv4_len(struct __sk_buff *skb, const struct iphdr *ip,
					  __u32 l3_off, __u32 ihl_bytes, __u32 *l3_len)
{
	__u32 tot = bpf_ntohs(ip->tot_len);
	__u32 avail = skb->len - l3_off;

	if (tot == 0 && skb->gso_size)
		tot = avail;
	if (tot < ihl_bytes || tot > avail)
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	*l3_len = tot;
	return 0;
}

/* Ethernet + IPv4 header. Fills l3_off, l4_off, addresses, proto, fragment
 * state; *nonfirst_frag is set for fragments with a non-zero offset. */
static __always_inline int parse_l2_l3(struct __sk_buff *skb, struct gscip_pkt *pkt,
				       __u32 *l3_len, bool *nonfirst_frag)
{
	struct ethhdr eth;
	struct iphdr ip;
	__u32 ihl_bytes;
	__u16 frag;
	int rc;

	if (parse_copy(skb, 0, &eth))
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_L2);
	if (eth.h_proto == bpf_htons(ETH_P_IPV6))
		return GSCIP_CODE(GSCIP_STAT_PASS_IPV6);
	if (eth.h_proto != bpf_htons(ETH_P_IP))
		return GSCIP_CODE(GSCIP_STAT_PASS_NON_IP);

	pkt->l3_off = ETH_HLEN;
	if (parse_copy(skb, ETH_HLEN, &ip))
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	if (ip.version != 4 || ip.ihl < 5)
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	ihl_bytes = (__u32)ip.ihl * 4;
	rc = parse_ipv4_len(skb, &ip, ETH_HLEN, ihl_bytes, l3_len);
	if (rc)
		return rc;

	pkt->l4_off = ETH_HLEN + ihl_bytes;
	pkt->skb_len = skb->len;
	pkt->cid.saddr = ip.saddr;
	pkt->cid.daddr = ip.daddr;
	pkt->cid.proto = ip.protocol;
	frag = bpf_ntohs(ip.frag_off);
	pkt->is_fragment = (frag & (IP_MF | IP_OFFMASK)) != 0;
	*nonfirst_frag = (frag & IP_OFFMASK) != 0;
	return 0;
}

/* TCP or UDP header: ports, header length, payload bounds. */
static __always_inline int parse_l4_ports(struct __sk_buff *skb, struct gscip_pkt *pkt, __u32 l3_len)
{
	__u32 l4_len = l3_len - (pkt->l4_off - pkt->l3_off);  /* IP payload bytes */

	if (pkt->cid.proto == IPPROTO_TCP) {
		struct tcphdr tcp;
		__u32 doff;

		if (l4_len < sizeof(tcp) || parse_copy(skb, pkt->l4_off, &tcp))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		doff = (__u32)tcp.doff * 4;
		if (doff < sizeof(tcp) || doff > l4_len)
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		pkt->cid.sport = tcp.source;
		pkt->cid.dport = tcp.dest;
		pkt->l4_hlen = doff;
		pkt->tcp_flags = ((const __u8 *)&tcp)[13];  /* CWR..FIN */
		pkt->payload_len = l4_len - doff;
	} else {
		struct udphdr udp;
		__u32 ulen;

		if (l4_len < sizeof(udp) || parse_copy(skb, pkt->l4_off, &udp))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		ulen = bpf_ntohs(udp.len);
		/* A first fragment carries only part of the datagram: its UDP
		 * length covers the whole datagram, so only bound it for whole ones. */
		if (ulen < sizeof(udp) || (!pkt->is_fragment && ulen > l4_len))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		pkt->cid.sport = udp.source;
		pkt->cid.dport = udp.dest;
		pkt->l4_hlen = sizeof(udp);
		pkt->tcp_flags = 0;
		/* UDP payload per the UDP length (trailing IP bytes are not payload) */
		pkt->payload_len = pkt->is_fragment ? l4_len - sizeof(udp) : ulen - sizeof(udp);
	}
	pkt->payload_off = pkt->l4_off + pkt->l4_hlen;
	return 0;
}

/* ICMP type (asked for on ingress, to recognise control messages). */
static __always_inline int parse_icmp_type(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					   __u32 l3_len, __u8 *type)
{
	struct icmphdr icmp;
	__u32 l4_len = l3_len - (pkt->l4_off - pkt->l3_off);

	if (l4_len < sizeof(icmp) || parse_copy(skb, pkt->l4_off, &icmp))
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
	*type = icmp.type;
	return 0;
}

#endif /* GSCIP_PARSE_H */
