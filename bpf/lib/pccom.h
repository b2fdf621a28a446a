/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom.h - PCCOM: TCP/UDP payload encryption (ChaCha20/12/8) with a keyed
 * checksum. The composition the entry programs include; the work is in one
 * header per job. Design, nonce scheme and limits: docs/pccom.md.
 *
 *   pccom_scratch.h    per-CPU working state and size limits (map in maps.h)
 *   pccom_l4.h         L4 header copy, ip_summed, linear payload, checksum field
 *   pccom_keystream.h  the group key; the ChaCha XOR pass over the payload (global)
 *   pccom_flow_key.h   per-flow keys, the UDP datagram counter, the re-key signal
 *   pccom_nonce.h      TCP seq/ack/TSval and UDP IP-ID nonces, domain constants
 *   pccom_sums.h       payload sums (bpf_csum_diff, global), header sums, K
 *   pccom_tcp.h        TCP: ciphertext keyed checksum, verify before decrypt
 *   pccom_udp.h        UDP: plaintext-sum nonce, plaintext keyed checksum
 *   csum.h             the one's-complement arithmetic all of them use
 *   chacha20.h         the cipher core
 *
 * Needs: maps.h (gscip_pccom_scratch, gscip_keys), pkt.h (a parsed packet),
 *   the struct gscip_pit_val of the hit.
 * Provides, for pit.h (and the test object gscip_crypto_test.bpf.c):
 *  - pccom_egress(skb, pkt, pit): encrypt and write the keyed checksum.
 *    0 or GSCIP_CODE(GSCIP_DROP_*).
 *  - pccom_ingress(skb, pkt, pit): verify under key_version, then
 *    prev_key_version; decrypt; restore the ordinary checksum. 0, 1 (keyed
 *    under prev_key_version) or GSCIP_CODE(GSCIP_DROP_*).
 *  - pccom_scratch(): this CPU's scratch cell (or NULL).
 * The caller counts and drops on a drop code. Both hooks may pull data and
 * write the packet: callers re-derive pointers from pkt's offsets. Only the
 * L4 payload changes, in place (and the UDP sender's IP ID: the counter, or in
 * the wire-valid form counter bits and K); headers and
 * lengths never change. Fragments and UDP GSO skbs are refused; a key
 * missing from gscip_keys drops (never plaintext).
 *
 * Verifier: the two loops (XOR pass, payload sum) are global functions, so
 * the four paths composed here (TCP/UDP x encrypt/decrypt, each with its
 * prev-key retry) add only straight-line code per call site. encrypt is a
 * compile-time constant at each pccom_apply call, so each hook carries only
 * its own direction. */
#ifndef GSCIP_PCCOM_H
#define GSCIP_PCCOM_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include "pkt.h"
#include "maps.h"
#include "pccom_scratch.h"
#include "pccom_l4.h"
#include "pccom_keystream.h"
#include "pccom_flow_key.h"
#include "pccom_nonce.h"
#include "pccom_sums.h"
#include "pccom_tcp.h"
#include "pccom_udp.h"

static __always_inline struct pccom_scratch *pccom_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&gscip_pccom_scratch, &zero);
}

/* The shared body of both hooks; encrypt is a compile-time constant at each call.
 * Returns 0, 1 (decrypted under prev_key_version) or a drop code. */
static __always_inline int pccom_apply_with(struct __sk_buff *skb, struct gscip_pkt *pkt,
					    const struct gscip_pit_val *pit, const int encrypt,
					    struct pccom_scratch *s)
{
	struct pccom_pass c = { .skb = skb, .s = s };
	struct pccom_sums t;
	__u32 csum = 0;
	int rc, res, wire;

