/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom.h - PCCOM: TCP/UDP payload encryption (ChaCha20) and keyed checksum.
 *
 * Contract with the entry programs (pit.h): both hooks return 0 on success or
 * GSCIP_CODE(GSCIP_DROP_*) (the caller counts and drops). They may pull data
 * and write the packet: callers re-derive pointers from pkt's offsets.
 * Design, nonce scheme and limits: docs/pccom.md. In short:
 *
 *  - Only the L4 payload is encrypted, in place; headers and lengths never change.
 *  - Keystream: ChaCha20/12/8 (key flags) with the group key named by the PIT entry.
 *      TCP: block counter = seq / 64 (byte position = seq), nonce = (TCP, ack, TSval),
 *           so a segment decrypts alone and a retransmission is self-consistent.
 *      UDP: nonce = (UDP, IP ID | UDP length << 16, plaintext sum); the sender writes
 *           the IP ID from a per-CPU counter (the kernel sends ID 0 on DF datagrams);
 *           the receiver recovers the plaintext sum from the keyed checksum.
 *  - Keyed checksum, TCP: the checksum field carries
 *        ~fold(pseudo-header + TCP header + CIPHERTEXT payload + K)
 *    with K = 16 bits of a ChaCha block keyed by the group key over fields that
 *    every GSO/TSO segment of one skb shares and NAT does not change (ack,
 *    TSval, TSecr). K is additive: the sender of a CHECKSUM_PARTIAL skb (GSO
 *    super-packets included) only adds K to the pseudo-header seed, and
 *    whoever computes the final checksums later (software GSO, the NIC's TSO)
 *    produces keyed per-segment checksums. NAT's incremental updates keep it.
 *  - Keyed checksum, UDP: over the PLAINTEXT + K(IP ID, length), which hides the
 *    plaintext sum used in the nonce. UDP GSO skbs are refused (UNSUPPORTED).
 *  - Rotation: on decrypt, a keyed-checksum failure under key_version is tried
 *    under the PIT's prev_key_version (pccom_ingress returns 1 then).
 */
#ifndef GSCIP_PCCOM_H
#define GSCIP_PCCOM_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "pkt.h"
#include "maps.h"
#include "chacha20.h"

/* Largest L4 payload end we handle (no BIG TCP): offsets must fit 16 bits. */
#define PCCOM_MAX_PKT_END   0xff00  /* verifier: pkt offset + 64 must stay <= 0xffff */
#define PCCOM_MAX_BLOCKS    ((PCCOM_MAX_PKT_END / CHACHA20_BLOCK_BYTES) + 2)
#define PCCOM_MAX_L4_HLEN   60
#define PCCOM_SUM_CHUNK     512     /* bpf_csum_diff sums at most 512 bytes per call */

/* Nonce word 0: domain separation between the four keystream uses. */
#define PCCOM_DOM_TCP_DATA  0x50435401  /* "PCT" 1 */
#define PCCOM_DOM_TCP_CSUM  0x50435402
#define PCCOM_DOM_UDP_DATA  0x50435501  /* "PCU" 1 */
#define PCCOM_DOM_UDP_CSUM  0x50435502

/* skb->ip_summed values (include/linux/skbuff.h). */
#define PCCOM_CHECKSUM_NONE     0
#define PCCOM_CHECKSUM_COMPLETE 2
#define PCCOM_CHECKSUM_PARTIAL  3

/* TCP option bytes NOP NOP TIMESTAMP(10) as Linux lays them out after the header. */
#define PCCOM_TCPOPT_NOP_NOP_TS 0x0101080a

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* ---- 16-bit one's-complement arithmetic, in the "little-endian word" view
 * the kernel uses on x86 (__wsum): a sum of memory words read as host u16/u32,
 * which folded and stored back as a u16 gives the right wire bytes. */
static __always_inline __u32 pccom_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

static __always_inline __u32 pccom_add16(__u32 a, __u32 b) { return pccom_fold((__u64)a + b); }
static __always_inline __u32 pccom_neg16(__u32 a) { return ~a & 0xffff; }

/* Equality of two checksum fields: 0x0000 and 0xffff both encode zero. */
static __always_inline int pccom_csum_eq(__u32 a, __u32 b)
{
	if (a == 0)
		a = 0xffff;
	if (b == 0)
		b = 0xffff;
	return a == b;
}

static __always_inline int pccom_ip_summed(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ_BITFIELD(kskb, ip_summed);
}

/* ---- the payload pass ----
 * Payload position P uses keystream byte (ks_off + P) of the stream that starts
 * at block first_block. The pass is split so the verifier checks each piece once:
 *   head: bytes before the first block boundary  (bpf_loop, 8 bytes per call, then 1)
 *   full: whole 64-byte blocks                    (bpf_loop, one block per call)
 *   tail: the bytes after the last whole block    (bpf_loop, 8 bytes per call, then 1)
 * No loop nests another (nested callbacks do not converge in the verifier). */
struct pccom_scratch {
	struct chacha20_in in;  /* key and data nonce (key first: the wipe test reads it there) */
	__u32 first_block;  /* block counter of the keystream for payload byte 0 */
	__u32 ks_off;       /* keystream byte of payload byte 0 within that block (0..63) */
	__u32 pay_off;      /* first payload byte, from skb->data */
	__u32 pay_len;
	__u32 full_block;   /* block counter of the first whole block */
	__u32 full_pos;     /* payload position of the first whole block */
	struct chacha20_out ks; /* keystream block being used */
	struct chacha20_in kin; /* key and nonce of K */
	__u32 dr;           /* double rounds of the key in use (CHACHA20_DR_*) */
	__s32 start;        /* head / tail: payload position of ks byte 0 */
	__u32 lo;           /* head / tail: payload position of iteration 0 */
	/* the L4 header */
	__u32 hdr[PCCOM_MAX_L4_HLEN / 4];  /* as on the wire */
	__u32 hlen;
	__u32 l4_len;       /* pseudo-header length */
	__u32 csum;         /* checksum field as received/sent, word view */
	/* kept across packets */
	__u32 ipid_ctr;     /* UDP sender: next IP ID (seeded at random when 0) */
	/* payload sums: the bytes after the last whole 512-byte chunk, zero-padded */
	__u8 tailbuf[PCCOM_SUM_CHUNK];
	__u32 tail_used;    /* tailbuf holds payload bytes: wipe it after the packet */
};

/* Private: per-CPU PCCOM scratch (index 0). TC programs do not nest on a CPU
 * (egress runs with BH off, ingress in softirq), so one cell per CPU is enough;
 * it keeps the 512-byte stack for the callbacks and the ChaCha20 frame. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pccom_scratch);
} gscip_pccom_scratch SEC(".maps");

/* bpf_loop context: lives on the stack (bpf_loop requires it), points at the scratch. */
struct pccom_pass {
	struct __sk_buff *skb;
	struct pccom_scratch *s;
	int err;
};

/* The packet at payload position pos with n (a constant) bytes in bounds, or NULL. */
static __always_inline __u8 *pccom_payload_at(const struct pccom_pass *c, __u32 pos, const __u32 n)
{
	__u32 off = c->s->pay_off + pos;
	__u8 *q, *end;

	if (off > PCCOM_MAX_PKT_END)
		return NULL;
	q = (__u8 *)(long)c->skb->data + off;
	end = (__u8 *)(long)c->skb->data_end;
	if (q + n > end)
		return NULL;
	return q;
}

/* One byte of the head or tail (bpf_loop callback). */
static long pccom_pass_byte(__u32 j, void *data)
{
	struct pccom_pass *c = data;
	struct pccom_scratch *s = c->s;
	__u32 pos = s->lo + j, kidx = pos - s->start;
	__u8 *q;

	if (kidx >= CHACHA20_BLOCK_BYTES)
		goto fail;
	q = pccom_payload_at(c, pos, 1);
	if (!q)
		goto fail;
	kidx &= CHACHA20_BLOCK_BYTES - 1;
	asm volatile("" : "+r"(kidx));  /* keep the mask next to the read */
	*q ^= ((__u8 *)s->ks.w)[kidx];
	return 0;
fail:
	c->err = 1;
	return 1;
}

/* Eight bytes of the head or tail (bpf_loop callback): payload position lo + 8 j. */
static long pccom_pass_word(__u32 j, void *data)
{
	struct pccom_pass *c = data;
	struct pccom_scratch *s = c->s;
	__u32 pos = s->lo + 8 * j, kidx = pos - s->start;
	__u8 *q;

	if (j >= CHACHA20_BLOCK_BYTES / 8)
		goto fail;
	q = pccom_payload_at(c, pos, 8);
	if (!q)
		goto fail;
	kidx &= CHACHA20_BLOCK_BYTES - 1;
	asm volatile("" : "+r"(kidx));  /* keep the bound next to the read */
	if (kidx > CHACHA20_BLOCK_BYTES - 8)
		goto fail;
	*(__u64 *)q ^= *(__u64 *)((__u8 *)s->ks.w + kidx);
	return 0;
fail:
	c->err = 1;
	return 1;
}

/* n (< 64) bytes of the head or tail from payload position s->lo: 8 at a
 * time, then the last 0..7 one at a time. */
static __always_inline int pccom_pass_partial(struct pccom_pass *c, __u32 n)
{
	struct pccom_scratch *s = c->s;
	__u32 words = n / 8, rest = n % 8;

	if (words && (bpf_loop(words, pccom_pass_word, c, 0) < 0 || c->err))
		return -1;
	s->lo += words * 8;
	if (rest && (bpf_loop(rest, pccom_pass_byte, c, 0) < 0 || c->err))
		return -1;
	return 0;
}

/* One whole 64-byte block (bpf_loop callback): the ChaCha block inlined, its
 * 16 words XORed into the packet from registers / this frame (~10 % faster per
 * block than an out-of-line call through the scratch). */
static long pccom_pass_block(__u32 i, void *data)
{
	struct pccom_pass *c = data;
	struct pccom_scratch *s = c->s;
	struct chacha20_out ks;
	__u32 j;
	__u8 *p;

	if (i >= PCCOM_MAX_BLOCKS)
		goto fail;
	p = pccom_payload_at(c, s->full_pos + i * CHACHA20_BLOCK_BYTES, CHACHA20_BLOCK_BYTES);
	if (!p)
		goto fail;
	chacha20_block_inline(&s->in, s->full_block + i, &ks, s->dr);
#pragma unroll
	for (j = 0; j < 8; j++)
		*(__u64 *)(p + 8 * j) ^= ((__u64)ks.w[2 * j + 1] << 32) | ks.w[2 * j];
	return 0;
fail:
	c->err = 1;
	return 1;
}

/* XOR s->pay_len payload bytes with the keystream (s->in, s->dr,
 * s->first_block, s->ks_off). 0 or -1. */
static __always_inline int pccom_xor_payload_body(struct pccom_pass *c)
{
	struct pccom_scratch *s = c->s;
	__u32 head, full, tail, ks_off = s->ks_off;

	c->err = 0;
	if (ks_off >= CHACHA20_BLOCK_BYTES || s->pay_len > PCCOM_MAX_PKT_END)
		return -1;
	head = ks_off ? CHACHA20_BLOCK_BYTES - ks_off : 0;
	if (head > s->pay_len)
		head = s->pay_len;
	full = (s->pay_len - head) / CHACHA20_BLOCK_BYTES;
	tail = s->pay_len - head - full * CHACHA20_BLOCK_BYTES;

	if (head) {
		chacha20_block(&s->in, s->first_block, &s->ks, s->dr);
		s->start = -(__s32)ks_off;
		s->lo = 0;
		if (pccom_pass_partial(c, head))
			return -1;
	}
	s->full_block = s->first_block + (ks_off ? 1 : 0);
	s->full_pos = head;
	if (full && (bpf_loop(full, pccom_pass_block, c, 0) < 0 || c->err))
		return -1;
	if (tail) {
		chacha20_block(&s->in, s->full_block + full, &s->ks, s->dr);
		s->start = head + full * CHACHA20_BLOCK_BYTES;
		s->lo = s->start;
		if (pccom_pass_partial(c, tail))
			return -1;
	}
	return 0;
}

/* The payload pass as a GLOBAL function: the verifier walks its block loop
 * (ChaCha inlined) once, not once per call site in every PCCOM path. 0 or -1. */
__noinline int pccom_xor_pass(struct __sk_buff *skb, struct pccom_scratch *s)
{
	struct pccom_pass c = { .skb = skb, .s = s };

	if (!skb || !s)
		return -1;
	return pccom_xor_payload_body(&c);
}

static __always_inline int pccom_xor_payload(struct pccom_pass *c)
{
	return pccom_xor_pass(c->skb, c->s);
}

/* ---- payload sums, by the kernel's csum_partial (bpf_csum_diff) ---- */

struct pccom_sum_ctx {
	struct __sk_buff *skb;
	struct pccom_scratch *s;
	__u64 acc;
	int err;
};

/* 512 payload bytes from position 512 i, straight from the (linear) packet. */
static long pccom_sum_chunk(__u32 i, void *data)
{
	struct pccom_sum_ctx *c = data;
	__u32 off;
	__u8 *p, *end;
	__s64 sum;

	if (i > PCCOM_MAX_PKT_END / PCCOM_SUM_CHUNK)
		goto fail;
	off = c->s->pay_off + i * PCCOM_SUM_CHUNK;
	if (off > PCCOM_MAX_PKT_END - PCCOM_SUM_CHUNK)  /* verifier: offset + 512 <= 0xffff */
		goto fail;
	p = (__u8 *)(long)c->skb->data + off;
	end = (__u8 *)(long)c->skb->data_end;
	if (p + PCCOM_SUM_CHUNK > end)
		goto fail;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)p, PCCOM_SUM_CHUNK, 0);
	if (sum < 0)
		goto fail;
	c->acc += (__u32)sum;
	return 0;
