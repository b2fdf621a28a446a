/**
 * GMS data model (SPEC section 1): GE info (user ID, type, mode, groups) and
 * group key info (group number, key, version). Plain data, no I/O.
 */
export const GE_TYPES = ['GES', 'GEN', 'GEA', 'GNAT', 'GSRA'] as const;
export type GeType = (typeof GE_TYPES)[number];
export const GE_MODES = ['OP', 'CL'] as const;
export type GeMode = (typeof GE_MODES)[number];

/** How and when a group's key is rotated. */
export interface RotationPolicy {
  /** 5-field cron expression (minute hour day-of-month month day-of-week). */
  schedule: string;
  /** IANA time zone the schedule is read in. */
  timezone: string;
  /** How long the previous key version stays installed after a rotation. */
  graceSeconds: number;
}

export const DEFAULT_ROTATION: RotationPolicy = { schedule: '0 3 * * *', timezone: 'UTC', graceSeconds: 3600 };

export interface GroupDef {
  id: number;
  name: string;
  rotation: RotationPolicy;
}

export interface GeDef {
  userId: string;
  type: GeType;
  mode: GeMode;
  /** Sorted ascending, no duplicates. */
  groups: number[];
}

/** The desired state an administrator declares (network.yaml) or the GMS holds. */
export interface NetworkState {
  groups: GroupDef[];
  ges: GeDef[];
}

/** One group key version as the GMS stores it. */
export interface GroupKey {
  groupId: number;
  version: number;
  key: Buffer;
  createdAt: number; // ms since epoch
  /** null for the current version; set when superseded (end of its grace period). */
  expiresAt: number | null;
}

/** What a GE receives: its own info and the keys of its groups. */
export interface GeDelivery {
  userId: string;
  type: GeType;
  mode: GeMode;
  groups: number[];
  keys: DeliveredKey[];
  /** Server time at which this snapshot was made (ms). */
  issuedAt: number;
}

export interface DeliveredKey {
  group: number;
  version: number;
  /** base64 of the 32-byte ChaCha20 key. Never log a DeliveredKey. */
  key: string;
  createdAt: number;
  expiresAt: number | null;
}

export const GROUP_KEY_BYTES = 32; // GSCIP_KEY_BYTES in bpf/include/gscip_abi.h
