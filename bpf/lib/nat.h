/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* nat.h - the GNAT's outbound NAPT, in the fast path (GSCIP_STAGE_NAT).
 * Design and limits: docs/natf.md. Layouts: gscip_abi.h "NAT".
 *
 * Needs: maps.h (gscip_nat, gscip_nat_port, gscip_nat_cfg), csum.h (the
 *   TCP/UDP rewrites), pkt.h (a parsed packet), stages.h (struct gscip_run).
 * Provides:
 *  - gscip_stage_nat_egress / gscip_stage_nat_ingress: the stages (stages.h
 *    contract). Egress (after XLAT, before the PIT): a TCP/UDP packet whose
 *    source is inside (cfg.inside) gets ext_addr:port as its source; its first
 *    packet creates the session. Ingress (after the PIT, on what it lets
 *    through): a packet to ext_addr:port of a session, from that session's
 *    peer, gets the inside address:port back.
 *  - gscip_nat_icmp: ICMP errors (3, 11, 12) quoting a NATed flow, translated
 *    outside (outer address, its header checksum) and inside (quoted address
 *    and port, the quoted IPv4 header checksum, the quoted TCP/UDP checksum
 *    when quoted, and the ICMP checksum over all of it), so PMTU discovery
 *    works across the GNAT. Called from classify (ICMP never takes the PIT).
 *  - gscip_nat_other: what happens to anything else an inside host sends
 *    out (other protocols, non-first fragments): dropped, counted, never
 *    leaked with its private source.
 *
 * Allocation is here, not in the control plane: a new session claims a port
 * of [port_lo, port_hi] with BPF_NOEXIST in gscip_nat_port (each of the
 * GSCIP_NAT_PORT_TRIES candidates drawn at random; a range no larger than
 * that is scanned whole from a random start), so two CPUs can never
 * hand out one port twice, then writes the session with BPF_NOEXIST (losing a
 * race to another CPU for the same flow releases the claim and uses the
 * winner's). Either map full: GSCIP_DROP_NAT_TABLE_FULL; no free candidate:
 * GSCIP_DROP_NAT_NO_PORT. Expiry is the control plane's (controlplane/natf/
 * nat-expiry.ts): this file only records activity (last_seen_ns, at most once
 * a second) and TCP state (GSCIP_NAT_F_*, each bit written once).
 *
 * Verifier: the three entry points are global subprograms (verified once
 * each, their locals in their own frame, not in the entry program's); a load
 * without GSCIP_STAGE_NAT calls none of them, so they are never verified. */
#ifndef GSCIP_NAT_H
#define GSCIP_NAT_H

#include "codes.h"
#include "consts.h"
#include "maps.h"
#include "csum.h"
#include "stages.h"

#ifndef E2BIG
#define E2BIG 7
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

#define NAT_TCP_SYN 0x02

/* struct gscip_run.nat bits: what the NAT did to this packet (overlay counters). */
#define NAT_RUN_XLATED  0x1
#define NAT_RUN_CREATED 0x2

/* ICMP error types whose quoted packet the NAT translates. */
#define NAT_ICMP_UNREACH  3
#define NAT_ICMP_TIME_EXC 11
#define NAT_ICMP_PARAM    12

static __always_inline const struct gscip_nat_cfg *nat_cfg(void)
{
	__u32 zero = 0;
	const struct gscip_nat_cfg *c = bpf_map_lookup_elem(&gscip_nat_cfg, &zero);

	return c && c->ext_addr ? c : NULL;
}

static __always_inline bool nat_inside(const struct gscip_nat_cfg *c, __be32 a)
{
	int i;

#pragma unroll
	for (i = 0; i < GSCIP_NAT_MAX_INSIDE; i++)
		if (c->inside[i].mask && (a & c->inside[i].mask) == c->inside[i].addr)
			return true;
	return false;
}

/* Activity and TCP state, each bit written once (no atomic per packet). */
static __always_inline void nat_touch(struct gscip_nat_val *v, __u8 proto, __u8 tcp_flags, bool out)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 want = out ? 0 : GSCIP_NAT_F_IN;

	if (now - READ_ONCE(v->last_seen_ns) >= NSEC_PER_SEC)
		WRITE_ONCE(v->last_seen_ns, now);
	if (proto == IPPROTO_TCP) {
		if (out && (tcp_flags & NAT_TCP_SYN))
			want |= GSCIP_NAT_F_SYN_OUT;
		if (tcp_flags & PKT_TCP_FIN)
			want |= out ? GSCIP_NAT_F_FIN_OUT : GSCIP_NAT_F_FIN_IN;
		if (tcp_flags & PKT_TCP_RST)
			want |= GSCIP_NAT_F_RST;
	}
	if (want & ~READ_ONCE(v->flags))
		__sync_fetch_and_or(&v->flags, want);
}

