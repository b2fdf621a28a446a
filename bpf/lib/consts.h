/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* consts.h - kernel UAPI macros that vmlinux.h (types only) does not carry. */
#ifndef GSCIP_CONSTS_H
#define GSCIP_CONSTS_H

/* linux/pkt_cls.h */
#define TC_ACT_OK        0
#define TC_ACT_SHOT      2
#define TC_ACT_STOLEN    4
#define TC_ACT_REDIRECT  7
/* gscip_abi.h spells them as enum gscip_tc_verdict for the reason table */
_Static_assert(TC_ACT_OK == 0 && TC_ACT_SHOT == 2 && TC_ACT_STOLEN == 4 && TC_ACT_REDIRECT == 7, "TC_ACT_*");

/* linux/if_ether.h (host order) */
#define ETH_HLEN         14
#define ETH_ALEN 6
#define ETH_P_IP         0x0800
#define ETH_P_IPV6       0x86DD

/* IPv4 frag_off bits (host order) */
#define IP_MF            0x2000
#define IP_OFFMASK       0x1fff

#define NSEC_PER_SEC     1000000000ULL

/* single, untorn access to a field other CPUs may write concurrently */
#ifndef READ_ONCE
#define READ_ONCE(x)     (*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

#endif /* GSCIP_CONSTS_H */
