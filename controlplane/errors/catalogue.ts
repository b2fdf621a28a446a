/**
 * The control plane's error catalogue: every error code, declared once, with
 * what it means and what it maps to (the CLI exit code; for GMS wire codes the
 * HTTP status). Modules decide on codes, never on message text.
 *
 * Three families of codes, disjoint by spelling:
 *  - `GSCIP_E_*`: raised inside one process (CODES below);
 *  - GMS wire codes (lower_snake): the `error` field of a GMS error body,
 *    spelled as on the wire since v1, shared by the server that sends them and
 *    the clients that read them (GMS_WIRE below);
 *  - errno names (`ENOENT`, ...): BpfError's code, the failed syscall's errno,
 *    as Node's own system errors carry it (ERRNO_EXIT below).
 *
 * Rules (as fastify's `FST_ERR_*`): a code is never reused or renamed; a
 * retired one stays here marked `retired` so nothing takes its name again.
 * Every Error class of the control plane extends GscipError (checked by
 * test/unit/error-catalogue.test.ts). To add one: docs/architecture.md, "Errors".
 *
 * This module imports nothing from the rest of the control plane.
 */

/** `gscip` exit codes (README, "Agent and CLI"). */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, CONFLICT: 3, NOT_FOUND: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface CodeDef {
  /** What happened, for the person who reads the code in a log. */
  meaning: string;
  /** The `gscip` exit code when this error ends a command. */
  exit: ExitCode;
  /** Never raised any more; kept so the code is not reused. */
  retired?: true;
}

