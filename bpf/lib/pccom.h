/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom.h - PCCOM payload encryption and keyed checksum.
 * STUB: the PCCOM work replaces the bodies; the signatures are the contract
 * with the entry programs.
 * Both return 0 on success, or GSCIP_CODE(GSCIP_DROP_*) on failure (the caller
 * counts and drops). They may move packet data: callers re-derive pointers. */
#ifndef GSCIP_PCCOM_H
#define GSCIP_PCCOM_H

#include "pkt.h"

/* Encrypt pkt's TCP/UDP payload with the key named by pit and write the keyed checksum. */
static __always_inline int pccom_egress(struct __sk_buff *skb, struct gscip_pkt *pkt,
					const struct gscip_pit_val *pit)
{
	return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
}

/* Verify the keyed checksum, decrypt, and leave a packet with an ordinary valid checksum. */
static __always_inline int pccom_ingress(struct __sk_buff *skb, struct gscip_pkt *pkt,
					 const struct gscip_pit_val *pit)
{
	return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
}

#endif /* GSCIP_PCCOM_H */
