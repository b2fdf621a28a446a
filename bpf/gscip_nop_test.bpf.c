// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* gscip_nop_test.bpf.c - TEST-ONLY: a tc program that passes every packet and
 * does nothing else. bench/throughput-pass.ts attaches it on the same clsact
 * hooks as the GSCIP programs (the "control" mode) so the cost of the hook
 * itself (clsact + a BPF program call per packet) is measured apart from the
 * cost of the GSCIP fast path. Never attached by the agent. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_OK 0

SEC("tc")
int gscip_nop_test(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}
