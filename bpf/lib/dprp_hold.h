/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* dprp_hold.h - the one DPRP message the fast path writes: HOLD.
 *
 * A GEN that may be the end GE for a destination behind it (an "end
 * candidate") relays the DDE inward with candidate depth >= 1 and waits for a
 * GE behind it to answer; if none does, the destination is a Term and the GEN
 * answers itself. Waiting on another GE's control plane is a race on a busy
 * machine (a slow inner GE loses to the outer one's timer, the outer one then
 * decrypts and forwards plaintext to the inner member). So the inner GE's
 * fast path answers at once: the DDE is punted to its agent as always, and the
 * same skb is turned into a HOLD (ICMP code GSCIP_DPRP_CODE_HOLD, the DDE's
 * DPRP header: attempt + negotiation id) sent back out of the interface it
 * came in on, from the DDE's destination to its source. The candidate GEN's
 * agent takes it on its way out (control.h: unmarked egress control is
 * punted) and stops waiting: a GE is behind it, which will answer. A HOLD is
 * unauthenticated and only ever makes a GEN wait for a real RGI (bounded by
 * the start GE's retries), never choose an action.
 *
 * Only for an IPv4 header without options (every DDE an agent sends). Returns
 * NEXT when this DDE asks for no HOLD (depth 0, or a shape it does not take),
 * else the verdict: DPRP_HOLD (redirected), or a drop. */
#ifndef GSCIP_DPRP_HOLD_H
#define GSCIP_DPRP_HOLD_H

#include "codes.h"
#include "consts.h"
#include "csum.h"
#include "pkt.h"
#include "stages.h"

/* The HOLD frame: Ethernet, IPv4 without options, the UDP header if the DDE came over UDP, the message. */
#define GSCIP_HOLD_MSG_OFF(udp) (ETH_HLEN + sizeof(struct iphdr) + ((udp) ? GSCIP_CONTROL_UDP_HLEN : 0))
#define GSCIP_HOLD_FRAME_BYTES(udp) (GSCIP_HOLD_MSG_OFF(udp) + GSCIP_DPRP_HOLD_BYTES)

/* ~sum of `len` bytes (a multiple of 4) at `p`: a header checksum. */
static __always_inline __u16 hold_csum(void *p, __u32 len)
{
	__s64 s = bpf_csum_diff(NULL, 0, (__be32 *)p, len, 0);

	return (__u16)csum_neg16(csum_fold16((__u64)s));
}

/* The DDE was punted already; `skb` becomes the HOLD, edited in place (a
 * copy of the frame would not fit the stack beside PCCOM's frames). `udp`, a
 * constant: the DDE came over UDP (the HOLD goes back over UDP, ports
 * swapped, so a NAT between the two maps it like the DDE), else ICMP. */
static __always_inline int dprp_hold_build(struct __sk_buff *skb, const bool udp)
{
	const __u32 msg_off = GSCIP_HOLD_MSG_OFF(udp);
	const __u32 frame = GSCIP_HOLD_FRAME_BYTES(udp);
	void *data, *data_end;
	struct iphdr *ip;
	__u16 *eth, *l4, w;
	__u8 *icmp;
	__be32 a;
	__u16 c;
	int i;

	/* Direct access, no stack copy (the ingress frame is shared with PCCOM's and must stay small). */
	if (bpf_skb_pull_data(skb, frame))
		return GSCIP_STAGE_NEXT;  /* shorter than a DDE header: not one to answer */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + frame > data_end)
		return GSCIP_STAGE_NEXT;
	icmp = data + msg_off;
	if (icmp[0] != GSCIP_ICMP_TYPE || icmp[1] != GSCIP_DPRP_CODE_DDE || icmp[GSCIP_DPRP_CAND_DEPTH_OFF] == 0 ||
	    icmp[8] != 1)
		return GSCIP_STAGE_NEXT;

	/* The punt copied the DDE: from here on the skb is the HOLD (or lost, counted as the punt it was). */
	if (bpf_skb_change_tail(skb, frame, 0) || bpf_skb_pull_data(skb, frame))
		return GSCIP_CODE(GSCIP_STAT_PUNT_CONTROL);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + frame > data_end)
		return GSCIP_CODE(GSCIP_STAT_PUNT_CONTROL);
	eth = data;
	ip = data + ETH_HLEN;
	icmp = data + msg_off;

	for (i = 0; i < ETH_ALEN / 2; i++) {  /* swap the MACs, 16 bits at a time */
		w = eth[i];
		eth[i] = eth[i + ETH_ALEN / 2];
		eth[i + ETH_ALEN / 2] = w;
	}
	a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->tot_len = bpf_htons(frame - ETH_HLEN);
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000);  /* DF */
	ip->ttl = 64;
	ip->check = 0;
	ip->check = hold_csum(ip, sizeof(*ip));
	if (udp) {
		l4 = data + ETH_HLEN + sizeof(struct iphdr);
		w = l4[0];                 /* swap the ports */
		l4[0] = l4[1];
		l4[1] = w;
		l4[2] = bpf_htons(GSCIP_CONTROL_UDP_HLEN + GSCIP_DPRP_HOLD_BYTES);
		l4[3] = 0;                 /* no UDP checksum (IPv4): the message has its own */
	}
	icmp[1] = GSCIP_DPRP_CODE_HOLD;    /* ICMP code */
	icmp[2] = 0;                       /* checksum, below */
	icmp[3] = 0;
	icmp[4] = 0;                       /* candidate depth, reserved */
	icmp[5] = 0;
	icmp[6] = 0;
	icmp[7] = 0;
	icmp[9] = GSCIP_DPRP_CODE_HOLD;    /* DPRP message type; attempt and negotiation id stay */
	icmp[10] = 0;                      /* flags */
	c = hold_csum(icmp, GSCIP_DPRP_HOLD_BYTES);
	icmp[2] = c & 0xff;                /* word view: the sum's bytes as they lie in memory */
	icmp[3] = c >> 8;
	/* Out of the interface it came in on; its own egress program passes it (marked, control.h). */
	skb->mark = GSCIP_MARK_CONTROL_TX;
	bpf_redirect(skb->ifindex, 0);
	return GSCIP_CODE(GSCIP_STAT_DPRP_HOLD);
}

/* Returns NEXT when this DDE asks for no HOLD (depth 0, or a shape it does not take). */
static __always_inline int dprp_hold_reply(struct __sk_buff *skb, const struct gscip_pkt *pkt)
{
	const __u32 l4_off = ETH_HLEN + sizeof(struct iphdr);

	if (pkt->cid.dir != GSCIP_DIR_INGRESS || pkt->l3_off != ETH_HLEN || pkt->l4_off != l4_off)
		return GSCIP_STAGE_NEXT;
	if (pkt->cid.proto == IPPROTO_UDP)
		return dprp_hold_build(skb, true);
	return dprp_hold_build(skb, false);
}

#endif /* GSCIP_DPRP_HOLD_H */
