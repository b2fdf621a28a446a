/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_tcp.h - PCCOM for TCP: encrypt and key the checksum; verify, then decrypt.
 *
 * Needs: csum.h, pccom_scratch.h, pccom_keystream.h (pccom_xor_payload,
 *   pccom_load_key for the prev-key retry), pccom_sums.h (struct pccom_sums,
 *   pccom_sum_now, pccom_k), pccom_l4.h (PCCOM_CHECKSUM_*). The caller
 *   (pccom.h) has loaded the key, the header (pccom_load_hdr), made the
 *   payload linear, set the nonce (pccom_nonce) and the header sums.
 * Provides: pccom_tcp_encrypt and pccom_tcp_decrypt. Both leave the value for
 *   the checksum field in *csum (the caller writes it) and return 0, 1
 *   (decrypt only: keyed under pit->prev_key_version) or GSCIP_CODE(GSCIP_DROP_*).
 *
 * The keyed checksum: the field carries
 *     ~fold(pseudo-header + TCP header + CIPHERTEXT payload + K)
 * K is additive: the sender of a CHECKSUM_PARTIAL skb (GSO super-packets
 * included) only adds K to the pseudo-header seed, and whoever computes the
 * final checksums later (software GSO, the NIC's TSO) produces keyed
 * per-segment checksums. The receiver checks BEFORE it decrypts (under
 * key_version, then prev_key_version), so a forged segment costs no cipher
 * pass. CHECKSUM_COMPLETE skbs get skb->csum updated for the new bytes.
 * No verifier subtleties of its own: the loops live in the global functions
 * of pccom_keystream.h and pccom_sums.h. */
#ifndef GSCIP_PCCOM_TCP_H
#define GSCIP_PCCOM_TCP_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include "pkt.h"
#include "csum.h"
#include "pccom_scratch.h"
#include "pccom_l4.h"
#include "pccom_keystream.h"
#include "pccom_sums.h"
#include "pccom_flow_key.h"

/* Whether the URG flag is set (TCP byte 13), from the header copy. */
static __always_inline int pccom_tcp_urg_set(const struct pccom_scratch *s)
{
	return ((const __u8 *)s->hdr)[13] & PKT_TCP_URG;
}

/* The urgent pointer in word view (wire bytes as a u16), from the header copy. */
static __always_inline __u32 pccom_tcp_urg(const struct pccom_scratch *s)
{
	return s->hdr[4] >> 16;  /* TCP bytes 18-19; bytes 16-17 are the checksum */
}

/* TCP sender: encrypt, then key the checksum. CHECKSUM_PARTIAL (incl. GSO):
 * the seed gains K, and the final per-segment sums over the ciphertext come
 * later. Otherwise the full keyed checksum over the ciphertext.
 * Wire-valid form (wire = 1, and URG clear with a zero urgent pointer): K is
 * written into the urgent pointer instead, so the checksum field holds the
 * same value, now as the ORDINARY checksum of the packet (its header holds
 * K): PARTIAL leaves the seed alone, NONE computes the same sum as before. */
static __always_inline int pccom_tcp_encrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct pccom_sums *t, __u32 *csum, int wire)
{
	struct pccom_scratch *s = c->s;
	__u32 k, ct;

	/* K and the form live in the scratch across the payload pass (the stack is at its limit). */
	s->wire_form = wire && !pccom_tcp_urg_set(s) && pccom_tcp_urg(s) == 0;  /* else the urgent pointer is the application's */
	s->urg_out = pccom_k(pkt, s);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	k = s->urg_out;
	if (s->wire_form && bpf_skb_store_bytes(c->skb, pkt->l4_off + 18, &s->urg_out, sizeof(s->urg_out), 0))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = s->wire_form ? s->csum : csum_add16(s->csum, k);
		return 0;
	}
	if (pccom_sum_now(c, &ct))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*csum = csum_neg16(csum_add16(csum_add16(csum_add16(t->pseudo, t->hdr0), ct), s->urg_out));
	return 0;
}

