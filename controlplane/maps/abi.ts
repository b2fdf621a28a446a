/**
 * Constants and enums of bpf/include/gscip_abi.h, mirrored for the control
 * plane. test/unit/codecs.test.ts parses the header and fails if any value
 * here differs from it or if the header gains a stat this file lacks;
 * test/bpf/btf-layout.test.ts compares the enums with the object's BTF.
 */

export const PIT_MAX_ENTRIES = 1 << 20;
export const XLAT_MAX_ENTRIES = 1 << 18;
export const KEYS_MAX_ENTRIES = 4096;
export const IFACE_MAX_ENTRIES = 64;
export const PUNT_RINGBUF_BYTES = 4 << 20;
export const PUNT_MAX_BYTES = 2048;
export const KEY_BYTES = 32;
export const NAT_MAX_ENTRIES = 65536;
export const NAT_PORT_MAX_ENTRIES = 65536;
export const FTP_SEQ_MAX_ENTRIES = 4096;
/** Inside prefixes in gscip_nat_cfg; candidate ports a new NAT session tries. */
export const NAT_MAX_INSIDE = 4;
export const NAT_PORT_TRIES = 32;
/** gscip_nat_val.flags, set by the fast path: what it has seen of a session (TCP state for the timeouts). */
export const NAT_F_SYN_OUT = 0x01;
export const NAT_F_IN = 0x02;
export const NAT_F_FIN_OUT = 0x04;
export const NAT_F_FIN_IN = 0x08;
export const NAT_F_RST = 0x10;
/** enum gscip_nat_origin: who made a NAT session. */
export const NatOrigin = { OUTBOUND: 0, INBOUND: 1, GSRA: 2 } as const;
export type NatOrigin = (typeof NatOrigin)[keyof typeof NatOrigin];

export const ICMP_TYPE = 253;
/** UDP port the same control messages travel to (gscip_abi.h GSCIP_CONTROL_UDP_PORT): the payload is the ICMP message. */
export const CONTROL_UDP_PORT = 7253;
export const CONTROL_UDP_HLEN = 8;
/** DPRP ICMP codes the fast path reads or writes (gscip_abi.h GSCIP_DPRP_CODE_*): a DDE, and the HOLD it answers a relayed DDE with. */
export const DPRP_CODE_DDE = 1;
export const DPRP_CODE_HOLD = 5;
/** Bytes of ICMP in a HOLD (ICMP header + DPRP header). */
export const DPRP_HOLD_BYTES = 20;
/** ICMP byte holding a DDE's candidate depth. */
export const DPRP_CAND_DEPTH_OFF = 4;
export const MARK_RELEASE_EGRESS = 0x65c1f001;
export const MARK_RELEASE_INGRESS = 0x65c1f002;
/** SO_MARK of the agent's own control sends: the egress program passes them, punts unmarked ones. */
export const MARK_CONTROL_TX = 0x65c1f003;
/** SO_MARK of a DNS answer the agent re-injects (NAT-f, bpf/lib/dns.h): to the stack past the PIT and the DNS stage. */
export const MARK_DNS_REINJECT = 0x65c1f004;

export const PIT_F_NONE = 0;
/** gscip_pit_val.flags, set by the fast path: a TCP FIN / RST was seen on this entry's direction. */
export const PIT_F_FIN = 0x01;
export const PIT_F_RST = 0x02;
/** gscip_pit_val.flags, set by the control plane on a TCP encrypt entry: send the wire-valid form (K in the urgent pointer, ordinary checksum). */
export const PIT_F_WIRE_CSUM = 0x04;
/** gscip_pit_val.flags, set by the control plane on an encrypt/decrypt entry whose key is a per-flow key in gscip_flow_keys (same CID). */
export const PIT_F_FLOW_KEY = 0x08;
/** gscip_pit_val.flags bits 4-7 (control plane only): enum gscip_pit_why, why an entry is plaintext or a drop. */
export const PIT_WHY_SHIFT = 4;
export const PIT_WHY_MASK = 0xf0;
/** enum gscip_pit_why. */
export const PitWhy = { NONE: 0, NO_GE: 1, NOT_MEMBER: 2, CLOSED: 3, ENCRYPTION_REQUIRED: 4, POLICY: 5, NAT_CHECKSUM: 6, OWN_GMS: 7 } as const;
export type PitWhy = (typeof PitWhy)[keyof typeof PitWhy];
export const KEY_F_NONE = 0;
/** gscip_key_val.flags: PCCOM cipher ChaCha12 / ChaCha8 instead of ChaCha20 (at most one). */
export const KEY_F_ROUNDS_12 = 0x1;
export const KEY_F_ROUNDS_8 = 0x2;
export const IFACE_F_PROTECTED = 0x01;
export const PUNT_RATE_DEFAULT = 20000;
export const PUNT_BURST_DEFAULT = 2000;
export const CODE_BASE = 1000;

