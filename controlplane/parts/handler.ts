/**
 * The extension point for protocol engines (DPRP, Mobile PPC, NAT-f, ...):
 * a PuntHandler receives what the fast path punts and decides, through the
 * context, what becomes of it. See README.md in this directory.
 */
import type { Logger } from '../log/logger.js';
import type { Cid, PuntRec } from '../maps/codecs.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import type { GeMode, GeType } from '../gms/model.js';
import type { AgentConfig } from '../config/agent-config.js';

/** This GE's identity as the parts see it (resolved by agent/ge-identity.ts). */
export interface GeIdentity {
  type: GeType;
  mode: GeMode;
  /** Where it came from, for the log and `agent status`. */
  source: 'gms' | 'config' | 'env';
}

export interface AgentInterface {
  name: string;
  ifindex: number;
}

export interface PuntContext {
  /** Typed maps of this instance (PIT, XLAT, keys, iface, cfg, stats). */
  readonly maps: GscipMaps;
  /** The protected interfaces. */
  readonly interfaces: readonly AgentInterface[];
  readonly log: Logger;
  /** Re-send this stashed packet to the fast path (it must now hit the PIT). False if no longer stashed. */
  release(rec: PuntRec): boolean;
  /** Re-send every stashed packet of this flow (CID incl. direction), oldest first; returns how many. */
  releaseFlow(cid: Cid): number;
  /** Discard this stashed packet, counted with `reason` (a short snake_case word). */
  drop(rec: PuntRec, reason: string): boolean;
  /** Discard every stashed packet of this flow. */
  dropFlow(cid: Cid, reason: string): number;
  /** NAT-f: re-inject a DNS answer frame punted on ifindex's ingress (rewritten or not), to the stack past the PIT. */
  reinjectDns?(ifindex: number, frame: Buffer): void;
  /** Send a complete IPv4 packet (e.g. a GSCIP control message) out of ifindex; routed by the kernel. */
  sendControl(ifindex: number, ipPacket: Buffer): void;
  /** Monotonic ns on the same clock as the fast path (created_ns, last_seen_ns, ts_ns). */
  nowNs(): bigint;
  /**
   * Hand the handlers, now, the punts the ring already holds (re-entered from
   * a handler: nothing). For a timer about to act on a missing answer.
   */
  takePending?(): void;
}

export interface PuntHandler {
  readonly name: string;
  /**
   * A PIT miss (reason PIT_MISS, packet stashed) or a miss too big to stash
   * (reason TRUNCATED, packet already dropped: learn the CID only). Misses go
   * through the parts in chain order (parts/route.ts); return 'taken' to keep
   * the parts after this one from seeing it.
   */
  onMiss?(rec: PuntRec, ctx: PuntContext): void | 'taken' | Promise<void>;
  /**
   * A GSCIP control message (ICMP type 253) that arrived on a protected interface, or left through one without this agent having sent it (rec.dir egress); never stashed.
   * Only the ICMP codes this part claims reach it (parts/route.ts).
   */
  onControl?(rec: PuntRec, ctx: PuntContext): void | Promise<void>;
  /**
   * PCCOM's re-key signal (reason REKEY, no packet): the per-flow key of the
   * PIT entry at rec.cid (rec.dir) wants a new key (UDP counter near its
   * limit, a receiver out of step, a TCP sequence far on). Raised on the first
   * wish and again every 256, so a part may ignore repeats while it re-keys.
   */
  onRekey?(rec: PuntRec, ctx: PuntContext): void | Promise<void>;
  /**
   * A DNS answer punted by the DNS stage (reason DNS, not stashed; NAT-f).
   * The first part with onDns gets it; it re-injects the answer itself
   * (ctx.reinjectDns) and returns true, or returns false and the agent
   * re-injects it unmodified.
   */
  onDns?(rec: PuntRec, ctx: PuntContext): boolean;
  /**
   * An FTP "227 " reply punted by the FTP stage on ingress after XLAT (reason
   * FTP_REPLY, not stashed; GSRA's EN): as onDns, the first part with it
   * re-injects the reply (ctx.reinjectDns) and returns true, or returns false
   * and the agent re-injects it unmodified.
   */
  onFtpReply?(rec: PuntRec, ctx: PuntContext): boolean;
  /** A copy of an FTP 227/229 reply leaving from port 21 (reason FTP_COPY, egress, before NAT; GSRA's router): the packet itself went on. */
  onFtpCopy?(rec: PuntRec, ctx: PuntContext): void;
  /**
   * Called once, after the fast path is attached and before the first punt is
   * read: for a part that acts on more than punts (Mobile PPC watches the
   * kernel's address events and writes entries of its own).
   */
  onStart?(ctx: PuntContext): void | Promise<void>;
  /**
   * Records this part holds on behalf of peers no key authenticated (what a
   * flood of new flows leaves: flows decided alone for a remote, negotiations
   * in flight). Read about once a second after a punt burst: the agent's
   * memory relief (agent/memory-relief.ts) waits for them to drain.
   */
  heldUnauthenticated?(): number;
  /** Called once when the agent stops. */
  close?(): void | Promise<void>;
}

/** What the agent gives a handler factory. */
export interface HandlerFactoryContext {
  log: Logger;
  /** This GE's type and mode (GMS GE info, else --ge-type/--ge-mode); null when nothing defines them. */
  ge: GeIdentity | null;
  /** The agent's validated configuration (a part reads its own key, PartClaims.configKey); absent for embedded use. */
  config?: AgentConfig;
  /**
   * The destinations encryption is required to, as entries (IPv4 prefixes or
   * DNS names): the configuration's `requireEncryption` and the network
   * definition's (the GMS delivery), read again on each call (agent/required-encryption-source.ts).
   */
  requireEncryption?: () => readonly string[];
}

export type PuntHandlerFactory = (ctx: HandlerFactoryContext) => PuntHandler;
