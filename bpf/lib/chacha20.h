/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* chacha20.h - the ChaCha20 block function of RFC 8439 (section 2.3), for eBPF.
 *
 * One call = one 64-byte keystream block for (key, 32-bit block counter,
 * 96-bit nonce). The rounds are fully unrolled straight-line ALU32 code: no
 * loop for the verifier to walk, about 1k instructions per block. Callers
 * that need many blocks drive this from bpf_loop() (see pccom.h), one block
 * per iteration, so the verifier checks the body once.
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

/* out = ChaCha20 block(key, counter, nonce); key/nonce as little-endian words.
 * A real BPF-to-BPF call (not inlined): every caller shares one copy, and its
 * register spills live in its own stack frame, not the caller's 512 bytes. */
static __noinline void chacha20_block(const __u32 key[CHACHA20_KEY_WORDS], __u32 counter,
					   const __u32 nonce[CHACHA20_NONCE_WORDS],
					   __u32 out[CHACHA20_BLOCK_WORDS])
{
	/* "expand 32-byte k" */
	__u32 x0 = 0x61707865, x1 = 0x3320646e, x2 = 0x79622d32, x3 = 0x6b206574;
	__u32 x4 = key[0], x5 = key[1], x6 = key[2], x7 = key[3];
	__u32 x8 = key[4], x9 = key[5], x10 = key[6], x11 = key[7];
	__u32 x12 = counter, x13 = nonce[0], x14 = nonce[1], x15 = nonce[2];

	CHACHA20_DOUBLE_ROUND(); CHACHA20_DOUBLE_ROUND();
	CHACHA20_DOUBLE_ROUND(); CHACHA20_DOUBLE_ROUND();
	CHACHA20_DOUBLE_ROUND(); CHACHA20_DOUBLE_ROUND();
	CHACHA20_DOUBLE_ROUND(); CHACHA20_DOUBLE_ROUND();
	CHACHA20_DOUBLE_ROUND(); CHACHA20_DOUBLE_ROUND();

	out[0] = x0 + 0x61707865;  out[1] = x1 + 0x3320646e;
	out[2] = x2 + 0x79622d32;  out[3] = x3 + 0x6b206574;
	out[4] = x4 + key[0];      out[5] = x5 + key[1];
	out[6] = x6 + key[2];      out[7] = x7 + key[3];
	out[8] = x8 + key[4];      out[9] = x9 + key[5];
	out[10] = x10 + key[6];    out[11] = x11 + key[7];
	out[12] = x12 + counter;   out[13] = x13 + nonce[0];
	out[14] = x14 + nonce[1];  out[15] = x15 + nonce[2];
}

#endif /* GSCIP_CHACHA20_H */