/** enum gscip_flow_leg: which direction of the negotiated flow a per-flow key is for (start -> end = forward). */
export const FlowLeg = { NONE: 0, FWD: 1, REV: 2 } as const;
export type FlowLeg = (typeof FlowLeg)[keyof typeof FlowLeg];
/** The UDP per-flow datagram counter (GSCIP_UDP_CTR_*): bits, the refusal limit, the default re-key point. */
export const UDP_CTR_BITS = 48;
export const UDP_CTR_LIMIT = 1n << 48n;
export const UDP_CTR_REKEY = 1n << 47n;
export const UDP_REORDER_WINDOW = 4096;
export const FK_RESYNC_FAILS = 64;
/** The UDP wire-valid form (GSCIP_UDP_WIRE_*): counter bits in the IP ID (the rest is K), the receiver's window behind. */
export const UDP_WIRE_CTR_BITS = 6;
export const UDP_WIRE_WINDOW = 16;
export const FK_SEQ_BASE_SET = 1n << 32n;

export const Dir = { INGRESS: 0, EGRESS: 1 } as const;
export type Dir = (typeof Dir)[keyof typeof Dir];

export const Action = { NONE: 0, PASS: 1, DROP: 2, ENCRYPT: 3, DECRYPT: 4 } as const;
export type Action = (typeof Action)[keyof typeof Action];

export const PitState = { STATIC: 0, TENTATIVE: 1, CONFIRMED: 2 } as const;
export type PitState = (typeof PitState)[keyof typeof PitState];

export const Role = { NONE: 0, START: 1, INTERMEDIATE: 2, END: 3 } as const;
export type Role = (typeof Role)[keyof typeof Role];

export const MissAction = { PUNT: 0, PASS: 1, DROP: 2 } as const;
export type MissAction = (typeof MissAction)[keyof typeof MissAction];

/** enum gscip_ipv6_policy: gscip_iface_cfg.ipv6_policy, what an interface does with IPv6 (bpf/lib/ipv6.h). 0 = pass (a previous release's entry). */
export const Ipv6Policy = { PASS: 0, DROP: 1, ND_ONLY: 2 } as const;
export type Ipv6Policy = (typeof Ipv6Policy)[keyof typeof Ipv6Policy];
/** The config / CLI names of the IPv6 policies. */
export const IPV6_POLICY_BY_NAME = { pass: Ipv6Policy.PASS, drop: Ipv6Policy.DROP, 'nd-only': Ipv6Policy.ND_ONLY } as const;
export type Ipv6PolicyName = keyof typeof IPV6_POLICY_BY_NAME;
/** Value -> config name ("nd-only"), or the number for a value this build does not know. */
export function ipv6PolicyName(v: number): string {
  for (const [k, x] of Object.entries(IPV6_POLICY_BY_NAME)) if (x === v) return k;
  return String(v);
}

/** enum gscip_stage: struct gscip_load_cfg.stages bits, the datapath stages a load contains (bits never reused; 2, 3 reserved for CIT, VAT). NAT and DNS are not in DEFAULT. */
export const Stage = { XLAT: 1 << 0, PCCOM: 1 << 1, NAT: 1 << 4, DNS: 1 << 5, FTP: 1 << 6, DEFAULT: (1 << 0) | (1 << 1) } as const;
/** The switchable stages by config name (agent config `datapath.stages`). */
export const STAGE_BITS = { xlat: Stage.XLAT, pccom: Stage.PCCOM, nat: Stage.NAT, dns: Stage.DNS, ftp: Stage.FTP } as const;
export type StageName = keyof typeof STAGE_BITS;

