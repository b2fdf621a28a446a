/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* maps.h - every map of the fast path, declared once.
 * No pinning attribute here: the loader (controlplane/bpf/loader.ts) sets a
 * pin path for each map under /sys/fs/bpf/gscip/<instance>/ before load. */
#ifndef GSCIP_MAPS_H
#define GSCIP_MAPS_H

#include "gscip_abi.h"
#include "pccom_scratch.h"

/* PIT: wire-view CID (+ direction) -> action; filled by DPRP and static entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GSCIP_PIT_MAX_ENTRIES);
	__type(key, struct gscip_cid);
	__type(value, struct gscip_pit_val);
} gscip_pit SEC(".maps");

/* XLAT: pre-translation CID (+ direction) -> rewritten addresses/ports (CIT, VAT, NAT). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GSCIP_XLAT_MAX_ENTRIES);
	__type(key, struct gscip_cid);
	__type(value, struct gscip_xlat_val);
} gscip_xlat SEC(".maps");

/* NAT sessions (GNAT, nat.h): inside-view CID -> external address:port, TCP
 * state, activity. Bounded: a full table refuses new sessions (counted). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GSCIP_NAT_MAX_ENTRIES);
	__type(key, struct gscip_cid);
	__type(value, struct gscip_nat_val);
} gscip_nat SEC(".maps");

/* NAT port claims: (proto, external port) -> the session that owns it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GSCIP_NAT_PORT_MAX_ENTRIES);
	__type(key, struct gscip_nat_port_key);
	__type(value, struct gscip_cid);
} gscip_nat_port SEC(".maps");

/* NAT configuration (external address, port range, inside prefixes), index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gscip_nat_cfg);
} gscip_nat_cfg SEC(".maps");

/* GSRA's FTP sequence deltas (ftp.h): the EN's control connections whose 227
 * rewrite changed a segment's length. Bounded: the agent refuses a new one
 * when full (the 227 then passes unmodified, counted). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GSCIP_FTP_SEQ_MAX_ENTRIES);
	__type(key, struct gscip_cid);
	__type(value, struct gscip_ftp_seq_val);
} gscip_ftp_seq SEC(".maps");

/* Group keys: (group, version) -> ChaCha20 key; read by PCCOM (pccom_keystream.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GSCIP_KEYS_MAX_ENTRIES);
	__type(key, struct gscip_key_id);
	__type(value, struct gscip_key_val);
} gscip_keys SEC(".maps");

/* Per-flow keys: PIT CID -> the key of an entry with GSCIP_PIT_F_FLOW_KEY, its
 * previous key and the UDP datagram counter (pccom_flow_key.h). Written by the
 * control plane (controlplane/pccom/flow-keys.ts) with the flow's PIT entries;
 * the fast path only adds to the counters and sets the re-key state. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, GSCIP_PIT_MAX_ENTRIES);
	__type(key, struct gscip_cid);
	__type(value, struct gscip_flow_key_val);
} gscip_flow_keys SEC(".maps");

/* Per-interface configuration (miss action per direction), keyed by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GSCIP_IFACE_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct gscip_iface_cfg);
} gscip_iface SEC(".maps");

/* Global configuration (punt rate limit), index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gscip_global_cfg);
} gscip_cfg SEC(".maps");

/* Counters per CPU and (reason, direction): slot GSCIP_COUNTER_SLOT(enum gscip_stat, enum gscip_dir). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GSCIP_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, struct gscip_stat_val);
} gscip_counters SEC(".maps");

/* Punted packets and control messages to the control plane (struct gscip_punt_rec). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, GSCIP_PUNT_RINGBUF_BYTES);
} gscip_punt SEC(".maps");

/* Private: per-CPU scratch where a punt record is assembled before
 * bpf_ringbuf_output() copies header + cap_len bytes (not the whole 2 KiB) into
 * the ring, so a SYN costs ~120 bytes of ring instead of ~2.1 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gscip_punt_rec);
} gscip_punt_scratch SEC(".maps");

/* Private: per-CPU punt token buckets (index = enum gscip_punt_bucket). User
 * space never needs to read it; it is pinned like the rest so a restart does
 * not refill every bucket at once. */
enum gscip_punt_bucket {
	GSCIP_BUCKET_MISS    = 0,  /* PIT misses: a new-flow flood */
	GSCIP_BUCKET_CONTROL = 1,  /* control messages: never starved by a miss flood */
	GSCIP_BUCKET__END    = 2,
};

struct gscip_token_bucket {
	__u64 tokens_ns;  /* tokens scaled by 1e9 (one packet = NSEC_PER_SEC) */
	__u64 last_ns;    /* bpf_ktime_get_ns() of the last refill */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GSCIP_BUCKET__END);
	__type(key, __u32);
	__type(value, struct gscip_token_bucket);
} gscip_punt_bucket SEC(".maps");

/* Private: per-CPU PCCOM scratch (index 0; struct in pccom_scratch.h), so the
 * 512-byte stack stays free for the bpf_loop callbacks and the ChaCha20 frame.
 * User space reads it only in the key-wipe test. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pccom_scratch);
} gscip_pccom_scratch SEC(".maps");

#endif /* GSCIP_MAPS_H */
