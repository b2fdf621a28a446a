/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* xlat.h - the generic translation stage (CIT / VAT / NAT entries).
 * Key = pkt->cid in the view before translation (egress: stack view; ingress:
 * wire view), value = the view after. Applies only what changes, updates
 * pkt->cid to the new view.
 * Returns 0 (no entry, or an entry that changes nothing), 1 (rewritten), or a
 * GSCIP_CODE: fragments of a translated flow are refused (DROP_FRAGMENT),
 * because later fragments carry no ports and would reach the peer untranslated. */
#ifndef GSCIP_XLAT_H
#define GSCIP_XLAT_H

#include "codes.h"
#include "maps.h"
#include "csum.h"
#include "stages.h"

static __always_inline int xlat_apply(struct __sk_buff *skb, struct gscip_pkt *pkt)
{
	const struct gscip_xlat_val *x;
	bool addrs, ports;
	int rc;

	x = bpf_map_lookup_elem(&gscip_xlat, &pkt->cid);
	if (!x)
		return 0;
	addrs = x->saddr != pkt->cid.saddr || x->daddr != pkt->cid.daddr;
	ports = x->sport != pkt->cid.sport || x->dport != pkt->cid.dport;
	if (!addrs && !ports)
		return 0;
	if (pkt->is_fragment)
		return GSCIP_CODE(GSCIP_DROP_FRAGMENT);

	if (addrs) {
		rc = csum_rewrite_addrs(skb, pkt, x->saddr, x->daddr);
		if (rc)
			return rc;
		pkt->cid.saddr = x->saddr;
		pkt->cid.daddr = x->daddr;
	}
	if (ports) {
		rc = csum_rewrite_ports(skb, pkt, x->sport, x->dport);
		if (rc)
			return rc;
		pkt->cid.sport = x->sport;
		pkt->cid.dport = x->dport;
	}
	return 1;
}

/* The XLAT stage (stages.h contract), behind GSCIP_STAGE_XLAT. Rewrites
 * run->pkt to the other view and sets run->xlated; NEXT or a drop code.
 * Inline, not a global subprogram: as one (measured, docs/architecture.md
 * "Datapath stages") egress verification fell from 81k to 52k insns but the PIT
 * hit path, which every packet takes, got 2-3 ns (4-6 %) slower. */
static __always_inline int gscip_stage_xlat(struct __sk_buff *skb, struct gscip_run *run)
{
	int rc;

	rc = xlat_apply(skb, &run->pkt);
	if (rc < 0)
		return rc;
	run->xlated = rc == 1;
	return GSCIP_STAGE_NEXT;
}

#endif /* GSCIP_XLAT_H */
