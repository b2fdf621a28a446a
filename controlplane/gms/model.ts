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

/**
 * PCCOM payload cipher of a group's keys: ChaCha with 20, 12 or 8 rounds
 * (the fast path picks the rounds per key from the key map entry's flags).
 */
export const CIPHERS = ['chacha20', 'chacha12', 'chacha8'] as const;
export type Cipher = (typeof CIPHERS)[number];
export const DEFAULT_CIPHER: Cipher = 'chacha20';

export function isCipher(v: unknown): v is Cipher {
  return typeof v === 'string' && (CIPHERS as readonly string[]).includes(v);
}

export interface GroupDef {
  id: number;
  name: string;
  rotation: RotationPolicy;
  /** Cipher of the key versions created from now on; existing versions keep their own. */
  cipher: Cipher;
}

export interface GeDef {
  userId: string;
  type: GeType;
  mode: GeMode;
  /** Sorted ascending, no duplicates. */
  groups: number[];
  /** A GNAT's ACT (NAT-f, docs/natf.md); absent (or empty) on every other GE. */
  act?: ActEntry[];
}

/**
 * One ACT entry of a GNAT (SPEC section 6): a private host behind it, by name,
 * and who on the outside may reach it. The GNAT registers the names it allows
 * in DDNS with its global address; a DDE naming a host is checked against it.
 */
export interface ActEntry {
  /** Fully qualified DNS name, lower case, no trailing dot. */
  name: string;
  /** The host's private IPv4 address behind the GNAT. */
  address: string;
  /** Whether anyone outside may reach it at all. */
  outsideAccess: 'allow' | 'deny';
  /** The groups whose members may reach it (a subset of the GNAT's groups; default all of them). Sorted. */
  groups: number[];
  /** GSRA router only: the IN's service ports admitted (absent: every port). Sorted. */
  ports?: number[];
  /**
   * The host runs a GE itself (a GES with the group key): the GNAT relays the
   * negotiation inward to it instead of answering for it, so PCCOM runs end
   * to end (docs/natf.md "A private GE behind the GNAT"). Absent: false.
   */
  ge?: boolean;
  /**
   * The host is a plain Term behind a GEN inside the GNAT's network: the
   * GEN's private address. The GNAT relays the negotiation inward to that GEN,
   * which answers as the host's end GE, so PCCOM runs to the GEN and the leg
   * GNAT -> GEN is encrypted too (docs/natf.md "A GEN inside"). Never with `ge`.
   */
  via?: string;
}

/** Network-wide rules every GE enforces (delivered to each with its GE info). */
export interface NetworkPolicy {
  /**
   * Destinations (IPv4 prefixes "a.b.c.d/n" or DNS names) to which a flow must
   * be encrypted: DPRP refuses it rather than carry it in plaintext
   * (controlplane/dprp/encryption-required.ts). Normalized, sorted, unique.
   */
  requireEncryption: string[];
  /**
   * The GNATs' global addresses (each GNAT's `external` in the network file),
   * told to every GE: a DNS answer naming one of them is virtualised (NAT-f,
   * docs/natf.md). Sorted, unique; absent: none.
   */
  gnats?: string[];
  /**
   * Which GNAT (user ID) each of `gnats` is in the network file: a GNAT's
   * reported address (nat.follow, gnat-reports.ts) replaces its own file
   * address in what GEs are told. Kept by the GMS only, never delivered.
   * Absent (a policy applied before it existed): reports add, nothing goes.
   */
  gnatOwners?: Record<string, string>;
  /**
   * The GSRA routers' global addresses GGR (each GSRA GE's `external`), told
   * to every GE: a DNS answer naming one is an IN behind that router and
   * gets a VIN on an EN (docs/gsra.md "The EN part"). Sorted, unique; absent: none.
   */
  gsraRouters?: string[];
}

export const EMPTY_POLICY: NetworkPolicy = { requireEncryption: [] };

/** The desired state an administrator declares (network.yaml) or the GMS holds. */
export interface NetworkState {
  groups: GroupDef[];
  ges: GeDef[];
  /** Absent: no network-wide rule (EMPTY_POLICY). */
  policy?: NetworkPolicy;
}

/** One group key version as the GMS stores it. */
export interface GroupKey {
  groupId: number;
  version: number;
  key: Buffer;
  createdAt: number; // ms since epoch
  /** null for the current version; set when superseded (end of its grace period). */
  expiresAt: number | null;
  /** Fixed when the version is created: both ends of a flow must use the same rounds for (group, version). */
  cipher: Cipher;
}

/** What a GE receives: its own info and the keys of its groups. */
export interface GeDelivery {
  userId: string;
  type: GeType;
  mode: GeMode;
  groups: number[];
  keys: DeliveredKey[];
  /** NetworkPolicy.requireEncryption (absent from a GMS older than the field: none). */
  requireEncryption?: string[];
  /** A GNAT's ACT, or a GSRA router's INs (absent for other GEs and from a GMS older than the field). */
  act?: ActEntry[];
  /** NetworkPolicy.gnats: the GNATs' global addresses, to every GE (absent: none, or a GMS older than the field). */
  gnats?: string[];
  /** NetworkPolicy.gsraRouters: the GSRA routers' global addresses, to every GE (absent: none, or a GMS older than the field). */
  gsraRouters?: string[];
  /** GSRA (docs/gsra.md): a directory user's own key, base64, authenticating its GSRA requests. Never log. */
  gsraUserKey?: string;
  /** GSRA: to a GSRA router, the directory users it may admit now (groups among the router's), with their keys. Never log. */
  remoteUsers?: RemoteUser[];
  /** Server time at which this snapshot was made (ms). */
  issuedAt: number;
}

/** A remote (directory) user as a GSRA router learns it from the GMS. */
export interface RemoteUser {
  userId: string;
  /** Sorted; only groups the router is in. */
  groups: number[];
  /** base64 of the user's 32-byte GSRA key. */
  key: string;
}

export interface DeliveredKey {
  group: number;
  version: number;
  /** base64 of the 32-byte ChaCha key. Never log a DeliveredKey. */
  key: string;
  createdAt: number;
  expiresAt: number | null;
  /**
   * Cipher of this key version. Absent in deliveries from a GMS older than
   * this field (= chacha20). The agent checks it: it arrives over the wire.
   */
  cipher?: Cipher;
}

export const GROUP_KEY_BYTES = 32; // GSCIP_KEY_BYTES in bpf/include/gscip_abi.h
