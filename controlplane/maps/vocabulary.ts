/**
 * One vocabulary per concept, derived from the ABI's enums (abi.ts, mirrored
 * from bpf/include/gscip_abi.h): a concept's names are its enum's keys in
 * lower case, in the enum's order, and the conversions between names and
 * numbers are generated from the enum, here and nowhere else.
 *
 *   ACTIONS       enum gscip_action      none pass drop encrypt decrypt
 *   ROLES         enum gscip_role        none start intermediate end
 *   DIRS          enum gscip_dir         ingress egress
 *   MISS_ACTIONS  enum gscip_miss_action punt pass drop
 *   PIT_STATES    enum gscip_pit_state   static tentative confirmed
 *   XLAT_KINDS    enum gscip_xlat_kind   static cit vat nat
 *   NAT_ORIGINS   enum gscip_nat_origin  outbound inbound gsra
 *   PIT_WHYS      enum gscip_pit_why     none no_ge not_member closed encryption_required policy nat_checksum own_gms
 *
 * Every name the control plane shows or reads for these (CLI input and
 * output, JSON, config, metric labels, the flow table, DPRP's PIT entries) is
 * one of these. DPRP's wire vocabulary (`discard` for the ABI's `drop`) is the
 * protocol's own; its one mapping onto these names sits next to the wire codec
 * (dprp/wire.ts). test/unit/vocabulary.test.ts fails on a conversion table or
 * a name list written out anywhere else.
 */
import { Action, Dir, MissAction, NatOrigin, PIT_WHY_MASK, PIT_WHY_SHIFT, PitState, PitWhy, Role, XlatKind, enumName, enumValue } from './abi.js';

/** The names of an enum: its keys in lower case. */
export type NameOf<E extends Record<string, number>> = Lowercase<keyof E & string>;
/** The numbers of an enum. */
export type CodeOf<E extends Record<string, number>> = E[keyof E];

export interface Vocabulary<N extends string, C extends number> {
  /** Every name, in the enum's order. */
  readonly names: readonly N[];
  /** Whether `s` is one of the names (exact spelling). */
  is(s: unknown): s is N;
  /** Name -> number. */
  code(name: N): C;
  /** Number -> name; undefined for a number the ABI does not define. */
  name(code: number): N | undefined;
  /** Number -> name of a number known to be defined; throws RangeError otherwise. */
  of(code: number): N;
  /** For display: the name, or the number itself when the ABI does not define it. */
  label(code: number): string;
  /** Operator input, case-insensitive -> number; RangeError naming `what` and the accepted names. */
  parse(input: string, what: string): C;
}

/** The vocabulary of one enum (exported for DPRP's wire enums, dprp/wire.ts). */
export function vocabulary<E extends Record<string, number>>(e: E, what: string): Vocabulary<NameOf<E>, CodeOf<E>> {
  const names = Object.keys(e).map((k) => k.toLowerCase() as NameOf<E>);
  const byName = new Map<string, CodeOf<E>>(Object.entries(e).map(([k, v]) => [k.toLowerCase(), v as CodeOf<E>]));
  const byCode = new Map<number, NameOf<E>>(Object.entries(e).map(([k, v]) => [v, k.toLowerCase() as NameOf<E>]));
  return {
    names,
    is: (s: unknown): s is NameOf<E> => typeof s === 'string' && byName.has(s),
    code: (n) => {
      const c = byName.get(n);
      if (c === undefined) throw new RangeError(`${what}: no such name '${String(n)}'`);
      return c;
    },
    name: (c) => byCode.get(c),
    of: (c) => {
      const n = byCode.get(c);
      if (n === undefined) throw new RangeError(`${what}: no such value ${c}`);
      return n;
    },
    label: (c) => enumName(e, c),
    parse: (input, arg) => enumValue(e, input, arg),
  };
}

export const ACTIONS = vocabulary(Action, 'enum gscip_action');
export const ROLES = vocabulary(Role, 'enum gscip_role');
export const DIRS = vocabulary(Dir, 'enum gscip_dir');
export const MISS_ACTIONS = vocabulary(MissAction, 'enum gscip_miss_action');
export const PIT_STATES = vocabulary(PitState, 'enum gscip_pit_state');
export const XLAT_KINDS = vocabulary(XlatKind, 'enum gscip_xlat_kind');
export const PIT_WHYS = vocabulary(PitWhy, 'enum gscip_pit_why');
export const NAT_ORIGINS = vocabulary(NatOrigin, 'enum gscip_nat_origin');

/** Why a PIT entry is plaintext or a drop: 'none' | 'no_ge' | 'not_member' | 'closed' | 'encryption_required' | 'policy' | 'nat_checksum' | 'own_gms'. */
export type PitWhyName = NameOf<typeof PitWhy>;

/** The why of a gscip_pit_val.flags (bits 4-7); a number the ABI does not define reads as its label. */
export function pitWhyOf(flags: number): string {
  return PIT_WHYS.label((flags & PIT_WHY_MASK) >> PIT_WHY_SHIFT);
}

/** flags with its why bits set to `why` (the fast path's FIN/RST bits kept). */
export function withPitWhy(flags: number, why: PitWhyName): number {
  return (flags & ~PIT_WHY_MASK & 0xff) | (PIT_WHYS.code(why) << PIT_WHY_SHIFT);
}

/** A PIT entry's action by name: 'none' | 'pass' | 'drop' | 'encrypt' | 'decrypt'. */
export type ActionName = NameOf<typeof Action>;
/** What an entry a control plane writes does (every action but 'none'). */
export type EntryActionName = Exclude<ActionName, 'none'>;
/** 'none' | 'start' | 'intermediate' | 'end'. */
export type RoleName = NameOf<typeof Role>;
/** A GE's role on a negotiated path (every role but 'none', which marks static entries). */
export type PathRoleName = Exclude<RoleName, 'none'>;
/** 'ingress' | 'egress'. */
export type DirName = NameOf<typeof Dir>;
/** What an interface does with a PIT miss: 'punt' | 'pass' | 'drop'. */
export type MissActionName = NameOf<typeof MissAction>;
/** 'static' | 'tentative' | 'confirmed'. */
export type PitStateName = NameOf<typeof PitState>;
/** 'static' | 'cit' | 'vat' | 'nat'. */
export type XlatKindName = NameOf<typeof XlatKind>;

/** Every action an entry can take, in the enum's order: pass, drop, encrypt, decrypt. */
export const ENTRY_ACTION_NAMES: readonly EntryActionName[] = ACTIONS.names.filter((n): n is EntryActionName => n !== 'none');

/** The names of a vocabulary as a non-empty tuple (what zod's `z.enum` wants). */
export function nameTuple<N extends string>(v: Vocabulary<N, number>): [N, ...N[]] {
  const [first, ...rest] = v.names;
  return [first, ...rest];
}
