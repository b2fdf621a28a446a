/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* release.h - recognise a packet the control plane re-injects (releases).
 *
 * The control plane sends the stashed bytes out of the interface through an
 * AF_PACKET socket with SO_MARK (CAP_NET_ADMIN needed), so every release first
 * meets the EGRESS program:
 *  - GSCIP_MARK_RELEASE_EGRESS: the mark is cleared and the packet processed
 *    as egress traffic; a PIT miss now is GSCIP_DROP_RELEASE_MISS (no loop).
 *  - GSCIP_MARK_RELEASE_INGRESS: the egress program redirects it, mark kept,
 *    to the same interface's ingress (bpf_redirect(ifindex, BPF_F_INGRESS));
 *    within one network namespace the kernel keeps skb->mark across that
 *    redirect, so the INGRESS program sees the mark, clears it and processes
 *    the packet as ingress traffic, again with miss = RELEASE_MISS.
 * A released packet is never punted again (not even as a control message). */
#ifndef GSCIP_RELEASE_H
#define GSCIP_RELEASE_H

#include "consts.h"

enum gscip_release {
	GSCIP_RELEASE_NONE       = 0,
	GSCIP_RELEASE_PROCESS    = 1,  /* mark cleared: process here, misses drop */
	GSCIP_RELEASE_TO_INGRESS = 2,  /* egress only: hand to the ingress program */
};

static __always_inline enum gscip_release release_classify(struct __sk_buff *skb, __u8 dir)
{
	__u32 mark = skb->mark;

	/* a DNS answer the agent rewrote (dns.h) takes the same way in */
	if (dir == GSCIP_DIR_EGRESS && (mark == GSCIP_MARK_RELEASE_INGRESS || mark == GSCIP_MARK_DNS_REINJECT))
		return GSCIP_RELEASE_TO_INGRESS;
	if ((dir == GSCIP_DIR_EGRESS && mark == GSCIP_MARK_RELEASE_EGRESS) ||
	    (dir == GSCIP_DIR_INGRESS && mark == GSCIP_MARK_RELEASE_INGRESS)) {
		skb->mark = 0;
		return GSCIP_RELEASE_PROCESS;
	}
	return GSCIP_RELEASE_NONE;
}

#endif /* GSCIP_RELEASE_H */
