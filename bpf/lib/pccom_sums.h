/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_sums.h - the checksum terms of a PCCOM packet: payload sums, the
 * pseudo-header and L4 header sums, and the key-derived term K.
 *
 * Needs: csum.h (all one's-complement arithmetic), chacha20.h (K is one
 *   block), pccom_scratch.h, pccom_l4.h (the header copy in s->hdr, s->csum,
 *   pccom_has_ts), pccom_nonce.h (PCCOM_DOM_*_CSUM; K reuses data nonce word
 *   1 and, for TCP, word 2, so pccom_nonce() runs first).
 * Provides:
 *  - pccom_payload_sum(skb, s), a GLOBAL function, and its wrapper
 *    pccom_sum_now(c, &sum): the 16-bit sum (word view of payload positions)
 *    of the payload as it is now, ciphertext or plaintext depending on when
 *    it is called. 0 / a drop code.
 *  - pccom_hdr_sum(pkt, s, &pseudo, &hdr0): pseudo-header sum and the L4
 *    header sum with the checksum field as zero. 0 / a drop code.
 *  - struct pccom_sums: those two plus skb->ip_summed, shared by the TCP and
 *    UDP paths (pccom_tcp.h, pccom_udp.h).
 *  - pccom_k(pkt, s): K, 16 bits of a ChaCha block under the loaded key.
 *      TCP: counter TSecr, nonce (TCP_CSUM, ack, TSval): fields every segment
 *           GSO/TSO cuts from one skb shares, and NAT leaves alone, so K is
 *           additive and survives segmentation and NAT's incremental updates.
 *      UDP: counter 0, nonce (UDP_CSUM, IP ID | length << 16, 0); with a
 *           per-flow key (UDP_CSUM, counter bits 0..31, bits 32..47 << 16).
 *    Clobbers s->ks (free until the payload pass) and s->kin.
 * How the terms combine into the keyed checksum is the protocol's business:
 * pccom_tcp.h and pccom_udp.h.
 *
 * Verifier / helper constraints:
 *  - bpf_csum_diff() sums at most 512 bytes (whole words) per call: whole
 *    512-byte chunks are summed straight from the linear packet in a bpf_loop
 *    callback (offset + 512 kept <= PCCOM_MAX_PKT_END for the 0xffff packet
 *    offset limit); the rest is copied to s->tailbuf, zero-padded to words.
 *    The kernel's csum_partial does the adding: ~4x faster than summing in BPF.
 *  - pccom_payload_sum is GLOBAL so it is verified once, not at each of the
 *    up to four call sites per path; its pointer arguments are NULL-checked
 *    because the verifier does not know they are not. */
#ifndef GSCIP_PCCOM_SUMS_H
#define GSCIP_PCCOM_SUMS_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "pkt.h"
#include "csum.h"
#include "chacha20.h"
#include "pccom_scratch.h"
#include "pccom_l4.h"
#include "pccom_nonce.h"

/* ---- payload sums, by the kernel's csum_partial (bpf_csum_diff) ---- */

struct pccom_sum_ctx {
	struct __sk_buff *skb;
	struct pccom_scratch *s;
	__u64 acc;
	int err;
};

/* 512 payload bytes from position 512 i, straight from the (linear) packet. */
static long pccom_sum_chunk(__u32 i, void *data)
{
	struct pccom_sum_ctx *c = data;
	__u32 off;
	__u8 *p, *end;
	__s64 sum;

	if (i > PCCOM_MAX_PKT_END / PCCOM_SUM_CHUNK)
		goto fail;
	off = c->s->pay_off + i * PCCOM_SUM_CHUNK;
	if (off > PCCOM_MAX_PKT_END - PCCOM_SUM_CHUNK)  /* verifier: offset + 512 <= 0xffff */
		goto fail;
	p = (__u8 *)(long)c->skb->data + off;
	end = (__u8 *)(long)c->skb->data_end;
	if (p + PCCOM_SUM_CHUNK > end)
		goto fail;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)p, PCCOM_SUM_CHUNK, 0);
	if (sum < 0)
		goto fail;
	c->acc += (__u32)sum;
	return 0;
fail:
	c->err = 1;
	return 1;
}

/* The 16-bit one's-complement sum of the payload (s->pay_off, s->pay_len) as
 * it is now, in the word view of payload positions (every chunk starts at an
 * even position): whole 512-byte chunks straight from the linear packet, the
 * rest copied to s->tailbuf and zero-padded to whole words. The kernel's
 * csum_partial does the adding: ~4x faster than summing in BPF. A GLOBAL
 * function (verified once). Returns 0..0xffff, or -1. */
