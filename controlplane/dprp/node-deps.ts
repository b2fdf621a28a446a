/**
 * What a DPRP node is given and what it reports: the injected clock, timers,
 * transport, PIT, stash and key ring; its configuration and defaults; the
 * bounded label sets it counts by (fail, reject, outcome). No logic.
 */
import type { PitWhyName } from '../maps/vocabulary.js';
import type { KeyRing } from './auth.js';
import type { Outcome } from './decide.js';
import type { OptionCodecs, OptionRefusalReason } from './option-codecs.js';
import type { ClaimedOptionHooks, FlowProtectedBy } from '../parts/dprp-extension.js';
import type { PitMap } from '../flows/flow-maps.js';
import type { PitEntry } from './pit-entries.js';
import { DEFAULT_REPLAY, type ReplayCacheOptions } from './replay.js';
import type { RateLimit } from './rate-limit.js';
import type { Flow, GeTypeName, ModeName, WireRejectReason } from './wire.js';
import type { NatfDprpHooks } from './natf-hooks.js';


export interface DprpClock {
  /** Wall clock (ms since epoch): message timestamps and the replay window. */
  nowMs(): number;
  /** Monotonic ms: timeouts, durations, ages. */
  monoMs(): number;
}

export interface TimerHandle { cancel(): void }
export interface DprpTimers {
  after(ms: number, fn: () => void): TimerHandle;
}

/**
 * How one control message travels (docs/dprp.md "Across NATs and firewalls"):
 * UDP to CONTROL_UDP_PORT by default, from that port; `dport` answers a
 * message whose source port a NAT changed, `sport` keeps that source port
 * when a DDE is relayed transparently; `icmp` sends ICMP type 253 instead
 * (agents that predate the UDP transport, and answers to them).
 */
export interface ControlVia {
  sport?: number;
  dport?: number;
  icmp?: boolean;
}

/**
 * Sends one GSCIP control message (the ICMP-format bytes) toward `dst` (the
 * handler adds the UDP or ICMP framing and the IP header). `src`: the IP
 * source to write, when relaying a DDE transparently (the address it came
 * from); default this GE's.
 */
export interface ControlTransport {
  send(dst: string, icmp: Buffer, src?: string, via?: ControlVia): void;
}

/**
 * The IP header a control message came in (the punt record's): source and
 * destination; `sport` its UDP source port, `icmp` it came as ICMP type 253
 * (neither: the default transport, UDP from CONTROL_UDP_PORT).
 */
export interface PacketAddrs {
  src: string;
  dst: string;
  sport?: number;
  icmp?: boolean;
}

/** Where answers to a message go: in kind, to the packet's source port (the address is the caller's: the packet's source). */
export function replyVia(ip: PacketAddrs | undefined): ControlVia | undefined {
  if (ip?.icmp) return { icmp: true };
  return ip?.sport === undefined ? undefined : { dport: ip.sport };
}

/** How a message is relayed on transparently: in kind, from the source port it came from. */
export function relayVia(ip: PacketAddrs | undefined): ControlVia | undefined {
  if (ip?.icmp) return { icmp: true };
  return ip?.sport === undefined ? undefined : { sport: ip.sport };
}

/** The PIT as DPRP sees it (the handler maps this onto the BPF map). */
/**
 * The PIT as DPRP sees it (the handler maps this onto the BPF map,
 * flows/kernel-flow-maps.ts). `activity`: last time the fast path saw traffic
 * on the entry (monoMs clock); `closed`: the entry saw the flow end by itself
 * (a TCP RST); `finSeen`: a TCP FIN in the entry's direction. A flow counts
 * as closed on an RST on any entry or on a FIN in both directions (a
 * half-close alone keeps the idle timeout).
 */
export type PitWriter = PitMap<PitEntry>;

/** The packets stashed on a PIT miss (opaque handles from the punt handler). */
export interface StashSink {
  release(handles: readonly unknown[]): void;
  drop(handles: readonly unknown[], reason: FailReason | 'refused'): void;
}

/** Where the GE stands relative to an address. */
export type Locality = 'self' | 'behind' | 'other';

export interface SelfInfo {
  addr: string;
  type: GeTypeName;
  mode: ModeName;
}