/* A new session for *key: claim a port, then write the session.
 * 1 = created, 0 = another CPU created it first, else a drop code. */
static __always_inline int nat_create(const struct gscip_nat_cfg *c, const struct gscip_cid *key)
{
	struct gscip_nat_port_key pk = { .proto = key->proto };
	struct gscip_nat_val v = {};
	__u32 range, start, i;
	bool claimed = false;
	long err;

	if (c->port_hi < c->port_lo || c->port_lo == 0)
		return GSCIP_CODE(GSCIP_DROP_NAT_NO_PORT);
	range = (__u32)c->port_hi - c->port_lo + 1;
	start = bpf_get_prandom_u32() % range;
	for (i = 0; i < GSCIP_NAT_PORT_TRIES; i++) {
		__u32 off;

		/* Random candidates, not the ports after one random start: claimed
		 * ports form runs, and a start inside a run of 32 failed with most
		 * of the range free (at 63 % use ~2 new flows in 8,000 refused;
		 * random: none below ~85 %). A small range is scanned whole. */
		if (range <= GSCIP_NAT_PORT_TRIES) {
			if (i >= range)
				break;
			off = (start + i) % range;
		} else {
			off = i ? bpf_get_prandom_u32() % range : start;
		}
		pk.port = bpf_htons((__u16)(c->port_lo + off));
		err = bpf_map_update_elem(&gscip_nat_port, &pk, key, BPF_NOEXIST);
		if (!err) {
			claimed = true;
			break;
		}
		if (err == -E2BIG)
			return GSCIP_CODE(GSCIP_DROP_NAT_TABLE_FULL);
	}
	if (!claimed)
		return GSCIP_CODE(GSCIP_DROP_NAT_NO_PORT);

	v.ext_addr = c->ext_addr;
	v.ext_port = pk.port;
	v.origin = GSCIP_NAT_OUTBOUND;
	v.created_ns = bpf_ktime_get_coarse_ns();
	v.last_seen_ns = v.created_ns;
	err = bpf_map_update_elem(&gscip_nat, key, &v, BPF_NOEXIST);
	if (err) {
		bpf_map_delete_elem(&gscip_nat_port, &pk);
		return err == -EEXIST ? 0 : GSCIP_CODE(GSCIP_DROP_NAT_TABLE_FULL);
	}
	return 1;
}

/* The session of *key, made here when there is none (*made = 1 when this
 * call made it; another CPU's session is taken as found). 0 with *vp set, or
 * a drop code. */
static __always_inline int nat_session(const struct gscip_nat_cfg *c, const struct gscip_cid *key,
				       struct gscip_nat_val **vp, int *made)
{
	struct gscip_nat_val *v;
	int rc;

	v = bpf_map_lookup_elem(&gscip_nat, key);
	if (!v) {
		rc = nat_create(c, key);
		if (rc < 0)
			return rc;
		*made = rc;
		v = bpf_map_lookup_elem(&gscip_nat, key);
		if (!v)
			return GSCIP_CODE(GSCIP_DROP_NAT_TABLE_FULL);
	}
	*vp = v;
	return 0;
}

/* Egress: inside P:x -> D:y becomes ext:z -> D:y. Returns 0 (not an inside
 * source), NAT_RUN_* bits, or a drop code. Global: see the top comment. */