/* Does the TCP checksum field match K of the loaded key? ct = ciphertext sum
 * (unused for CHECKSUM_PARTIAL: a skb that never crossed a wire carries only
 * the seed, which authenticates the pseudo-header and K's fields).
 * Wire-valid form (URG clear, urgent pointer non-zero): the urgent pointer
 * must be K and the field the ordinary checksum (t->hdr0 holds K already). */
static __always_inline int pccom_tcp_keyed_ok(const struct gscip_pkt *pkt, struct pccom_scratch *s,
					      const struct pccom_sums *t, __u32 ct, int wire)
{
	__u32 k, want;

	/* Everything but K first, into the scratch: only s and pkt live across K's ChaCha block. */
	s->summed = t->summed;
	s->want_sum = t->summed == PCCOM_CHECKSUM_PARTIAL ? t->pseudo : csum_add16(csum_add16(t->pseudo, t->hdr0), ct);
	s->wire_form = wire;
	k = pccom_k(pkt, s);
	want = s->want_sum;
	if (s->wire_form) {
		if (pccom_tcp_urg(s) != k)
			return 0;
	} else {
		want = csum_add16(want, k);
	}
	return csum_field_eq(s->csum, s->summed == PCCOM_CHECKSUM_PARTIAL ? want : csum_neg16(want));
}

/* TCP receiver: verify BEFORE decrypting (under key_version, then under
 * prev_key_version), decrypt, restore the ordinary checksum (and, for the
 * wire-valid form, a zero urgent pointer). Either form is taken, whatever the
 * entry says: a sender picks its form per flow. Returns 0, 1 (decrypted
 * under prev_key_version) or a drop code. */
static __always_inline int pccom_tcp_decrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct gscip_pit_val *pit,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 pt, urg;
	int rc;

	/* What must outlive the cipher and sum passes lives in the scratch, not on the stack (at its limit). */
	s->urg_in = pccom_tcp_urg(s);
	s->wire_form = !pccom_tcp_urg_set(s) && s->urg_in != 0;
	s->ct_sum = 0;
	s->prev_used = 0;
	if (t->summed != PCCOM_CHECKSUM_PARTIAL && pccom_sum_now(c, &s->ct_sum))  /* ciphertext sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (!pccom_tcp_keyed_ok(pkt, s, t, s->ct_sum, s->wire_form)) {
		if (s->fk_mode) {
			rc = pccom_load_prev_flow_key(pkt, s);  /* the per-flow key before the last re-key */
			if (rc)
				return rc;
		} else {
			if (!pit->prev_key_version || pit->prev_key_version == pit->key_version)
				return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
			rc = pccom_load_key(s, pit->group_id, pit->prev_key_version);
			if (rc)
				return rc == GSCIP_CODE(GSCIP_DROP_NO_KEY) ? GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) : rc;
		}
		if (!pccom_tcp_keyed_ok(pkt, s, t, s->ct_sum, s->wire_form))
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		s->prev_used = 1;
	}
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (s->wire_form) {
		/* the urgent pointer back to zero (out of the header sum below) */
		s->urg_out = 0;
		if (bpf_skb_store_bytes(c->skb, pkt->l4_off + 18, &s->urg_out, sizeof(s->urg_out), 0))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	}
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = t->pseudo;  /* back to the plain seed the stack (or GSO) expects */
		return s->prev_used;
	}
	if (pccom_sum_now(c, &pt))  /* plaintext sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	urg = s->wire_form ? s->urg_in : 0;  /* what leaves the header sum */
	*csum = csum_neg16(csum_add16(csum_add16(csum_add16(t->pseudo, t->hdr0), csum_neg16(urg)), pt));
	if (t->summed == PCCOM_CHECKSUM_COMPLETE)
		bpf_csum_update(c->skb, csum_add16(csum_add16(csum_add16(pt, csum_neg16(s->ct_sum)),
							      csum_add16(*csum, csum_neg16(s->csum))),
						    csum_neg16(urg)));
	return s->prev_used;
}

#endif /* GSCIP_PCCOM_TCP_H */
