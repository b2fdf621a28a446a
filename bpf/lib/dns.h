/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* dns.h - NAT-f's DNS interception (GSCIP_STAGE_DNS), docs/natf.md.
 *
 * Needs: punt.h (punt_emit), stages.h (struct gscip_run), a parsed TCP/UDP
 *   packet (classify).
 * Provides:
 *  - gscip_stage_dns_ingress: on ingress, after the PIT let the packet
 *    through (so an answer that came encrypted is punted in the clear), a
 *    UDP datagram or TCP segment FROM port 53 is punted (GSCIP_PUNT_DNS, not
 *    stashed) for the agent's NRT to rewrite; the agent re-injects it, rewritten
 *    or as it was, with GSCIP_MARK_DNS_REINJECT. A fragment or an answer longer
 *    than GSCIP_PUNT_MAX_BYTES passes unmodified (counted DNS_TOO_BIG: the
 *    resolver gets the real address, the flow to it fails at the GNAT).
 *  - gscip_dns_reinjected: the re-injected answer (mark cleared), which skips
 *    the PIT and this stage (it passed both) and goes on to XLAT.
 * A punt refused (token bucket, full ring) drops the answer, counted; the
 *   resolver retries. Never a loop: a re-injected answer is never punted. */
#ifndef GSCIP_DNS_H
#define GSCIP_DNS_H

#include "codes.h"
#include "consts.h"
#include "punt.h"
#include "stages.h"

#define GSCIP_DNS_PORT 53

static __always_inline bool gscip_dns_reinjected(struct __sk_buff *skb)
{
	if (skb->mark != GSCIP_MARK_DNS_REINJECT)
		return false;
	skb->mark = 0;
	return true;
}

static __always_inline int gscip_stage_dns_ingress(struct __sk_buff *skb, struct gscip_run *run)
{
	int rc;

	if (run->pkt.cid.sport != bpf_htons(GSCIP_DNS_PORT))
		return GSCIP_STAGE_NEXT;
	if (run->pkt.is_fragment || skb->len > GSCIP_PUNT_MAX_BYTES)
		return GSCIP_CODE(GSCIP_STAT_DNS_TOO_BIG);
	rc = punt_emit(skb, &run->pkt.cid, GSCIP_DIR_INGRESS, GSCIP_PUNT_DNS);
	if (rc == GSCIP_CODE(GSCIP_STAT_PUNT_MISS))
		return GSCIP_CODE(GSCIP_STAT_DNS_PUNT);
	return rc;
}

#endif /* GSCIP_DNS_H */
