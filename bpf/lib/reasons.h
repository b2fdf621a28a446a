/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* reasons.h - what each reason code is, derived from GSCIP_REASONS in
 * gscip_abi.h (the one place a reason's kind and TC action are declared).
 *
 *   reason_kind(r)    enum gscip_reason_kind; GSCIP_KIND_UNUSED for a hole,
 *                     a retired number or anything out of range
 *   reason_tc_act(r)  enum gscip_tc_verdict (TC_ACT_*); SHOT unless r is a
 *                     declared verdict or drop (fail closed)
 *
 * The table lives in .rodata (frozen at load: one bounded load per lookup). */
#ifndef GSCIP_REASONS_H
#define GSCIP_REASONS_H

#include "gscip_abi.h"
#include "consts.h"

struct gscip_reason_info {
	__u8 kind;  /* enum gscip_reason_kind */
	__u8 tc;    /* enum gscip_tc_verdict */
};

#define GSCIP_REASON_ROW(reason, k, a) \
	[reason] = { .kind = GSCIP_KIND_##k, .tc = GSCIP_TC_##a },
static const struct gscip_reason_info gscip_reason_info[GSCIP_REASON__END] = {
	GSCIP_REASONS(GSCIP_REASON_ROW)
};
#undef GSCIP_REASON_ROW

/* Every row must be consistent: drops end in SHOT, overlays in no action,
 * verdicts in a real action, and no row may name a number outside the space. */
#define GSCIP_REASON_CHECK(reason, kind, act)                                       \
	_Static_assert((reason) < GSCIP_REASON__END, #reason " outside the reason space"); \
	_Static_assert(GSCIP_KIND_##kind != GSCIP_KIND_DROP || GSCIP_TC_##act == GSCIP_TC_SHOT, \
		       #reason ": a drop must end in SHOT");                            \
	_Static_assert((GSCIP_KIND_##kind == GSCIP_KIND_OVERLAY) == (GSCIP_TC_##act == GSCIP_TC_NONE), \
		       #reason ": overlays, and only overlays, have no TC action");
GSCIP_REASONS(GSCIP_REASON_CHECK)
#undef GSCIP_REASON_CHECK

/* The table row of a reason; kind GSCIP_KIND_UNUSED out of range. */
static __always_inline struct gscip_reason_info reason_info(__u32 reason)
{
	struct gscip_reason_info none = { .kind = GSCIP_KIND_UNUSED, .tc = TC_ACT_SHOT };

	if (reason >= GSCIP_REASON__END)
		return none;
	return gscip_reason_info[reason];
}

static __always_inline __u8 reason_kind(__u32 reason)
{
	if (reason >= GSCIP_REASON__END)
		return GSCIP_KIND_UNUSED;
	return gscip_reason_info[reason].kind;
}

/* The TC action of a verdict code's reason; anything undeclared is dropped. */
static __always_inline int reason_tc_act(__u32 reason)
{
	struct gscip_reason_info info;

	if (reason >= GSCIP_REASON__END)
		return TC_ACT_SHOT;
	info = gscip_reason_info[reason];
	if (info.kind != GSCIP_KIND_VERDICT && info.kind != GSCIP_KIND_DROP)
		return TC_ACT_SHOT;
	return info.tc;
}

/* Does this helper return code end in a drop? (Codes that are not reasons count as drops.) */
static __always_inline bool code_is_drop(int code)
{
	return code >= 0 || reason_tc_act(GSCIP_CODE_TO_STAT(code)) == TC_ACT_SHOT;
}

#endif /* GSCIP_REASONS_H */