/** Process-local codes, each raised by the class named in its meaning. */
export const CODES = {
  GSCIP_E_USAGE: { exit: EXIT.USAGE, meaning: 'a command-line argument is missing or malformed; the message names it (UsageError)' },
  GSCIP_E_CONFIG: { exit: EXIT.USAGE, meaning: 'the agent configuration is invalid or unreadable; the message names the field or file (ConfigError)' },
  GSCIP_E_AGENT_CONFLICT: { exit: EXIT.CONFLICT, meaning: 'another agent holds the instance or the interface (AgentConflictError)' },
  GSCIP_E_NO_PINNED_MAPS: { exit: EXIT.NOT_FOUND, meaning: 'the instance has no pinned maps: wrong instance name, no agent has run, or no bpffs serves the pin directory' },
  GSCIP_E_BPF_OBJECT_MISSING: { exit: EXIT.NOT_FOUND, meaning: 'the compiled BPF object file does not exist (make bpf)' },
  GSCIP_E_PINNED_LAYOUT_MISMATCH: { exit: EXIT.ERROR, meaning: 'the maps pinned for the instance do not match this build\'s BPF object (ABI or size changed); cause: the BpfError' },
  GSCIP_E_HOST_PREREQUISITE: { exit: EXIT.ERROR, meaning: 'this host lacks a kernel feature the fast path needs; failures lists each check (PrerequisiteError)' },
  GSCIP_E_BPFFS_NOT_ROOT: { exit: EXIT.ERROR, meaning: 'no bpffs serves the pin directory and only root can mount one (BpffsError not_root)' },
  GSCIP_E_BPFFS_NO_KERNEL: { exit: EXIT.ERROR, meaning: 'the kernel has no bpf filesystem (CONFIG_BPF_SYSCALL) (BpffsError no_kernel_support)' },
  GSCIP_E_BPFFS_MOUNT_FAILED: { exit: EXIT.ERROR, meaning: 'mounting bpffs failed, or did not serve the pin directory; cause: the failed call (BpffsError mount_failed)' },
  GSCIP_E_ELF: { exit: EXIT.ERROR, meaning: 'a file read as a BPF object is not a well-formed little-endian 64-bit BPF ELF (ElfError)' },
  GSCIP_E_BTF: { exit: EXIT.ERROR, meaning: 'BTF data cannot be parsed (BtfError)' },
  GSCIP_E_NETWORK_SPEC: { exit: EXIT.ERROR, meaning: 'a GMS network file is invalid; problems lists each field (SpecError)' },
  GSCIP_E_GMS_DATA_DIR_LOCKED: { exit: EXIT.ERROR, meaning: 'another live GMS process holds the data directory (DataDirLockedError)' },
  GSCIP_E_GMS_AT_REST: { exit: EXIT.ERROR, meaning: 'a secret in the GMS database cannot be sealed or opened: no master key, a key not in the ring, or a tampered/moved blob (AtRestError)' },
  GSCIP_E_DIRECTORY_CONFIG: { exit: EXIT.ERROR, meaning: 'a GMS directory file (LDAP users for GSRA) is invalid or names a file it cannot read; problems lists each field (DirectoryConfigError)' },
  GSCIP_E_DIRECTORY_REFUSED: { exit: EXIT.ERROR, meaning: 'the GMS\'s directory refused a remote user\'s enrollment; reason says why (DirectoryRefusal, answered with its wire code)' },
  GSCIP_E_LDAP: { exit: EXIT.ERROR, meaning: 'an LDAP tool (ldapwhoami/ldapsearch) failed; reason and resultCode say how (LdapError)' },
  GSCIP_E_GSRA_WIRE: { exit: EXIT.ERROR, meaning: 'a GSRA message cannot be decoded; reason is the counted refusal reason (GsraWireError)' },
  GSCIP_E_GMS_DATABASE: { exit: EXIT.ERROR, meaning: 'the GMS database URL is malformed or names an engine this build does not have (GmsDatabaseError)' },
  GSCIP_E_GMS_MIGRATE: { exit: EXIT.ERROR, meaning: 'gms migrate refused: the target database is not empty, or a table read back differs from the source (MigrateError)' },
  GSCIP_E_DPRP_WIRE: { exit: EXIT.ERROR, meaning: 'a DPRP message cannot be encoded or decoded; reason is the counted reject reason (DprpWireError)' },
  GSCIP_E_DPRP_DECISION_INPUT: { exit: EXIT.ERROR, meaning: 'the DPRP decision engine was given an invalid path; field names it (DecisionInputError)' },
  GSCIP_E_ENCRYPTION_REQUIRED: { exit: EXIT.USAGE, meaning: 'a requireEncryption entry is neither an IPv4 prefix nor a DNS name; field names it (EncryptionRequiredError)' },
  GSCIP_E_IPV4_ADDRESS: { exit: EXIT.ERROR, meaning: 'a caller gave a malformed dotted IPv4 address (Ipv4AddressError)' },
  GSCIP_E_PART_CLAIM_TAKEN: { exit: EXIT.USAGE, meaning: 'two protocol parts claim the same thing (an ICMP control code, an option type, a counter range ...); the message names both (PartError)' },
  GSCIP_E_PART_MISSING_DEPENDENCY: { exit: EXIT.USAGE, meaning: 'a protocol part depends on a part that is not loaded; the message names both (PartError)' },
  GSCIP_E_PART_UNKNOWN: { exit: EXIT.USAGE, meaning: 'a handler/part name no part in the catalogue has (PartError)' },
  GSCIP_E_PART_BAD_DESCRIPTOR: { exit: EXIT.USAGE, meaning: 'a part descriptor contradicts itself, e.g. an option codec\'s skippable flag vs its type number (PartError)' },
  GSCIP_E_PART_DUPLICATE_NAME: { exit: EXIT.USAGE, meaning: 'a second part registered or loaded under a name already taken (PartError)' },
  GSCIP_E_FLOW_CID_TAKEN: { exit: EXIT.ERROR, meaning: 'a flow (or a re-key) would take wire CIDs another flow owns; nothing was written (FlowError)' },
  GSCIP_E_FLOW_UNKNOWN: { exit: EXIT.ERROR, meaning: 'a flow id the flow table does not hold: expired, or never created (FlowError)' },
  GSCIP_E_FLOW_NO_EXPIRY_POLICY: { exit: EXIT.ERROR, meaning: 'an XLAT entry of a kind with no expiry policy: the part must declare one first (FlowError)' },
  GSCIP_E_FLOW_NO_XLAT_MAP: { exit: EXIT.ERROR, meaning: 'XLAT entries given to a flow table built without an XLAT map (FlowError)' },
  GSCIP_E_FLOW_BAD_ENTRY: { exit: EXIT.ERROR, meaning: 'an entry whose slot is not one of the flow\'s wire CIDs, or one a flow already holds twice (FlowError)' },
  GSCIP_E_MOBILITY_WIRE: { exit: EXIT.ERROR, meaning: 'a Mobile PPC CU or CU-ACK cannot be decoded; reason is the counted refusal reason (CuWireError)' },
  GSCIP_E_DDNS: { exit: EXIT.ERROR, meaning: 'a DDNS update cannot be built (field names the input) or got no answer from its server (DdnsError)' },
  GSCIP_E_DNS_FORMAT: { exit: EXIT.ERROR, meaning: 'a DNS response the NRT was to rewrite cannot be read (truncated, bad name or pointer, not a response; DnsFormatError): passed on untouched' },
} as const satisfies Record<`GSCIP_E_${string}`, CodeDef>;
export type GscipCode = keyof typeof CODES;

export interface WireDef {
  /** What the refusal means, for both ends. */
  meaning: string;
  /** HTTP status the GMS answers with; null for codes a client makes up itself. */
  http: number | null;
  /** The GMS no longer accepts this GE's identity: its agent removes every group key. */
  identityRefused?: true;
  retired?: true;
}

/**
 * GMS wire codes: the body of every GMS error is `{ error: <code>, message, problems? }`.
 * Spelled as on the wire: renaming one would break agents of other releases and
 * change the "GMS refused (403 token_used): ..." lines operators read. A GMS
 * error that ends a `gscip` command exits 1.
 */
