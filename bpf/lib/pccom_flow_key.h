/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_flow_key.h - per-flow keys: the key of a PIT entry with
 * GSCIP_PIT_F_FLOW_KEY, the UDP datagram counter, and the re-key signal.
 * Scheme and proof sketch: docs/pccom.md "Per-flow keys and nonces".
 *
 * Needs: maps.h (gscip_flow_keys, gscip_punt*), punt.h (punt_admit), stats.h,
 *   pccom_scratch.h, pccom_l4.h (s->hdr loaded by pccom_load_hdr; pccom_has_ts).
 * Provides:
 *  - pccom_load_flow_key(pkt, s, encrypt): the entry's per-flow key into
 *    s->in.key / s->dr (a copy, as for group keys: nothing is derived here).
 *    UDP sender: takes this datagram's counter (atomic add on the value) into
 *    s->ctr; refuses at GSCIP_UDP_CTR_LIMIT (GSCIP_DROP_NONCE_LIMIT). TCP
 *    sender without timestamps: notes the first seq, asks for a re-key 2^31
 *    later. Receiver: the highest counters accepted (s->t_cur / s->t_prev).
 *    0, GSCIP_CODE(GSCIP_DROP_NO_KEY | _UNSUPPORTED | _NONCE_LIMIT).
 *  - pccom_load_prev_flow_key(pkt, s): the previous key (re-key without loss).
 *  - pccom_udp_ctr_guess(t, lo): the full counter of a received IP ID;
 *    pccom_udp_wire_guess(t, lo): the same from the wire-valid form's 6 bits.
 *  - pccom_flow_key_after(skb, pkt, s, encrypt, rc): the receiver's state
 *    after the packet (highest counter, failures in a row) and the re-key
 *    signal (a PUNT_REKEY record, no packet data; counted as GSCIP_STAT_PCCOM_REKEY).
 * A wish for a re-key is counted in the value's `signalled` byte; the signal
 * goes out on the first wish and again every 256 (so a lost ring record or a
 * failed negotiation is asked again), never per packet.
 * No verifier subtleties: fixed-size copies, one map lookup per call. */
#ifndef GSCIP_PCCOM_FLOW_KEY_H
#define GSCIP_PCCOM_FLOW_KEY_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "pkt.h"
#include "maps.h"
#include "stats.h"
#include "punt.h"
#include "chacha20.h"
#include "pccom_scratch.h"
#include "pccom_l4.h"

/* The round count of a key's flags (GSCIP_KEY_F_ROUNDS_*). */
static __always_inline int pccom_rounds_of(__u32 flags, __u32 *dr)
{
	__u32 rounds = flags & (GSCIP_KEY_F_ROUNDS_12 | GSCIP_KEY_F_ROUNDS_8);

	if (rounds == GSCIP_KEY_F_ROUNDS_12)
		*dr = CHACHA20_DR_12;
	else if (rounds == GSCIP_KEY_F_ROUNDS_8)
		*dr = CHACHA20_DR_8;
	else if (rounds == 0)
		*dr = CHACHA20_DR_20;
	else
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);  /* both bits: a control-plane bug */
	return 0;
}

/* A half's key identity besides its salt: its version and leg (a GMS rotation keeps the salt). */
static __always_inline __u32 pccom_fk_half_id(const struct gscip_flow_key_half *h, __u8 leg)
{
	return (h->key_version << 8) | leg;
}

/* The value still holds the key (salt, id) read at the start. */
static __always_inline int pccom_fk_same(const struct gscip_flow_key_val *fk, __u64 salt, __u32 id)
{
	return READ_ONCE(fk->salt) == salt && pccom_fk_half_id(&fk->cur, READ_ONCE(fk->leg)) == id;
}

/* One more wish for a re-key; signal on the first and every 256th. */
static __always_inline void pccom_want_rekey(struct gscip_flow_key_val *fk, struct pccom_scratch *s)
{
	__u8 n = READ_ONCE(fk->signalled);

	WRITE_ONCE(fk->signalled, (__u8)(n + 1));
	if (n == 0)
		s->signal = 1;
}