fail:
	c->err = 1;
	return 1;
}

/* The 16-bit one's-complement sum of the payload (s->pay_off, s->pay_len) as
 * it is now, in the word view of payload positions (every chunk starts at an
 * even position): whole 512-byte chunks straight from the linear packet, the
 * rest copied to s->tailbuf and zero-padded to whole words. The kernel's
 * csum_partial does the adding: ~4x faster than summing in BPF. A GLOBAL
 * function (verified once). Returns 0..0xffff, or -1. */
__noinline int pccom_payload_sum(struct __sk_buff *skb, struct pccom_scratch *s)
{
	struct pccom_sum_ctx c = { .skb = skb, .s = s };
	__u32 chunks, tail, words;
	__s64 sum;

	if (!skb || !s || s->pay_len > PCCOM_MAX_PKT_END)
		return -1;
	chunks = s->pay_len / PCCOM_SUM_CHUNK;
	tail = s->pay_len & (PCCOM_SUM_CHUNK - 1);
	if (chunks && (bpf_loop(chunks, pccom_sum_chunk, &c, 0) < 0 || c.err))
		return -1;
	if (tail) {
		/* zero the last word first: the bytes the copy does not reach are padding */
		*(__u32 *)(s->tailbuf + (tail & (PCCOM_SUM_CHUNK - 4))) = 0;
		s->tail_used = 1;
		if (bpf_skb_load_bytes(skb, s->pay_off + chunks * PCCOM_SUM_CHUNK, s->tailbuf, tail))
			return -1;
		words = (tail + 3) & ~3u;
		if (words > PCCOM_SUM_CHUNK)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->tailbuf, words, 0);
		if (sum < 0)
			return -1;
		c.acc += (__u32)sum;
	}
	return pccom_fold(c.acc);
}

