/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * gscip_abi.h - the ONE source of truth for everything the fast path and the
 * control plane exchange: map keys and values, ring-buffer records, stat ids,
 * marks and wire constants.
 *
 * The TypeScript codecs (controlplane/maps/codecs.ts) mirror these layouts and
 * test/bpf/btf-layout.test.ts compares them against the compiled object's BTF.
 * Change a struct here, and that test tells you what to change there.
 *
 * Rules: fixed-width types only, explicit padding, no bitfields, byte order
 * in the name or the comment (__be* = network order on the wire).
 */
#ifndef GSCIP_ABI_H
#define GSCIP_ABI_H

/* ---- sizes (maps are sized from here; max_entries may be raised at load) ---- */
#define GSCIP_PIT_MAX_ENTRIES     (1 << 20)
#define GSCIP_XLAT_MAX_ENTRIES    (1 << 18)
#define GSCIP_KEYS_MAX_ENTRIES    4096
#define GSCIP_IFACE_MAX_ENTRIES   64
#define GSCIP_PUNT_RINGBUF_BYTES  (4 << 20)
#define GSCIP_PUNT_MAX_BYTES      2048  /* bytes of a punted packet we keep (stash) */
#define GSCIP_KEY_BYTES           32    /* ChaCha20 key */
#define GSCIP_NAT_MAX_ENTRIES     65536 /* NAT sessions (gscip_nat); a full table refuses new ones, counted */
#define GSCIP_NAT_PORT_MAX_ENTRIES 65536 /* (protocol, external port) claims (gscip_nat_port) */
#define GSCIP_FTP_SEQ_MAX_ENTRIES 4096  /* FTP control connections with a sequence delta (gscip_ftp_seq); full: the 227 passes unmodified, counted */

/* ---- control protocol on the wire ----
 * GSCIP control messages (DPRP DDE/RGI/MPIT/CDN, Mobile PPC CU, NAT-f, GSRA)
 * are ICMPv4 messages of RFC 4727 experimental type 253; the ICMP code is the
 * message type. They are punted on ingress (and on egress unless this GE sent
 * them, GSCIP_MARK_CONTROL_TX) and never reach the host's stack. */
#define GSCIP_ICMP_TYPE           253
/* The same messages as the payload of UDP datagrams to this port (the UDP
 * payload is the ICMP message, type, code and checksum included): the
 * transport DPRP sends on, because a NAT or stateful firewall that nobody
 * configured for GSCIP tracks and translates UDP but treats an unknown ICMP
 * type as INVALID (docs/dprp.md "Across NATs and firewalls"). Source and
 * destination port are both this one as sent; a NAT may change the source
 * port, and answers go to the port a message came from. The fast path takes
 * UDP to this port as control on both hooks, and UDP from it on egress (such
 * an answer). Both transports are punted the same way (control.h); ICMP 253
 * is still accepted from agents that predate the UDP transport. */
#define GSCIP_CONTROL_UDP_PORT    7253
#define GSCIP_CONTROL_UDP_HLEN    8
/* DPRP's ICMP codes the fast path itself reads or writes (controlplane/dprp/wire.ts
 * MsgType, dprp/hold.ts): a DDE (code 1) whose candidate depth (ICMP byte 4)
 * is >= 1 was relayed by an end-candidate GEN; a GE behind it answers at once,
 * from the fast path, with a HOLD (code 5) so that GEN never takes itself for
 * the end GE (docs/dprp.md "Cascades"). A HOLD is the ICMP header (8 bytes,
 * bytes 4-7 zero) and the DPRP header (version 1, type 5, flags 0, attempt,
 * 8-byte negotiation id) copied from the DDE: GSCIP_DPRP_HOLD_BYTES. */
#define GSCIP_DPRP_CODE_DDE       1
#define GSCIP_DPRP_CODE_HOLD      5
#define GSCIP_DPRP_HOLD_BYTES     20
#define GSCIP_DPRP_CAND_DEPTH_OFF 4

/* ---- marks used by the control plane to re-inject (release) a stashed packet.
 * Sent through an AF_PACKET socket with SO_MARK (needs CAP_NET_ADMIN). The egress
 * program clears the mark, then processes the packet normally (egress release)
 * or redirects it to the interface's ingress (ingress release). A released packet
 * that misses again is dropped (GSCIP_DROP_RELEASE_MISS), never punted again. */
#define GSCIP_MARK_RELEASE_EGRESS   0x65c1f001
#define GSCIP_MARK_RELEASE_INGRESS  0x65c1f002

/* ---- mark on the control plane's own GSCIP control sends (raw IPv4 socket
 * SO_MARK). On EGRESS a control ICMP (type GSCIP_ICMP_TYPE) carrying it is the
 * agent's send: the mark is cleared and it passes (GSCIP_STAT_CONTROL_TX).
 * One without it was not sent by this GE (a GEN forwarding a message from its
 * inside): it is punted (GSCIP_PUNT_CONTROL, dir egress) so the agent takes its
 * part and re-sends it marked. */
#define GSCIP_MARK_CONTROL_TX       0x65c1f003

/* ---- mark on a DNS answer the agent rewrote (NAT-f, bpf/lib/dns.h): sent like
 * an ingress release (AF_PACKET, SO_MARK); the egress program redirects it to
 * the interface's ingress, where it skips the PIT and the DNS stage (it passed
 * them before it was punted) and goes on to XLAT (GSCIP_STAT_DNS_REINJECTED). */
#define GSCIP_MARK_DNS_REINJECT     0x65c1f004

enum gscip_dir {
	GSCIP_DIR_INGRESS = 0,
	GSCIP_DIR_EGRESS  = 1,
};

