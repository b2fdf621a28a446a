/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_keystream.h - the group key and the ChaCha XOR pass over the L4 payload.
 *
 * Needs: chacha20.h (the cipher core: one block per call), maps.h
 *   (gscip_keys), pccom_scratch.h (struct pccom_scratch / pccom_pass).
 * Provides:
 *  - pccom_load_key(s, group, version): the key into s->in.key, its round
 *    count into s->dr. 0, GSCIP_CODE(GSCIP_DROP_NO_KEY), or ..._UNSUPPORTED
 *    for a key whose flags set both round bits.
 *  - pccom_xor_payload(c) / the global pccom_xor_pass(skb, s): XOR s->pay_len
 *    payload bytes at s->pay_off, in place, with the keystream named by s->in
 *    (key, nonce), s->dr, s->first_block and s->ks_off: payload position P
 *    uses keystream byte (ks_off + P) of the stream starting at block
 *    first_block. 0 or -1. The same call encrypts and decrypts.
 * Does not choose the nonce or the stream position (pccom_nonce.h does) and
 * touches no checksum. The caller has made the payload linear and bounded
 * pay_off + pay_len by PCCOM_MAX_PKT_END (pccom_l4.h: pccom_linearize).
 *
 * Verifier constraints, and how the pass meets them:
 *  - Split in three so each piece is checked once:
 *      head: bytes before the first block boundary  (bpf_loop, 8 bytes per call, then 1)
 *      full: whole 64-byte blocks                    (bpf_loop, one block per call)
 *      tail: the bytes after the last whole block    (bpf_loop, 8 bytes per call, then 1)
 *    No loop nests another (nested bpf_loop callbacks do not converge).
 *  - pccom_xor_pass is a GLOBAL (__noinline, non-static) function: the
 *    verifier walks its block loop, with ChaCha inlined, once per program,
 *    not once per call site in every PCCOM path (TCP/UDP x encrypt/decrypt x
 *    the prev-key retry). A global function's pointer arguments may be NULL as
 *    far as the verifier knows, hence its NULL checks.
 *  - Every packet access re-derives the pointer from skb->data with the
 *    offset bounded by PCCOM_MAX_PKT_END and checked against data_end
 *    (pccom_payload_at); keystream indexes are masked right next to the read
 *    (the empty asm keeps clang from moving the mask away). */
#ifndef GSCIP_PCCOM_KEYSTREAM_H
#define GSCIP_PCCOM_KEYSTREAM_H

#include "codes.h"
#include <bpf/bpf_helpers.h>
#include "pkt.h"
#include "maps.h"
#include "chacha20.h"
#include "pccom_scratch.h"

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

#endif /* GSCIP_PCCOM_KEYSTREAM_H */
