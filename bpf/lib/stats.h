/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* stats.h - per-CPU counters keyed by (reason, direction), the reason being
 * an enum gscip_stat (see GSCIP_REASONS for its kind). Called only by the
 * entry programs (and the PCCOM test object). */
#ifndef GSCIP_STATS_H
#define GSCIP_STATS_H

#include "maps.h"

static __always_inline void stats_count(__u32 reason, __u8 dir, __u32 bytes)
{
	struct gscip_stat_val *v;
	__u32 slot;

	if (reason >= GSCIP_REASON__END || dir >= GSCIP_COUNTER_DIRS)
		return;
	slot = GSCIP_COUNTER_SLOT(reason, dir);
	v = bpf_map_lookup_elem(&gscip_counters, &slot);
	if (!v)
		return;
	/* per-CPU cell: no other writer, no atomics needed */
	v->packets++;
	v->bytes += bytes;
}

#endif /* GSCIP_STATS_H */
