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
 * Provides: pccom_udp_encrypt and pccom_udp_decrypt. Both leave the value for
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