export const XlatKind = { STATIC: 0, CIT: 1, VAT: 2, NAT: 3 } as const;
export type XlatKind = (typeof XlatKind)[keyof typeof XlatKind];

export const PuntReason = { PIT_MISS: 1, CONTROL: 2, TRUNCATED: 3, REKEY: 4, DNS: 5, FTP_REPLY: 6, FTP_COPY: 7 } as const;
export type PuntReason = (typeof PuntReason)[keyof typeof PuntReason];

/** Reason ranges per protocol part (GSCIP_REASON_*): each part numbers its codes inside its own range. */
export const REASON_PART_SIZE = 128;
export const ReasonPart = { CORE: 0, DPRP: 128, PCCOM: 256, CIT: 384, VAT: 512, NAT: 640, GSRA: 768 } as const;
export type ReasonPartName = Lowercase<keyof typeof ReasonPart>;
export const REASON__END = 1024;

/** enum gscip_stat (the reason numbers), keyed by the name without the GSCIP_ prefix (as in the header). */
export const Stat = {
  STAT_PASS_NON_IP: 0,
  STAT_PASS_IPV6: 1,
  STAT_PASS_OTHER_L4: 2,
  STAT_PASS_FRAGMENT: 3,
  STAT_PIT_PASS: 4,
  STAT_UNUSED_5: 5,
  STAT_UNUSED_6: 6,
  STAT_MISS_PASS: 7,
  STAT_PUNT_MISS: 8,
  STAT_PUNT_CONTROL: 9,
  STAT_PUNT_TRUNCATED: 10,
  STAT_RELEASED: 11,
  STAT_XLAT: 12,
  STAT_UNUSED_13: 13,
  STAT_CONTROL_TX: 14,
  STAT__VERDICT_END: 15,
  STAT_PASS_IPV6_ND: 16,
  STAT_PASS_IPV6_LINK_LOCAL: 17,
  STAT_DROP_FIRST: 32,
  DROP_POLICY: 32,
  DROP_MISS_POLICY: 33,
  DROP_MALFORMED_L2: 34,
  DROP_MALFORMED_IP: 35,
  DROP_MALFORMED_L4: 36,
  DROP_PUNT_RATE: 37,
  DROP_PUNT_RINGBUF: 38,
  DROP_RELEASE_MISS: 39,
  DROP_XLAT_REWRITE: 40,
  STAT_UNUSED_41: 41,
  STAT_UNUSED_42: 42,
  STAT_UNUSED_43: 43,
  DROP_UNSUPPORTED: 44,
  DROP_CONTROL_MALFORMED: 45,
  DROP_FRAGMENT: 46,
  DROP_NO_IFACE_CFG: 47,
  DROP_IPV6_POLICY: 48,
  DROP_IPV6_ND_ONLY: 49,
  STAT_DPRP_HOLD: 128,
  STAT_PIT_ENCRYPT: 256,
  STAT_PIT_DECRYPT: 257,
  STAT_PIT_DECRYPT_PREV: 258,
  STAT_PCCOM_REKEY: 259,
  DROP_NO_KEY: 288,
  DROP_BAD_KEYED_CSUM: 289,
  DROP_CRYPTO: 290,
  DROP_NONCE_LIMIT: 291,
  DROP_FLOW_KEY_CHANGED: 292,
  STAT_DNS_PUNT: 512,
  STAT_DNS_REINJECTED: 513,
  STAT_DNS_TOO_BIG: 514,
  STAT_NAT_XLAT: 640,
  STAT_NAT_CREATED: 641,
  STAT_NAT_ICMP: 642,
  DROP_NAT_TABLE_FULL: 672,
  DROP_NAT_NO_PORT: 673,
  DROP_NAT_FILTERED: 674,
  DROP_NAT_PROTO: 675,
  DROP_NAT_FRAGMENT: 676,
  DROP_NAT_ICMP_NO_SESSION: 677,
  STAT_FTP_PUNT: 768,
  STAT_FTP_TOO_BIG: 769,
  STAT_FTP_COPY: 770,
  STAT_FTP_COPY_FAILED: 771,
  STAT_FTP_SEQ_ADJ: 772,
  STAT_FTP_SEQ_RESET: 773,
  DROP_FTP_SEQ_REWRITE: 800,
  STAT__END: 1024,
} as const;
export type StatName = keyof typeof Stat;