__noinline int pccom_payload_sum(struct __sk_buff *skb, struct pccom_scratch *s)
{
	struct pccom_sum_ctx c = { .skb = skb, .s = s };
	__u32 chunks, tail, words;
	__s64 sum;

	if (!skb || !s || s->pay_len > PCCOM_MAX_PKT_END)
		return -1;
	chunks = s->pay_len / PCCOM_SUM_CHUNK;
	tail = s->pay_len & (PCCOM_SUM_CHUNK - 1);
	if (chunks && (bpf_loop(chunks, pccom_sum_chunk, &c, 0) < 0 || c.err))
		return -1;
	if (tail) {
		/* zero the last word first: the bytes the copy does not reach are padding */
		*(__u32 *)(s->tailbuf + (tail & (PCCOM_SUM_CHUNK - 4))) = 0;
		s->tail_used = 1;
		if (bpf_skb_load_bytes(skb, s->pay_off + chunks * PCCOM_SUM_CHUNK, s->tailbuf, tail))
			return -1;
		words = (tail + 3) & ~3u;
		if (words > PCCOM_SUM_CHUNK)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->tailbuf, words, 0);
		if (sum < 0)
			return -1;
		c.acc += (__u32)sum;
	}
	return csum_fold16(c.acc);
}

/* The payload's sum now (pccom_payload_sum), or a drop code. */
static __always_inline int pccom_sum_now(struct pccom_pass *c, __u32 *sum)
{
	int rc = pccom_payload_sum(c->skb, c->s);

	if (rc < 0)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*sum = rc;
	return 0;
}

/* ---- header sums ---- */

/* Sums of the pseudo-header and of the L4 header with the checksum field as zero. */
static __always_inline int pccom_hdr_sum(const struct gscip_pkt *pkt, const struct pccom_scratch *s,
					 __u32 *pseudo_out, __u32 *hdr0_out)
{
	struct {
		__be32 saddr;
		__be32 daddr;
		__u8   zero;
		__u8   proto;
		__be16 len;
	} ph = {
		.saddr = pkt->cid.saddr, .daddr = pkt->cid.daddr,
		.zero = 0, .proto = pkt->cid.proto, .len = bpf_htons(s->l4_len),
	};
	__s64 sum;

	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (sum < 0)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*pseudo_out = csum_fold16(sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)s->hdr, s->hlen & 0x3c, 0);
	if (sum < 0)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*hdr0_out = csum_add16(csum_fold16(sum), csum_neg16(s->csum));
	return 0;
}

/* Checksum terms of one packet, shared by the TCP and UDP paths. */
struct pccom_sums {
	__u32 pseudo;   /* pseudo-header sum */
	__u32 hdr0;     /* L4 header sum with the checksum field as zero */
	__u32 summed;   /* skb->ip_summed */
};

/* ---- the keyed term ---- */

/* K (16 bits) for the loaded key. TCP: ChaCha(key, counter TSecr, nonce
 * (TCP_CSUM, ack, TSval)) - fields shared by every segment GSO/TSO cuts from
 * one skb and left alone by NAT. UDP: (UDP_CSUM, IP ID | length << 16). */
static __always_inline __u32 pccom_k(const struct gscip_pkt *pkt, struct pccom_scratch *s)
{
	__u32 kctr = 0;

	__builtin_memcpy(s->kin.key, s->in.key, sizeof(s->kin.key));
	s->kin.nonce[1] = s->in.nonce[1];
	s->kin.nonce[2] = 0;
	if (pkt->cid.proto == IPPROTO_TCP) {
		s->kin.nonce[0] = PCCOM_DOM_TCP_CSUM;
		s->kin.nonce[2] = s->in.nonce[2];
		kctr = pccom_has_ts(s) ? s->hdr[7] : 0;        /* TSecr, wire bytes */
	} else {
		s->kin.nonce[0] = PCCOM_DOM_UDP_CSUM;
		s->kin.nonce[2] = s->ctr_hi << 16;  /* per-flow counter bits 32..47; 0 for a group key */
	}
	chacha20_block(&s->kin, kctr, &s->ks, s->dr);  /* s->ks is free until the payload pass */
	return s->ks.w[0] & 0xffff;
}

#endif /* GSCIP_PCCOM_SUMS_H */
