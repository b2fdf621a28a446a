/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* codes.h - what a fast-path helper returns when it ends a packet's run.
 *
 *   GSCIP_CODE(reason) = -(GSCIP_CODE_BASE + reason + (tag << GSCIP_CODE_TAG_SHIFT))
 *
 * The tag is the reason's TC action + 1 when GSCIP_REASONS declares it a
 * verdict or a drop, 0 otherwise (an overlay, a hole, a retired number: a
 * code that must never end a run). It is read from the reason table
 * (reasons.h) at compile time, so GSCIP_CODE's argument must be a constant
 * (write `c ? GSCIP_CODE(A) : GSCIP_CODE(B)`, never GSCIP_CODE(c ? A : B);
 * test/bpf/stages.test.ts fails on any program that loads the table), so
 * the entry program's verdict needs no table load per packet and the action is
 * still declared once, in GSCIP_REASONS. */
#ifndef GSCIP_CODES_H
#define GSCIP_CODES_H

#include "gscip_abi.h"
#include "reasons.h"

#define GSCIP_CODE_TAG_SHIFT 12
#define GSCIP_CODE_LOW_MASK ((1u << GSCIP_CODE_TAG_SHIFT) - 1)
_Static_assert(GSCIP_CODE_BASE + GSCIP_REASON__END <= (1 << GSCIP_CODE_TAG_SHIFT), "reason space overlaps the code tag");

#define GSCIP_CODE_TAG(reason)                                                          \
	((reason) < GSCIP_REASON__END &&                                                  \
			 (gscip_reason_info[reason].kind == GSCIP_KIND_VERDICT ||         \
			  gscip_reason_info[reason].kind == GSCIP_KIND_DROP)             \
		 ? gscip_reason_info[reason].tc + 1                                     \
		 : 0)
#define GSCIP_CODE(reason) (-(int)(GSCIP_CODE_BASE + (reason) + (GSCIP_CODE_TAG(reason) << GSCIP_CODE_TAG_SHIFT)))

/* The reason a code counts under (any value for a non-negative one). */
#define GSCIP_CODE_TO_STAT(code) (((__u32)(-(code)) & GSCIP_CODE_LOW_MASK) - GSCIP_CODE_BASE)

/* The TC action a code ends its run with; -1 when it must not end one
 * (not negative, or a reason that is no verdict or drop). */
static __always_inline int code_tc_act(int code)
{
	__u32 tag;

	if (code >= 0)
		return -1;
	tag = (__u32)(-code) >> GSCIP_CODE_TAG_SHIFT;
	return tag ? (int)tag - 1 : -1;
}

/* Does this helper return code end in a drop? (Codes that are no verdict count as drops.) */
static __always_inline bool code_is_drop(int code)
{
	int act = code_tc_act(code);

	return act < 0 || act == TC_ACT_SHOT;
}

#endif /* GSCIP_CODES_H */
