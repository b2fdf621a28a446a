/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* miss.h - what a PIT miss becomes, per interface and direction (gscip_iface).
 *
 * - miss action PUNT: stash in the control plane (punt.h), packet stolen;
 *   PASS: passed and counted (MISS_PASS); DROP, or any value this program
 *   does not know: dropped (DROP_MISS_POLICY).
 * - interface with no gscip_iface entry: dropped (DROP_NO_IFACE_CFG). The
 *   programs are only attached by the loader, which writes the interface's
 *   entry before attaching; an attached-but-unconfigured interface is a
 *   broken installation and fails closed rather than leak unnegotiated
 *   traffic. Only misses are affected: PIT hits work without an entry.
 * - a released packet that misses again: DROP_RELEASE_MISS, never re-punted. */
#ifndef GSCIP_MISS_H
#define GSCIP_MISS_H

#include "codes.h"
#include "maps.h"
#include "punt.h"

static __always_inline int miss_apply(struct __sk_buff *skb, const struct gscip_pkt *pkt, bool released)
{
	const struct gscip_iface_cfg *cfg;
	__u32 ifindex = skb->ifindex;
	__u8 dir = pkt->cid.dir;

	if (released)
		return GSCIP_CODE(GSCIP_DROP_RELEASE_MISS);
	cfg = bpf_map_lookup_elem(&gscip_iface, &ifindex);
	if (!cfg)
		return GSCIP_CODE(GSCIP_DROP_NO_IFACE_CFG);
	switch (cfg->miss_action[dir & 1]) {
	case GSCIP_MISS_PUNT:
		return punt_emit(skb, &pkt->cid, dir, GSCIP_PUNT_PIT_MISS);
	case GSCIP_MISS_PASS:
		return GSCIP_CODE(GSCIP_STAT_MISS_PASS);
	default:
		return GSCIP_CODE(GSCIP_DROP_MISS_POLICY);
	}
}

#endif /* GSCIP_MISS_H */
