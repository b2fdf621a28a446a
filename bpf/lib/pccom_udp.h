/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_udp.h - PCCOM for UDP: the plaintext sum as nonce, the checksum over
 * the plaintext plus K.
 *
 * Needs: csum.h, pccom_scratch.h, pccom_keystream.h (pccom_xor_payload,
 *   pccom_load_key for the prev-key retry), pccom_sums.h (struct pccom_sums,
 *   pccom_sum_now, pccom_k), pccom_nonce.h (pccom_udp_set_nonce), pccom_l4.h
 *   (PCCOM_CHECKSUM_*). The caller (pccom.h) has loaded the key and header,
 *   made the payload linear, written the sender's fresh IP ID
 *   (pccom_udp_new_ipid), set the nonce words 0..1 and the header sums.
 * Provides: pccom_udp_encrypt, pccom_udp_encrypt_wire (the wire-valid form,
 *   below) and pccom_udp_decrypt (either form). All leave the value for
 *   the checksum field in *csum (the caller writes it) and return 0, 1
 *   (decrypt only: keyed under pit->prev_key_version) or GSCIP_CODE(GSCIP_DROP_*).
 *
 * The keyed checksum is over the PLAINTEXT + K(IP ID, length), which hides
 * the plaintext sum S used as nonce word 2. The receiver recovers S from the
 * field, decrypts, and confirms S on the plaintext; on a mismatch with a
 * previous key to try it XORs the payload back first (about twice the cipher
 * work, for those datagrams only). A computed 0 is sent as 0xffff (0 means
 * "no checksum", which PCCOM never sends). UDP GSO skbs never get here
 * (pccom.h refuses them).
 * No verifier subtleties of its own: the loops live in the global functions
 * of pccom_keystream.h and pccom_sums.h. */
#ifndef GSCIP_PCCOM_UDP_H
#define GSCIP_PCCOM_UDP_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include "pkt.h"
#include "csum.h"
#include "pccom_scratch.h"
#include "pccom_l4.h"
#include "pccom_keystream.h"
#include "pccom_nonce.h"
#include "pccom_sums.h"
#include "pccom_flow_key.h"

/* UDP sender: checksum over the plaintext + K; the plaintext sum widens the nonce. */
static __always_inline int pccom_udp_encrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), pt, ct;

	if (pccom_sum_now(c, &pt))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	pccom_udp_set_nonce(s, pt);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		/* Field = seed; the final sum is taken later over the ciphertext. */
		if (pccom_sum_now(c, &ct))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
		*csum = csum_add16(s->csum, csum_add16(csum_add16(pt, csum_neg16(ct)), k));
	} else {
		*csum = csum_neg16(csum_add16(csum_add16(csum_add16(t->pseudo, t->hdr0), pt), k));
		if (*csum == 0)
			*csum = 0xffff;
	}
	return 0;
}

/* ---- the wire-valid form (docs/pccom.md "UDP across a checksum-verifying NAT") ----
 * Per-flow keys only. The UDP checksum is the ORDINARY one over the
 * ciphertext, so a NAT that verifies it translates the datagram; membership
 * rides in the IP ID: counter bits 0..5 | K bits 0..9 << 6, K = the keyed
 * form's K of that counter. The nonce is the counter alone (S = 0). The
 * receiver tells the form by the checksum (a valid ordinary checksum: wire
 * form), reconstructs the counter from the 6 bits, checks K BEFORE it
 * decrypts, and restores the ordinary checksum over the plaintext. A datagram
 * that fails K there gets the keyed form's check too: a keyed-form datagram
 * whose field is by chance its ordinary checksum (2^-16) is not lost. */
#define PCCOM_UDP_WIRE_LO_MASK ((1U << GSCIP_UDP_WIRE_CTR_BITS) - 1)
#define PCCOM_UDP_WIRE_K_MASK  ((1U << (16 - GSCIP_UDP_WIRE_CTR_BITS)) - 1)

/* The IP ID (host order) of counter ctr whose K is k. */
static __always_inline __u32 pccom_udp_wire_ipid(__u64 ctr, __u32 k)
{
	return ((__u32)ctr & PCCOM_UDP_WIRE_LO_MASK) | ((k & PCCOM_UDP_WIRE_K_MASK) << GSCIP_UDP_WIRE_CTR_BITS);
}

/* Sender, wire-valid form: K into the IP ID, encrypt, the ordinary checksum. */
static __always_inline int pccom_udp_encrypt_wire(struct pccom_pass *c, const struct gscip_pkt *pkt,
						  const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), ct;

	if (pccom_udp_store_ipid(c->skb, pkt, bpf_htons(pccom_udp_wire_ipid(s->ctr, k))))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	pccom_udp_set_nonce(s, 0);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = s->csum;  /* the seed: the final sum comes later, over the ciphertext */
		return 0;
	}
	if (pccom_sum_now(c, &ct))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*csum = csum_neg16(csum_add16(csum_add16(t->pseudo, t->hdr0), ct));
	if (*csum == 0)
		*csum = 0xffff;
	return 0;
}

/* Whether the checksum field is the ordinary checksum over the ciphertext (ct). */
static __always_inline int pccom_udp_is_wire(const struct pccom_scratch *s, const struct pccom_sums *t, __u32 ct)
{
	if (t->summed == PCCOM_CHECKSUM_PARTIAL)
		return csum_field_eq(s->csum, t->pseudo);
	return csum_field_eq(s->csum, csum_neg16(csum_add16(csum_add16(t->pseudo, t->hdr0), ct)));
}

/* Receiver, wire-valid form: the counter from the IP ID's low bits and t
 * (the highest accepted under the key loaded), then K against its high bits. */
