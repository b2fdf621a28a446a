/**
 * What NAT-f adds to a DPRP negotiation (docs/natf.md "The extended DPRP"):
 * types only, so the natf part and dprp/ share them without importing each
 * other. DPRP calls them; the natf part implements them.
 *
 *   start GE: a PIT miss toward a virtual address V1 (the NRT's) is
 *     negotiated with the GNAT G2 by name: the DDE's flow is G1:X -> G2:Y with
 *     the message option NATF_NAME; the RGI's GNAT record carries NATF_PORT Z;
 *     the flow's PIT entries are on the wire flow G1:X -> G2:Z and the VAT
 *     (V1:Y <-> G2:Z) is written before them.
 *   GNAT: a DDE naming a host is checked against the ACT; allowed, the GNAT
 *     maps the host's port for this peer (Z) and its entries are on G1:X -> G2:Z.
 *     A host that is a GE itself (ACT `ge`): the GNAT relays the DDE inward
 *     with its own record carrying NATF_LIP P1, the host answers as the end GE
 *     of G1:X -> P1:Y, and the GNAT appends NATF_PORT Z to that RGI and passes
 *     the ciphertext (transit), translating only the outer addresses.
 *     A Term behind a GEN inside (ACT `via`): the same, relayed to that GEN,
 *     NATF_LIP naming the Term; the GEN answers as the Term's end GE.
 *     The other way (a GE inside negotiating with a global GE): the GNAT maps
 *     the flow in its NAPT first (port Z), relays the DDE from its own address
 *     with its record carrying NATF_PORT Z, so the global GE keys on G2:Z.
 */
import type { Flow } from './wire.js';

export interface VirtualTarget {
  /** The host name the NRT has for the virtual address (sent as NATF_NAME). */
  name: string;
  /** The GNAT's global address the name resolved to (the DDE's destination). */
  gnat: string;
}

export type NatfInbound =
  /**
   * `inside`: the GE to relay the negotiation inward to, not answering: the host itself when it
   * runs a GE (its ACT entry's `ge`), or the GEN in front of it (ACT `via`), then `host` is the
   * host's own address (NATF_LIP; absent: `inside`).
   */
  | { ok: true; port: number; inside?: string; host?: string }
  | { ok: false; reason: NatfRefusal };

/** Why a GNAT refuses a DDE naming a host (counted, answered with a refused RGI). */
export const NATF_REFUSALS = ['unknown_name', 'outside_access_denied', 'not_member', 'no_port', 'table_full', 'not_a_gnat'] as const;
export type NatfRefusal = (typeof NATF_REFUSALS)[number];

/** Why a start GE gives up a flow to a virtual address (counted; the application gets an ICMP unreachable). */
export const NATF_START_FAILURES = ['refused_by_gnat', 'no_port_in_rgi', 'no_answer', 'refused', 'other', 'refusal_held'] as const;
export type NatfStartFailure = (typeof NATF_START_FAILURES)[number];

export interface NatfDprpHooks {
  /** Start GE: the name and GNAT behind `flow`'s destination, when it is a live virtual address; null otherwise. */
  virtualTarget?(flow: Flow): VirtualTarget | null;
  /**
   * Start GE: the GNAT refused this flow a moment ago (natf/refusal-hold.ts): its packet is not negotiated
   * again; DPRP drops it (natf_refusal_held) and calls `failed` with 'refusal_held' when `icmp` (the
   * application is told again), quietly otherwise. 'not_held': negotiate as usual.
   */
  refusalHeld?(flow: Flow): 'not_held' | 'icmp' | 'quiet';
  /** Start GE: the flow settled on `wire`: write the VAT (stack view `flow` <-> wire) now, before its PIT entries. */
  settled?(flow: Flow, wire: Flow): void;
  /** Start GE: the flow failed; `stashes` (already dropped) are its stashed packets: answer the application. */
  failed?(flow: Flow, stashes: readonly unknown[], why: NatfStartFailure): void;
  /** GNAT: a DDE for `flow` (G1:X -> own address:Y) names `name`; the start proved `peerGroups`. */
  inbound?(q: { flow: Flow; name: string; peerGroups: readonly number[] }): NatfInbound;
  /**
   * GNAT: a GE inside (P1) negotiates `flow` (P1:X -> G1:Y) with a global GE: the NAPT session
   * for it, made now (port Z), so the GNAT relays the DDE as G2 with Z in its record; null when
   * `flow`'s source is not one this GNAT translates.
   */
  outbound?(q: { flow: Flow }): NatfInbound | null;
  /**
   * GNAT: a DDE to its own address without a name, for a port Z that an
   * inbound mapping holds for this peer (`flow` G1:X -> G2:Z; a re-keying
   * of a flow to a virtual address): the private GE (P1) and its port Y
   * when the mapped host is a GE (ACT `ge`), or the GEN in front of it and the
   * host's address `host` (ACT `via`), so the GNAT relays inward again rather
   * than answering as the end GE; null otherwise.
   */
  mappedInside?(q: { flow: Flow }): { inside: string; port: number; host?: string } | null;
  /**
   * GNAT: the external address its NAT uses now (`nat.follow` moves it with
   * the outside interface): DPRP reads the kernel's addresses again at once
   * when a negotiation names it and its snapshot does not hold it yet, so a
   * DDE to the new address is answered as this GE's own.
   */
  external?(): string | null;
}

/**
 * Every hook's name, checked against the interface by the compiler: the parts'
 * composition (parts/compose.ts) passes each one on from the part offering it.
 * A hand-written list there once left out `mappedInside`, so a GNAT answered a
 * re-keying DDE for a private GE itself (and decrypted its flow).
 */
export const NATF_DPRP_HOOK_NAMES = ['virtualTarget', 'refusalHeld', 'settled', 'failed', 'inbound', 'outbound', 'mappedInside', 'external'] as const satisfies readonly (keyof NatfDprpHooks)[];
type UnlistedNatfHook = Exclude<keyof NatfDprpHooks, (typeof NATF_DPRP_HOOK_NAMES)[number]>;
/** Fails to compile when a hook of NatfDprpHooks is missing from NATF_DPRP_HOOK_NAMES. */
export const NATF_DPRP_HOOKS_ALL_LISTED: [UnlistedNatfHook] extends [never] ? true : never = true;