export const GMS_WIRE = {
  bad_request: { http: 400, meaning: 'a field of the request body is missing or malformed; the message names it' },
  bad_json: { http: 400, meaning: 'the request body is not JSON' },
  body_too_large: { http: 413, meaning: 'the request body exceeds the GMS\'s limit' },
  bad_csr: { http: 400, meaning: 'the enrollment CSR cannot be parsed or its key is not ECDSA P-256' },
  token_unknown: { http: 403, meaning: 'the enrollment token was never issued by this GMS' },
  token_used: { http: 403, meaning: 'the enrollment token was already used (tokens are one-time)' },
  token_expired: { http: 403, meaning: 'the enrollment token expired before use' },
  ge_removed: { http: 403, identityRefused: true, meaning: 'the GE of this token or certificate is no longer in the network' },
  no_cert: { http: 401, meaning: 'the route needs a client certificate and none was presented' },
  untrusted: { http: 401, meaning: 'the client certificate does not chain to this GMS\'s CA' },
  unknown_cert: { http: 403, identityRefused: true, meaning: 'the client certificate is not in this GMS\'s database (database replaced?)' },
  revoked: { http: 403, identityRefused: true, meaning: 'the client certificate was revoked' },
  wrong_role: { http: 403, meaning: 'a GE certificate on an admin route, or the reverse' },
  unknown_ge: { http: 404, meaning: 'no GE with that user ID (apply the network first)' },
  unknown_group: { http: 404, meaning: 'no group with that id in the network' },
  not_found: { http: 404, meaning: 'no route for this method and path' },
  invalid_network: { http: 422, meaning: 'the network given to apply is invalid; problems lists each field' },
  internal: { http: 500, meaning: 'the GMS failed while handling the request; its log has the error' },
  bad_credentials: { http: 403, meaning: 'directory enrollment: the directory refused the user ID and password (or knows no such enabled user)' },
  no_directory: { http: 404, meaning: 'directory enrollment asked of a GMS started without a directory (--directory)' },
  no_group: { http: 403, meaning: 'directory enrollment: the user is in no directory group that maps to a GSCIP group' },
  name_taken: { http: 409, meaning: 'directory enrollment: the user ID is a GE of the network file; the file wins' },
  directory_unreachable: { http: 503, meaning: 'directory enrollment: the GMS cannot reach its LDAP server (or its TLS certificate does not verify)' },
  not_a_gnat: { http: 403, meaning: 'a GE that the network file does not make a GNAT reported an external address (POST /v1/ge/external)' },
  bad_response: { http: null, meaning: 'client side: the GMS answered with a body that is not JSON' },
} as const satisfies Record<string, WireDef>;
export type GmsWireCode = keyof typeof GMS_WIRE;

/**
 * Client side: the code of an error answer that carries none (`http_<status>`);
 * a family, not a catalogue entry, because the status is the only information.
 */
export function codelessWireCode(status: number): string { return `http_${status}`; }

/** BpfError codes (errno names) with an exit code of their own; every other errno exits 1. */
export const ERRNO_EXIT: Readonly<Record<string, ExitCode>> = { ENOENT: EXIT.NOT_FOUND };

export type ErrorCode = GscipCode | GmsWireCode;

/**
 * The base of every control-plane error: a catalogue `code` and, when it wraps
 * another failure, the standard `cause`. Subclasses keep their own fields
 * (problems, reason, errno, status, ...) and their class name as `name`.
 * `C` narrows the code family: BpfError carries errno names, the GMS clients
 * the wire code the GMS sent (a newer GMS may send one this build lacks).
 */
export class GscipError<C extends string = GscipCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

function isOwn<T extends object>(o: T, k: string): k is Extract<keyof T, string> {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** The exit code a code maps to; unknown codes (and errnos without their own) exit 1. */
export function exitCodeFor(code: string): ExitCode {
  if (isOwn(CODES, code)) return CODES[code].exit;
  if (isOwn(GMS_WIRE, code)) return EXIT.ERROR;
  return ERRNO_EXIT[code] ?? EXIT.ERROR;
}

/** What `gscip` exits with when `e` ends a command: from its code; anything not a GscipError is 1. */
export function exitCodeOf(e: unknown): ExitCode {
  return e instanceof GscipError ? exitCodeFor(e.code) : EXIT.ERROR;
}

/** The HTTP status the GMS answers a wire code with (500 for a code this build does not know). */
export function httpStatusOf(code: GmsWireCode): number {
  return GMS_WIRE[code].http ?? 500;
}

/** Whether a GMS refusal with this wire code means the GE's identity is gone (drop every key). */
export function refusesIdentity(code: string): boolean {
  return isOwn(GMS_WIRE, code) && (GMS_WIRE[code] as WireDef).identityRefused === true;
}

/** The JSON body of a GMS error answer (what the server sends, what the clients read). */
export interface GmsErrorBody { error: GmsWireCode; message: string; problems?: string[] }

/**
 * A GMS error answer as a client reads it: the wire code (`http_<status>` when
 * it carries none), the `error` and `message` fields exactly as sent (clients
 * quote them), and the problems; null when the body is not a JSON object.
 */
export function readGmsErrorBody(status: number, body: string): { code: string; sent: { error?: string; message?: string }; problems: string[] } | null {
  let j: unknown;
  try { j = JSON.parse(body); } catch { return null; }
  if (j === null || typeof j !== 'object') return null;
  const o = j as { error?: string; message?: string; problems?: string[] };
  return { code: o.error ?? codelessWireCode(status), sent: { error: o.error, message: o.message }, problems: o.problems ?? [] };
}
