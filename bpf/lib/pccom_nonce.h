/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_nonce.h - which keystream a packet uses: the nonce and stream position.
 * Nothing here depends on the key. Scheme and its limits: docs/pccom.md.
 *
 * Needs: pkt.h, pccom_scratch.h, pccom_l4.h (s->hdr, s->hlen, s->l4_len loaded
 *   by pccom_load_hdr; pccom_has_ts).
 * Provides:
 *  - PCCOM_DOM_*: nonce word 0, domain separation between the four keystream
 *    uses of one key (TCP data, TCP checksum pad, UDP data, UDP checksum pad).
 *  - pccom_nonce(skb, pkt, s): s->in.nonce and s->first_block / s->ks_off.
 *      TCP: nonce (TCP_DATA, ack, TSval or 0), byte position = seq, so a
 *           segment decrypts alone and a retransmission is self-consistent.
 *      UDP: nonce (UDP_DATA, IP ID | UDP length << 16, word 2 set later by
 *           pccom_udp_set_nonce), stream from block 0.
 *      UDP with a per-flow key (s->fk_mode): nonce (UDP_DATA, counter bits
 *           0..31, word 2 = counter bits 32..47 << 16 | plaintext sum); the
 *           receiver reconstructs the counter from the IP ID and s->t_cur.
 *  - pccom_udp_store_ipid(skb, pkt, id): write a UDP sender's IP ID (wire bytes),
 *    fixing the IPv4 header checksum (the wire-valid form's, pccom_udp.h).
 *  - pccom_udp_new_ipid(skb, pkt, s): the UDP sender writes the IP ID: the
 *    per-flow counter's low 16 bits (s->ctr), or for a group key a fresh value
 *    of the per-CPU counter s->ipid_ctr; fixes the IPv4 header checksum.
 *  - pccom_udp_ctr_nonce(s, t): the receiver's counter guess from t (the
 *    highest accepted under the key being tried) into s->ctr and the nonce.
 *  - pccom_udp_set_nonce(s, pt): UDP nonce word 2 = the plaintext sum (and the
 *    counter's high bits).
 * Return 0 or GSCIP_CODE(GSCIP_DROP_CRYPTO). pccom_udp_new_ipid writes the
 * packet: re-derive packet pointers after it. No verifier subtleties: fixed
 * offsets through bpf_skb_load_bytes / store_bytes, no packet pointers. */
#ifndef GSCIP_PCCOM_NONCE_H
#define GSCIP_PCCOM_NONCE_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pkt.h"
#include "chacha20.h"
#include "pccom_scratch.h"
#include "pccom_l4.h"
#include "pccom_flow_key.h"

/* Nonce word 0: domain separation between the four keystream uses. */
#define PCCOM_DOM_TCP_DATA  0x50435401  /* "PCT" 1 */
#define PCCOM_DOM_TCP_CSUM  0x50435402
#define PCCOM_DOM_UDP_DATA  0x50435501  /* "PCU" 1 */
#define PCCOM_DOM_UDP_CSUM  0x50435502

/* Write the IP ID (wire bytes) and fix the IPv4 header checksum. */
static __always_inline int pccom_udp_store_ipid(struct __sk_buff *skb, const struct gscip_pkt *pkt, __be16 new_id)
{
	__be16 old_id;

	if (bpf_skb_load_bytes(skb, pkt->l3_off + offsetof(struct iphdr, id), &old_id, sizeof(old_id)))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, id), &new_id, sizeof(new_id), 0))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (bpf_l3_csum_replace(skb, pkt->l3_off + offsetof(struct iphdr, check), old_id, new_id,
				sizeof(new_id)))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	return 0;
}

/* UDP sender: the counter's low bits, or a fresh IP ID from the per-CPU counter
 * (Linux sends ID 0 on DF datagrams of unconnected sockets, which would repeat
 * the nonce). */
static __always_inline int pccom_udp_new_ipid(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					      struct pccom_scratch *s)
{
	__be16 new_id;

	if (s->fk_mode) {
		new_id = bpf_htons(s->ctr & 0xffff);
	} else {
		if (s->ipid_ctr == 0)
			s->ipid_ctr = bpf_get_prandom_u32() | 1;
		new_id = bpf_htons(s->ipid_ctr & 0xffff);
		s->ipid_ctr += 1;
	}
	return pccom_udp_store_ipid(skb, pkt, new_id);
}

/* UDP, per-flow key: the counter is (s->ctr, already the sender's; the
 * receiver's guessed from the IP ID in nonce word 1 and t) in the nonce. */
static __always_inline void pccom_udp_ctr_nonce(struct pccom_scratch *s, __u64 t, int guess)
{
	if (guess)
		s->ctr = pccom_udp_ctr_guess(t, s->ipid);
	s->in.nonce[1] = (__u32)s->ctr;
	s->ctr_hi = (__u32)(s->ctr >> 32) & 0xffff;
}

/* Set the keystream nonce/position in the scratch (nothing here depends on the key). */
static __always_inline int pccom_nonce(struct __sk_buff *skb, const struct gscip_pkt *pkt,
				       struct pccom_scratch *s, const int encrypt)
{
	if (pkt->cid.proto == IPPROTO_TCP) {
		__u32 seq = bpf_ntohl(s->hdr[1]);

		s->in.nonce[0] = PCCOM_DOM_TCP_DATA;
		s->in.nonce[1] = s->hdr[2];                       /* ack, wire bytes */
		s->in.nonce[2] = pccom_has_ts(s) ? s->hdr[6] : 0; /* TSval, wire bytes */
		s->first_block = seq / CHACHA20_BLOCK_BYTES;
		s->ks_off = seq % CHACHA20_BLOCK_BYTES;
	} else {
		__be16 id;

		if (bpf_skb_load_bytes(skb, pkt->l3_off + offsetof(struct iphdr, id), &id, sizeof(id)))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
		s->in.nonce[0] = PCCOM_DOM_UDP_DATA;
		s->in.nonce[1] = (__u32)id | (s->l4_len << 16);
		s->in.nonce[2] = 0;
		s->ipid = bpf_ntohs(id);
		if (s->fk_mode)
			pccom_udp_ctr_nonce(s, s->t_cur, !encrypt);
		s->first_block = 0;
		s->ks_off = 0;
	}
	return 0;
}

/* UDP nonce word 2 = the 16-bit one's-complement sum of the plaintext payload
 * (canonical: 0xffff -> 0). It widens the 16-bit IP ID: a keystream repeats
 * only for equal (IP ID, length, plaintext sum). The sender sums the plaintext;
 * the receiver recovers the sum from the keyed checksum, where K hides it,
 * before decrypting, and the final checksum comparison confirms it. */
static __always_inline void pccom_udp_set_nonce(struct pccom_scratch *s, __u32 pt)
{
	s->in.nonce[2] = (pt == 0xffff ? 0 : pt) | (s->ctr_hi << 16);
}

#endif /* GSCIP_PCCOM_NONCE_H */
