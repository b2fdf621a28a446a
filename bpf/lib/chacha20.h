/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* chacha20.h - the ChaCha20 block function of RFC 8439 (section 2.3), for eBPF.
 *
 * One call = one 64-byte keystream block for (key, 32-bit block counter,
 * 96-bit nonce, rounds). Rounds are 20 (RFC 8439), 12 or 8 (ChaCha12/ChaCha8,
 * same construction with fewer double rounds), chosen per group key. Callers
 * that need many blocks drive this from bpf_loop() (see pccom_keystream.h), one block
 * per iteration.
 *
 * Words are little-endian as the RFC serialises them: keystream byte i is
 * byte (i % 4) of out[i / 4] on a little-endian target (bpfel: x86, arm64).
 * Proved against RFC 8439 2.3.2 and 2.4.2 by test/bpf/chacha20.test.ts. */
#ifndef GSCIP_CHACHA20_H
#define GSCIP_CHACHA20_H

#define CHACHA20_KEY_WORDS   8
#define CHACHA20_NONCE_WORDS 3
#define CHACHA20_BLOCK_WORDS 16
#define CHACHA20_BLOCK_BYTES 64

/* Double rounds: 10 = ChaCha20 (RFC 8439), 6 = ChaCha12, 4 = ChaCha8. */
#define CHACHA20_DR_20 10
#define CHACHA20_DR_12 6
#define CHACHA20_DR_8  4

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "chacha20.h serialises keystream words little-endian: build for bpfel"
#endif

#define CHACHA20_ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))

#define CHACHA20_QR(a, b, c, d)                                         \
	do {                                                            \
		a += b; d ^= a; d = CHACHA20_ROTL32(d, 16);            \
		c += d; b ^= c; b = CHACHA20_ROTL32(b, 12);            \
		a += b; d ^= a; d = CHACHA20_ROTL32(d, 8);             \
		c += d; b ^= c; b = CHACHA20_ROTL32(b, 7);             \
	} while (0)

#define CHACHA20_DOUBLE_ROUND()                                         \
	do {                                                            \
		CHACHA20_QR(x0, x4, x8, x12);                           \
		CHACHA20_QR(x1, x5, x9, x13);                           \
		CHACHA20_QR(x2, x6, x10, x14);                          \
		CHACHA20_QR(x3, x7, x11, x15);                          \
		CHACHA20_QR(x0, x5, x10, x15);                          \
		CHACHA20_QR(x1, x6, x11, x12);                          \
		CHACHA20_QR(x2, x7, x8, x13);                           \
		CHACHA20_QR(x3, x4, x9, x14);                           \
	} while (0)

/* Key and nonce of one keystream, as little-endian words. */
struct chacha20_in {
	__u32 key[CHACHA20_KEY_WORDS];
	__u32 nonce[CHACHA20_NONCE_WORDS];
};

struct chacha20_out {
	__u32 w[CHACHA20_BLOCK_WORDS];
};

/* out = ChaCha block(in->key, counter, in->nonce) with double_rounds
 * (CHACHA20_DR_*: below 6 runs 4, 6..9 runs 6, 10 and above runs 10).
 * The double rounds are a loop, not unrolled: ~300 instructions stay hot in
 * the CPU's op cache, which the 3,000 of a fully unrolled ChaCha20 overflow
 * (ChaCha20 ~20 % faster per block, ChaCha8 unchanged; bench/pccom.ts).
 * Inlined into the payload loop, so the caller can XOR the words straight
 * from registers; chacha20_block() below is the out-of-line form. */
static __always_inline void chacha20_block_inline(const struct chacha20_in *in, __u32 counter,
						  struct chacha20_out *out, __u32 double_rounds)
{
	__u32 x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15;
	__u32 i, n = double_rounds >= CHACHA20_DR_20 ? CHACHA20_DR_20 :
		     double_rounds >= CHACHA20_DR_12 ? CHACHA20_DR_12 : CHACHA20_DR_8;

	/* "expand 32-byte k" */
	x0 = 0x61707865; x1 = 0x3320646e; x2 = 0x79622d32; x3 = 0x6b206574;
	x4 = in->key[0]; x5 = in->key[1]; x6 = in->key[2]; x7 = in->key[3];
	x8 = in->key[4]; x9 = in->key[5]; x10 = in->key[6]; x11 = in->key[7];
	x12 = counter; x13 = in->nonce[0]; x14 = in->nonce[1]; x15 = in->nonce[2];

#pragma nounroll
	for (i = 0; i < n; i++)
		CHACHA20_DOUBLE_ROUND();

	out->w[0] = x0 + 0x61707865;    out->w[1] = x1 + 0x3320646e;
	out->w[2] = x2 + 0x79622d32;    out->w[3] = x3 + 0x6b206574;
	out->w[4] = x4 + in->key[0];    out->w[5] = x5 + in->key[1];
	out->w[6] = x6 + in->key[2];    out->w[7] = x7 + in->key[3];
	out->w[8] = x8 + in->key[4];    out->w[9] = x9 + in->key[5];
	out->w[10] = x10 + in->key[6];  out->w[11] = x11 + in->key[7];
	out->w[12] = x12 + counter;     out->w[13] = x13 + in->nonce[0];
	out->w[14] = x14 + in->nonce[1]; out->w[15] = x15 + in->nonce[2];
}

/* The out-of-line block function: a GLOBAL function, so the verifier checks
 * it once, not at every call site of every caller. Returns 0, or -1 for a
 * NULL argument (which the verifier makes us handle). */
__noinline int chacha20_block(const struct chacha20_in *in, __u32 counter,
			      struct chacha20_out *out, __u32 double_rounds)
{
	if (!in || !out)
		return -1;
	chacha20_block_inline(in, counter, out, double_rounds);
	return 0;
}

#endif /* GSCIP_CHACHA20_H */
