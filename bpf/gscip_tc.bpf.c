// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* gscip_tc.bpf.c - the GSCIP fast path on TC (clsact) ingress and egress.
 * Each program is its direction's stage list, in order (stages.h contract;
 * [X] = only in a load whose gscip_load.stages has X):
 *
 *   egress : [release mark] -> classify (parse; control ICMP? marked: pass, else punt;
 *              [NAT] ICMP errors of NATed flows translated)
 *              -> [FTP] (a client's ack/SACK to port 21 moved by the FTP sequence delta)
 *              -> [XLAT] (stack->wire) -> [FTP] (227/229 from port 21 copied)
 *              -> [NAT] (inside source -> ext) -> PIT(wire CID)
 *              hit: pass | drop | [PCCOM] encrypt      miss: iface miss action
 *   ingress: [release mark] -> classify (parse; control ICMP? punt; [NAT] ICMP errors)
 *              -> PIT(wire CID) hit: pass | drop | [PCCOM] decrypt ; miss: miss action
 *              -> [NAT] (ext:port -> inside) -> [DNS] (answers from port 53 punted)
 *              -> [XLAT] (wire->stack) on whatever is let through
 *              -> [FTP] (a translated 227 from port 21 punted; other segments'
 *                 seq moved by the FTP sequence delta)
 *            ([DNS]/[FTP] an answer the agent re-injected: classify -> XLAT -> [FTP])
 *
 * Every stage returns GSCIP_STAGE_NEXT or GSCIP_CODE(enum gscip_stat); only
 * gscip_verdict() below turns a code into a per-CPU (reason, direction)
 * counter and the TC verdict the reason table (GSCIP_REASONS in gscip_abi.h)
 * declares for it. A new stage (CIT, VAT, NAT, DNS) is a bit in enum
 * gscip_stage and one GSCIP_RUN_STAGE line in the list(s) that need it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "gscip_abi.h"
#include "consts.h"
#include "codes.h"
#include "maps.h"
#include "reasons.h"
#include "stats.h"
#include "parse.h"
#include "ipv6.h"
#include "xlat.h"
#include "pit.h"
#include "miss.h"
#include "punt.h"
#include "release.h"
#include "control.h"
#include "nat.h"
#include "dns.h"
#include "ftp.h"
#include "stages.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Only here: code -> counters -> TC verdict. The code's reason is counted
 * under this program's direction; its kind and TC action come from the
 * GSCIP_REASONS table (reasons.h). A code that is not a declared verdict or
 * drop (an overlay, a retired number, a non-negative value) broke the stage
 * contract and is dropped as unsupported. Overlays are counted on top, so a sum
 * over verdicts and drops counts every packet once. */
static __always_inline int gscip_verdict(const struct gscip_run *run, int code)
{
	__u32 stat = GSCIP_CODE_TO_STAT(code);
	int tc = code_tc_act(code);

	if (tc < 0 || stat >= GSCIP_REASON__END) {
		stat = GSCIP_DROP_UNSUPPORTED;  /* a stage broke the contract: fail closed */
		tc = TC_ACT_SHOT;
	}
	stats_count(stat, run->dir, run->len);
	if (run->xlated)
		stats_count(GSCIP_STAT_XLAT, run->dir, run->len);
	if (stage_on(GSCIP_STAGE_NAT) && run->nat) {
		if (run->nat & NAT_RUN_XLATED)
			stats_count(GSCIP_STAT_NAT_XLAT, run->dir, run->len);
		if (run->nat & NAT_RUN_CREATED)
			stats_count(GSCIP_STAT_NAT_CREATED, run->dir, run->len);
	}
	if (stage_on(GSCIP_STAGE_FTP) && run->ftp) {
		if (run->ftp & FTP_RUN_COPIED)
			stats_count(GSCIP_STAT_FTP_COPY, run->dir, run->len);
		if (run->ftp & FTP_RUN_COPY_FAILED)
			stats_count(GSCIP_STAT_FTP_COPY_FAILED, run->dir, run->len);
		if (run->ftp & FTP_RUN_SEQ_ADJ)
			stats_count(GSCIP_STAT_FTP_SEQ_ADJ, run->dir, run->len);
		if (run->ftp & FTP_RUN_SEQ_RESET)
			stats_count(GSCIP_STAT_FTP_SEQ_RESET, run->dir, run->len);
	}
	if (run->released && (stat == GSCIP_STAT_PIT_PASS || stat == GSCIP_STAT_PIT_ENCRYPT ||
			      stat == GSCIP_STAT_PIT_DECRYPT))
		stats_count(GSCIP_STAT_RELEASED, run->dir, run->len);
	return tc;
}

/* A control message: control.h decides (punt, or pass the agent's own). On a
 * GNAT (NAT stage on) a message its agent sends with an inside host's source
 * (a DDE relayed "transparently" for a GE behind it) would leave with that
 * private source, past the NAT stage: dropped and counted as the NAT drops
 * anything it does not translate (nat_proto), never leaked. */
static __always_inline int gscip_control(struct __sk_buff *skb, struct gscip_run *run, const __u8 dir)
{
	int rc = control_apply(skb, &run->pkt, run->released, dir);

	if (rc == GSCIP_CODE(GSCIP_STAT_CONTROL_TX) && stage_on(GSCIP_STAGE_NAT))
		return gscip_nat_other(&run->pkt, dir == GSCIP_DIR_EGRESS, GSCIP_CODE(GSCIP_DROP_NAT_PROTO), rc);
	return rc;
}

/* Stage: parse up to the ports. NEXT = a TCP/UDP packet to look up; else a verdict code.
 * IPv6 frames end here, in the interface's IPv6 policy (ipv6.h).
 * ICMP of type GSCIP_ICMP_TYPE, and UDP to GSCIP_CONTROL_UDP_PORT, is a control
 * message (control.h): punted on ingress, and on egress unless this GE's agent
 * sent it (CONTROL_TX mark). */
static __always_inline int gscip_classify_dir(struct __sk_buff *skb, struct gscip_run *run, const __u8 dir)
{
	struct gscip_pkt *pkt = &run->pkt;
	bool nonfirst = false;
	__u32 l3_len = 0;
	__u8 icmp_type;
	int rc;

	rc = parse_l2_l3(skb, pkt, &l3_len, &nonfirst);
	if (rc == GSCIP_CODE(GSCIP_STAT_PASS_IPV6))
		return ipv6_apply(skb);  /* an IPv6 frame: the interface's IPv6 policy decides */
	if (rc)
		return rc;
	if (nonfirst)
		return stage_on(GSCIP_STAGE_NAT)
			       ? gscip_nat_other(pkt, dir == GSCIP_DIR_EGRESS, GSCIP_CODE(GSCIP_DROP_NAT_FRAGMENT),
						 GSCIP_CODE(GSCIP_STAT_PASS_FRAGMENT))
			       : GSCIP_CODE(GSCIP_STAT_PASS_FRAGMENT);
	if (pkt->cid.proto == IPPROTO_ICMP) {
		rc = parse_icmp_type(skb, pkt, l3_len, &icmp_type);
		if (rc)
			return rc;
		if (icmp_type != GSCIP_ICMP_TYPE) {
			if (stage_on(GSCIP_STAGE_NAT)) {
				if (icmp_type == NAT_ICMP_ECHO || icmp_type == NAT_ICMP_ECHO_REPLY) {
					rc = gscip_nat_echo(skb, pkt, icmp_type, dir == GSCIP_DIR_EGRESS);
					if (rc < 0)
						return rc;
					run->nat |= (__u8)rc;  /* counted nat_xlat / nat_created over pass_other_l4 */
					return GSCIP_CODE(GSCIP_STAT_PASS_OTHER_L4);
				}
				rc = gscip_nat_icmp(skb, pkt, l3_len, icmp_type, dir == GSCIP_DIR_EGRESS);
				if (rc)
					return rc;
			}
			return GSCIP_CODE(GSCIP_STAT_PASS_OTHER_L4);
		}
		return gscip_control(skb, run, dir);
	}
	if (pkt->cid.proto != IPPROTO_TCP && pkt->cid.proto != IPPROTO_UDP)
		return stage_on(GSCIP_STAGE_NAT)
			       ? gscip_nat_other(pkt, dir == GSCIP_DIR_EGRESS, GSCIP_CODE(GSCIP_DROP_NAT_PROTO),
						 GSCIP_CODE(GSCIP_STAT_PASS_OTHER_L4))
			       : GSCIP_CODE(GSCIP_STAT_PASS_OTHER_L4);
	rc = parse_l4_ports(skb, pkt, l3_len);
	/* A control message over UDP: to the control port; on egress also from it (an answer to a
	 * sender whose port a NAT changed goes to that port). */
	if (rc == 0 && pkt->cid.proto == IPPROTO_UDP &&
	    (pkt->cid.dport == bpf_htons(GSCIP_CONTROL_UDP_PORT) ||
	     (dir == GSCIP_DIR_EGRESS && pkt->cid.sport == bpf_htons(GSCIP_CONTROL_UDP_PORT))))
		return gscip_control(skb, run, dir);
	return rc;
}

/* One classify stage per direction, the direction a constant in each. */
static __always_inline int gscip_classify_egress(struct __sk_buff *skb, struct gscip_run *run)
{
	return gscip_classify_dir(skb, run, GSCIP_DIR_EGRESS);
}

static __always_inline int gscip_classify_ingress(struct __sk_buff *skb, struct gscip_run *run)
{
	return gscip_classify_dir(skb, run, GSCIP_DIR_INGRESS);
}

/* Codes after which the packet goes on to the next stage (ingress: XLAT). A packet
 * decrypted under the previous key (a re-key under way) is translated like any other:
 * a moved flow's CIT must not be skipped (the stack would answer the wire address with a RST). */
static __always_inline bool gscip_lets_through(int code)
{
	return code == GSCIP_CODE(GSCIP_STAT_PIT_PASS) || code == GSCIP_CODE(GSCIP_STAT_PIT_DECRYPT) ||
	       code == GSCIP_CODE(GSCIP_STAT_PIT_DECRYPT_PREV) || code == GSCIP_CODE(GSCIP_STAT_MISS_PASS);
}

/* Stage: the PIT, and what a miss becomes. What it lets through is its
 * run->verdict and goes on (ingress: to XLAT; egress: the list ends); any
 * other code (drop, punt, encrypt) ends the run. */
static __always_inline int gscip_pit_stage(struct __sk_buff *skb, struct gscip_run *run)
{
	struct gscip_pit_val *v = pit_lookup(&run->pkt);
	int rc;

	if (!v)
		rc = miss_apply(skb, &run->pkt, run->released);
	else {
		pit_touch(v);
		rc = pit_apply(skb, &run->pkt, v);
		pit_note_close(v, &run->pkt, rc);
	}
	if (gscip_lets_through(rc)) {
		run->verdict = rc;
		return GSCIP_STAGE_NEXT;
	}
	return rc;
}

SEC("tc")
int gscip_tc_egress(struct __sk_buff *skb)
{
	struct gscip_run run = { .len = skb->len, .dir = GSCIP_DIR_EGRESS, .pkt.cid.dir = GSCIP_DIR_EGRESS,
				 .verdict = GSCIP_CODE(GSCIP_DROP_UNSUPPORTED) };

	switch (release_classify(skb, GSCIP_DIR_EGRESS)) {
	case GSCIP_RELEASE_TO_INGRESS:
		/* counted by the ingress program, which sees it next */
		return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
	case GSCIP_RELEASE_PROCESS:
		run.released = true;
		break;
	default:
		break;
	}
	GSCIP_RUN_STAGE_ALWAYS(gscip_classify_egress, skb, &run);
	GSCIP_RUN_STAGE(GSCIP_STAGE_FTP, gscip_stage_ftp_seq_egress, skb, &run);  /* FTP sequence delta: ack, SACK */
	GSCIP_RUN_STAGE(GSCIP_STAGE_XLAT, gscip_stage_xlat, skb, &run);  /* stack view -> wire view */
	GSCIP_RUN_STAGE(GSCIP_STAGE_FTP, gscip_stage_ftp_egress, skb, &run);  /* a copy of FTP 227/229 replies */
	GSCIP_RUN_STAGE(GSCIP_STAGE_NAT, gscip_stage_nat_egress, skb, &run);  /* inside source -> ext:port */
	GSCIP_RUN_STAGE_ALWAYS(gscip_pit_stage, skb, &run);
	return gscip_verdict(&run, run.verdict);
}

SEC("tc")
int gscip_tc_ingress(struct __sk_buff *skb)
{
	struct gscip_run run = { .len = skb->len, .dir = GSCIP_DIR_INGRESS, .pkt.cid.dir = GSCIP_DIR_INGRESS,
				 .verdict = GSCIP_CODE(GSCIP_DROP_UNSUPPORTED) };

	/* a re-injected DNS answer or FTP reply (both take the DNS stage's mark) */
	bool dns_back = (stage_on(GSCIP_STAGE_DNS) || stage_on(GSCIP_STAGE_FTP)) && gscip_dns_reinjected(skb);

	run.released = release_classify(skb, GSCIP_DIR_INGRESS) == GSCIP_RELEASE_PROCESS;
	GSCIP_RUN_STAGE_ALWAYS(gscip_classify_ingress, skb, &run);
	if (!dns_back) {
		GSCIP_RUN_STAGE_ALWAYS(gscip_pit_stage, skb, &run);
		GSCIP_RUN_STAGE(GSCIP_STAGE_NAT, gscip_stage_nat_ingress, skb, &run);  /* ext:port -> inside */
		GSCIP_RUN_STAGE(GSCIP_STAGE_DNS, gscip_stage_dns_ingress, skb, &run);  /* answers to the agent's NRT */
	} else {
		run.verdict = GSCIP_CODE(GSCIP_STAT_DNS_REINJECTED);  /* it passed the PIT before its punt */
	}
	GSCIP_RUN_STAGE(GSCIP_STAGE_XLAT, gscip_stage_xlat, skb, &run);  /* wire view -> stack view */
	GSCIP_RUN_STAGE(GSCIP_STAGE_FTP, gscip_stage_ftp_ingress, skb, &run);  /* FTP 227 replies to the agent */
	return gscip_verdict(&run, run.verdict);
}
