/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* stages.h - the datapath stage contract, one packet's run state, and the
 * load-time switches that leave a stage out of a load.
 *
 * A stage:   int stage(struct __sk_buff *skb, struct gscip_run *run)
 *   returns  GSCIP_STAGE_NEXT (0): go on with the next stage of the list;
 *            a GSCIP_CODE(reason): the run ends here with that code.
 *   A stage that lets the packet on but decides how it ends (the ingress PIT:
 *   pass or decrypt, then XLAT) stores the code in run->verdict and returns
 *   NEXT; a list that runs out ends with run->verdict, which starts as
 *   DROP_UNSUPPORTED (no stage decided: fail closed).
 *   State between stages lives in *run (the entry program's stack), never in
 *   globals. Only gscip_verdict() in the entry file turns the final code into
 *   counters and a TC action.
 *
 * The stage list of each direction is written out, in order, in its entry
 * program (gscip_tc.bpf.c): GSCIP_RUN_STAGE_ALWAYS(stage) for the stages
 * every load has, GSCIP_RUN_STAGE(bit, stage) for an optional one, so a
 * direction that does not use a stage never contains it. Both return from the
 * entry program through gscip_verdict() when the stage ends the run.
 *
 * Switches: gscip_load.stages (enum gscip_stage, gscip_abi.h), a const
 * volatile in its own section .rodata.gscip_load. libbpf makes that a
 * read-only, frozen map; the loader (controlplane/bpf/object.ts) writes it
 * between open and load. The verifier reads a frozen read-only map as known
 * constants, walks only the live branch, and removes the dead one (and a
 * global subprogram nothing live calls is never verified), so a load without
 * a stage neither runs, nor is verified for, nor carries that stage's code.
 * The program's instructions before verification, and so its tag, are the
 * same for every setting (the value is in the map, not in the code).
 *
 * Stages are static __always_inline by default (no call on the per-packet
 * path). A stage whose verification cost grows with the number of paths
 * reaching it may be a global subprogram instead (__noinline, not static:
 * verified once per program against its prototype, like PCCOM's loops; its
 * pointer argument may be NULL to the verifier, so it checks), paying a call
 * and the reload of *run after it: XLAT was measured both ways (xlat.h). Tail
 * calls were not chosen: see docs/architecture.md "Datapath stages". */
#ifndef GSCIP_STAGES_H
#define GSCIP_STAGES_H

#include "codes.h"
#include "gscip_abi.h"
#include "pkt.h"

#define GSCIP_STAGE_NEXT 0

/* Set by the loader before load; the default is every stage that exists. */
const volatile struct gscip_load_cfg gscip_load SEC(".rodata.gscip_load") = {
	.stages = GSCIP_STAGE_DEFAULT,
};

/* Is this stage part of this load? A constant to the verifier. */
static __always_inline bool stage_on(__u32 stage)
{
	return (gscip_load.stages & stage) != 0;
}

/* One packet's trip through a program. */
struct gscip_run {
	struct gscip_pkt pkt;
	__u32 len;      /* skb->len on entry: the byte count of every counter */
	int verdict;    /* the code the run ends with if every stage says NEXT */
	__u8 dir;       /* enum gscip_dir of this program: every counter's direction */
	bool released;  /* carried a release mark (now cleared) */
	bool xlated;    /* XLAT rewrote it */
	__u8 nat;       /* NAT_RUN_* (nat.h): the NAT rewrote it / created its session */
	__u8 ftp;       /* FTP_RUN_* (ftp.h): a copy of it went to the agent, or could not */
};

/* Run one optional stage of a list: skipped (and dead code) unless its bit is on. */
#define GSCIP_RUN_STAGE(bit, stage, skb, run)                     \
	do {                                                      \
		if (stage_on(bit)) {                              \
			int __rc = stage((skb), (run));           \
			if (__rc != GSCIP_STAGE_NEXT)             \
				return gscip_verdict((run), __rc); \
		}                                                 \
	} while (0)

/* Run a stage every load has. */
#define GSCIP_RUN_STAGE_ALWAYS(stage, skb, run)                   \
	do {                                                      \
		int __rc = stage((skb), (run));                   \
		if (__rc != GSCIP_STAGE_NEXT)                     \
			return gscip_verdict((run), __rc);        \
	} while (0)

#endif /* GSCIP_STAGES_H */