static __always_inline struct pccom_scratch *pccom_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&gscip_pccom_scratch, &zero);
}

/* ---- per-packet fields ---- */

/* Copy the L4 header into the scratch; find payload length, pseudo length, checksum. */
static __always_inline int pccom_load_hdr(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					  struct pccom_scratch *s)
{
	__u32 hlen = pkt->l4_hlen;

	if (hlen > PCCOM_MAX_L4_HLEN || (hlen & 3))
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	hlen &= 0x3c;
	asm volatile("" : "+r"(hlen));  /* the verifier must see the lower bound below */
	if (hlen < 8)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	if (bpf_skb_load_bytes(skb, pkt->l4_off, s->hdr, hlen))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	s->hlen = hlen;
	s->pay_off = pkt->payload_off;
	if (pkt->cid.proto == IPPROTO_TCP) {
		if (hlen < 20)
			return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
		s->pay_len = pkt->payload_len;
		s->l4_len = hlen + pkt->payload_len;
		s->csum = s->hdr[4] & 0xffff;                /* bytes 16..17 */
	} else {
		__u32 ulen = bpf_ntohs(s->hdr[1] & 0xffff);  /* bytes 4..5 */

		if (ulen < 8 || ulen - 8 > pkt->payload_len)
			return GSCIP_CODE(GSCIP_DROP_MALFORMED_L4);
		s->pay_len = ulen - 8;
		s->l4_len = ulen;
		s->csum = s->hdr[1] >> 16;                   /* bytes 6..7 */
	}
	return 0;
}