__noinline int gscip_nat_egress(struct __sk_buff *skb, struct gscip_pkt *pkt)
{
	const struct gscip_nat_cfg *c;
	struct gscip_nat_val *v;
	struct gscip_cid key;
	__be32 ext;
	__be16 port;
	int made = 0, rc;

	if (!skb || !pkt)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	c = nat_cfg();
	if (!c)
		return 0;
	key = pkt->cid;
	key.dir = GSCIP_DIR_EGRESS;
	key.pad[0] = 0;
	key.pad[1] = 0;
	if (!nat_inside(c, pkt->cid.saddr)) {
		/* Not an inside source: translated only by a session a GSRA router's
		 * control plane wrote for it (origin gsra), never created here. */
		v = bpf_map_lookup_elem(&gscip_nat, &key);
		if (!v || v->origin != GSCIP_NAT_GSRA)
			return 0;
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_NAT_FRAGMENT);
		goto xlate;
	}
	if (pkt->is_fragment)
		return GSCIP_CODE(GSCIP_DROP_NAT_FRAGMENT);
	rc = nat_session(c, &key, &v, &made);
	if (rc)
		return rc;
xlate:
	nat_touch(v, pkt->cid.proto, pkt->tcp_flags, true);
	ext = v->ext_addr;
	port = v->ext_port;
	rc = csum_rewrite_addrs(skb, pkt, ext, pkt->cid.daddr);
	if (rc)
		return rc;
	pkt->cid.saddr = ext;
	rc = csum_rewrite_ports(skb, pkt, port, pkt->cid.dport);
	if (rc)
		return rc;
	pkt->cid.sport = port;
	return NAT_RUN_XLATED | (made ? NAT_RUN_CREATED : 0);
}

/* Ingress: D:y -> ext:z of a session back to D:y -> P:x. 0 (not a NAT port:
 * the GNAT's own traffic), NAT_RUN_XLATED, or a drop code. */
__noinline int gscip_nat_ingress(struct __sk_buff *skb, struct gscip_pkt *pkt)
{
	const struct gscip_nat_cfg *c;
	struct gscip_nat_port_key pk = {};
	const struct gscip_cid *owner;
	struct gscip_nat_val *v;
	struct gscip_cid key;
	int rc;

	if (!skb || !pkt)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	c = nat_cfg();
	if (!c || pkt->cid.daddr != c->ext_addr)
		return 0;
	pk.port = pkt->cid.dport;
	pk.proto = pkt->cid.proto;
	owner = bpf_map_lookup_elem(&gscip_nat_port, &pk);
	if (!owner)
		return 0;
	key = *owner;
	if (key.daddr != pkt->cid.saddr || key.dport != pkt->cid.sport)
		return GSCIP_CODE(GSCIP_DROP_NAT_FILTERED);
	v = bpf_map_lookup_elem(&gscip_nat, &key);
	if (!v || v->ext_port != pk.port)
		return GSCIP_CODE(GSCIP_DROP_NAT_FILTERED);  /* the session is being expired */
	if (pkt->is_fragment)
		return GSCIP_CODE(GSCIP_DROP_NAT_FRAGMENT);
	nat_touch(v, pkt->cid.proto, pkt->tcp_flags, false);
	rc = csum_rewrite_addrs(skb, pkt, pkt->cid.saddr, key.saddr);
	if (rc)
		return rc;
	pkt->cid.daddr = key.saddr;
	rc = csum_rewrite_ports(skb, pkt, pkt->cid.sport, key.sport);
	if (rc)
		return rc;
	pkt->cid.dport = key.sport;
	return NAT_RUN_XLATED;
}

/* ---- ICMP errors ---- */

/* Replace the 16-bit checksum field at off for a change of `size` bytes
 * (2 or 4) from -> to. bpf_l3_csum_replace adjusts the field whatever
 * skb->ip_summed says, which is right for the fields of an ICMP error: the
 * ICMP checksum has no pseudo-header, and the quoted headers' checksums are
 * plain data to the skb. The packet's own sum stays what it was (every
 * change is compensated inside the message), so CHECKSUM_COMPLETE holds. */
static __always_inline int nat_fix(struct __sk_buff *skb, __u32 off, __u32 from, __u32 to, __u32 size)
{
	return bpf_l3_csum_replace(skb, off, from, to, size) ? GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE) : 0;
}