/* PIT action (what this GE does to a flow in one direction). */
enum gscip_action {
	GSCIP_ACT_NONE    = 0,  /* invalid in a map entry */
	GSCIP_ACT_PASS    = 1,  /* pass-through / transparent relay / plaintext allowed */
	GSCIP_ACT_DROP    = 2,  /* discard */
	GSCIP_ACT_ENCRYPT = 3,  /* PCCOM encrypt with (group_id, key_version) */
	GSCIP_ACT_DECRYPT = 4,  /* PCCOM decrypt with (group_id, key_version) */
};

/* PIT entry lifecycle (DPRP: tentative on MPIT, confirmed on CDN; static = operator). */
enum gscip_pit_state {
	GSCIP_PIT_STATIC    = 0,
	GSCIP_PIT_TENTATIVE = 1,
	GSCIP_PIT_CONFIRMED = 2,
};

/* What this GE was in the negotiation that made the entry. */
enum gscip_role {
	GSCIP_ROLE_NONE         = 0,
	GSCIP_ROLE_START        = 1,
	GSCIP_ROLE_INTERMEDIATE = 2,
	GSCIP_ROLE_END          = 3,
};

/* What an interface does with a PIT miss, per direction. */
enum gscip_miss_action {
	GSCIP_MISS_PUNT = 0,  /* stash in the control plane (ring buffer), may be released */
	GSCIP_MISS_PASS = 1,
	GSCIP_MISS_DROP = 2,
};

/* Flow key: the CID of the papers, plus the direction it is seen in.
 * Always the addresses/ports AS ON THE WIRE at this interface for the PIT;
 * for the XLAT map, the key is the pre-translation view (see gscip_xlat_val). */
struct gscip_cid {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;   /* 0 for protocols without ports */
	__be16 dport;
	__u8   proto;   /* IPPROTO_TCP / IPPROTO_UDP */
	__u8   dir;     /* enum gscip_dir */
	__u8   pad[2];  /* must be zero */
};

/* PIT value. */
struct gscip_pit_val {
	__u8   action;       /* enum gscip_action */
	__u8   state;        /* enum gscip_pit_state */
	__u8   role;         /* enum gscip_role */
	__u8   flags;        /* GSCIP_PIT_F_* */
	__u32  group_id;     /* group whose key encrypts/decrypts (0 = none) */
	__u32  key_version;  /* version of that group's key */
	__u32  prev_key_version; /* decrypt only: a packet failing the keyed checksum
	                          * under key_version is tried under this version
	                          * (0 = none); set it when re-keying so the two ends
	                          * need not switch at the same instant */
	__u64  created_ns;   /* bpf_ktime_get_ns() clock (CLOCK_MONOTONIC) */
	__u64  last_seen_ns; /* refreshed by the fast path at most once a second */
};
#define GSCIP_PIT_F_NONE 0
/* Set by the fast path on a PIT hit of a TCP packet carrying FIN / RST (in
 * this entry's direction), once: the agent expires closed flows sooner. */
#define GSCIP_PIT_F_FIN  0x01
#define GSCIP_PIT_F_RST  0x02
/* Set by the control plane on an ENCRYPT entry of a TCP flow whose receiver
 * takes the wire-valid form (DPRP agreed it, docs/pccom.md "Checksums a
 * middlebox verifies"): K travels in the urgent pointer (URG clear) and the
 * checksum field is the ordinary checksum, valid to conntrack and firewalls.
 * Receivers take both forms whatever this says. */
#define GSCIP_PIT_F_WIRE_CSUM 0x04
/* Set by the control plane on an ENCRYPT or DECRYPT entry whose key is a
 * per-flow key in gscip_flow_keys (same key: this entry's CID) instead of the
 * group key (group_id, key_version): DPRP always sets it when both ends take
 * per-flow keys (docs/pccom.md "Per-flow keys"). The entry's key_version /
 * prev_key_version then only say which group key versions the flow keys were
 * derived from; the fast path reads the keys, their previous key and the UDP
 * datagram counter from the gscip_flow_keys value. A missing value drops
 * (GSCIP_DROP_NO_KEY), never the group key. */
#define GSCIP_PIT_F_FLOW_KEY  0x08
/* Bits 4-7 of flags, written by the control plane and never read or written
 * by the fast path: why the entry is plaintext or a drop (enum gscip_pit_why),
 * so `gscip maps dump pit` says it. NONE on encrypt/decrypt/transit entries. */
#define GSCIP_PIT_WHY_SHIFT 4
#define GSCIP_PIT_WHY_MASK  0xf0
enum gscip_pit_why {
	GSCIP_WHY_NONE                = 0, /* encrypted, ciphertext relayed, or not said (static) */
	GSCIP_WHY_NO_GE               = 1, /* plaintext: no GE toward the destination answered */
	GSCIP_WHY_NOT_MEMBER          = 2, /* plaintext: the GEs that answered share no group with the start */
	GSCIP_WHY_CLOSED              = 3, /* drop: a CL GE on the path refuses the plaintext flow */
	GSCIP_WHY_ENCRYPTION_REQUIRED = 4, /* drop: the network definition requires encryption to this destination */
	GSCIP_WHY_POLICY              = 5, /* the operator's own entry (static pass / drop) */
	GSCIP_WHY_NAT_CHECKSUM        = 6, /* plaintext or drop: a NAT is on the path and this flow's PCCOM form
					    * (UDP, or TCP to a peer without the wire-valid form) is INVALID to a
					    * checksum-verifying one (docs/dprp.md "Across NATs and firewalls") */
	GSCIP_WHY_OWN_GMS             = 7, /* plaintext (TLS): the agent's own connection to its GMS endpoint (a CL GE
					    * reaching its GMS through its guarded interface, docs/gms.md) */
};