	if (pkt->is_fragment)
		return GSCIP_CODE(GSCIP_DROP_FRAGMENT);
	if (pkt->cid.proto != IPPROTO_TCP && pkt->cid.proto != IPPROTO_UDP)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	t.summed = pccom_ip_summed(skb);
	/* A GSO skb is fine for TCP with the seed in the checksum field (the keyed
	 * checksum is per segment by construction); UDP GSO is refused. */
	if (skb->gso_size && (pkt->cid.proto != IPPROTO_TCP || t.summed != PCCOM_CHECKSUM_PARTIAL))
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	rc = pccom_load_hdr(skb, pkt, s);
	if (rc)
		return rc;
	/* The entry's key: its per-flow key (GSCIP_PIT_F_FLOW_KEY), else the group key. */
	rc = (pit->flags & GSCIP_PIT_F_FLOW_KEY) ? pccom_load_flow_key(pkt, s, encrypt)
						 : pccom_load_key(s, pit->group_id, pit->key_version);
	if (rc)
		return rc;
	if (!encrypt && pkt->cid.proto == IPPROTO_UDP && s->csum == 0)
		return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);  /* PCCOM never sends "no checksum" */
	rc = pccom_linearize(skb, s);
	if (rc)
		return rc;
	/* UDP wire-valid form: per-flow keys only; its IP ID is written with K (pccom_udp.h). */
	wire = (pit->flags & GSCIP_PIT_F_WIRE_CSUM) != 0;
	if (encrypt && pkt->cid.proto == IPPROTO_UDP && !(wire && s->fk_mode)) {
		rc = pccom_udp_new_ipid(skb, pkt, s);
		if (rc)
			return rc;
	}
	rc = pccom_nonce(skb, pkt, s, encrypt);
	if (rc)
		return rc;
	rc = pccom_hdr_sum(pkt, s, &t.pseudo, &t.hdr0);
	if (rc)
		return rc;
	if (pkt->cid.proto == IPPROTO_TCP)
		res = encrypt ? pccom_tcp_encrypt(&c, pkt, &t, &csum, wire)
			      : pccom_tcp_decrypt(&c, pkt, pit, &t, &csum);
	else if (encrypt)
		res = wire && s->fk_mode ? pccom_udp_encrypt_wire(&c, pkt, &t, &csum) : pccom_udp_encrypt(&c, pkt, &t, &csum);
	else
		res = pccom_udp_decrypt(&c, pkt, pit, &t, &csum);
	if (res < 0)
		return res;
	rc = pccom_write_csum(skb, pkt, csum);
	return rc ? rc : res;
}

/* Runs the body, then wipes the key copy and the last keystream block from the
 * scratch so no key material outlives the packet there. */
static __always_inline int pccom_apply(struct __sk_buff *skb, struct gscip_pkt *pkt,
				       const struct gscip_pit_val *pit, const int encrypt)
{
	struct pccom_scratch *s = pccom_scratch();
	int rc;

	if (!s)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	s->fk_mode = 0;
	s->ctr_hi = 0;
	s->signal = 0;
	rc = pccom_apply_with(skb, pkt, pit, encrypt, s);
	if (s->fk_mode)
		pccom_flow_key_after(skb, pkt, s, encrypt, rc);
	__builtin_memset(s->in.key, 0, sizeof(s->in.key));
	__builtin_memset(s->kin.key, 0, sizeof(s->kin.key));
	__builtin_memset(&s->ks, 0, sizeof(s->ks));
	if (s->tail_used) {  /* payload bytes summed last; TCP GSO skbs never sum, so never pay this */
		__builtin_memset(s->tailbuf, 0, sizeof(s->tailbuf));
		s->tail_used = 0;
	}
	return rc;
}

/* Encrypt pkt's TCP/UDP payload with the key named by pit and write the keyed
 * checksum. 0 or a drop code. */
static __always_inline int pccom_egress(struct __sk_buff *skb, struct gscip_pkt *pkt,
					const struct gscip_pit_val *pit)
{
	int rc = pccom_apply(skb, pkt, pit, 1);

	return rc > 0 ? 0 : rc;
}

/* Verify the keyed checksum, decrypt, and leave a packet with an ordinary valid
 * checksum. 0, 1 (it was keyed under pit->prev_key_version) or a drop code. */
static __always_inline int pccom_ingress(struct __sk_buff *skb, struct gscip_pkt *pkt,
					 const struct gscip_pit_val *pit)
{
	return pccom_apply(skb, pkt, pit, 0);
}

#endif /* GSCIP_PCCOM_H */