/* The TCP timestamp option in the layout Linux always uses (NOP, NOP, TS first). */
static __always_inline int pccom_has_ts(const struct pccom_scratch *s)
{
	return s->hlen >= 32 && s->hdr[5] == bpf_htonl(PCCOM_TCPOPT_NOP_NOP_TS);
}

/* Sums of the pseudo-header and of the L4 header with the checksum field as zero. */
static __always_inline int pccom_hdr_sum(const struct gscip_pkt *pkt, const struct pccom_scratch *s,
					 __u32 *pseudo_out, __u32 *hdr0_out)
{
	struct {
		__be32 saddr;
		__be32 daddr;
		__u8   zero;
		__u8   proto;
		__be16 len;
	} ph = {
		.saddr = pkt->cid.saddr, .daddr = pkt->cid.daddr,
		.zero = 0, .proto = pkt->cid.proto, .len = bpf_htons(s->l4_len),
	};
	__s64 sum;

	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (sum < 0)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*pseudo_out = pccom_fold(sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)s->hdr, s->hlen & 0x3c, 0);
	if (sum < 0)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*hdr0_out = pccom_add16(pccom_fold(sum), pccom_neg16(s->csum));
	return 0;
}

/* UDP sender: a fresh IP ID from the per-CPU counter (Linux sends ID 0 on DF
 * datagrams of unconnected sockets, which would repeat the nonce). */
