/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* reasons.h - what each reason code is, derived from GSCIP_REASONS in
 * gscip_abi.h (the one place a reason's kind and TC action are declared).
 *
 *   gscip_reason_info[r]   { kind, tc } of reason r (zero = unused)
 *
 * Read at compile time only (codes.h folds a reason's action into its code):
 * no packet pays a table load. */
#ifndef GSCIP_REASONS_H
#define GSCIP_REASONS_H

#include "gscip_abi.h"
#include "consts.h"

struct gscip_reason_info {
	__u8 kind;  /* enum gscip_reason_kind */
	__u8 tc;    /* enum gscip_tc_verdict */
};

/* Global, not static: each object is one translation unit, and a global keeps
 * its BTF VAR, by which test/bpf/btf-layout.test.ts compares the compiled table
 * with abi.ts REASONS (clang still folds every constant-index read). */
#define GSCIP_REASON_ROW(reason, k, a) \
	[reason] = { .kind = GSCIP_KIND_##k, .tc = GSCIP_TC_##a },
const struct gscip_reason_info gscip_reason_info[GSCIP_REASON__END] = {
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

#endif /* GSCIP_REASONS_H */
