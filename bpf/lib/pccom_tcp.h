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

/* TCP sender: encrypt, then key the checksum. CHECKSUM_PARTIAL (incl. GSO):
 * the seed gains K, and the final per-segment sums over the ciphertext come
 * later. Otherwise the full keyed checksum over the ciphertext. */
static __always_inline int pccom_tcp_encrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), ct;

	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = csum_add16(s->csum, k);
		return 0;
	}
	if (pccom_sum_now(c, &ct))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*csum = csum_neg16(csum_add16(csum_add16(csum_add16(t->pseudo, t->hdr0), ct), k));
	return 0;
}

/* Does the TCP checksum field match K of the loaded key? ct = ciphertext sum
 * (unused for CHECKSUM_PARTIAL: a skb that never crossed a wire carries only
 * the seed, which authenticates the pseudo-header and K's fields). */
static __always_inline int pccom_tcp_keyed_ok(const struct gscip_pkt *pkt, struct pccom_scratch *s,
					      const struct pccom_sums *t, __u32 ct)
{
	__u32 k = pccom_k(pkt, s);

	if (t->summed == PCCOM_CHECKSUM_PARTIAL)
		return csum_field_eq(s->csum, csum_add16(t->pseudo, k));
	return csum_field_eq(s->csum, csum_neg16(csum_add16(csum_add16(csum_add16(t->pseudo, t->hdr0),
									  ct), k)));
}

/* TCP receiver: verify BEFORE decrypting (under key_version, then under
 * prev_key_version), decrypt, restore the ordinary checksum. Returns 0, 1
 * (decrypted under prev_key_version) or a drop code. */
static __always_inline int pccom_tcp_decrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct gscip_pit_val *pit,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 ct = 0, pt;
	int prev = 0, rc;

	if (t->summed != PCCOM_CHECKSUM_PARTIAL && pccom_sum_now(c, &ct))  /* ciphertext sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (!pccom_tcp_keyed_ok(pkt, s, t, ct)) {
		if (!pit->prev_key_version || pit->prev_key_version == pit->key_version)
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		rc = pccom_load_key(s, pit->group_id, pit->prev_key_version);
		if (rc)
			return rc == GSCIP_CODE(GSCIP_DROP_NO_KEY) ? GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) : rc;
		if (!pccom_tcp_keyed_ok(pkt, s, t, ct))
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		prev = 1;
	}
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = t->pseudo;  /* back to the plain seed the stack (or GSO) expects */
		return prev;
	}
	if (pccom_sum_now(c, &pt))  /* plaintext sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*csum = csum_neg16(csum_add16(csum_add16(t->pseudo, t->hdr0), pt));
	if (t->summed == PCCOM_CHECKSUM_COMPLETE)
		bpf_csum_update(c->skb, csum_add16(csum_add16(pt, csum_neg16(ct)),
						    csum_add16(*csum, csum_neg16(s->csum))));
	return prev;
}

#endif /* GSCIP_PCCOM_TCP_H */
