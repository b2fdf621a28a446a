/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pit.h - PIT lookup and the per-entry action (pass / drop / encrypt / decrypt).
 * Key = pkt->cid as on the wire at this interface, dir included. */
#ifndef GSCIP_PIT_H
#define GSCIP_PIT_H

#include "consts.h"
#include "maps.h"
#include "pccom.h"

static __always_inline struct gscip_pit_val *pit_lookup(const struct gscip_pkt *pkt)
{
	return bpf_map_lookup_elem(&gscip_pit, &pkt->cid);
}

/* last_seen_ns is refreshed at most once a second: an entry carrying a flow at
 * line rate is written ~1/s instead of once per packet (no cache-line bouncing
 * between CPUs). Racy by design: two CPUs may both write, either value is fine.
 * The coarse clock is CLOCK_MONOTONIC at tick resolution (a few ms), plenty
 * for idle expiry and cheaper than bpf_ktime_get_ns() on every hit. */
static __always_inline void pit_touch(struct gscip_pit_val *v)
{
	__u64 now = bpf_ktime_get_coarse_ns();

	if (now - READ_ONCE(v->last_seen_ns) >= NSEC_PER_SEC)
		WRITE_ONCE(v->last_seen_ns, now);
}

/* Apply a hit. Returns the verdict code (PIT_PASS / PIT_ENCRYPT / PIT_DECRYPT /
 * PIT_DECRYPT_PREV: decrypted under the entry's prev_key_version)
 * or a drop code. Fragments (first fragments: later ones never get here) can
 * pass but cannot be encrypted/decrypted (PCCOM needs the whole datagram). */
static __always_inline int pit_apply(struct __sk_buff *skb, struct gscip_pkt *pkt,
				     const struct gscip_pit_val *v)
{
	int rc;

	switch (v->action) {
	case GSCIP_ACT_PASS:
		return GSCIP_CODE(GSCIP_STAT_PIT_PASS);
	case GSCIP_ACT_DROP:
		return GSCIP_CODE(GSCIP_DROP_POLICY);
	case GSCIP_ACT_ENCRYPT:
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_FRAGMENT);
		rc = pccom_egress(skb, pkt, v);
		return rc ? rc : GSCIP_CODE(GSCIP_STAT_PIT_ENCRYPT);
	case GSCIP_ACT_DECRYPT:
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_FRAGMENT);
		rc = pccom_ingress(skb, pkt, v);
		if (rc < 0)
			return rc;
		return GSCIP_CODE(rc ? GSCIP_STAT_PIT_DECRYPT_PREV : GSCIP_STAT_PIT_DECRYPT);
	default:
		/* GSCIP_ACT_NONE or a value this program does not know: fail closed */
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	}
}

#endif /* GSCIP_PIT_H */
