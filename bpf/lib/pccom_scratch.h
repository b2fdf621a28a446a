/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pccom_scratch.h - the working state of one PCCOM packet and its size limits.
 *
 * Needs: chacha20.h (struct chacha20_in/out, CHACHA20_BLOCK_BYTES).
 * Provides: the PCCOM_MAX_* / PCCOM_SUM_CHUNK limits, struct pccom_scratch
 *   (the value type of gscip_pccom_scratch, declared in maps.h) and struct
 *   pccom_pass (the context every PCCOM stage and bpf_loop callback takes).
 * No code, no maps: maps.h includes this for the scratch map's value type.
 *
 * Why a per-CPU scratch at all: the BPF stack is 512 bytes and bpf_loop
 * callbacks and chacha20_block() each need their own frame, so the key, the
 * keystream block, the L4 header copy and the sum tail buffer live here.
 * TC programs do not nest on a CPU (egress runs with BH off, ingress in
 * softirq), so one cell per CPU is enough. pccom.h wipes the key material and
 * the summed plaintext from it after every packet.
 *
 * Verifier limits these constants encode:
 *  - a packet pointer's offset must stay below 0xffff: every payload access
 *    is bounded by PCCOM_MAX_PKT_END (0xff00) plus at most 512 bytes of
 *    bpf_csum_diff or 64 of a block (no BIG TCP);
 *  - bpf_csum_diff() sums at most 512 bytes per call (PCCOM_SUM_CHUNK);
 *  - the L4 header copy is bounded (PCCOM_MAX_L4_HLEN) so its load is sized. */
#ifndef GSCIP_PCCOM_SCRATCH_H
#define GSCIP_PCCOM_SCRATCH_H

#include "chacha20.h"

/* Largest L4 payload end we handle (no BIG TCP): offsets must fit 16 bits. */
#define PCCOM_MAX_PKT_END   0xff00  /* verifier: pkt offset + 64 must stay <= 0xffff */
#define PCCOM_MAX_BLOCKS    ((PCCOM_MAX_PKT_END / CHACHA20_BLOCK_BYTES) + 2)
#define PCCOM_MAX_L4_HLEN   60
#define PCCOM_SUM_CHUNK     512     /* bpf_csum_diff sums at most 512 bytes per call */

/* Payload position P uses keystream byte (ks_off + P) of the stream that starts
 * at block first_block (pccom_keystream.h). */
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
	__u16 urg_out;      /* TCP wire-valid form: the urgent pointer being written (store source) */
	__u16 wire_form;    /* TCP: this packet is in the wire-valid form (kept here, not on the stack) */
	__u16 urg_in;       /* TCP receiver: the urgent pointer as received (word view) */
	__u32 ct_sum;       /* TCP receiver: the ciphertext's sum, kept across the key checks (stack limit) */
	__u32 prev_used;    /* TCP receiver: verified under prev_key_version */
	__u32 want_sum;     /* TCP receiver: the field's expected sum before K (kept across K's block) */
	__u32 summed;       /* skb->ip_summed of this packet (kept across K's block) */
	/* per-flow keys (pccom_flow_key.h) */
	__u32 fk_mode;      /* the entry's key is a per-flow key (GSCIP_PIT_F_FLOW_KEY) */
	__u32 ctr_hi;       /* UDP: counter bits 32..47 (nonce word 2, high half); 0 for group keys */
	__u64 ctr;          /* UDP: this datagram's counter (sender: taken; receiver: reconstructed) */
	__u64 t_cur;        /* UDP receiver: highest counter accepted under cur / prev */
	__u64 t_prev;
	__u32 has_prev;     /* receiver: the flow key has a previous key to try */
	/* receiver: which keys cur / prev were when loaded (salt, version << 8 | leg):
	 * the state written after the packet goes to the half that still holds
	 * that key, never to a key the control plane swapped in meanwhile */
	__u64 fk_salt;
	__u64 fk_psalt;
	__u32 fk_ver;
	__u32 fk_pver;
	__u32 signal;       /* raise the re-key signal after this packet */
	__u32 ipid;         /* UDP: the IP ID as received/sent, host order */
	/* kept across packets */
	__u32 ipid_ctr;     /* UDP sender: next IP ID (seeded at random when 0) */
	/* payload sums: the bytes after the last whole 512-byte chunk, zero-padded */
	__u8 tailbuf[PCCOM_SUM_CHUNK];
	__u32 tail_used;    /* tailbuf holds payload bytes: wipe it after the packet */
};

/* bpf_loop context: lives on the stack (bpf_loop requires it), points at the scratch. */
struct pccom_pass {
	struct __sk_buff *skb;
	struct pccom_scratch *s;
	int err;
};

#endif /* GSCIP_PCCOM_SCRATCH_H */