/* XLAT (generic translation: CIT, VAT, NAT). Key = gscip_cid in the view
 * BEFORE translation for that direction:
 *   egress:  key = what the local stack sent;    value = what goes on the wire
 *   ingress: key = what arrived on the wire;     value = what the stack sees
 * Egress translates first, then looks the PIT up (wire view);
 * ingress looks the PIT up first (wire view), then translates. */
struct gscip_xlat_val {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32  kind;        /* enum gscip_xlat_kind, for visibility */
	__u64  created_ns;
};

enum gscip_xlat_kind {
	GSCIP_XLAT_STATIC = 0,
	GSCIP_XLAT_CIT    = 1,  /* Mobile PPC */
	GSCIP_XLAT_VAT    = 2,  /* NAT-f / GSRA virtual address */
	GSCIP_XLAT_NAT    = 3,  /* GNAT / GSRA router mapping */
};

/* ---- NAT: the GNAT's outbound NAPT in its own fast path (bpf/lib/nat.h,
 * docs/natf.md). Only in a load with GSCIP_STAGE_NAT. On the outside
 * interface: egress rewrites an inside source (cfg.inside) to ext_addr:port,
 * ingress rewrites ext_addr:port back. The fast path allocates on the first
 * packet of a flow; the control plane only expires (controlplane/natf/).
 *
 *   gscip_nat:      key = struct gscip_cid as the inside host sent it
 *                   (P:x -> D:y, proto, dir = EGRESS), value = gscip_nat_val
 *   gscip_nat_port: key = gscip_nat_port_key (proto, external port),
 *                   value = struct gscip_cid, the session that owns the port
 *
 * One external port belongs to one session at a time (claimed with
 * BPF_NOEXIST before the session is written), so no two flows ever share a
 * port; an inbound packet to a claimed port from anyone but the session's
 * peer is dropped (GSCIP_DROP_NAT_FILTERED). */
#define GSCIP_NAT_MAX_INSIDE  4   /* inside prefixes in gscip_nat_cfg */
#define GSCIP_NAT_PORT_TRIES  32  /* candidate ports tried per new session */

struct gscip_nat_prefix {
	__be32 addr;   /* network order, host bits zero */
	__be32 mask;   /* network order; 0 = unused slot */
};

/* gscip_nat_cfg, index 0. ext_addr 0 = nothing is translated. */
struct gscip_nat_cfg {
	__be32 ext_addr;    /* the GNAT's global address */
	__u16  port_lo;     /* external ports handed out, host order, inclusive */
	__u16  port_hi;
	struct gscip_nat_prefix inside[GSCIP_NAT_MAX_INSIDE];
};

struct gscip_nat_val {
	__be32 ext_addr;
	__be16 ext_port;
	__u8   origin;      /* enum gscip_nat_origin */
	__u8   pad;         /* must be zero */
	__u32  flags;       /* GSCIP_NAT_F_*, set by the fast path (atomic OR, once per bit) */
	__u32  reserved;    /* must be zero */
	__u64  created_ns;  /* bpf_ktime_get_coarse_ns() clock (CLOCK_MONOTONIC) */
	__u64  last_seen_ns;/* refreshed at most once a second, either direction */
};
/* What the fast path has seen of a session (TCP state for the timeouts). */
#define GSCIP_NAT_F_SYN_OUT  0x01  /* TCP SYN from the inside */
#define GSCIP_NAT_F_IN       0x02  /* any packet from the outside peer (TCP: the handshake's answer) */
#define GSCIP_NAT_F_FIN_OUT  0x04
#define GSCIP_NAT_F_FIN_IN   0x08
#define GSCIP_NAT_F_RST      0x10  /* either direction */

enum gscip_nat_origin {
	GSCIP_NAT_OUTBOUND = 0,  /* created by the fast path for an inside host's flow */
	GSCIP_NAT_INBOUND  = 1,  /* created by the control plane (NAT-f on-demand mapping) */
	GSCIP_NAT_GSRA     = 2,  /* created by a GSRA router's control plane for a source that is not inside:
	                          * GEN:s -> PIN:d leaves as PGR:t -> PIN:d (docs/gsra.md "Data path") */
};

struct gscip_nat_port_key {
	__be16 port;   /* external port, network order */
	__u8   proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u8   pad;    /* must be zero */
};

/* Group key map: (group, version) -> key. Two or more versions of a group may
 * be present at once so rotation never breaks a flow. */
struct gscip_key_id {
	__u32 group_id;
	__u32 version;
};

struct gscip_key_val {
	__u8  key[GSCIP_KEY_BYTES];
	__u32 flags;        /* GSCIP_KEY_F_* */
	__u32 pad;
	__u64 installed_ns;
};
#define GSCIP_KEY_F_NONE 0
#define GSCIP_KEY_F_ROUNDS_12 0x1  /* PCCOM cipher ChaCha12 instead of ChaCha20 */
#define GSCIP_KEY_F_ROUNDS_8  0x2  /* PCCOM cipher ChaCha8; both bits = invalid (dropped) */

/* Per-flow keys: PIT CID (as the PIT entry's key) -> the key that entry
 * encrypts or decrypts with, derived by the control plane as
 *   HKDF-SHA256(ikm = group key (group, version), salt = DPRP negotiation id,
 *               info = "gscip pccom flow key v1" | group | version | leg)
 * (controlplane/pccom/flow-key.ts; leg = which direction of the negotiated flow).
 * The group key itself never encrypts a payload of such an entry. No
 * derivation happens in the fast path. */
/* GSRA's FTP sequence delta (ftp.h, docs/gsra.md "FTP passive mode"): key =
 * the control connection's server -> client direction in the EN's stack view
 * (VIN:21 -> GEN:s, dir INGRESS, pad zero); written by the EN's agent when
 * its 227 rewrite changed the segment's length. For a server seq S:
 * S + (after(S, pos) ? after : before); for a client ack A:
 * A - (after(A - before, pos) ? after : before) (SACK edges the same).
 * Removed with the connection's VAT flow, or by the fast path on a new SYN. */
