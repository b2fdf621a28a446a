/**
 * Constants and enums of bpf/include/gscip_abi.h, mirrored for the control
 * plane. test/unit/codecs.test.ts parses the header and fails if any value
 * here differs from it or if the header gains a stat this file lacks.
 */

export const PIT_MAX_ENTRIES = 1 << 20;
export const XLAT_MAX_ENTRIES = 1 << 18;
export const KEYS_MAX_ENTRIES = 4096;
export const IFACE_MAX_ENTRIES = 64;
export const PUNT_RINGBUF_BYTES = 4 << 20;
export const PUNT_MAX_BYTES = 2048;
export const KEY_BYTES = 32;

export const ICMP_TYPE = 253;
export const MARK_RELEASE_EGRESS = 0x65c1f001;
export const MARK_RELEASE_INGRESS = 0x65c1f002;
/** SO_MARK of the agent's own control sends: the egress program passes them, punts unmarked ones. */
export const MARK_CONTROL_TX = 0x65c1f003;

export const PIT_F_NONE = 0;
/** gscip_pit_val.flags, set by the fast path: a TCP FIN / RST was seen on this entry's direction. */
export const PIT_F_FIN = 0x01;
export const PIT_F_RST = 0x02;
export const KEY_F_NONE = 0;
/** gscip_key_val.flags: PCCOM cipher ChaCha12 / ChaCha8 instead of ChaCha20 (at most one). */
export const KEY_F_ROUNDS_12 = 0x1;
export const KEY_F_ROUNDS_8 = 0x2;
export const IFACE_F_PROTECTED = 0x01;
export const PUNT_RATE_DEFAULT = 20000;
export const PUNT_BURST_DEFAULT = 2000;
export const CODE_BASE = 1000;

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

export const XlatKind = { STATIC: 0, CIT: 1, VAT: 2, NAT: 3 } as const;
export type XlatKind = (typeof XlatKind)[keyof typeof XlatKind];

export const PuntReason = { PIT_MISS: 1, CONTROL: 2, TRUNCATED: 3 } as const;
export type PuntReason = (typeof PuntReason)[keyof typeof PuntReason];

/** enum gscip_stat, keyed by the name without the GSCIP_ prefix (as in the header). */
export const Stat = {
  STAT_PASS_NON_IP: 0,
  STAT_PASS_IPV6: 1,
  STAT_PASS_OTHER_L4: 2,
  STAT_PASS_FRAGMENT: 3,
  STAT_PIT_PASS: 4,
  STAT_PIT_ENCRYPT: 5,
  STAT_PIT_DECRYPT: 6,
  STAT_MISS_PASS: 7,
  STAT_PUNT_MISS: 8,
  STAT_PUNT_CONTROL: 9,
  STAT_PUNT_TRUNCATED: 10,
  STAT_RELEASED: 11,
  STAT_XLAT: 12,
  STAT_PIT_DECRYPT_PREV: 13,
  STAT_CONTROL_TX: 14,
  STAT__VERDICT_END: 15,
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
  DROP_NO_KEY: 41,
  DROP_BAD_KEYED_CSUM: 42,
  DROP_CRYPTO: 43,
  DROP_UNSUPPORTED: 44,
  DROP_CONTROL_MALFORMED: 45,
  DROP_FRAGMENT: 46,
  DROP_NO_IFACE_CFG: 47,
  STAT__END: 64,
} as const;

export interface StatInfo {
  readonly id: number;
  /** Stable label: lower-case name without the STAT_/DROP_ prefix ("pit_pass", "malformed_ip"). */
  readonly name: string;
  readonly kind: 'verdict' | 'drop';
}

/** Every real counter (markers such as __VERDICT_END / DROP_FIRST / __END excluded), in id order. */
export const STATS: readonly StatInfo[] = Object.entries(Stat)
  .filter(([k]) => !k.includes('__') && k !== 'STAT_DROP_FIRST')
  .map(([k, id]) => ({
    id,
    name: k.replace(/^STAT_|^DROP_/, '').toLowerCase(),
    kind: k.startsWith('DROP_') ? ('drop' as const) : ('verdict' as const),
  }))
  .sort((a, b) => a.id - b.id);

export const STAT_BY_ID: ReadonlyMap<number, StatInfo> = new Map(STATS.map((s) => [s.id, s]));

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