/** enum gscip_reason_kind. */
export const ReasonKind = { UNUSED: 0, VERDICT: 1, DROP: 2, OVERLAY: 3 } as const;
/** enum gscip_tc_verdict (values are TC_ACT_*). */
export const TcVerdict = { PASS: 0, SHOT: 2, STOLEN: 4, REDIRECT: 7, NONE: 255 } as const;

/** A declared reason's kind by name: 'verdict' | 'drop' | 'overlay' (every kind but 'unused'). */
export type CounterKind = Exclude<Lowercase<keyof typeof ReasonKind>, 'unused'>;
/** A reason's TC action by name: 'pass' | 'shot' | 'stolen' | 'redirect' | 'none'. */
export type TcAction = Lowercase<keyof typeof TcVerdict>;

/**
 * GSCIP_REASONS of gscip_abi.h, row for row: each reason's kind and TC action.
 * test/unit/codecs.test.ts compares it with the header's table, and
 * test/bpf/btf-layout.test.ts with the table compiled into the datapath (.rodata).
 */
export const REASONS: ReadonlyArray<readonly [StatName, CounterKind, TcAction]> = [
  ['STAT_PASS_NON_IP', 'verdict', 'pass'],
  ['STAT_PASS_IPV6', 'verdict', 'pass'],
  ['STAT_PASS_OTHER_L4', 'verdict', 'pass'],
  ['STAT_PASS_FRAGMENT', 'verdict', 'pass'],
  ['STAT_PIT_PASS', 'verdict', 'pass'],
  ['STAT_MISS_PASS', 'verdict', 'pass'],
  ['STAT_PUNT_MISS', 'verdict', 'stolen'],
  ['STAT_PUNT_CONTROL', 'verdict', 'stolen'],
  ['STAT_PUNT_TRUNCATED', 'verdict', 'shot'],
  ['STAT_RELEASED', 'overlay', 'none'],
  ['STAT_XLAT', 'overlay', 'none'],
  ['STAT_CONTROL_TX', 'verdict', 'pass'],
  ['STAT_PASS_IPV6_ND', 'verdict', 'pass'],
  ['STAT_PASS_IPV6_LINK_LOCAL', 'verdict', 'pass'],
  ['DROP_POLICY', 'drop', 'shot'],
  ['DROP_MISS_POLICY', 'drop', 'shot'],
  ['DROP_MALFORMED_L2', 'drop', 'shot'],
  ['DROP_MALFORMED_IP', 'drop', 'shot'],
  ['DROP_MALFORMED_L4', 'drop', 'shot'],
  ['DROP_PUNT_RATE', 'drop', 'shot'],
  ['DROP_PUNT_RINGBUF', 'drop', 'shot'],
  ['DROP_RELEASE_MISS', 'drop', 'shot'],
  ['DROP_XLAT_REWRITE', 'drop', 'shot'],
  ['DROP_UNSUPPORTED', 'drop', 'shot'],
  ['DROP_CONTROL_MALFORMED', 'drop', 'shot'],
  ['DROP_FRAGMENT', 'drop', 'shot'],
  ['DROP_NO_IFACE_CFG', 'drop', 'shot'],
  ['DROP_IPV6_POLICY', 'drop', 'shot'],
  ['DROP_IPV6_ND_ONLY', 'drop', 'shot'],
  ['STAT_DPRP_HOLD', 'verdict', 'redirect'],
  ['STAT_PIT_ENCRYPT', 'verdict', 'pass'],
  ['STAT_PIT_DECRYPT', 'verdict', 'pass'],
  ['STAT_PIT_DECRYPT_PREV', 'verdict', 'pass'],
  ['STAT_PCCOM_REKEY', 'overlay', 'none'],
  ['DROP_NO_KEY', 'drop', 'shot'],
  ['DROP_BAD_KEYED_CSUM', 'drop', 'shot'],
  ['DROP_CRYPTO', 'drop', 'shot'],
  ['DROP_NONCE_LIMIT', 'drop', 'shot'],
  ['DROP_FLOW_KEY_CHANGED', 'drop', 'shot'],
  ['STAT_DNS_PUNT', 'verdict', 'stolen'],
  ['STAT_DNS_REINJECTED', 'verdict', 'pass'],
  ['STAT_DNS_TOO_BIG', 'verdict', 'pass'],
  ['STAT_NAT_XLAT', 'overlay', 'none'],
  ['STAT_NAT_CREATED', 'overlay', 'none'],
  ['STAT_NAT_ICMP', 'verdict', 'pass'],
  ['DROP_NAT_TABLE_FULL', 'drop', 'shot'],
  ['DROP_NAT_NO_PORT', 'drop', 'shot'],
  ['DROP_NAT_FILTERED', 'drop', 'shot'],
  ['DROP_NAT_PROTO', 'drop', 'shot'],
  ['DROP_NAT_FRAGMENT', 'drop', 'shot'],
  ['DROP_NAT_ICMP_NO_SESSION', 'drop', 'shot'],
  ['STAT_FTP_PUNT', 'verdict', 'stolen'],
  ['STAT_FTP_TOO_BIG', 'verdict', 'pass'],
  ['STAT_FTP_COPY', 'overlay', 'none'],
  ['STAT_FTP_COPY_FAILED', 'overlay', 'none'],
  ['STAT_FTP_SEQ_ADJ', 'overlay', 'none'],
  ['STAT_FTP_SEQ_RESET', 'overlay', 'none'],
  ['DROP_FTP_SEQ_REWRITE', 'drop', 'shot'],
];

