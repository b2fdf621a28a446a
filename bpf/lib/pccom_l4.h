/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_l4.h - what PCCOM reads from and writes to the skb around the payload:
 * the L4 header copy, the checksum state, a linear payload, the checksum field.
 *
 * Needs: pkt.h (struct gscip_pkt from parse.h or the test parser: l4_off,
 *   l4_hlen, payload_off/len, cid.proto), pccom_scratch.h, the kfunc
 *   bpf_cast_to_kern_ctx and CO-RE (BTF of struct sk_buff).
 * Provides:
 *  - pccom_ip_summed(skb): skb->ip_summed (PCCOM_CHECKSUM_*).
 *  - pccom_load_hdr(skb, pkt, s): the L4 header into s->hdr (wire bytes),
 *    s->hlen, s->pay_off, s->pay_len (UDP: from its length field), s->l4_len
 *    (pseudo-header length), s->csum (the checksum field, word view).
 *  - pccom_has_ts(s): the TCP timestamp option in Linux's layout.
 *  - pccom_linearize(skb, s): pull the payload into the linear area; bounds
 *    pay_off + pay_len by PCCOM_MAX_PKT_END for every later packet access.
 *  - pccom_write_csum(skb, pkt, csum): store the L4 checksum field.
 * All return 0 or GSCIP_CODE(GSCIP_DROP_*). pccom_linearize and
 * pccom_write_csum may move or write packet data: re-derive pointers after.
 *
 * Verifier: the header length is masked to a multiple of 4 below 64 with an
 * empty asm barrier so the sized bpf_skb_load_bytes sees both bounds. */
#ifndef GSCIP_PCCOM_L4_H
#define GSCIP_PCCOM_L4_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "pkt.h"
#include "pccom_scratch.h"

/* skb->ip_summed values (include/linux/skbuff.h). */
#define PCCOM_CHECKSUM_NONE     0
#define PCCOM_CHECKSUM_COMPLETE 2
#define PCCOM_CHECKSUM_PARTIAL  3

/* TCP option bytes NOP NOP TIMESTAMP(10) as Linux lays them out after the header. */
#define PCCOM_TCPOPT_NOP_NOP_TS 0x0101080a

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

static __always_inline int pccom_ip_summed(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ_BITFIELD(kskb, ip_summed);
}

/* Copy the L4 header into the scratch; find payload length, pseudo length, checksum. */
static __always_inline int pccom_load_hdr(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					  struct pccom_scratch *s)
{
	__u32 hlen = pkt->l4_hlen;

	if (hlen > PCCOM_MAX_L4_HLEN || (hlen & 3))
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	hlen &= 0x3c;
	asm volatile("" : "+r"(hlen));  /* the verifier must see the lower bound below */
	if (hlen < 8)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	if (bpf_skb_load_bytes(skb, pkt->l4_off, s->hdr, hlen))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	s->hlen = hlen;
	s->pay_off = pkt->payload_off;
	if (pkt->cid.proto == IPPROTO_TCP) {
		if (hlen < 20)
			return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
		s->pay_len = pkt->payload_len;
		s->l4_len = hlen + pkt->payload_len;
		s->csum = s->hdr[4] & 0xffff;                /* bytes 16..17 */
	} else {
		__u32 ulen = bpf_ntohs(s->hdr[1] & 0xffff);  /* bytes 4..5 */

		if (ulen < 8 || ulen - 8 > pkt->payload_len)
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		s->pay_len = ulen - 8;
		s->l4_len = ulen;
		s->csum = s->hdr[1] >> 16;                   /* bytes 6..7 */
	}
	return 0;
}

/* The TCP timestamp option in the layout Linux always uses (NOP, NOP, TS first). */
static __always_inline int pccom_has_ts(const struct pccom_scratch *s)
{
	return s->hlen >= 32 && s->hdr[5] == bpf_htonl(PCCOM_TCPOPT_NOP_NOP_TS);
}

/* Make the payload linear (a no-op for the common case; a GSO skb's frags
 * are pulled into its head) and bound its offsets. */
static __always_inline int pccom_linearize(struct __sk_buff *skb, const struct pccom_scratch *s)
{
	__u32 need = s->pay_off + s->pay_len;

	if (need > PCCOM_MAX_PKT_END)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	if ((long)skb->data + need > (long)skb->data_end && bpf_skb_pull_data(skb, need))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	return 0;
}

static __always_inline int pccom_write_csum(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					    __u32 csum)
{
	__u16 v = csum;
	__u32 off = pkt->l4_off + (pkt->cid.proto == IPPROTO_TCP ? 16 : 6);

	if (bpf_skb_store_bytes(skb, off, &v, sizeof(v), 0))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	return 0;
}

#endif /* GSCIP_PCCOM_L4_H */