struct gscip_ftp_seq_val {
	__u32 pos;     /* host order: server seq of the last segment whose length changed */
	__s32 before;  /* delta for server seqs up to and including pos */
	__s32 after;   /* delta for server seqs after pos */
	__u32 pad;     /* must be zero */
};

struct gscip_flow_key_half {
	__u8  key[GSCIP_KEY_BYTES];
	__u32 key_version;  /* group key version it was derived from; 0 = this half is empty */
	__u32 flags;        /* GSCIP_KEY_F_ROUNDS_* of that group key */
	__u64 ctr;          /* UDP sender (cur): the next datagram counter (atomic add);
	                     * UDP receiver: the highest counter accepted under this key;
	                     * TCP sender (cur): GSCIP_FK_SEQ_BASE_SET | the first seq sent */
};

struct gscip_flow_key_val {
	struct gscip_flow_key_half cur;   /* what the entry encrypts / first decrypts with */
	struct gscip_flow_key_half prev;  /* decrypt only: the key before the last re-key, tried on a failed check */
	__u64 salt;         /* cur's salt (the DPRP negotiation id, wire bytes as a u64): the control plane's identity of the key */
	__u64 prev_salt;    /* prev's salt */
	__u64 rekey_at;     /* UDP sender: the counter at which the re-key signal is raised (0 = GSCIP_UDP_CTR_REKEY) */
	__u8  leg;          /* enum gscip_flow_leg of cur */
	__u8  prev_leg;
	__u8  signalled;    /* written by the fast path: the re-key signal for cur was raised (once per key) */
	__u8  pad;
	__u32 fails;        /* written by the fast path: UDP receiver's keyed checksum failures in a row */
};

/* Which direction of the negotiated flow (start -> end is forward). */
enum gscip_flow_leg {
	GSCIP_LEG_NONE = 0,
	GSCIP_LEG_FWD  = 1,
	GSCIP_LEG_REV  = 2,
};

/* UDP datagram counter: only its low 16 bits travel (the IP ID). The sender
 * refuses to encrypt at GSCIP_UDP_CTR_LIMIT (GSCIP_DROP_NONCE_LIMIT), raises the
 * re-key signal at rekey_at; the receiver reconstructs the high bits from the
 * highest counter it accepted, RFC 4303 Appendix A style, accepting up to
 * GSCIP_UDP_REORDER_WINDOW - 1 datagrams behind it and the rest of the 16-bit
 * space ahead. GSCIP_FK_RESYNC_FAILS failures in a row raise the re-key signal
 * too (a receiver that lost track after a long loss burst). */
#define GSCIP_UDP_CTR_BITS        48
#define GSCIP_UDP_CTR_LIMIT       (1ULL << GSCIP_UDP_CTR_BITS)
#define GSCIP_UDP_CTR_REKEY       (1ULL << 47)
#define GSCIP_UDP_REORDER_WINDOW  4096
#define GSCIP_FK_RESYNC_FAILS     64
/* UDP wire-valid form (docs/pccom.md "UDP across a checksum-verifying NAT"):
 * the UDP checksum is the ordinary one over the ciphertext and the IP ID is
 * counter bits 0..GSCIP_UDP_WIRE_CTR_BITS-1 | K's low 16 - GSCIP_UDP_WIRE_CTR_BITS
 * bits above them. The receiver reconstructs the counter from those low bits,
 * up to GSCIP_UDP_WIRE_WINDOW - 1 behind the highest accepted or the rest of
 * the 2^GSCIP_UDP_WIRE_CTR_BITS space ahead. */
#define GSCIP_UDP_WIRE_CTR_BITS   6
#define GSCIP_UDP_WIRE_WINDOW     16
/* TCP sender without timestamps: the re-key signal is raised once the flow's
 * sequence number is 2^31 past the first one this key sent (well before a wrap
 * could repeat a keystream under a constant ack). */
#define GSCIP_FK_SEQ_BASE_SET     (1ULL << 32)
#define GSCIP_FK_SEQ_REKEY        0x80000000U
#define GSCIP_FK_SEQ_BEHIND       0x04000000U  /* retransmissions from before the base: not a wrap */

/* Per-interface configuration, keyed by ifindex (__u32). */
struct gscip_iface_cfg {
	__u8  miss_action[2];  /* [enum gscip_dir] -> enum gscip_miss_action */
	__u8  flags;           /* GSCIP_IFACE_F_* */
	__u8  ipv6_policy;     /* enum gscip_ipv6_policy, both directions (was padding:
	                        * 0 = pass, what a previous release's entry means) */
	__u32 reserved;
};
#define GSCIP_IFACE_F_PROTECTED 0x01

/* What an interface does with IPv6 (GSCIP speaks IPv4 only in this release,
 * so no IPv6 packet is ever negotiated or encrypted; bpf/lib/ipv6.h):
 *   PASS     every IPv6 packet passes untouched (GSCIP_STAT_PASS_IPV6)
 *   DROP     every IPv6 packet is dropped (GSCIP_DROP_IPV6_POLICY)
 *   ND_ONLY  only what keeps the link working passes: neighbour discovery
 *            (ICMPv6 133..137 as the IPv6 header's direct next header, hop
 *            limit 255) and link-local scope traffic (source fe80::/10 and
 *            destination fe80::/10 or ff02::/16); anything else, including ND
 *            behind an extension header, is dropped (GSCIP_DROP_IPV6_ND_ONLY)
 * Any other value is dropped as DROP. 0 is PASS so that an entry written by an
 * agent of the previous release (padding zero) keeps its meaning until this
 * build's agent rewrites it. */
