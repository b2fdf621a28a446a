/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* control.h - what the fast path does with a GSCIP control message (ICMP type
 * GSCIP_ICMP_TYPE), in either direction.
 *
 *  - INGRESS: always punted (GSCIP_PUNT_CONTROL, dir ingress); a control
 *    message never reaches the host's stack.
 *  - EGRESS with skb->mark == GSCIP_MARK_CONTROL_TX: this GE's agent sent it
 *    (raw IPv4 socket with SO_MARK). The mark is cleared and it passes
 *    (GSCIP_STAT_CONTROL_TX).
 *  - EGRESS without the mark: a message this GE did not send, e.g. an RGI from
 *    a GE inside a GEN that the GEN forwards out of its guarded (outside)
 *    interface. Punted (dir egress) so the agent takes its part and re-sends it
 *    marked: it crosses this hook once punted, once marked, never looping.
 *  - INGRESS, a DDE relayed by an end-candidate GEN (candidate depth >= 1):
 *    punted, and the skb answered with a HOLD (dprp_hold.h, DPRP_HOLD).
 * A released packet is never a control message (GSCIP_DROP_RELEASE_MISS), and
 * a fragmented one is malformed by definition. */
#ifndef GSCIP_CONTROL_H
#define GSCIP_CONTROL_H

#include "codes.h"
#include "consts.h"
#include "pkt.h"
#include "punt.h"
#include "dprp_hold.h"

/* dir: the entry program's direction, a constant (the HOLD code is only in the ingress program). */
static __always_inline int control_apply(struct __sk_buff *skb, const struct gscip_pkt *pkt, bool released, const __u8 dir)
{
	int rc, hold;

	if (released)
		return GSCIP_CODE(GSCIP_DROP_RELEASE_MISS);
	if (pkt->is_fragment)
		return GSCIP_CODE(GSCIP_DROP_CONTROL_MALFORMED);
	if (pkt->cid.dir == GSCIP_DIR_EGRESS && skb->mark == GSCIP_MARK_CONTROL_TX) {
		skb->mark = 0;
		return GSCIP_CODE(GSCIP_STAT_CONTROL_TX);
	}
	rc = punt_emit(skb, NULL, pkt->cid.dir, GSCIP_PUNT_CONTROL);
	/* A DDE relayed by an end-candidate GEN is also answered here, at once (dprp_hold.h). */
	if (dir == GSCIP_DIR_INGRESS && rc == GSCIP_CODE(GSCIP_STAT_PUNT_CONTROL)) {
		hold = dprp_hold_reply(skb, pkt);
		if (hold != GSCIP_STAGE_NEXT)
			return hold;
	}
	return rc;
}

#endif /* GSCIP_CONTROL_H */