/* A 16-bit field's value (network order) at off; 0 on a failed load (never used then). */
static __always_inline __u16 nat_load16(struct __sk_buff *skb, __u32 off)
{
	__u16 v = 0;

	bpf_skb_load_bytes(skb, off, &v, 2);
	return v;
}

/* Rewrite one quoted address (inner IPv4 header, at ip_off + addr_off) and
 * one quoted port (at l4_off + port_off), fixing the quoted IPv4 checksum,
 * the quoted L4 checksum when the quote holds it (end = end of the outer
 * packet) and the ICMP checksum at icmp_csum for every word changed. */
static __always_inline int nat_icmp_quote(struct __sk_buff *skb, __u32 icmp_csum, __u32 ip_off, __u32 addr_off,
					  __be32 old_a, __be32 new_a, __u32 l4_off, __u32 port_off,
					  __be16 old_p, __be16 new_p, __u8 proto, __u32 end)
{
	__u32 l4_csum = l4_off + (proto == IPPROTO_TCP ? 16 : 6);
	__u16 before, after;
	int rc;

	if (bpf_skb_store_bytes(skb, ip_off + addr_off, &new_a, 4, 0))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	rc = nat_fix(skb, icmp_csum, old_a, new_a, 4);
	if (rc)
		return rc;
	before = nat_load16(skb, ip_off + 10);
	rc = nat_fix(skb, ip_off + 10, old_a, new_a, 4);
	if (rc)
		return rc;
	after = nat_load16(skb, ip_off + 10);
	rc = nat_fix(skb, icmp_csum, before, after, 2);
	if (rc)
		return rc;

	if (bpf_skb_store_bytes(skb, l4_off + port_off, &new_p, 2, 0))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	rc = nat_fix(skb, icmp_csum, old_p, new_p, 2);
	if (rc)
		return rc;

	if (l4_csum + 2 > end)
		return 0;  /* the quote stops before the L4 checksum (RFC 792 quotes 8 bytes) */
	before = nat_load16(skb, l4_csum);
	if (proto == IPPROTO_UDP && before == 0)
		return 0;  /* UDP without checksum stays without */
	rc = nat_fix(skb, l4_csum, old_a, new_a, 4);  /* pseudo-header address */
	if (rc)
		return rc;
	rc = nat_fix(skb, l4_csum, old_p, new_p, 2);
	if (rc)
		return rc;
	after = nat_load16(skb, l4_csum);
	return nat_fix(skb, icmp_csum, before, after, 2);
}

/* ICMP (not a GSCIP control message) on either direction of the outside
 * interface: 0 = not the NAT's (the caller passes it as other L4), else
 * GSCIP_CODE(GSCIP_STAT_NAT_ICMP) or a drop code. */