export const FAIL_REASONS = [
  'dde_timeout', 'cdn_timeout', 'too_many_negotiations', 'stash_full', 'bad_path', 'keys_missing',
  // issue 11: a flow no key authenticates refused at the cap (maxUnauthFlows)
  'unauth_flows_full',
  // issue 13 (NAT-f): a flow to a virtual address the GNAT refused, or whose RGI named no mapped port
  'natf_refused', 'natf_no_port',
  // a packet of a flow the GNAT refused a moment ago: dropped without asking again (the application told by ICMP)
  'natf_refusal_held',
] as const;
export type FailReason = (typeof FAIL_REASONS)[number];

/** Reasons a control message is ignored (bounded label set for the metric). */
export const REJECT_REASONS = [
  'replay', 'stale', 'future', 'unknown_negotiation', 'wrong_phase', 'bad_selector', 'bad_mac', 'bad_seal',
  'missing_seal', 'unauthenticated_action', 'downgrade', 'bad_path', 'no_end_flag', 'path_too_long', 'relay_table_full', 'own_message',
  'option_refused',
  // issue 11 (bounds, no reflection): the IP source/destination is not the GE/flow the body names;
  // an address no GE sends to; the per-source answer limiter; the cap on flows no key authenticates.
  'source_mismatch', 'destination_mismatch', 'forbidden_address', 'answer_rate_limited', 'unauth_flows_full',
  // issue 13 (NAT-f): a GNAT refused a DDE naming a host (its ACT, its NAT table); it could not map an inside GE's flow outward
  'natf_refused', 'natf_no_mapping',
  // an MPIT for a flow our RGI said another GE protects with us (PROTECTED): our entries stay
  'protected_elsewhere',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number] | `wire_${WireRejectReason | OptionRefusalReason}`;

/**
 * A completed negotiation's outcome label: decide()'s verdict, or no_end_ge;
 * 'upgraded': a late RGI replaced a no_end_ge decision (counted once more, with this label).
 */
export type OutcomeKind = Outcome['verdict'] | 'no_end_ge' | 'upgraded' | 'protected_transit';

/** Sends this GE suppressed (it sends less, never more): a DDE retransmission over the per-destination limit, a destination no GE sends to. */
export const SUPPRESS_REASONS = ['dde_rate_limited', 'forbidden_destination'] as const;
export type SuppressReason = (typeof SUPPRESS_REASONS)[number];

export interface DprpObserver {
  started(reason: 'miss' | 'rekey'): void;
  completed(outcome: OutcomeKind, seconds: number): void;
  failed(reason: FailReason): void;
  rejected(reason: RejectReason): void;
  /** A CL GE overrode an unauthenticated "pass" with discard (local policy wins). */
  overridden(): void;
  suppressed?(reason: SuppressReason): void;
  /**
   * A flow this GE carries in plaintext ('pass') or refuses ('refused'), and
   * why, once per negotiation when its entries are installed (the start GE's
   * decision, or a relay's share of it): no downgrade goes unseen.
   */
  plaintext?(result: 'pass' | 'refused', why: PitWhyName, flow: Flow): void;
  /** An end-candidate GEN got a HOLD from a GE behind it and waits for that GE's answer (hold.ts). */
  held?(): void;
  /**
   * An unauthenticated pass or discard (a non-member's MPIT: a GE of another
   * group on the path, or a forger) for a flow this GE encrypts now: not
   * installed, the flow stays encrypted; the MPIT is still answered.
   */
  downgradeRefused?(flow: Flow): void;
  /** A transit pass that had idled out was put back by the flow's next packet (negotiated-flows.ts reinstate). */
  reinstated?(): void;
  /** Past a NAT (nat-follow.ts): a flow's entries placed on the port its first packet came from, or its wait refused (table full). */
  natFollow?(what: 'placed' | 'wait_table_full', detail?: { wire: Flow; to: Flow }): void;
}

export const NULL_OBSERVER: DprpObserver = {
  started() {}, completed() {}, failed() {}, rejected() {}, overridden() {},
};

