/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* stats.h - per-CPU per-reason counters. Called only by the entry programs. */
#ifndef GSCIP_STATS_H
#define GSCIP_STATS_H

#include "maps.h"

static __always_inline void stats_count(__u32 stat, __u32 bytes)
{
	struct gscip_stat_val *v;

	if (stat >= GSCIP_STAT__END)
		return;
	v = bpf_map_lookup_elem(&gscip_stats, &stat);
	if (!v)
		return;
	/* per-CPU cell: no other writer, no atomics needed */
	v->packets++;
	v->bytes += bytes;
}

#endif /* GSCIP_STATS_H */
