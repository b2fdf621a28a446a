/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pkt.h - the parsed view of a packet that every fast-path stage shares.
 * Filled by parse.h; read by xlat.h, pit.h, punt.h, pccom*.h. Offsets are from
 * skb->data; after any helper that may move data (store_bytes, csum_replace,
 * pull_data, change_tail) re-derive pointers from these offsets. */
#ifndef GSCIP_PKT_H
#define GSCIP_PKT_H

#include "gscip_abi.h"

/* struct gscip_pkt.tcp_flags bits (byte 13 of the TCP header) */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_ACK 0x10
#define PKT_TCP_URG 0x20

struct gscip_pkt {
	__u32 l3_off;       /* IPv4 header */
	__u32 l4_off;       /* TCP/UDP header */
	__u32 payload_off;  /* first L4 payload byte */
	__u32 payload_len;  /* L4 payload bytes: TCP per the IPv4 total length, UDP per its length field */
	__u32 skb_len;      /* skb->len (>= payload_off + payload_len) */
	__u8  l4_hlen;      /* TCP doff*4 or 8 for UDP */
	__u8  dir;          /* enum gscip_dir */
	__u8  is_fragment;  /* IPv4 MF set or offset != 0 */
	__u8  tcp_flags;    /* TCP flags byte (PKT_TCP_*); 0 for UDP */
	struct gscip_cid cid;  /* current view (updated by XLAT when it rewrites) */
};

#endif /* GSCIP_PKT_H */