enum gscip_ipv6_policy {
	GSCIP_IPV6_PASS    = 0,
	GSCIP_IPV6_DROP    = 1,
	GSCIP_IPV6_ND_ONLY = 2,
};

/* Global configuration: single-entry array map, index 0. */
struct gscip_global_cfg {
	__u64 punt_rate_pps;   /* token bucket refill rate, per CPU; 0 = default */
	__u64 punt_burst;      /* bucket size, per CPU; 0 = default */
};
#define GSCIP_PUNT_RATE_DEFAULT  20000
#define GSCIP_PUNT_BURST_DEFAULT 2000

/* Load-time settings: the loader writes them into the object's
 * .rodata.gscip_load section before load (bpf_map__set_initial_value); the map
 * is frozen and read-only to the program, so the verifier knows every value and
 * removes the code a switched-off stage would run (docs/architecture.md,
 * "Datapath stages"). Never changes while loaded: a change is a reload. */
struct gscip_load_cfg {
	__u32 stages;    /* enum gscip_stage bits: which datapath stages exist in this load */
	__u32 reserved;  /* 0 */
};

/* The datapath stages a load may leave out (struct gscip_load_cfg.stages).
 * Bits are never reused. Reserved for the next parts, not declared until they
 * have code: bit 2 CIT, 3 VAT. NAT and DNS are not in the default: only a
 * GNAT loads NAT (its `nat` config), only a NAT-f initiator DNS (its `natf`
 * config). */
enum gscip_stage {
	GSCIP_STAGE_XLAT    = 1 << 0,  /* XLAT lookup + rewrite; off: XLAT entries are not looked up */
	GSCIP_STAGE_PCCOM   = 1 << 1,  /* PIT encrypt/decrypt; off: such entries drop as `unsupported` */
	GSCIP_STAGE_NAT     = 1 << 4,  /* GNAT outbound NAPT (nat.h); off: no NAT code, no NAT map lookup */
	GSCIP_STAGE_DNS     = 1 << 5,  /* NAT-f: DNS answers punted on ingress for the NRT (dns.h); off: untouched */
	GSCIP_STAGE_FTP     = 1 << 6,  /* GSRA: FTP passive replies from port 21 (ftp.h): punted after XLAT on
	                                  ingress (the EN rewrites 227), copied before NAT on egress (the router
	                                  learns the announced data port); off: untouched */
	GSCIP_STAGE_DEFAULT = GSCIP_STAGE_XLAT | GSCIP_STAGE_PCCOM,  /* what a load has unless told (not NAT) */
};

/* Punt record on the ring buffer, submitted cut after cap_len bytes of data
 * (variable size: header + cap_len; readers pad to sizeof). data = the packet
 * from its Ethernet header on. */
struct gscip_punt_rec {
	__u64 ts_ns;
	__u32 ifindex;
	__u32 pkt_len;       /* skb->len */
	__u16 cap_len;       /* bytes valid in data[] (== pkt_len unless truncated) */
	__u8  dir;           /* enum gscip_dir */
	__u8  reason;        /* enum gscip_punt_reason */
	__u32 pad;
	struct gscip_cid cid;/* CID as looked up (zero for control messages) */
	__u8  data[GSCIP_PUNT_MAX_BYTES];
};

enum gscip_punt_reason {
	GSCIP_PUNT_PIT_MISS = 1,  /* stashed: may be released */
	GSCIP_PUNT_CONTROL  = 2,  /* GSCIP control message (ICMP type GSCIP_ICMP_TYPE) */
	GSCIP_PUNT_TRUNCATED = 3, /* miss, but too big to stash: control plane learns
	                             the CID, the packet itself is dropped */
	GSCIP_PUNT_REKEY     = 4, /* no data: the per-flow key of the PIT entry at cid
	                             (dir) asks for a re-key (counter near its limit,
	                             receiver out of sync, TCP sequence far on) */
	GSCIP_PUNT_DNS       = 5, /* NAT-f: a DNS answer (from port 53, ingress), not
	                             stashed: the agent re-injects it, rewritten or not,
	                             with GSCIP_MARK_DNS_REINJECT */
	GSCIP_PUNT_FTP_REPLY = 6, /* GSRA (ftp.h): an FTP "227 " reply from port 21 of a
	                             translated flow (ingress, stack view, decrypted), not
	                             stashed: the agent re-injects it, rewritten or not,
	                             with GSCIP_MARK_DNS_REINJECT */
	GSCIP_PUNT_FTP_COPY  = 7, /* GSRA (ftp.h): a copy of an FTP "227 "/"229 " reply
	                             leaving from port 21 (egress, before NAT); the packet
	                             itself went on */
};

/* ---- counters: (reason, direction) -> packets, bytes, per CPU ----
 *
 * A reason is a number in one space shared by every protocol part; each part
 * owns a range, so a part adds codes without touching anyone else's and the
 * counter map (sized for the whole space) never changes layout:
 *
 *     core   0..127    parse, PIT, miss, punt, release, control channel, XLAT
 *     DPRP   128..255  (none in the fast path yet)
 *     PCCOM  256..383  encrypt / decrypt verdicts and their drops
 *     CIT    384..511, VAT 512..639, NAT 640..767, GSRA 768..895 (later parts)
 *     896..1023 spare
 *
 * NEVER renumber or reuse a number: a retired one stays as GSCIP_STAT_UNUSED_<n>
 * (dashboards use names, but pinned maps and old exports carry numbers).
 * Every reason is declared twice and nowhere else: its number in enum
 * gscip_stat and its kind + TC action in GSCIP_REASONS below (one row per
 * reason; the entry programs and controlplane/maps/abi.ts derive from the
 * table, test/unit/codecs.test.ts and test/bpf/btf-layout.test.ts check the
 * mirror). Reasons of kind OVERLAY are never a packet's verdict: they count a
 * packet a second time for something that happened on the way (translated,
 * released), so summing every VERDICT and DROP counter counts each packet once. */
