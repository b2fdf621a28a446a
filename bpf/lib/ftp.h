/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ftp.h - GSRA's FTP passive mode (GSCIP_STAGE_FTP), docs/gsra.md "FTP
 * passive mode".
 *
 * Needs: punt.h (punt_emit), stages.h (struct gscip_run), a parsed TCP
 *   packet (classify).
 * Provides:
 *  - gscip_stage_ftp_ingress (the EN): at the end of ingress, a TCP segment
 *    the XLAT stage translated (a VAT flow: decrypted, now in the stack view
 *    VIN:21 -> GEN:s) whose payload starts "227 " is punted
 *    (GSCIP_PUNT_FTP_REPLY, not stashed): the agent rewrites the address in it
 *    to the VIN (keeping the segment's length when the reply's text has room,
 *    else longer, noting the connection's sequence delta below; it moves the
 *    re-injected segment's seq itself) and re-injects it with
 *    GSCIP_MARK_DNS_REINJECT (it then skips the PIT, NAT and DNS stages; XLAT
 *    finds no entry for the stack view, so it is not punted again). A reply
 *    longer than GSCIP_PUNT_MAX_BYTES passes unmodified (FTP_TOO_BIG).
 *  - gscip_stage_ftp_egress (the router's outside instance): after XLAT and
 *    before NAT (the view PIN:21 -> GEN:s), a TCP segment from port 21 whose
 *    payload starts "227 " or "229 " is copied to the agent
 *    (GSCIP_PUNT_FTP_COPY) and goes on (NAT, PIT: encrypted as before): the
 *    router learns the data port the IN announced. A copy that cannot be made
 *    is counted (FTP_COPY_FAILED) and the packet still goes on.
 *  - the sequence delta (the EN; gscip_ftp_seq, written by the agent when a
 *    227 rewrite changed the segment's length): on ingress, every other
 *    translated segment from VIN:21 has its seq moved (ftp_seq_fwd); on egress,
 *    before XLAT (the stack view GEN:s -> VIN:21), the client's ack and SACK
 *    edges are moved back (ftp_seq_back), and a client SYN (no ACK) on a
 *    4-tuple with an entry removes it (a new connection). All in the clear:
 *    ingress after PIT decryption, egress before PIT encryption, TCP checksum
 *    updated incrementally (the helpers keep CHECKSUM_PARTIAL/COMPLETE right).
 * Cost on other packets: a port compare (and on ingress only translated ones);
 * TCP to or from port 21: one hash lookup. */
#ifndef GSCIP_FTP_H
#define GSCIP_FTP_H

#include "codes.h"
#include "consts.h"
#include "csum.h"
#include "maps.h"
#include "punt.h"
#include "stages.h"

#define GSCIP_FTP_CONTROL_PORT 21

/* struct gscip_run.ftp bits (overlay counters). */
#define FTP_RUN_COPIED      0x1
#define FTP_RUN_COPY_FAILED 0x2
#define FTP_RUN_SEQ_ADJ     0x4
#define FTP_RUN_SEQ_RESET   0x8

#define FTP_TCPOPT_EOL  0
#define FTP_TCPOPT_NOP  1
#define FTP_TCPOPT_SACK 5
#define FTP_OPT_STEPS   40  /* at most 40 option bytes: each step consumes at least one */
#define FTP_SACK_EDGES  8   /* at most 4 blocks */

/* "227 " / "229 " as the 4 payload bytes read in memory order, compared as a __u32. */
#define FTP_W(a, b, c, d) ((__u32)(a) | ((__u32)(b) << 8) | ((__u32)(c) << 16) | ((__u32)(d) << 24))
#define FTP_227 FTP_W('2', '2', '7', ' ')
#define FTP_229 FTP_W('2', '2', '9', ' ')

/* The payload's first 4 bytes, or 0 (not TCP, a fragment, fewer than 4 bytes). */
static __always_inline __u32 ftp_reply_word(struct __sk_buff *skb, const struct gscip_pkt *pkt)
{
	__u32 w = 0;

	if (pkt->cid.proto != IPPROTO_TCP || pkt->is_fragment || pkt->payload_len < 4 ||
	    pkt->cid.sport != bpf_htons(GSCIP_FTP_CONTROL_PORT))
		return 0;
	if (bpf_skb_load_bytes(skb, pkt->payload_off, &w, sizeof(w)))
		return 0;
	return w;
}

/* Sequence arithmetic of gscip_ftp_seq (mirrored by controlplane/gsra/ftp-seq.ts, unit-tested there):
 * a after b modulo 2^32. */
static __always_inline int ftp_after(__u32 a, __u32 b) { return (__s32)(b - a) < 0; }

/* A server seq (its own space) -> the client's view. */
static __always_inline __u32 ftp_seq_fwd(const struct gscip_ftp_seq_val *v, __u32 seq)
{
	return seq + (__u32)(ftp_after(seq, v->pos) ? v->after : v->before);
}

/* A client ack / SACK edge (the client's view) -> the server's space. */
static __always_inline __u32 ftp_seq_back(const struct gscip_ftp_seq_val *v, __u32 ack)
{
	return ack - (__u32)(ftp_after(ack - (__u32)v->before, v->pos) ? v->after : v->before);
}

/* The 32-bit TCP word at l4_off + off moved by fwd/back; checksum updated. 0, or -1 when it could not be written. */
static __always_inline int ftp_move32(struct __sk_buff *skb, const struct gscip_pkt *pkt, __u32 off,
				      const struct gscip_ftp_seq_val *v, int back, __u8 *moved)
{
	__be32 from, to;
	__u32 h;

	if (bpf_skb_load_bytes(skb, pkt->l4_off + off, &from, sizeof(from)))
		return -1;
	h = bpf_ntohl(from);
	to = bpf_htonl(back ? ftp_seq_back(v, h) : ftp_seq_fwd(v, h));
	if (to == from)
		return 0;
	if (bpf_skb_store_bytes(skb, pkt->l4_off + off, &to, sizeof(to), 0) ||
	    bpf_l4_csum_replace(skb, csum_l4_field_off(pkt), from, to, sizeof(to)))
		return -1;
	*moved |= FTP_RUN_SEQ_ADJ;
	return 0;
}

/* The client's SACK edges moved back (RFC 2018: kind 5, 2 + 8n bytes). */
static __always_inline int ftp_sack_back(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					 const struct gscip_ftp_seq_val *v, __u8 *moved)
{
	__u32 o = sizeof(struct tcphdr), end = pkt->l4_hlen;
	__u8 kl[2];
	int i, j;

	for (i = 0; i < FTP_OPT_STEPS && o < end; i++) {
		if (bpf_skb_load_bytes(skb, pkt->l4_off + o, &kl[0], 1))
			return 0;
		if (kl[0] == FTP_TCPOPT_EOL)
			return 0;
		if (kl[0] == FTP_TCPOPT_NOP) {
			o++;
			continue;
		}
		if (o + 2 > end || bpf_skb_load_bytes(skb, pkt->l4_off + o + 1, &kl[1], 1) || kl[1] < 2 || o + kl[1] > end)
			return 0;
		if (kl[0] == FTP_TCPOPT_SACK) {
			for (j = 0; j < FTP_SACK_EDGES; j++) {
				if (2 + 4 * (j + 1) > kl[1])
					break;
				if (ftp_move32(skb, pkt, o + 2 + 4 * j, v, 1, moved))
					return -1;
			}
		}
		o += kl[1];
	}
	return 0;
}

/* Ingress, a translated segment from VIN:21: its seq moved by the connection's delta, if any. */
static __always_inline int ftp_seq_ingress(struct __sk_buff *skb, struct gscip_run *run)
{
	struct gscip_ftp_seq_val *v = bpf_map_lookup_elem(&gscip_ftp_seq, &run->pkt.cid);

	if (!v)
		return GSCIP_STAGE_NEXT;
	if (ftp_move32(skb, &run->pkt, offsetof(struct tcphdr, seq), v, 0, &run->ftp))
		return GSCIP_CODE(GSCIP_DROP_FTP_SEQ_REWRITE);
	return GSCIP_STAGE_NEXT;
}

/* Egress, before XLAT: a client segment to port 21 of a connection with a delta: ack and SACK moved back. */
static __always_inline int gscip_stage_ftp_seq_egress(struct __sk_buff *skb, struct gscip_run *run)
{
	const struct gscip_pkt *pkt = &run->pkt;
	struct gscip_ftp_seq_val *v;
	struct gscip_cid k = {};

	if (pkt->cid.proto != IPPROTO_TCP || pkt->is_fragment || pkt->cid.dport != bpf_htons(GSCIP_FTP_CONTROL_PORT))
		return GSCIP_STAGE_NEXT;
	k.saddr = pkt->cid.daddr;
	k.daddr = pkt->cid.saddr;
	k.sport = pkt->cid.dport;
	k.dport = pkt->cid.sport;
	k.proto = IPPROTO_TCP;
	k.dir = GSCIP_DIR_INGRESS;
	v = bpf_map_lookup_elem(&gscip_ftp_seq, &k);
	if (!v)
		return GSCIP_STAGE_NEXT;
	if ((pkt->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN) {
		bpf_map_delete_elem(&gscip_ftp_seq, &k);  /* a new connection on this 4-tuple */
		run->ftp |= FTP_RUN_SEQ_RESET;
		return GSCIP_STAGE_NEXT;
	}
	if (!(pkt->tcp_flags & PKT_TCP_ACK))
		return GSCIP_STAGE_NEXT;
	if (ftp_move32(skb, pkt, offsetof(struct tcphdr, ack_seq), v, 1, &run->ftp) ||
	    (pkt->l4_hlen > sizeof(struct tcphdr) && ftp_sack_back(skb, pkt, v, &run->ftp)))
		return GSCIP_CODE(GSCIP_DROP_FTP_SEQ_REWRITE);
	return GSCIP_STAGE_NEXT;
}

static __always_inline int gscip_stage_ftp_ingress(struct __sk_buff *skb, struct gscip_run *run)
{
	const struct gscip_pkt *pkt = &run->pkt;
	int rc;

	if (!run->xlated || pkt->cid.proto != IPPROTO_TCP || pkt->is_fragment ||
	    pkt->cid.sport != bpf_htons(GSCIP_FTP_CONTROL_PORT))
		return GSCIP_STAGE_NEXT;
	if (ftp_reply_word(skb, pkt) != FTP_227)
		return ftp_seq_ingress(skb, run);  /* every other segment of the connection */
	if (skb->len > GSCIP_PUNT_MAX_BYTES) {
		rc = ftp_seq_ingress(skb, run);
		return rc ? rc : GSCIP_CODE(GSCIP_STAT_FTP_TOO_BIG);
	}
	/* the agent rewrites it and applies the delta itself (ftp-seq.ts) before re-injecting it */
	rc = punt_emit(skb, &run->pkt.cid, GSCIP_DIR_INGRESS, GSCIP_PUNT_FTP_REPLY);
	if (rc == GSCIP_CODE(GSCIP_STAT_PUNT_MISS))
		return GSCIP_CODE(GSCIP_STAT_FTP_PUNT);
	return rc;  /* a punt refused (bucket, ring): dropped, counted; TCP retransmits it */
}

static __always_inline int gscip_stage_ftp_egress(struct __sk_buff *skb, struct gscip_run *run)
{
	__u32 w = ftp_reply_word(skb, &run->pkt);

	if (w != FTP_227 && w != FTP_229)
		return GSCIP_STAGE_NEXT;
	if (skb->len <= GSCIP_PUNT_MAX_BYTES &&
	    punt_emit(skb, &run->pkt.cid, GSCIP_DIR_EGRESS, GSCIP_PUNT_FTP_COPY) == GSCIP_CODE(GSCIP_STAT_PUNT_MISS))
		run->ftp |= FTP_RUN_COPIED;
	else
		run->ftp |= FTP_RUN_COPY_FAILED;
	return GSCIP_STAGE_NEXT;
}

#endif /* GSCIP_FTP_H */