static __always_inline int pccom_udp_new_ipid(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					      struct pccom_scratch *s)
{
	__be16 old_id, new_id;

	if (s->ipid_ctr == 0)
		s->ipid_ctr = bpf_get_prandom_u32() | 1;
	new_id = bpf_htons(s->ipid_ctr & 0xffff);
	s->ipid_ctr += 1;
	if (bpf_skb_load_bytes(skb, pkt->l3_off + offsetof(struct iphdr, id), &old_id, sizeof(old_id)))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, id), &new_id, sizeof(new_id), 0))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (bpf_l3_csum_replace(skb, pkt->l3_off + offsetof(struct iphdr, check), old_id, new_id,
				sizeof(new_id)))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	return 0;
}

/* Set the keystream nonce/position in the scratch (nothing here depends on the key). */
static __always_inline int pccom_nonce(struct __sk_buff *skb, const struct gscip_pkt *pkt,
				       struct pccom_scratch *s)
{
	if (pkt->cid.proto == IPPROTO_TCP) {
		__u32 seq = bpf_ntohl(s->hdr[1]);

		s->in.nonce[0] = PCCOM_DOM_TCP_DATA;
		s->in.nonce[1] = s->hdr[2];                       /* ack, wire bytes */
		s->in.nonce[2] = pccom_has_ts(s) ? s->hdr[6] : 0; /* TSval, wire bytes */
		s->first_block = seq / CHACHA20_BLOCK_BYTES;
		s->ks_off = seq % CHACHA20_BLOCK_BYTES;
	} else {
		__be16 id;

		if (bpf_skb_load_bytes(skb, pkt->l3_off + offsetof(struct iphdr, id), &id, sizeof(id)))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
		s->in.nonce[0] = PCCOM_DOM_UDP_DATA;
		s->in.nonce[1] = (__u32)id | (s->l4_len << 16);
		s->in.nonce[2] = 0;
		s->first_block = 0;
		s->ks_off = 0;
	}
	return 0;
}

/* K (16 bits) for the loaded key. TCP: ChaCha(key, counter TSecr, nonce
 * (TCP_CSUM, ack, TSval)) - fields shared by every segment GSO/TSO cuts from
 * one skb and left alone by NAT. UDP: (UDP_CSUM, IP ID | length << 16). */
static __always_inline __u32 pccom_k(const struct gscip_pkt *pkt, struct pccom_scratch *s)
{
	__u32 kctr = 0;

	__builtin_memcpy(s->kin.key, s->in.key, sizeof(s->kin.key));
	s->kin.nonce[1] = s->in.nonce[1];
	s->kin.nonce[2] = 0;
	if (pkt->cid.proto == IPPROTO_TCP) {
		s->kin.nonce[0] = PCCOM_DOM_TCP_CSUM;
		s->kin.nonce[2] = s->in.nonce[2];
		kctr = pccom_has_ts(s) ? s->hdr[7] : 0;        /* TSecr, wire bytes */
	} else {
		s->kin.nonce[0] = PCCOM_DOM_UDP_CSUM;
	}
	chacha20_block(&s->kin, kctr, &s->ks, s->dr);  /* s->ks is free until the payload pass */
	return s->ks.w[0] & 0xffff;
}

/* Copy the key (group, version) into the scratch with its round count. */
static __always_inline int pccom_load_key(struct pccom_scratch *s, __u32 group, __u32 version)
{
	struct gscip_key_id kid = { .group_id = group, .version = version };
	struct gscip_key_val *kv = bpf_map_lookup_elem(&gscip_keys, &kid);
	__u32 rounds;

	if (!kv)
		return GSCIP_CODE(GSCIP_DROP_NO_KEY);
	rounds = kv->flags & (GSCIP_KEY_F_ROUNDS_12 | GSCIP_KEY_F_ROUNDS_8);
	if (rounds == GSCIP_KEY_F_ROUNDS_12)
		s->dr = CHACHA20_DR_12;
	else if (rounds == GSCIP_KEY_F_ROUNDS_8)
		s->dr = CHACHA20_DR_8;
	else if (rounds == 0)
		s->dr = CHACHA20_DR_20;
	else
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);  /* both bits: a control-plane bug */
	__builtin_memcpy(s->in.key, kv->key, sizeof(s->in.key));
	return 0;
}