#define GSCIP_REASON_PART_SIZE   128
#define GSCIP_REASON_CORE        0
#define GSCIP_REASON_DPRP        128
#define GSCIP_REASON_PCCOM       256
#define GSCIP_REASON_CIT         384
#define GSCIP_REASON_VAT         512
#define GSCIP_REASON_NAT         640
#define GSCIP_REASON_GSRA        768
#define GSCIP_REASON__END        1024

enum gscip_stat {
	/* ---- core (0..127) ---- */
	/* passed without PIT (not ours to judge) */
	GSCIP_STAT_PASS_NON_IP        = 0,  /* ARP, LLDP, ... */
	GSCIP_STAT_PASS_IPV6          = 1,  /* ipv6 policy pass (every IPv6 packet) */
	GSCIP_STAT_PASS_OTHER_L4      = 2,  /* ICMP (non-GSCIP), other protocols */
	GSCIP_STAT_PASS_FRAGMENT      = 3,  /* non-first IPv4 fragment */
	/* PIT hits */
	GSCIP_STAT_PIT_PASS           = 4,
	GSCIP_STAT_UNUSED_5           = 5,  /* was PIT_ENCRYPT, now PCCOM's 256 */
	GSCIP_STAT_UNUSED_6           = 6,  /* was PIT_DECRYPT, now PCCOM's 257 */
	/* PIT misses handled by the interface's miss action */
	GSCIP_STAT_MISS_PASS          = 7,
	GSCIP_STAT_PUNT_MISS          = 8,
	GSCIP_STAT_PUNT_CONTROL       = 9,
	GSCIP_STAT_PUNT_TRUNCATED     = 10,
	GSCIP_STAT_RELEASED           = 11, /* overlay: a released packet took its PIT hit */
	GSCIP_STAT_XLAT               = 12, /* overlay: a translation was applied */
	GSCIP_STAT_UNUSED_13          = 13, /* was PIT_DECRYPT_PREV, now PCCOM's 258 */
	GSCIP_STAT_CONTROL_TX         = 14, /* egress control message sent by this GE's agent */
	GSCIP_STAT__VERDICT_END       = 15, /* legacy marker of the first layout (core verdicts end here) */
	GSCIP_STAT_PASS_IPV6_ND       = 16, /* ipv6 nd-only: neighbour discovery (ICMPv6 133..137) */
	GSCIP_STAT_PASS_IPV6_LINK_LOCAL = 17, /* ipv6 nd-only: link-local source and destination */

	GSCIP_STAT_DROP_FIRST         = 32, /* legacy marker: core drops start here */
	GSCIP_DROP_POLICY             = 32, /* PIT action drop */
	GSCIP_DROP_MISS_POLICY        = 33, /* miss action drop */
	GSCIP_DROP_MALFORMED_L2       = 34,
	GSCIP_DROP_MALFORMED_IP       = 35, /* truncated, bad ihl/len */
	GSCIP_DROP_MALFORMED_L4       = 36, /* truncated TCP/UDP header, bad doff */
	GSCIP_DROP_PUNT_RATE          = 37, /* punt token bucket empty */
	GSCIP_DROP_PUNT_RINGBUF       = 38, /* ring buffer full */
	GSCIP_DROP_RELEASE_MISS       = 39, /* released packet missed again */
	GSCIP_DROP_XLAT_REWRITE       = 40, /* store/checksum helper failed */
	GSCIP_STAT_UNUSED_41          = 41, /* was DROP_NO_KEY, now PCCOM's 288 */
	GSCIP_STAT_UNUSED_42          = 42, /* was DROP_BAD_KEYED_CSUM, now PCCOM's 289 */
	GSCIP_STAT_UNUSED_43          = 43, /* was DROP_CRYPTO, now PCCOM's 290 */
	GSCIP_DROP_UNSUPPORTED        = 44, /* e.g. PCCOM on a packet shape it cannot handle; a broken contract */
	GSCIP_DROP_CONTROL_MALFORMED  = 45,
	GSCIP_DROP_FRAGMENT           = 46, /* fragment of a flow whose PIT says encrypt/drop */
	GSCIP_DROP_NO_IFACE_CFG       = 47, /* attached but not configured */
	GSCIP_DROP_IPV6_POLICY        = 48, /* IPv6 on an interface whose ipv6 policy is drop */
	GSCIP_DROP_IPV6_ND_ONLY       = 49, /* ipv6 nd-only: neither ND nor link-local */

	/* ---- DPRP (128..255) ---- */
	GSCIP_STAT_DPRP_HOLD          = 128, /* a DDE relayed by an end-candidate GEN: punted, and answered with a HOLD */

	/* ---- PCCOM (256..383): verdicts from 256, drops from 288 ---- */
	GSCIP_STAT_PIT_ENCRYPT        = 256,
	GSCIP_STAT_PIT_DECRYPT        = 257,
	GSCIP_STAT_PIT_DECRYPT_PREV   = 258, /* decrypted under the PIT's prev_key_version */
	GSCIP_STAT_PCCOM_REKEY        = 259, /* overlay: a per-flow key asked for a re-key (counter, resync, TCP seq) */
	GSCIP_DROP_NO_KEY             = 288, /* PIT names a key not in the key map */
	GSCIP_DROP_BAD_KEYED_CSUM     = 289, /* PCCOM keyed checksum mismatch */
	GSCIP_DROP_CRYPTO             = 290, /* PCCOM could not read/write the payload */
	GSCIP_DROP_NONCE_LIMIT        = 291, /* UDP per-flow counter at its limit: refused rather than reuse a nonce */
	GSCIP_DROP_FLOW_KEY_CHANGED   = 292, /* the per-flow key value was rewritten while the packet read it: never a key and counter of two values */