static __always_inline int pccom_load_flow_key(const struct gscip_pkt *pkt, struct pccom_scratch *s, const int encrypt)
{
	struct gscip_flow_key_val *fk = bpf_map_lookup_elem(&gscip_flow_keys, &pkt->cid);
	__u64 ctr, at, base, salt;
	__u32 seq, d, id;
	int rc;

	if (!fk || !fk->cur.key_version)
		return GSCIP_CODE(GSCIP_DROP_NO_KEY);
	/* Which key this is, before and after it is read: the kernel may reuse a
	 * replaced value's memory for the next value it writes (a batch of
	 * re-keys) while this packet still reads it; a key of one value with the
	 * counter or identity of another is refused (counted), never used. */
	salt = READ_ONCE(fk->salt);
	id = pccom_fk_half_id(&fk->cur, READ_ONCE(fk->leg));
	rc = pccom_rounds_of(fk->cur.flags, &s->dr);
	if (rc)
		return rc;
	__builtin_memcpy(s->in.key, fk->cur.key, sizeof(s->in.key));
	s->fk_mode = 1;
	s->has_prev = fk->prev.key_version != 0;
	if (!encrypt) {
		s->t_cur = READ_ONCE(fk->cur.ctr);
		s->t_prev = READ_ONCE(fk->prev.ctr);
		s->fk_salt = salt;
		s->fk_ver = id;
		s->fk_psalt = fk->prev_salt;
		s->fk_pver = pccom_fk_half_id(&fk->prev, fk->prev_leg);
		return pccom_fk_same(fk, salt, id) ? 0 : GSCIP_CODE(GSCIP_DROP_FLOW_KEY_CHANGED);
	}
	if (pkt->cid.proto == IPPROTO_UDP) {
		ctr = __sync_fetch_and_add(&fk->cur.ctr, 1);
		s->ctr = ctr;
		if (!pccom_fk_same(fk, salt, id))
			return GSCIP_CODE(GSCIP_DROP_FLOW_KEY_CHANGED);
		at = fk->rekey_at ? fk->rekey_at : GSCIP_UDP_CTR_REKEY;
		if (ctr >= at || ctr >= GSCIP_UDP_CTR_LIMIT)
			pccom_want_rekey(fk, s);
		if (ctr >= GSCIP_UDP_CTR_LIMIT)
			return GSCIP_CODE(GSCIP_DROP_NONCE_LIMIT);  /* never a counter twice under one key */
		return 0;
	}
	if (!pccom_fk_same(fk, salt, id))
		return GSCIP_CODE(GSCIP_DROP_FLOW_KEY_CHANGED);
	if (pccom_has_ts(s))
		return 0;
	/* TCP without timestamps: the nonce is (ack, 0) and the position seq, so a
	 * sequence wrap under a constant ack would repeat keystream: ask for a new
	 * key half-way (racy first write: either CPU's seq is a fine base). */
	seq = bpf_ntohl(s->hdr[1]);
	base = READ_ONCE(fk->cur.ctr);
	if (!(base & GSCIP_FK_SEQ_BASE_SET)) {
		WRITE_ONCE(fk->cur.ctr, GSCIP_FK_SEQ_BASE_SET | seq);
		base = seq;
	}
	d = seq - (__u32)base;
	if (d >= GSCIP_FK_SEQ_REKEY && d < (__u32)(0 - GSCIP_FK_SEQ_BEHIND))
		pccom_want_rekey(fk, s);
	return 0;
}

/* The previous per-flow key (decrypt retry). GSCIP_DROP_BAD_KEYED_CSUM when there is none. */
static __always_inline int pccom_load_prev_flow_key(const struct gscip_pkt *pkt, struct pccom_scratch *s)
{
	struct gscip_flow_key_val *fk = bpf_map_lookup_elem(&gscip_flow_keys, &pkt->cid);
	__u64 salt;
	__u32 id;
	int rc;

	if (!fk || !fk->prev.key_version)
		return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
	salt = READ_ONCE(fk->prev_salt);  /* the key actually tried (this lookup may see a newer value) */
	id = pccom_fk_half_id(&fk->prev, READ_ONCE(fk->prev_leg));
	rc = pccom_rounds_of(fk->prev.flags, &s->dr);
	if (rc)
		return rc;
	__builtin_memcpy(s->in.key, fk->prev.key, sizeof(s->in.key));
	s->fk_psalt = salt;
	s->fk_pver = id;
	if (READ_ONCE(fk->prev_salt) != salt || pccom_fk_half_id(&fk->prev, READ_ONCE(fk->prev_leg)) != id)
		return GSCIP_CODE(GSCIP_DROP_FLOW_KEY_CHANGED);
	return 0;
}

/* RFC 4303 Appendix A with a 16-bit low part: t = the highest counter
 * accepted, lo = the IP ID. Up to W - 1 behind t, or ahead within the rest of
 * the 16-bit space. A wrong guess gives another keystream and K: the keyed
 * checksum fails (counted), nothing decrypts wrongly but with 2^-16. */