__noinline int gscip_nat_icmp(struct __sk_buff *skb, struct gscip_pkt *pkt, __u32 l3_len, __u32 type, __u32 egress)
{
	const struct gscip_nat_cfg *c;
	struct gscip_nat_val *v;
	struct gscip_cid key = {};
	struct iphdr in;
	__be16 ports[2];
	__u32 icmp_off, in_ip, in_l4, end;
	bool from_inside;
	int rc;

	if (!skb || !pkt)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	c = nat_cfg();
	if (!c)
		return 0;
	from_inside = egress && nat_inside(c, pkt->cid.saddr);
	if (type != NAT_ICMP_UNREACH && type != NAT_ICMP_TIME_EXC && type != NAT_ICMP_PARAM)
		return from_inside ? GSCIP_CODE(GSCIP_DROP_NAT_PROTO) : 0;  /* echo etc.: not translated (docs/natf.md) */
	if (!egress && pkt->cid.daddr != c->ext_addr)
		return 0;

	icmp_off = pkt->l4_off;
	in_ip = icmp_off + 8;
	end = pkt->l3_off + l3_len;
	if (in_ip + sizeof(in) + 4 > end || bpf_skb_load_bytes(skb, in_ip, &in, sizeof(in)))
		goto not_ours;
	if (in.version != 4 || in.ihl < 5 || (in.protocol != IPPROTO_TCP && in.protocol != IPPROTO_UDP) ||
	    (in.frag_off & bpf_htons(IP_OFFMASK)))
		goto not_ours;
	in_l4 = in_ip + (__u32)in.ihl * 4;
	if (in_l4 + 4 > end || bpf_skb_load_bytes(skb, in_l4, ports, sizeof(ports)))
		goto not_ours;

	if (!egress) {
		/* the quote is what this GNAT sent: ext:z -> D:y */
		struct gscip_nat_port_key pk = { .port = ports[0], .proto = in.protocol };
		const struct gscip_cid *owner;

		if (in.saddr != c->ext_addr)
			return 0;
		owner = bpf_map_lookup_elem(&gscip_nat_port, &pk);
		if (!owner)
			return 0;
		key = *owner;
		if (key.daddr != in.daddr || key.dport != ports[1])
			return 0;
		v = bpf_map_lookup_elem(&gscip_nat, &key);
		if (!v || v->ext_port != ports[0])
			return 0;
		/* outer destination ext -> P */
		if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, daddr), &key.saddr, 4, 0))
			return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
		rc = nat_fix(skb, pkt->l3_off + offsetof(struct iphdr, check), c->ext_addr, key.saddr, 4);
		if (rc)
			return rc;
		rc = nat_icmp_quote(skb, icmp_off + 2, in_ip, offsetof(struct iphdr, saddr), in.saddr, key.saddr,
				    in_l4, 0, ports[0], key.sport, in.protocol, end);
		if (rc)
			return rc;
		pkt->cid.daddr = key.saddr;
		return GSCIP_CODE(GSCIP_STAT_NAT_ICMP);
	}

	/* egress: the quote is what the inside host received: D:y -> P:x */
	if (!nat_inside(c, in.daddr))
		goto not_ours;
	key.saddr = in.daddr;
	key.daddr = in.saddr;
	key.sport = ports[1];
	key.dport = ports[0];
	key.proto = in.protocol;
	key.dir = GSCIP_DIR_EGRESS;
	v = bpf_map_lookup_elem(&gscip_nat, &key);
	if (!v)
		goto not_ours;
	{
		__be32 ext = v->ext_addr;
		__be16 z = v->ext_port;

		if (from_inside) {
			if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, saddr), &ext, 4, 0))
				return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
			rc = nat_fix(skb, pkt->l3_off + offsetof(struct iphdr, check), pkt->cid.saddr, ext, 4);
			if (rc)
				return rc;
			pkt->cid.saddr = ext;
		}
		rc = nat_icmp_quote(skb, icmp_off + 2, in_ip, offsetof(struct iphdr, daddr), in.daddr, ext,
				    in_l4, 2, ports[1], z, in.protocol, end);
		if (rc)
			return rc;
	}
	return GSCIP_CODE(GSCIP_STAT_NAT_ICMP);

not_ours:
	return from_inside ? GSCIP_CODE(GSCIP_DROP_NAT_ICMP_NO_SESSION) : 0;
}

/* ---- ICMP echo (RFC 5508 query sessions) ----
 *
 * An inside host's echo request P -> D, identifier i, becomes ext -> D with
 * an identifier z claimed like a port (gscip_nat_port, proto ICMP, the same
 * range and rules as TCP/UDP): the session key is P:i -> D:0. The echo reply
 * D -> ext, identifier z, from that D goes back to P with i; a reply from
 * anyone else is nat_filtered, one to an unclaimed identifier is the GNAT's
 * own. The IPv4 checksum is fixed for the address, the ICMP checksum (no
 * pseudo-header) for the identifier. Returns NAT_RUN_* bits (translated),
 * 0 (not the NAT's: pass as other L4) or a drop code. Global, for its frame. */
