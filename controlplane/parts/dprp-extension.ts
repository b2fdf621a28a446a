/**
 * What a part may add to DPRP: option codecs (the TLVs it defines) and hooks
 * that add options to this GE's own records and verify the ones received.
 * Types only, so parts, the agent and dprp/ share them without importing each
 * other. Wire layout and authentication: docs/dprp.md ("TLV option",
 * "Authentication"); the registry that uses these: dprp/option-codecs.ts.
 */

/** One TLV as on the wire (same shape as dprp/wire.ts TlvOption). */
export interface RawOption {
  type: number;
  value: Buffer;
}

/** Types at or above this may be skipped by a GE that has no codec for them (kept, raw). */
export const OPTION_SKIPPABLE_FROM = 0x80;

export interface DprpOptionCodec<T = unknown> {
  /** 1..255; >= 0x80 exactly when `skippable`. */
  type: number;
  /** Short name for messages and docs (e.g. MOBILE_OLD). */
  name: string;
  /**
   * A GE without this codec keeps the option and forwards it unchanged (true),
   * or refuses the message (false). Must agree with the type number, so a GE
   * that does not know the codec behaves as declared.
   */
  skippable: boolean;
  /** The value's bytes; throws (a message) for a value that cannot be sent. */
  encode(v: T): Buffer;
  /** The value of valid bytes; throws (a message) for invalid ones, which rejects the message as bad_option. */
  decode(b: Buffer): T;
}

/** Where an option a part verifies was found. */
export interface ReceivedRecordOption {
  option: RawOption;
  /** DPRP message type (1 DDE, 2 RGI, ...). */
  msgType: number;
  /** The GE whose record carries the option. */
  from: string;
  /**
   * The record's membership tags prove a group this GE holds, so the option
   * (inside the tagged bytes) is authenticated; false: no shared group, the
   * option is only as good as the path.
   */
  authenticated: boolean;
  /** The trigger CID of the negotiation (addresses dotted, ports host order). */
  flow: { saddr: string; daddr: string; sport: number; dport: number; proto: number };
}

export interface DprpOptionHooks {
  /** Options for this GE's own record in a DDE (start) or RGI (end, intermediate) it sends. */
  recordOptions?(q: { msgType: number; flow: ReceivedRecordOption['flow']; self: string }): RawOption[];
  /**
   * Called for each option of a type this part claims in a record of a received
   * DDE or RGI; false refuses the message (counted option_refused).
   */
  verifyRecordOption?(o: ReceivedRecordOption): boolean;
}

/**
 * Who else protects a flow this GE already encrypts or decrypts (a part that
 * wrote those entries: Mobile PPC's moved flows, whose peer is the CU's
 * sender): that GE's address, or null. DPRP's end role says it in its RGI
 * (option PROTECTED) when another GE starts a negotiation for the flow, so a
 * GE new on its path passes the ciphertext instead of encrypting it again
 * (docs/dprp.md "A GE new on a protected flow's path").
 */
export type FlowProtectedBy = (flow: ReceivedRecordOption['flow']) => string | null;

/** A part's hooks with the option types its part claims (compose.ts binds them): DPRP calls them only for those. */
export interface ClaimedOptionHooks extends DprpOptionHooks {
  readonly part: string;
  readonly optionTypes: readonly number[];
}
