/**
 * The part contract: a protocol part (DPRP, install-pass, and next Mobile PPC,
 * NAT-f, GSRA) is a descriptor, pure data plus a factory. The descriptor says
 * what the part claims and what it needs; compose.ts checks every claim and
 * dependency before the agent touches anything, and routes punts by claim.
 * See docs/architecture.md "Protocol parts".
 */
import type { NatfDprpHooks } from '../dprp/natf-hooks.js';
import type { DnsRewriters } from '../natf/dns-rewriters.js';
import type { HandlerFactoryContext, PuntHandler } from './handler.js';
import type { ClaimedOptionHooks, DprpOptionCodec, DprpOptionHooks, FlowProtectedBy } from './dprp-extension.js';

/** Punt reasons a part can take (maps/abi.ts PuntReason). */
export type PuntReasonName = 'pit_miss' | 'truncated' | 'control';

export interface PartClaims {
  /** Punt reasons the part takes. pit_miss/truncated put it in the miss chain; control needs icmpCodes (or otherControl). */
  puntReasons?: readonly PuntReasonName[];
  /** GSCIP control messages (ICMP type 253) by ICMP code; exclusive: a code reaches only its claimer. */
  icmpCodes?: readonly number[];
  /**
   * Control messages no part claims (an unknown code, an unparsable frame).
   * Exclusive; DPRP takes them and counts them as malformed, as it always did.
   */
  otherControl?: boolean;
  /** XLAT entry kinds the part writes and expires (maps/abi.ts XlatKind); exclusive. */
  xlatKinds?: readonly number[];
  /** DPRP option codecs the part defines; exclusive per type. */
  dprpOptions?: readonly DprpOptionCodec[];
  /** Its reserved range of fast-path counter ids, inclusive (declared only: the datapath does not read it yet). */
  counterRange?: { first: number; last: number };
  /** Its slice of the agent config (the top-level key it owns); exclusive. */
  configKey?: string;
  /** Prefix of every metric it defines in metrics/metrics.ts (e.g. gscip_dprp_); exclusive. */
  metricsPrefix?: string;
  /** `gscip` subcommands it provides; exclusive. */
  cliCommands?: readonly string[];
}

/** A part's place in the PIT-miss chain: lower sees a miss first. Ties keep the configured order. */
export const MISS_ORDER = {
  /** Address translation (NAT-f): must see a miss before anything negotiates it. */
  TRANSLATE: 100,
  /** Gateways that take over a flow (GSRA). */
  GATEWAY: 200,
  /** Negotiation (DPRP), and the default. */
  NEGOTIATE: 500,
} as const;

export interface PartDescriptor {
  /** The name `--handler NAME` and config `handlers:` use. */
  readonly name: string;
  /** One line: what the part does. */
  readonly summary: string;
  readonly claims: PartClaims;
  /** Names of the parts it needs loaded (checked at start). */
  readonly dependsOn?: readonly string[];
  /** Place in the PIT-miss chain (MISS_ORDER); default NEGOTIATE. */
  readonly missOrder?: number;
  /** Makes the running part. */
  readonly create: (ctx: PartFactoryContext) => PartRuntime;
}

/** The running part: a punt handler, optionally extending DPRP. */
export type PartRuntime = PuntHandler & {
  /** Hooks DPRP calls for the options this part claims (PartClaims.dprpOptions). */
  readonly dprpOptionHooks?: DprpOptionHooks;
  /** NAT-f's extension of DPRP's negotiation (dprp/natf-hooks.ts): at most one part offers it. */
  readonly natfDprpHooks?: NatfDprpHooks;
  /** NAT-f's DNS rewriter chain (natf/dns-rewriters.ts): at most one part offers it. */
  readonly dnsRewriters?: DnsRewriters;
  /** Who else protects a flow whose entries this part wrote (dprp-extension.ts FlowProtectedBy). */
  readonly flowProtectedBy?: FlowProtectedBy;
};

/** What compose gives each factory beyond the agent's context. */
export interface PartFactoryContext extends HandlerFactoryContext {
  readonly extensions: PartExtensions;
}

/** What the composed parts offer each other (filled at compose, hooks read once all parts exist). */
export interface PartExtensions {
  /** Every DPRP option codec of the loaded parts. */
  readonly dprpOptionCodecs: readonly DprpOptionCodec[];
  /** DPRP option hooks of the loaded parts, each with its part's option types (call once all parts exist). */
  dprpOptionHooks(): readonly ClaimedOptionHooks[];
  /** NAT-f's DPRP hooks, if a loaded part offers them (call once all parts exist). */
  natfDprpHooks?(): NatfDprpHooks | null;
  /** NAT-f's DNS answer rewriter chain, if the natf part is loaded (GSRA's EN registers in it; call once all parts exist). */
  dnsRewriters?(): DnsRewriters | null;
  /** The loaded parts' FlowProtectedBy, asked in order (call once all parts exist). */
  flowProtectedBy?(): FlowProtectedBy | null;
}