static __always_inline int pccom_udp_wire_k_ok(const struct gscip_pkt *pkt, struct pccom_scratch *s, __u64 t)
{
	s->ctr = pccom_udp_wire_guess(t, s->ipid);
	s->in.nonce[1] = (__u32)s->ctr;
	s->ctr_hi = (__u32)(s->ctr >> 32) & 0xffff;
	return (pccom_k(pkt, s) & PCCOM_UDP_WIRE_K_MASK) == (s->ipid >> GSCIP_UDP_WIRE_CTR_BITS);
}

/* Receiver, wire-valid form: K under cur, then prev; decrypt; the ordinary
 * checksum over the plaintext. 0, 1 (prev) or a drop code. */
static __always_inline int pccom_udp_decrypt_wire(struct pccom_pass *c, const struct gscip_pkt *pkt,
						  const struct pccom_sums *t, __u32 *csum, __u32 ct)
{
	struct pccom_scratch *s = c->s;
	__u32 pt, sum;
	int rc;

	s->prev_used = 0;
	s->ct_sum = ct;
	if (!pccom_udp_wire_k_ok(pkt, s, s->t_cur)) {
		if (!s->has_prev)
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		rc = pccom_load_prev_flow_key(pkt, s);
		if (rc)
			return rc;
		if (!pccom_udp_wire_k_ok(pkt, s, s->t_prev))
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		s->prev_used = 1;
	}
	pccom_udp_set_nonce(s, 0);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (pccom_sum_now(c, &pt))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = t->pseudo;
	} else {
		sum = csum_add16(csum_add16(t->pseudo, t->hdr0), pt);
		*csum = csum_neg16(sum);
		if (*csum == 0)
			*csum = 0xffff;
	}
	if (t->summed == PCCOM_CHECKSUM_COMPLETE)
		bpf_csum_update(c->skb, csum_add16(csum_add16(pt, csum_neg16(s->ct_sum)),
						    csum_add16(*csum, csum_neg16(s->csum))));
	return s->prev_used;
}

/* UDP receiver, one key, ct = the ciphertext's sum: recover the plaintext sum
 * from the field (it is the nonce), decrypt, check. On a mismatch with restore
 * set, XOR again so the ciphertext is back for another key. */
static __always_inline int pccom_udp_decrypt_one(struct pccom_pass *c, const struct gscip_pkt *pkt,
						 const struct pccom_sums *t, __u32 *csum, const int restore,
						 __u32 ct)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), pt, expect, sum;

	if (t->summed == PCCOM_CHECKSUM_PARTIAL)  /* F = pseudo + pt - ct + K */
		pt = csum_add16(csum_add16(s->csum, csum_neg16(t->pseudo)), csum_add16(ct, csum_neg16(k)));
	else                                       /* F = ~(pseudo + hdr0 + pt + K) */
		pt = csum_add16(csum_neg16(s->csum), csum_neg16(csum_add16(csum_add16(t->pseudo, t->hdr0), k)));
	pccom_udp_set_nonce(s, pt);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (pccom_sum_now(c, &pt))  /* the plaintext as decrypted: confirms the recovered sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		expect = csum_add16(t->pseudo, csum_add16(csum_add16(pt, csum_neg16(ct)), k));
		*csum = t->pseudo;
	} else {
		sum = csum_add16(csum_add16(t->pseudo, t->hdr0), pt);
		expect = csum_neg16(csum_add16(sum, k));
		*csum = csum_neg16(sum);
		if (*csum == 0)
			*csum = 0xffff;
	}
	if (!csum_field_eq(s->csum, expect)) {
		if (restore && pccom_xor_payload(c))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
		return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
	}
	if (t->summed == PCCOM_CHECKSUM_COMPLETE)
		bpf_csum_update(c->skb, csum_add16(csum_add16(pt, csum_neg16(ct)),
						    csum_add16(*csum, csum_neg16(s->csum))));
	return 0;
}

/* UDP receiver: key_version, then prev_key_version (per-flow key: cur, then
 * prev, each with the counter guessed from its own highest). 0, 1 (prev) or a drop code. */
static __always_inline int pccom_udp_decrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct gscip_pit_val *pit,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	int has_prev = s->fk_mode ? s->has_prev
				  : pit->prev_key_version && pit->prev_key_version != pit->key_version;
	__u32 ct;
	int rc;

	if (pccom_sum_now(c, &ct))  /* the ciphertext's sum, the same for both keys */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (s->fk_mode && pccom_udp_is_wire(s, t, ct)) {
		rc = pccom_udp_decrypt_wire(c, pkt, t, csum, ct);
		if (rc != GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM))
			return rc;
		/* A keyed-form datagram whose field happens to be its ordinary checksum
		 * (2^-16; K failed before any cipher pass): the keyed check decides,
		 * under the current key and the counter guessed from all 16 bits again. */
		rc = pccom_load_flow_key(pkt, s, 0);
		if (rc)
			return rc;
		pccom_udp_ctr_nonce(s, s->t_cur, 1);
		has_prev = s->has_prev;
	}
	rc = pccom_udp_decrypt_one(c, pkt, t, csum, has_prev, ct);
	if (rc != GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) || !has_prev)
		return rc;
	if (s->fk_mode) {
		/* the previous per-flow key, with the counter guessed from its own state */
		rc = pccom_load_prev_flow_key(pkt, s);
		if (rc)
			return rc;
		pccom_udp_ctr_nonce(s, s->t_prev, 1);
	} else {
		rc = pccom_load_key(s, pit->group_id, pit->prev_key_version);
		if (rc)
			return rc == GSCIP_CODE(GSCIP_DROP_NO_KEY) ? GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) : rc;
	}
	rc = pccom_udp_decrypt_one(c, pkt, t, csum, 0, ct);
	return rc ? rc : 1;
}

#endif /* GSCIP_PCCOM_UDP_H */