static __always_inline __u64 pccom_udp_ctr_guess(__u64 t, __u32 lo)
{
	__u64 tl = t & 0xffff, th = t >> 16;

	if (tl >= GSCIP_UDP_REORDER_WINDOW - 1) {
		if (lo < tl - (GSCIP_UDP_REORDER_WINDOW - 1))
			th += 1;
	} else if (lo >= ((tl - (GSCIP_UDP_REORDER_WINDOW - 1)) & 0xffff) && th > 0) {
		th -= 1;
	}
	return (th << 16) | lo;
}

/* The same for the UDP wire-valid form, whose IP ID carries only the counter's
 * low GSCIP_UDP_WIRE_CTR_BITS: up to GSCIP_UDP_WIRE_WINDOW - 1 behind t, or
 * ahead within the rest of that space. A wrong guess fails K (dropped, counted). */
static __always_inline __u64 pccom_udp_wire_guess(__u64 t, __u32 lo)
{
	const __u64 m = (1ULL << GSCIP_UDP_WIRE_CTR_BITS) - 1, w = GSCIP_UDP_WIRE_WINDOW;
	__u64 tl = t & m, th = t >> GSCIP_UDP_WIRE_CTR_BITS;

	lo &= m;
	if (tl >= w - 1) {
		if (lo < tl - (w - 1))
			th += 1;
	} else if (lo >= ((tl - (w - 1)) & m) && th > 0) {
		th -= 1;
	}
	return (th << GSCIP_UDP_WIRE_CTR_BITS) | lo;
}

/* The re-key signal: a PUNT_REKEY record naming the entry (no packet data). */
static __always_inline void pccom_rekey_signal(struct __sk_buff *skb, const struct gscip_pkt *pkt)
{
	struct gscip_punt_rec *rec;
	__u32 zero = 0;

	stats_count(GSCIP_STAT_PCCOM_REKEY, pkt->dir, skb->len);
	if (punt_admit(GSCIP_BUCKET_CONTROL))
		return;  /* asked again 256 wishes later */
	rec = bpf_map_lookup_elem(&gscip_punt_scratch, &zero);
	if (!rec)
		return;
	rec->ts_ns = bpf_ktime_get_ns();
	rec->ifindex = skb->ifindex;
	rec->pkt_len = 0;
	rec->cap_len = 0;
	rec->dir = pkt->dir;
	rec->reason = GSCIP_PUNT_REKEY;
	rec->pad = 0;
	rec->cid = pkt->cid;
	bpf_ringbuf_output(&gscip_punt, rec, offsetof(struct gscip_punt_rec, data), 0);
}

/* After a per-flow-key packet: the UDP receiver's highest counter (rc 0: under
 * cur, 1: under prev) and failures in a row; the signal if one was wished. */
static __always_inline void pccom_flow_key_after(struct __sk_buff *skb, const struct gscip_pkt *pkt,
						 struct pccom_scratch *s, const int encrypt, int rc)
{
	struct gscip_flow_key_val *fk;

	if (!encrypt && pkt->cid.proto == IPPROTO_UDP &&
	    (rc == 0 || rc == 1 || rc == GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM))) {
		/* A second lookup: the control plane may have replaced the value since
		 * pccom_load_flow_key (a re-key: cur became prev, a new cur with its
		 * counter at 0). A counter goes to the half that holds the key it was
		 * accepted under, if any; the rest only when cur is still that key. */
		fk = bpf_map_lookup_elem(&gscip_flow_keys, &pkt->cid);
		if (fk) {
			__u64 salt = rc == 0 ? s->fk_salt : s->fk_psalt;
			__u32 id = rc == 0 ? s->fk_ver : s->fk_pver;
			struct gscip_flow_key_half *h = NULL;

			if (fk->salt == salt && pccom_fk_half_id(&fk->cur, fk->leg) == id)
				h = &fk->cur;
			else if (fk->prev_salt == salt && pccom_fk_half_id(&fk->prev, fk->prev_leg) == id)
				h = &fk->prev;
			if ((rc == 0 || rc == 1) && h && s->ctr > READ_ONCE(h->ctr))
				WRITE_ONCE(h->ctr, s->ctr);
			if (fk->salt != s->fk_salt || pccom_fk_half_id(&fk->cur, fk->leg) != s->fk_ver) {
				/* another key now: this packet's result says nothing of it */
			} else if (rc != GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM)) {
				if (READ_ONCE(fk->fails))
					WRITE_ONCE(fk->fails, 0);
			} else {
				__u32 f = READ_ONCE(fk->fails) + 1;

				WRITE_ONCE(fk->fails, f);
				if (f >= GSCIP_FK_RESYNC_FAILS)
					pccom_want_rekey(fk, s);
			}
		}
	}
	if (s->signal)
		pccom_rekey_signal(skb, pkt);
}

#endif /* GSCIP_PCCOM_FLOW_KEY_H */