#define NAT_ICMP_ECHO_REPLY 0
#define NAT_ICMP_ECHO       8
__noinline int gscip_nat_echo(struct __sk_buff *skb, struct gscip_pkt *pkt, __u32 type, __u32 egress)
{
	const struct gscip_nat_cfg *c;
	struct gscip_nat_port_key pk = {};
	const struct gscip_cid *owner;
	struct gscip_nat_val *v;
	struct gscip_cid key = {};
	__u32 id_off, csum_off;
	__be32 to_addr;
	__be16 id = 0, to_id;
	int made = 0, rc;

	if (!skb || !pkt)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	c = nat_cfg();
	if (!c)
		return 0;
	csum_off = pkt->l4_off + 2;
	id_off = pkt->l4_off + 4;
	if (egress) {
		if (!nat_inside(c, pkt->cid.saddr))
			return 0;
		if (type != NAT_ICMP_ECHO)
			return GSCIP_CODE(GSCIP_DROP_NAT_PROTO);  /* a reply from inside: nobody outside has a session to it */
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_NAT_FRAGMENT);
		if (bpf_skb_load_bytes(skb, id_off, &id, 2))
			return GSCIP_CODE(GSCIP_DROP_NAT_PROTO);
		key.saddr = pkt->cid.saddr;
		key.daddr = pkt->cid.daddr;
		key.sport = id;
		key.proto = IPPROTO_ICMP;
		key.dir = GSCIP_DIR_EGRESS;
		rc = nat_session(c, &key, &v, &made);
		if (rc)
			return rc;
		nat_touch(v, IPPROTO_ICMP, 0, true);
		to_addr = v->ext_addr;
		to_id = v->ext_port;
		if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, saddr), &to_addr, 4, 0))
			return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
		rc = nat_fix(skb, pkt->l3_off + offsetof(struct iphdr, check), pkt->cid.saddr, to_addr, 4);
		if (rc)
			return rc;
		pkt->cid.saddr = to_addr;
	} else {
		if (type != NAT_ICMP_ECHO_REPLY || pkt->cid.daddr != c->ext_addr)
			return 0;
		if (bpf_skb_load_bytes(skb, id_off, &id, 2))
			return 0;
		pk.port = id;
		pk.proto = IPPROTO_ICMP;
		owner = bpf_map_lookup_elem(&gscip_nat_port, &pk);
		if (!owner)
			return 0;
		key = *owner;
		if (key.daddr != pkt->cid.saddr)
			return GSCIP_CODE(GSCIP_DROP_NAT_FILTERED);
		v = bpf_map_lookup_elem(&gscip_nat, &key);
		if (!v || v->ext_port != id)
			return GSCIP_CODE(GSCIP_DROP_NAT_FILTERED);
		if (pkt->is_fragment)
			return GSCIP_CODE(GSCIP_DROP_NAT_FRAGMENT);
		nat_touch(v, IPPROTO_ICMP, 0, false);
		to_addr = key.saddr;
		to_id = key.sport;
		if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, daddr), &to_addr, 4, 0))
			return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
		rc = nat_fix(skb, pkt->l3_off + offsetof(struct iphdr, check), pkt->cid.daddr, to_addr, 4);
		if (rc)
			return rc;
		pkt->cid.daddr = to_addr;
	}
	if (bpf_skb_store_bytes(skb, id_off, &to_id, 2, 0))
		return GSCIP_CODE(GSCIP_DROP_XLAT_REWRITE);
	rc = nat_fix(skb, csum_off, id, to_id, 2);
	if (rc)
		return rc;
	return NAT_RUN_XLATED | (made ? NAT_RUN_CREATED : 0);
}

/* Anything else on the outside interface (not TCP/UDP/ICMP, or a non-first
 * fragment, kind = the verdict it would get otherwise): dropped when an
 * inside host sent it out (it would leak the private source), else `pass_code`. */
static __always_inline int gscip_nat_other(const struct gscip_pkt *pkt, bool egress, int drop_code, int pass_code)
{
	const struct gscip_nat_cfg *c;

	if (!egress)
		return pass_code;
	c = nat_cfg();
	return c && nat_inside(c, pkt->cid.saddr) ? drop_code : pass_code;
}

/* ---- the stages ---- */

static __always_inline int gscip_stage_nat_egress(struct __sk_buff *skb, struct gscip_run *run)
{
	int rc = gscip_nat_egress(skb, &run->pkt);

	if (rc < 0)
		return rc;
	run->nat = (__u8)rc;
	return GSCIP_STAGE_NEXT;
}

static __always_inline int gscip_stage_nat_ingress(struct __sk_buff *skb, struct gscip_run *run)
{
	int rc = gscip_nat_ingress(skb, &run->pkt);

	if (rc < 0)
		return rc;
	run->nat = (__u8)rc;
	return GSCIP_STAGE_NEXT;
}

#endif /* GSCIP_NAT_H */