export interface DprpConfig {
  /** First retransmission timeout for DDE and MPIT; doubles per attempt up to rtoMaxMs. */
  rtoMs: number;
  rtoMaxMs: number;
  /** The first timeout follows measured DDE->RGI round trips (rtt-estimator.ts), never below rtoMs; false: always rtoMs. */
  rtoFollowsRtt: boolean;
  /**
   * A NAT between the start and the decrypting GE (a GE saw a DDE come from
   * another address than the start GE's: NAT_SEEN): 'wire-valid' encrypts only
   * flows whose PCCOM packets carry valid ordinary checksums (TCP to a peer
   * taking the wire-valid form, UDP to a peer taking the UDP wire-valid form
   * and per-flow keys) and decides the others as if no group were
   * shared, why nat_checksum (OP: plaintext, CL or required: refused), since a
   * checksum-verifying NAT would not translate them; 'any' encrypts them anyway
   * (for NATs known not to verify L4 checksums).
   */
  pccomAcrossNat: 'wire-valid' | 'any';
  /**
   * What this GE's record announces in PCCOM_CAPS (spec-options.ts); unset:
   * everything this build takes. Fewer bits only to behave as an earlier
   * release toward its peers (tests of rolling upgrades).
   */
  pccomCaps?: number;
  /** DDE retransmissions also go as ICMP type 253, for peers whose agent predates the UDP transport. */
  icmpFallback: boolean;
  /** Sends per phase (DDE, MPIT) before giving up. */
  maxSends: number;
  /**
   * A GEN/GEA forwarding a DDE to an address behind it answers itself after
   * endWaitMs + (MAX_CAND_DEPTH - depth) * endWaitStepMs with no GE answering
   * from inside (depth = candidates that forwarded it before: nested GENs).
   */
  endWaitMs: number;
  endWaitStepMs: number;
  /** How long "this inside address is a plain Term" / "is a GE" is remembered. */
  termCacheMs: number;
  /** How long "no GE answered for this destination" is remembered (skip the DDE). */
  noEndCacheMs: number;
  /** Relay/end state and tentative entries live this long without CDN. */
  tentativeTtlMs: number;
  /**
   * Relay/end state of a CONFIRMED negotiation lives this long (to answer a
   * retransmitted MPIT/CDN; the start's whole retry budget is well under it),
   * so the relay table holds seconds of negotiations, not tentativeTtlMs' worth.
   */
  relayLingerMs: number;
  idleTimeoutMs: number;
  closedTimeoutMs: number;
  /** Bound on simultaneous negotiations this GE starts / relays. */
  maxNegotiations: number;
  maxRelays: number;
  maxStashPerFlow: number;
  /** What a start GE does when no GE ever answers its DDE. */
  onNoAnswer: 'decide-alone' | 'fail';
  /**
   * A GE that holds no group key yet (agent started, GMS not delivered) refuses
   * to decide: the negotiation fails with keys_missing and the stashed packet is
   * dropped (the application retries), instead of settling the flow in
   * plaintext/refused for its lifetime. Set false for a GE defined with no group.
   */
  requireKeys: boolean;
  /**
   * After deciding alone, a late RGI (a GE on a path slower than the DDE
   * budget) is still accepted this long and upgrades the flow to the
   * negotiated decision.
   */
  lateRgiGraceMs: number;
  /**
   * Re-keying: how long a decrypt entry moved to a new key version keeps
   * accepting the old one (prevVersion) at most; cleared sooner when the old
   * key leaves the ring.
   */
  prevGraceMs: number;
  /**
   * PCCOM's re-key signal (a per-flow key wants a new one: rekeying.ts
   * onRekeyWanted): one re-keying negotiation per flow at most this often.
   */
  rekeyMinIntervalMs: number;
  replay: ReplayCacheOptions;
  /**
   * DDEs this GE sends per destination address for flows the remote end
   * started (ingress misses; retransmissions included): token bucket, bounded
   * table. Beyond it the flow is decided as if no GE answered, without a DDE.
   * Flows a local host starts are bounded by maxNegotiations only.
   */
  ddeLimit: RateLimit;
  /** RGIs this GE answers per source address (the DDE's start GE, checked against the packet source). */
  answerLimit: RateLimit;
  /**
   * Control messages of a type DPRP does not speak (another part's, e.g. a
   * Mobile PPC CU) forwarded toward another host, per source address
   * (foreign-control.ts): above it they are dropped, counted.
   */
  foreignControlLimit: RateLimit;
  /**
   * Flows no shared group key authenticated (plaintext or discard decided
   * alone, or on a peer's unauthenticated word): at most this many, refused
   * beyond (unauth_flows_full), each expiring after unauthIdleTimeoutMs idle.
   */
  maxUnauthFlows: number;
  unauthIdleTimeoutMs: number;
}