/* UDP nonce word 2 = the 16-bit one's-complement sum of the plaintext payload
 * (canonical: 0xffff -> 0). It widens the 16-bit IP ID: a keystream repeats
 * only for equal (IP ID, length, plaintext sum). The sender sums the plaintext;
 * the receiver recovers the sum from the keyed checksum, where K hides it,
 * before decrypting, and the final checksum comparison confirms it. */
static __always_inline void pccom_udp_set_nonce(struct pccom_scratch *s, __u32 pt)
{
	s->in.nonce[2] = pt == 0xffff ? 0 : pt;
}

/* The payload's sum now (pccom_payload_sum), or a drop code. */
static __always_inline int pccom_sum_now(struct pccom_pass *c, __u32 *sum)
{
	int rc = pccom_payload_sum(c->skb, c->s);

	if (rc < 0)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*sum = rc;
	return 0;
}

/* Make the payload linear (a no-op for the common case; a GSO skb's frags
 * are pulled into its head) and bound its offsets. */
static __always_inline int pccom_linearize(struct __sk_buff *skb, const struct pccom_scratch *s)
{
	__u32 need = s->pay_off + s->pay_len;

	if (need > PCCOM_MAX_PKT_END)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	if ((long)skb->data + need > (long)skb->data_end && bpf_skb_pull_data(skb, need))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	return 0;
}

static __always_inline int pccom_write_csum(struct __sk_buff *skb, const struct gscip_pkt *pkt,
					    __u32 csum)
{
	__u16 v = csum;
	__u32 off = pkt->l4_off + (pkt->cid.proto == IPPROTO_TCP ? 16 : 6);

	if (bpf_skb_store_bytes(skb, off, &v, sizeof(v), 0))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	return 0;
}

/* Checksum terms of one packet, shared by the TCP and UDP paths. */
struct pccom_sums {
	__u32 pseudo;   /* pseudo-header sum */
	__u32 hdr0;     /* L4 header sum with the checksum field as zero */
	__u32 summed;   /* skb->ip_summed */
};

/* TCP sender: encrypt, then key the checksum. CHECKSUM_PARTIAL (incl. GSO):
 * the seed gains K, and the final per-segment sums over the ciphertext come
 * later. Otherwise the full keyed checksum over the ciphertext. */
static __always_inline int pccom_tcp_encrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), ct;

	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = pccom_add16(s->csum, k);
		return 0;
	}
	if (pccom_sum_now(c, &ct))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*csum = pccom_neg16(pccom_add16(pccom_add16(pccom_add16(t->pseudo, t->hdr0), ct), k));
	return 0;
}

/* Does the TCP checksum field match K of the loaded key? ct = ciphertext sum
 * (unused for CHECKSUM_PARTIAL: a skb that never crossed a wire carries only
 * the seed, which authenticates the pseudo-header and K's fields). */
static __always_inline int pccom_tcp_keyed_ok(const struct gscip_pkt *pkt, struct pccom_scratch *s,
					      const struct pccom_sums *t, __u32 ct)
{
	__u32 k = pccom_k(pkt, s);

	if (t->summed == PCCOM_CHECKSUM_PARTIAL)
		return pccom_csum_eq(s->csum, pccom_add16(t->pseudo, k));
	return pccom_csum_eq(s->csum, pccom_neg16(pccom_add16(pccom_add16(pccom_add16(t->pseudo, t->hdr0),
									  ct), k)));
}

/* TCP receiver: verify BEFORE decrypting (under key_version, then under
 * prev_key_version), decrypt, restore the ordinary checksum. Returns 0, 1
 * (decrypted under prev_key_version) or a drop code. */
