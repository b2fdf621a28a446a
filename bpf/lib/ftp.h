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
 *    to the VIN, keeping the segment's length, and re-injects it with
 *    GSCIP_MARK_DNS_REINJECT (it then skips the PIT, NAT and DNS stages; XLAT
 *    finds no entry for the stack view, so it is not punted again). A reply
 *    longer than GSCIP_PUNT_MAX_BYTES passes unmodified (FTP_TOO_BIG).
 *  - gscip_stage_ftp_egress (the router's outside instance): after XLAT and
 *    before NAT (the view PIN:21 -> GEN:s), a TCP segment from port 21 whose
 *    payload starts "227 " or "229 " is copied to the agent
 *    (GSCIP_PUNT_FTP_COPY) and goes on (NAT, PIT: encrypted as before): the
 *    router learns the data port the IN announced. A copy that cannot be made
 *    is counted (FTP_COPY_FAILED) and the packet still goes on.
 * Cost on other packets: a port compare (and on ingress only translated ones). */
#ifndef GSCIP_FTP_H
#define GSCIP_FTP_H

#include "codes.h"
#include "consts.h"
#include "punt.h"
#include "stages.h"

#define GSCIP_FTP_CONTROL_PORT 21

/* struct gscip_run.ftp bits (overlay counters). */
#define FTP_RUN_COPIED      0x1
#define FTP_RUN_COPY_FAILED 0x2

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

static __always_inline int gscip_stage_ftp_ingress(struct __sk_buff *skb, struct gscip_run *run)
{
	int rc;

	if (!run->xlated || ftp_reply_word(skb, &run->pkt) != FTP_227)
		return GSCIP_STAGE_NEXT;
	if (skb->len > GSCIP_PUNT_MAX_BYTES)
		return GSCIP_CODE(GSCIP_STAT_FTP_TOO_BIG);
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
