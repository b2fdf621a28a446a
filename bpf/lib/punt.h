/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* punt.h - hand a packet to the control plane through the gscip_punt ring buffer.
 *
 * Bounded: one per-CPU token bucket for PIT misses and a separate one for
 * control messages (a new-flow flood never starves DPRP), both refilled at
 * gscip_cfg.punt_rate_pps up to punt_burst; an empty bucket or a full ring is
 * a counted drop, never a queue. A record is struct gscip_punt_rec cut after
 * cap_len bytes of data (variable size: the 4 MiB ring holds ~35,000
 * SYN-sized records rather than ~2,000 full ones). Packets longer than
 * GSCIP_PUNT_MAX_BYTES are not stashed: a PUNT_TRUNCATED record (no data)
 * tells the control plane the CID and the packet is dropped (counted as
 * PUNT_TRUNCATED). Token math: tokens are kept x1e9 so a refill of
 * elapsed_ns * rate needs no division; config values are clamped so it
 * cannot overflow. */
#ifndef GSCIP_PUNT_H
#define GSCIP_PUNT_H

#include "codes.h"
#include "consts.h"
#include "maps.h"
#include "pkt.h"

/* Upper bounds on configured values keep tokens * 1e9 far from overflow. */
#define GSCIP_PUNT_RATE_MAX   100000000ULL  /* 1e8 pps per CPU */
#define GSCIP_PUNT_BURST_MAX  10000000ULL
#define GSCIP_PUNT_REFILL_MAX (16 * NSEC_PER_SEC)

static __always_inline __u64 punt_clamp(__u64 v, __u64 dflt, __u64 max)
{
	if (v == 0)
		return dflt;
	return v > max ? max : v;
}

/* Take one token from the bucket, or GSCIP_CODE(DROP_PUNT_RATE). */
static __always_inline int punt_admit(__u32 bucket)
{
	const struct gscip_global_cfg *cfg;
	struct gscip_token_bucket *b;
	__u64 rate = GSCIP_PUNT_RATE_DEFAULT, burst = GSCIP_PUNT_BURST_DEFAULT;
	__u64 now, elapsed, cap, tokens;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&gscip_cfg, &zero);
	if (cfg) {
		rate = punt_clamp(cfg->punt_rate_pps, GSCIP_PUNT_RATE_DEFAULT, GSCIP_PUNT_RATE_MAX);
		burst = punt_clamp(cfg->punt_burst, GSCIP_PUNT_BURST_DEFAULT, GSCIP_PUNT_BURST_MAX);
	}
	b = bpf_map_lookup_elem(&gscip_punt_bucket, &bucket);
	if (!b)
		return GSCIP_CODE(GSCIP_DROP_PUNT_RATE);

	now = bpf_ktime_get_ns();
	cap = burst * NSEC_PER_SEC;
	if (b->last_ns == 0) {
		tokens = cap;  /* first use on this CPU: full bucket */
	} else {
		elapsed = now - b->last_ns;
		if (elapsed > GSCIP_PUNT_REFILL_MAX)
			elapsed = GSCIP_PUNT_REFILL_MAX;
		tokens = b->tokens_ns + elapsed * rate;
		if (tokens > cap)
			tokens = cap;
	}
	b->last_ns = now;
	if (tokens < NSEC_PER_SEC) {
		b->tokens_ns = tokens;
		return GSCIP_CODE(GSCIP_DROP_PUNT_RATE);
	}
	b->tokens_ns = tokens - NSEC_PER_SEC;
	return 0;
}

#define GSCIP_PUNT_HDR_BYTES offsetof(struct gscip_punt_rec, data)

/* Assemble one record in the per-CPU scratch and copy header + cap_len bytes
 * to the ring. reason: enum gscip_punt_reason. Returns the verdict code for
 * the entry program. */
static __always_inline int punt_emit(struct __sk_buff *skb, const struct gscip_cid *cid,
				     __u8 dir, __u8 reason)
{
	struct gscip_punt_rec *rec;
	__u32 len = skb->len;
	__u32 bucket = reason == GSCIP_PUNT_CONTROL ? GSCIP_BUCKET_CONTROL : GSCIP_BUCKET_MISS;
	__u32 zero = 0, cap = 0;
	int rc;

	if (len > GSCIP_PUNT_MAX_BYTES && reason == GSCIP_PUNT_CONTROL)
		return GSCIP_CODE(GSCIP_DROP_CONTROL_MALFORMED);  /* no control message is this big */
	rc = punt_admit(bucket);
	if (rc)
		return rc;
	if (len > GSCIP_PUNT_MAX_BYTES)
		reason = GSCIP_PUNT_TRUNCATED;

	rec = bpf_map_lookup_elem(&gscip_punt_scratch, &zero);
	if (!rec)
		return GSCIP_CODE(GSCIP_DROP_PUNT_RINGBUF);
	if (reason != GSCIP_PUNT_TRUNCATED) {
		/* 1 <= len <= GSCIP_PUNT_MAX_BYTES; the mask restates it for the verifier */
		cap = len & (2 * GSCIP_PUNT_MAX_BYTES - 1);
		if (cap == 0 || cap > GSCIP_PUNT_MAX_BYTES || bpf_skb_load_bytes(skb, 0, rec->data, cap))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L2);
	}
	rec->ts_ns = bpf_ktime_get_ns();
	rec->ifindex = skb->ifindex;
	rec->pkt_len = len;
	rec->cap_len = cap;
	rec->dir = dir;
	rec->reason = reason;
	rec->pad = 0;
	if (cid)
		rec->cid = *cid;
	else
		__builtin_memset(&rec->cid, 0, sizeof(rec->cid));

	cap &= 2 * GSCIP_PUNT_MAX_BYTES - 1;  /* bounds for the verifier, again */
	if (cap > GSCIP_PUNT_MAX_BYTES)
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_L2);
	if (bpf_ringbuf_output(&gscip_punt, rec, GSCIP_PUNT_HDR_BYTES + cap, 0))
		return GSCIP_CODE(GSCIP_DROP_PUNT_RINGBUF);
	if (reason == GSCIP_PUNT_TRUNCATED)
		return GSCIP_CODE(GSCIP_STAT_PUNT_TRUNCATED);
	return reason == GSCIP_PUNT_CONTROL ? GSCIP_CODE(GSCIP_STAT_PUNT_CONTROL)
					    : GSCIP_CODE(GSCIP_STAT_PUNT_MISS);
}

#endif /* GSCIP_PUNT_H */