static __always_inline int pccom_tcp_decrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct gscip_pit_val *pit,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 ct = 0, pt;
	int prev = 0, rc;

	if (t->summed != PCCOM_CHECKSUM_PARTIAL && pccom_sum_now(c, &ct))  /* ciphertext sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (!pccom_tcp_keyed_ok(pkt, s, t, ct)) {
		if (!pit->prev_key_version || pit->prev_key_version == pit->key_version)
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		rc = pccom_load_key(s, pit->group_id, pit->prev_key_version);
		if (rc)
			return rc == GSCIP_CODE(GSCIP_DROP_NO_KEY) ? GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) : rc;
		if (!pccom_tcp_keyed_ok(pkt, s, t, ct))
			return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
		prev = 1;
	}
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		*csum = t->pseudo;  /* back to the plain seed the stack (or GSO) expects */
		return prev;
	}
	if (pccom_sum_now(c, &pt))  /* plaintext sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	*csum = pccom_neg16(pccom_add16(pccom_add16(t->pseudo, t->hdr0), pt));
	if (t->summed == PCCOM_CHECKSUM_COMPLETE)
		bpf_csum_update(c->skb, pccom_add16(pccom_add16(pt, pccom_neg16(ct)),
						    pccom_add16(*csum, pccom_neg16(s->csum))));
	return prev;
}

/* UDP sender: checksum over the plaintext + K; the plaintext sum widens the nonce. */
static __always_inline int pccom_udp_encrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct pccom_sums *t, __u32 *csum)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), pt, ct;

	if (pccom_sum_now(c, &pt))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	pccom_udp_set_nonce(s, pt);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		/* Field = seed; the final sum is taken later over the ciphertext. */
		if (pccom_sum_now(c, &ct))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
		*csum = pccom_add16(s->csum, pccom_add16(pccom_add16(pt, pccom_neg16(ct)), k));
	} else {
		*csum = pccom_neg16(pccom_add16(pccom_add16(pccom_add16(t->pseudo, t->hdr0), pt), k));
		if (*csum == 0)
			*csum = 0xffff;
	}
	return 0;
}

/* UDP receiver, one key, ct = the ciphertext's sum: recover the plaintext sum
 * from the field (it is the nonce), decrypt, check. On a mismatch with restore
 * set, XOR again so the ciphertext is back for another key. */
static __always_inline int pccom_udp_decrypt_one(struct pccom_pass *c, const struct gscip_pkt *pkt,
						 const struct pccom_sums *t, __u32 *csum, const int restore,
						 __u32 ct)
{
	struct pccom_scratch *s = c->s;
	__u32 k = pccom_k(pkt, s), pt, expect, sum;

	if (t->summed == PCCOM_CHECKSUM_PARTIAL)  /* F = pseudo + pt - ct + K */
		pt = pccom_add16(pccom_add16(s->csum, pccom_neg16(t->pseudo)), pccom_add16(ct, pccom_neg16(k)));
	else                                       /* F = ~(pseudo + hdr0 + pt + K) */
		pt = pccom_add16(pccom_neg16(s->csum), pccom_neg16(pccom_add16(pccom_add16(t->pseudo, t->hdr0), k)));
	pccom_udp_set_nonce(s, pt);
	if (pccom_xor_payload(c))
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (pccom_sum_now(c, &pt))  /* the plaintext as decrypted: confirms the recovered sum */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	if (t->summed == PCCOM_CHECKSUM_PARTIAL) {
		expect = pccom_add16(t->pseudo, pccom_add16(pccom_add16(pt, pccom_neg16(ct)), k));
		*csum = t->pseudo;
	} else {
		sum = pccom_add16(pccom_add16(t->pseudo, t->hdr0), pt);
		expect = pccom_neg16(pccom_add16(sum, k));
		*csum = pccom_neg16(sum);
		if (*csum == 0)
			*csum = 0xffff;
	}
	if (!pccom_csum_eq(s->csum, expect)) {
		if (restore && pccom_xor_payload(c))
			return GSCIP_CODE(GSCIP_DROP_CRYPTO);
		return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);
	}
	if (t->summed == PCCOM_CHECKSUM_COMPLETE)
		bpf_csum_update(c->skb, pccom_add16(pccom_add16(pt, pccom_neg16(ct)),
						    pccom_add16(*csum, pccom_neg16(s->csum))));
	return 0;
}

/* UDP receiver: key_version, then prev_key_version. 0, 1 (prev) or a drop code. */
static __always_inline int pccom_udp_decrypt(struct pccom_pass *c, const struct gscip_pkt *pkt,
					     const struct gscip_pit_val *pit,
					     const struct pccom_sums *t, __u32 *csum)
{
	int has_prev = pit->prev_key_version && pit->prev_key_version != pit->key_version;
	__u32 ct;
	int rc;

	if (pccom_sum_now(c, &ct))  /* the ciphertext's sum, the same for both keys */
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	rc = pccom_udp_decrypt_one(c, pkt, t, csum, has_prev, ct);
	if (rc != GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) || !has_prev)
		return rc;
	rc = pccom_load_key(c->s, pit->group_id, pit->prev_key_version);
	if (rc)
		return rc == GSCIP_CODE(GSCIP_DROP_NO_KEY) ? GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM) : rc;
	rc = pccom_udp_decrypt_one(c, pkt, t, csum, 0, ct);
	return rc ? rc : 1;
}