export const DEFAULT_DPRP_CONFIG: DprpConfig = {
  rtoMs: 20,
  rtoMaxMs: 200,
  rtoFollowsRtt: true,
  pccomAcrossNat: 'wire-valid',
  icmpFallback: true,
  maxSends: 4,
  // Outermost candidate: 4 + 4 x 3 = 16 ms, kept under rtoMs (a DDE retry restarts
  // the wait). The 3 ms step covers one inner hop of real agents (punt, relay,
  // answer, egress punt); 1 ms lost that race in test/netns/dprp-cascade.test.ts.
  endWaitMs: 4,
  endWaitStepMs: 3,
  termCacheMs: 300_000,
  noEndCacheMs: 60_000,
  tentativeTtlMs: 5_000,
  relayLingerMs: 2_000,
  idleTimeoutMs: 300_000,
  closedTimeoutMs: 10_000,
  maxNegotiations: 8192,
  // At 3,000+ negotiations/s with relayLingerMs + the 1 s sweep period: ~10,000 live.
  maxRelays: 65536,
  maxStashPerFlow: 8,
  onNoAnswer: 'decide-alone',
  requireKeys: true,
  lateRgiGraceMs: 5_000,
  prevGraceMs: 30_000,
  rekeyMinIntervalMs: 500,
  replay: DEFAULT_REPLAY,
  // Per address: a burst of 64 (a host opening many connections to one server at once), then 32/s.
  ddeLimit: { burst: 64, ratePerSec: 32, maxKeys: 4096 },
  answerLimit: { burst: 64, ratePerSec: 32, maxKeys: 4096 },
  // A 10,000-flow move is ~313 CUs from one GE within a second, retries included.
  foreignControlLimit: { burst: 1024, ratePerSec: 512, maxKeys: 4096 },
  maxUnauthFlows: 4096,
  // A flood's leftovers gone well within 10 s of its end, even when a loaded agent decided its last flows
  // seconds late (10 s left 1,736 flows at +10 s, bench/dprp-flood under a CPU hog); a non-member's idle
  // plaintext flow is re-decided on its next packet without a DDE (noEndCacheMs), so the cost is one punt.
  unauthIdleTimeoutMs: 5_000,
};

export interface DprpNodeDeps {
  self: SelfInfo;
  keys: KeyRing;
  clock: DprpClock;
  timers: DprpTimers;
  transport: ControlTransport;
  pit: PitWriter;
  stash: StashSink;
  locality(addr: string): Locality;
  /** This host's own addresses and the directed broadcasts of its subnets (the handler knows them; default: none beyond self). */
  isOwnOrBroadcast?(addr: string): boolean;
  /** Whether the network definition requires encryption to `addr` (encryption-required.ts); absent: never. */
  encryptionRequired?(addr: string): boolean;
  observer?: DprpObserver;
  random?(n: number): Buffer;
  config?: Partial<DprpConfig>;
  /** The option codecs this GE knows (default: the spec's, spec-options.ts); a composed agent adds its parts'. */
  options?: OptionCodecs;
  /** Parts' hooks: options for this GE's own records, and a say on the options of received ones. */
  optionHooks?: readonly ClaimedOptionHooks[];
  /** NAT-f's extension of the negotiation (natf-hooks.ts); absent: plain DPRP. */
  natf?: NatfDprpHooks | null;
  /**
   * Whether this GE's fast path encrypts or decrypts the flow now (any of its
   * four PIT slots), whoever wrote the entries (DPRP, Mobile PPC's CIT moves):
   * an unauthenticated word never downgrades such a flow (relay-role.ts).
   * Absent: never.
   */
  encryptedNow?(flow: Flow): boolean;
  /**
   * The GE that protects this flow with us when another part wrote our
   * encrypt/decrypt entries for it (Mobile PPC's moved flows), or null:
   * the end role's RGI names it (PROTECTED) to a GE that starts a negotiation
   * for the flow without being that GE. Absent: never.
   */
  protectedBy?: FlowProtectedBy | null;
}