	/* ---- VAT (512..639): NAT-f's initiator side, the DNS stage (dns.h) ---- */
	GSCIP_STAT_DNS_PUNT           = 512, /* a DNS answer handed to the agent (NRT rewrite) */
	GSCIP_STAT_DNS_REINJECTED     = 513, /* a DNS answer the agent re-injected, passed to the stack */
	GSCIP_STAT_DNS_TOO_BIG        = 514, /* a DNS answer longer than GSCIP_PUNT_MAX_BYTES: passed unmodified */
	/* ---- NAT (640..767): verdicts and overlays from 640, drops from 672 ---- */
	GSCIP_STAT_NAT_XLAT           = 640, /* overlay: the NAT rewrote the packet (either direction) */
	GSCIP_STAT_NAT_CREATED        = 641, /* overlay: the packet created a NAT session (a port claimed) */
	GSCIP_STAT_NAT_ICMP           = 642, /* an ICMP error of a NATed flow, translated outside and inside */
	GSCIP_DROP_NAT_TABLE_FULL     = 672, /* new session refused: gscip_nat (or gscip_nat_port) is full */
	GSCIP_DROP_NAT_NO_PORT        = 673, /* new session refused: every candidate port was taken */
	GSCIP_DROP_NAT_FILTERED       = 674, /* inbound to a claimed port, not from that session's peer */
	GSCIP_DROP_NAT_PROTO          = 675, /* outbound from an inside address, a protocol the NAT cannot translate */
	GSCIP_DROP_NAT_FRAGMENT       = 676, /* outbound fragment from an inside address (would leak it) */
	GSCIP_DROP_NAT_ICMP_NO_SESSION = 677, /* outbound ICMP error from the inside about no NATed flow */
	/* ---- GSRA (768..895): the FTP stage (ftp.h) ---- */
	GSCIP_STAT_FTP_PUNT           = 768, /* an FTP 227 reply handed to the agent (the EN rewrites its address) */
	GSCIP_STAT_FTP_TOO_BIG        = 769, /* an FTP 227 reply longer than GSCIP_PUNT_MAX_BYTES: passed unmodified */
	GSCIP_STAT_FTP_COPY           = 770, /* overlay: a copy of an FTP 227/229 reply given to the agent */
	GSCIP_STAT_FTP_COPY_FAILED    = 771, /* overlay: no copy (too big, punt bucket empty, ring full) */
	GSCIP_STAT_FTP_SEQ_ADJ        = 772, /* overlay: seq (server) or ack/SACK (client) moved by the FTP sequence delta */
	GSCIP_STAT_FTP_SEQ_RESET      = 773, /* overlay: a client SYN on a 4-tuple with a delta: the old entry removed */
	GSCIP_DROP_FTP_SEQ_REWRITE    = 800, /* the FTP sequence delta could not be written into the packet */

	GSCIP_STAT__END               = 1024, /* == GSCIP_REASON__END */
};

/* What a reason is (enum gscip_stat): the one verdict of a packet, a drop
 * (also a verdict), or an overlay (counted in addition to the verdict). */
enum gscip_reason_kind {
	GSCIP_KIND_UNUSED  = 0,  /* no such reason (a hole or a retired number): fail closed */
	GSCIP_KIND_VERDICT = 1,
	GSCIP_KIND_DROP    = 2,
	GSCIP_KIND_OVERLAY = 3,
};

/* The TC action a verdict reason ends in; the values are linux/pkt_cls.h's
 * TC_ACT_* (bpf/lib/consts.h asserts it). */
enum gscip_tc_verdict {
	GSCIP_TC_PASS     = 0,  /* TC_ACT_OK */
	GSCIP_TC_SHOT     = 2,  /* TC_ACT_SHOT */
	GSCIP_TC_STOLEN   = 4,  /* TC_ACT_STOLEN: punted into the ring */
	GSCIP_TC_REDIRECT = 7,  /* TC_ACT_REDIRECT */
	GSCIP_TC_NONE     = 255, /* overlays: not a verdict */
};

/* X(reason, kind, TC action): one row per reason of enum gscip_stat (retired
 * numbers and markers have none). kind = GSCIP_KIND_<kind>, action = GSCIP_TC_<action>. */
