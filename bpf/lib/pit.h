/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pit.h - PIT lookup and the per-entry action (pass / drop / encrypt / decrypt).
 * Key = pkt->cid as on the wire at this interface, dir included. */
#ifndef GSCIP_PIT_H
#define GSCIP_PIT_H

#include "codes.h"
#include "consts.h"
#include "maps.h"
#include "pccom.h"
#include "reasons.h"
#include "stages.h"

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

/* Record a TCP FIN / RST on the entry it hit (GSCIP_PIT_F_*), so the agent
 * expires a closed flow after its short closed timeout. Only after the hit was
 * applied without a drop (a decrypt entry's RST must pass the keyed checksum
 * first: a forged one cannot shorten a flow's life), and written only when the
 * bit is not yet set: at most one write per entry and flag, never per packet. */
static __always_inline void pit_note_close(struct gscip_pit_val *v, const struct gscip_pkt *pkt, int code)
{
	__u8 seen = 0;

	if (pkt->cid.proto != IPPROTO_TCP || code_is_drop(code))
		return;
	if (pkt->tcp_flags & PKT_TCP_FIN)
		seen |= GSCIP_PIT_F_FIN;
	if (pkt->tcp_flags & PKT_TCP_RST)
		seen |= GSCIP_PIT_F_RST;
	/* Racy like pit_touch: two CPUs may both write; a FIN and an RST landing
	 * on the same entry at the same instant may keep only one bit, and
	 * either one marks the flow closed on this direction. */
	if (seen && (READ_ONCE(v->flags) & seen) != seen)
		WRITE_ONCE(v->flags, READ_ONCE(v->flags) | seen);
}

/* Apply a hit. Returns the verdict code (PIT_PASS / PIT_ENCRYPT / PIT_DECRYPT /
 * PIT_DECRYPT_PREV: decrypted under the entry's prev_key_version)
 * or a drop code. Fragments (first fragments: later ones never get here) can
 * pass but cannot be encrypted/decrypted (PCCOM needs the whole datagram).
 * In a load without GSCIP_STAGE_PCCOM an encrypt/decrypt entry is dropped as
 * unsupported (never sent or delivered in the clear), and no PCCOM code is in
 * the program. */
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
		if (!stage_on(GSCIP_STAGE_PCCOM))
			return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_FRAGMENT);
		rc = pccom_egress(skb, pkt, v);
		return rc ? rc : GSCIP_CODE(GSCIP_STAT_PIT_ENCRYPT);
	case GSCIP_ACT_DECRYPT:
		if (!stage_on(GSCIP_STAGE_PCCOM))
			return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_FRAGMENT);
		rc = pccom_ingress(skb, pkt, v);
		if (rc < 0)
			return rc;
		return rc ? GSCIP_CODE(GSCIP_STAT_PIT_DECRYPT_PREV) : GSCIP_CODE(GSCIP_STAT_PIT_DECRYPT);
	default:
		/* GSCIP_ACT_NONE or a value this program does not know: fail closed */
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	}
}

#endif /* GSCIP_PIT_H */