export interface StatInfo {
  readonly id: number;
  /** Stable label: lower-case name without the STAT_/DROP_ prefix ("pit_pass", "malformed_ip"). */
  readonly name: string;
  /** verdict / drop: a packet's one outcome (their sum counts each packet once); overlay: counted on top. */
  readonly kind: CounterKind;
  /** The TC action the datapath returns for this reason ('none' for overlays). */
  readonly action: TcAction;
  /** The protocol part whose range holds the number. */
  readonly part: ReasonPartName;
}

function partOf(id: number): ReasonPartName {
  let best: ReasonPartName = 'core';
  for (const [k, base] of Object.entries(ReasonPart)) if (id >= base && id < base + REASON_PART_SIZE) best = k.toLowerCase() as ReasonPartName;
  return best;
}

/** Every declared reason (retired numbers and markers excluded), in number order. */
export const STATS: readonly StatInfo[] = REASONS
  .map(([k, kind, action]) => ({ id: Stat[k], name: k.replace(/^STAT_|^DROP_/, '').toLowerCase(), kind, action, part: partOf(Stat[k]) }))
  .sort((a, b) => a.id - b.id);

export const STAT_BY_ID: ReadonlyMap<number, StatInfo> = new Map(STATS.map((s) => [s.id, s]));

/** gscip_counters: one slot per (reason, direction), GSCIP_COUNTER_SLOT. */
export const COUNTER_DIRS = 2;
export const COUNTER_SLOTS = REASON__END * COUNTER_DIRS;
export function counterSlot(reason: number, dir: Dir): number {
  return reason * COUNTER_DIRS + dir;
}

/*
 * The two derivations every name of an enum comes from; maps/vocabulary.ts
 * builds each concept's typed vocabulary (ACTIONS, ROLES, DIRS, ...) on them.
 */

/** Reverse lookup for enums: value -> lower-case name ("pass"), or the number if unknown. */
export function enumName<E extends Record<string, number>>(e: E, v: number): string {
  for (const [k, x] of Object.entries(e)) if (x === v) return k.toLowerCase();
  return String(v);
}

/** Name -> value for enums, case-insensitive; throws naming `what` and the accepted names. */
export function enumValue<E extends Record<string, number>>(e: E, name: string, what: string): E[keyof E] {
  const k = Object.keys(e).find((x) => x.toLowerCase() === String(name).toLowerCase());
  if (k === undefined) throw new RangeError(`${what}: unknown value '${name}' (expected one of ${Object.keys(e).map((x) => x.toLowerCase()).join(', ')})`);
  return e[k as keyof E];
}