/* The shared body of both hooks; encrypt is a compile-time constant at each call.
 * Returns 0, 1 (decrypted under prev_key_version) or a drop code. */
static __always_inline int pccom_apply_with(struct __sk_buff *skb, struct gscip_pkt *pkt,
					    const struct gscip_pit_val *pit, const int encrypt,
					    struct pccom_scratch *s)
{
	struct pccom_pass c = { .skb = skb, .s = s };
	struct pccom_sums t;
	__u32 csum = 0;
	int rc, res;

	if (pkt->is_fragment)
		return GSCIP_CODE(GSCIP_DROP_FRAGMENT);
	if (pkt->cid.proto != IPPROTO_TCP && pkt->cid.proto != IPPROTO_UDP)
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	t.summed = pccom_ip_summed(skb);
	/* A GSO skb is fine for TCP with the seed in the checksum field (the keyed
	 * checksum is per segment by construction); UDP GSO is refused. */
	if (skb->gso_size && (pkt->cid.proto != IPPROTO_TCP || t.summed != PCCOM_CHECKSUM_PARTIAL))
		return GSCIP_CODE(GSCIP_DROP_UNSUPPORTED);
	rc = pccom_load_key(s, pit->group_id, pit->key_version);
	if (rc)
		return rc;
	rc = pccom_load_hdr(skb, pkt, s);
	if (rc)
		return rc;
	if (!encrypt && pkt->cid.proto == IPPROTO_UDP && s->csum == 0)
		return GSCIP_CODE(GSCIP_DROP_BAD_KEYED_CSUM);  /* PCCOM never sends "no checksum" */
	rc = pccom_linearize(skb, s);
	if (rc)
		return rc;
	if (encrypt && pkt->cid.proto == IPPROTO_UDP) {
		rc = pccom_udp_new_ipid(skb, pkt, s);
		if (rc)
			return rc;
	}
	rc = pccom_nonce(skb, pkt, s);
	if (rc)
		return rc;
	rc = pccom_hdr_sum(pkt, s, &t.pseudo, &t.hdr0);
	if (rc)
		return rc;
	if (pkt->cid.proto == IPPROTO_TCP)
		res = encrypt ? pccom_tcp_encrypt(&c, pkt, &t, &csum) : pccom_tcp_decrypt(&c, pkt, pit, &t, &csum);
	else
		res = encrypt ? pccom_udp_encrypt(&c, pkt, &t, &csum) : pccom_udp_decrypt(&c, pkt, pit, &t, &csum);
	if (res < 0)
		return res;
	rc = pccom_write_csum(skb, pkt, csum);
	return rc ? rc : res;
}

/* Runs the body, then wipes the key copy and the last keystream block from the
 * scratch so no key material outlives the packet there. */
static __always_inline int pccom_apply(struct __sk_buff *skb, struct gscip_pkt *pkt,
				       const struct gscip_pit_val *pit, const int encrypt)
{
	struct pccom_scratch *s = pccom_scratch();
	int rc;

	if (!s)
		return GSCIP_CODE(GSCIP_DROP_CRYPTO);
	rc = pccom_apply_with(skb, pkt, pit, encrypt, s);
	__builtin_memset(s->in.key, 0, sizeof(s->in.key));
	__builtin_memset(s->kin.key, 0, sizeof(s->kin.key));
	__builtin_memset(&s->ks, 0, sizeof(s->ks));
	if (s->tail_used) {  /* payload bytes summed last; TCP GSO skbs never sum, so never pay this */
		__builtin_memset(s->tailbuf, 0, sizeof(s->tailbuf));
		s->tail_used = 0;
	}
	return rc;
}

/* Encrypt pkt's TCP/UDP payload with the key named by pit and write the keyed
 * checksum. 0 or a drop code. */
static __always_inline int pccom_egress(struct __sk_buff *skb, struct gscip_pkt *pkt,
					const struct gscip_pit_val *pit)
{
	int rc = pccom_apply(skb, pkt, pit, 1);

	return rc > 0 ? 0 : rc;
}

/* Verify the keyed checksum, decrypt, and leave a packet with an ordinary valid
 * checksum. 0, 1 (it was keyed under pit->prev_key_version) or a drop code. */
static __always_inline int pccom_ingress(struct __sk_buff *skb, struct gscip_pkt *pkt,
					 const struct gscip_pit_val *pit)
{
	return pccom_apply(skb, pkt, pit, 0);
}

#endif /* GSCIP_PCCOM_H */