#define GSCIP_REASONS(X)                                   \
	/* core */                                             \
	X(GSCIP_STAT_PASS_NON_IP,       VERDICT, PASS)         \
	X(GSCIP_STAT_PASS_IPV6,         VERDICT, PASS)         \
	X(GSCIP_STAT_PASS_OTHER_L4,     VERDICT, PASS)         \
	X(GSCIP_STAT_PASS_FRAGMENT,     VERDICT, PASS)         \
	X(GSCIP_STAT_PIT_PASS,          VERDICT, PASS)         \
	X(GSCIP_STAT_MISS_PASS,         VERDICT, PASS)         \
	X(GSCIP_STAT_PUNT_MISS,         VERDICT, STOLEN)       \
	X(GSCIP_STAT_PUNT_CONTROL,      VERDICT, STOLEN)       \
	X(GSCIP_STAT_PUNT_TRUNCATED,    VERDICT, SHOT)         \
	X(GSCIP_STAT_RELEASED,          OVERLAY, NONE)         \
	X(GSCIP_STAT_XLAT,              OVERLAY, NONE)         \
	X(GSCIP_STAT_CONTROL_TX,        VERDICT, PASS)         \
	X(GSCIP_STAT_PASS_IPV6_ND,      VERDICT, PASS)         \
	X(GSCIP_STAT_PASS_IPV6_LINK_LOCAL, VERDICT, PASS)      \
	X(GSCIP_DROP_POLICY,            DROP,    SHOT)         \
	X(GSCIP_DROP_MISS_POLICY,       DROP,    SHOT)         \
	X(GSCIP_DROP_MALFORMED_L2,      DROP,    SHOT)         \
	X(GSCIP_DROP_MALFORMED_IP,      DROP,    SHOT)         \
	X(GSCIP_DROP_MALFORMED_L4,      DROP,    SHOT)         \
	X(GSCIP_DROP_PUNT_RATE,         DROP,    SHOT)         \
	X(GSCIP_DROP_PUNT_RINGBUF,      DROP,    SHOT)         \
	X(GSCIP_DROP_RELEASE_MISS,      DROP,    SHOT)         \
	X(GSCIP_DROP_XLAT_REWRITE,      DROP,    SHOT)         \
	X(GSCIP_DROP_UNSUPPORTED,       DROP,    SHOT)         \
	X(GSCIP_DROP_CONTROL_MALFORMED, DROP,    SHOT)         \
	X(GSCIP_DROP_FRAGMENT,          DROP,    SHOT)         \
	X(GSCIP_DROP_NO_IFACE_CFG,      DROP,    SHOT)         \
	X(GSCIP_DROP_IPV6_POLICY,       DROP,    SHOT)         \
	X(GSCIP_DROP_IPV6_ND_ONLY,      DROP,    SHOT)         \
	/* DPRP */                                             \
	X(GSCIP_STAT_DPRP_HOLD,         VERDICT, REDIRECT)     \
	/* PCCOM */                                            \
	X(GSCIP_STAT_PIT_ENCRYPT,       VERDICT, PASS)         \
	X(GSCIP_STAT_PIT_DECRYPT,       VERDICT, PASS)         \
	X(GSCIP_STAT_PIT_DECRYPT_PREV,  VERDICT, PASS)         \
	X(GSCIP_STAT_PCCOM_REKEY,       OVERLAY, NONE)         \
	X(GSCIP_DROP_NO_KEY,            DROP,    SHOT)         \
	X(GSCIP_DROP_BAD_KEYED_CSUM,    DROP,    SHOT)         \
	X(GSCIP_DROP_CRYPTO,            DROP,    SHOT)         \
	X(GSCIP_DROP_NONCE_LIMIT,       DROP,    SHOT)         \
	X(GSCIP_DROP_FLOW_KEY_CHANGED,  DROP,    SHOT)         \
	/* VAT: the DNS stage */                               \
	X(GSCIP_STAT_DNS_PUNT,          VERDICT, STOLEN)       \
	X(GSCIP_STAT_DNS_REINJECTED,    VERDICT, PASS)         \
	X(GSCIP_STAT_DNS_TOO_BIG,       VERDICT, PASS)         \
	/* NAT */                                              \
	X(GSCIP_STAT_NAT_XLAT,          OVERLAY, NONE)         \
	X(GSCIP_STAT_NAT_CREATED,       OVERLAY, NONE)         \
	X(GSCIP_STAT_NAT_ICMP,          VERDICT, PASS)         \
	X(GSCIP_DROP_NAT_TABLE_FULL,    DROP,    SHOT)         \
	X(GSCIP_DROP_NAT_NO_PORT,       DROP,    SHOT)         \
	X(GSCIP_DROP_NAT_FILTERED,      DROP,    SHOT)         \
	X(GSCIP_DROP_NAT_PROTO,         DROP,    SHOT)         \
	X(GSCIP_DROP_NAT_FRAGMENT,      DROP,    SHOT)         \
	X(GSCIP_DROP_NAT_ICMP_NO_SESSION, DROP,  SHOT)       \
	/* GSRA: the FTP stage */                              \
	X(GSCIP_STAT_FTP_PUNT,          VERDICT, STOLEN)       \
	X(GSCIP_STAT_FTP_TOO_BIG,       VERDICT, PASS)         \
	X(GSCIP_STAT_FTP_COPY,          OVERLAY, NONE)         \
	X(GSCIP_STAT_FTP_COPY_FAILED,   OVERLAY, NONE)         \
	X(GSCIP_STAT_FTP_SEQ_ADJ,       OVERLAY, NONE)         \
	X(GSCIP_STAT_FTP_SEQ_RESET,     OVERLAY, NONE)         \
	X(GSCIP_DROP_FTP_SEQ_REWRITE,   DROP,    SHOT)

/* The counter map gscip_counters is a per-CPU array of struct gscip_stat_val
 * with one slot per (reason, direction): slot = reason * 2 + enum gscip_dir.
 * (It replaced gscip_stats, indexed by reason alone; an agent that finds that
 * older pin logs its totals and removes it: controlplane/agent/migrate.ts.) */
#define GSCIP_COUNTER_DIRS        2
#define GSCIP_COUNTER_SLOTS       (GSCIP_REASON__END * GSCIP_COUNTER_DIRS)
#define GSCIP_COUNTER_SLOT(reason, dir) ((reason) * GSCIP_COUNTER_DIRS + (dir))

/* A counter cell (per CPU). */
struct gscip_stat_val {
	__u64 packets;
	__u64 bytes;
};

/* Internal return codes of fast-path helpers are negative and far from
 * TC_ACT_* (-1..8): -(GSCIP_CODE_BASE + enum gscip_stat + tag), the tag
 * carrying the reason's TC action from GSCIP_REASONS. GSCIP_CODE() is in
 * bpf/lib/codes.h; only the entry programs turn a code into a counter and a
 * TC verdict. */
#define GSCIP_CODE_BASE 1000

#endif /* GSCIP_ABI_H */
