// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* gscip_crypto_test.bpf.c - TEST-ONLY programs for BPF_PROG_TEST_RUN: the ChaCha20
 * keystream (RFC 8439 vectors) and the PCCOM hooks on crafted packets.
 * Never attached by the agent. Used by test/bpf/{chacha20,pccom}.test.ts and
 * bench/pccom.ts (ns/packet). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "consts.h"
#include "codes.h"
#include "maps.h"
#include "stats.h"
#include "pccom.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The PIT entry the pccom_test_* programs apply (index 0), set by the test. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gscip_pit_val);
} crypto_test_pit SEC(".maps");

/* chacha_test: packet = 14 bytes (ignored) | key[32] | counter (LE u32) |
 * nonce[12] | ks_off (LE u32: bits 0..7 offset, bits 8..15 rounds 0=20|12|8) |
 * data... ; data is XORed in place with the keystream that starts at byte
 * ks_off of block `counter`. Returns 0, or 1 on error. */
#define CHACHA_TEST_HDR (14 + 32 + 4 + 12 + 4)

SEC("tc")
int chacha_test(struct __sk_buff *skb)
{
	struct pccom_pass c = { .skb = skb };
	struct pccom_scratch *s = pccom_scratch();
	__u32 hdr[13];

	if (bpf_skb_pull_data(skb, skb->len))
		return 1;
	if (bpf_skb_load_bytes(skb, 14, hdr, sizeof(hdr)))
		return 1;
	if (!s)
		return 1;
	c.s = s;
	__builtin_memcpy(s->in.key, hdr, sizeof(s->in.key));
	s->first_block = hdr[8];
	s->in.nonce[0] = hdr[9];
	s->in.nonce[1] = hdr[10];
	s->in.nonce[2] = hdr[11];
	s->ks_off = hdr[12] & 0xff;
	switch ((hdr[12] >> 8) & 0xff) {
	case 0: case 20: s->dr = CHACHA20_DR_20; break;
	case 12: s->dr = CHACHA20_DR_12; break;
	case 8: s->dr = CHACHA20_DR_8; break;
	default: return 1;
	}
	if (s->ks_off >= CHACHA20_BLOCK_BYTES || skb->len < CHACHA_TEST_HDR)
		return 1;
	s->pay_off = CHACHA_TEST_HDR;
	s->pay_len = skb->len - CHACHA_TEST_HDR;
	return pccom_xor_payload(&c) ? 1 : 0;
}

/* Minimal Ethernet/IPv4/TCP|UDP parse for crafted test packets. */
static __always_inline int test_parse(struct __sk_buff *skb, struct gscip_pkt *pkt, __u8 dir)
{
	struct iphdr ip;
	__u32 ihl, tot;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	ihl = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	if (ip.version != 4 || ihl < 20 || tot < ihl || ETH_HLEN + tot > skb->len)
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_IP);
	pkt->l3_off = ETH_HLEN;
	pkt->l4_off = ETH_HLEN + ihl;
	pkt->skb_len = skb->len;
	pkt->dir = dir;
	pkt->is_fragment = (bpf_ntohs(ip.frag_off) & (IP_MF | IP_OFFMASK)) != 0;
	pkt->cid.saddr = ip.saddr;
	pkt->cid.daddr = ip.daddr;
	pkt->cid.proto = ip.protocol;
	pkt->cid.dir = dir;
	if (ip.protocol == IPPROTO_TCP) {
		struct tcphdr tcp;

		if (bpf_skb_load_bytes(skb, pkt->l4_off, &tcp, sizeof(tcp)))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		pkt->l4_hlen = tcp.doff * 4;
		pkt->cid.sport = tcp.source;
		pkt->cid.dport = tcp.dest;
	} else if (ip.protocol == IPPROTO_UDP) {
		struct udphdr udp;

		if (bpf_skb_load_bytes(skb, pkt->l4_off, &udp, sizeof(udp)))
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		pkt->l4_hlen = 8;
		pkt->cid.sport = udp.source;
		pkt->cid.dport = udp.dest;
	} else {
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	}
	if (pkt->l4_hlen < 8 || ihl + pkt->l4_hlen > tot)
		return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
	pkt->payload_off = pkt->l4_off + pkt->l4_hlen;
	pkt->payload_len = tot - ihl - pkt->l4_hlen;
	return 0;
}

/* Returns 0 (TC_ACT_OK) on success, else the gscip_stat id of the drop, counted
 * in gscip_counters under its direction like the real entry programs do. */
static __always_inline int pccom_test(struct __sk_buff *skb, __u8 dir)
{
	struct gscip_pkt pkt = {};
	struct gscip_pit_val *pit;
	__u32 zero = 0;
	int rc;

	rc = test_parse(skb, &pkt, dir);
	if (!rc) {
		pit = bpf_map_lookup_elem(&crypto_test_pit, &zero);
		if (!pit)
			return TC_ACT_SHOT;
		rc = dir == GSCIP_DIR_EGRESS ? pccom_egress(skb, &pkt, pit) : pccom_ingress(skb, &pkt, pit);
	}
	if (rc >= 0) {
		stats_count(dir == GSCIP_DIR_EGRESS ? GSCIP_STAT_PIT_ENCRYPT :
			    rc ? GSCIP_STAT_PIT_DECRYPT_PREV : GSCIP_STAT_PIT_DECRYPT, dir, skb->len);
		return TC_ACT_OK;
	}
	stats_count(GSCIP_CODE_TO_STAT(rc), dir, skb->len);
	return GSCIP_CODE_TO_STAT(rc);
}

SEC("tc")
int pccom_test_egress(struct __sk_buff *skb)
{
	return pccom_test(skb, GSCIP_DIR_EGRESS);
}

SEC("tc")
int pccom_test_ingress(struct __sk_buff *skb)
{
	return pccom_test(skb, GSCIP_DIR_INGRESS);
}
