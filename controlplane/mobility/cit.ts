/**
 * The CIT (Connection ID Table) of one end of a moved flow, as flow-table
 * entries: XLAT entries of kind `cit` between the stack view (what the sockets
 * see: the flow's original addresses) and the wire view (the mover's new
 * address), and the flow's PIT entries re-keyed to the wire view. The table of
 * SEEDS-mobility-natf-gsra.md 1.3, with the flow A:x <-> B:y and B moved to C:
 *
 *   stationary (A)  egress  A:x>B:y -> A:x>C:y  (dst B->C)   ingress C:y>A:x -> B:y>A:x  (src C->B)
 *   mover      (B)  egress  B:y>A:x -> C:y>A:x  (src B->C)   ingress A:x>C:y -> A:x>B:y  (dst C->B)
 *
 * Both ends moved at once (A to E as well): each end rewrites both addresses,
 * e.g. at A egress A:x>B:y -> E:x>C:y, ingress C:y>E:x -> B:y>A:x.
 *
 * Always computed from the stack view, so a flow that moves again re-points
 * its CIT (one translation, never a chain) and a flow back on its original
 * address has no CIT at all. The PIT entries keep their action, group, key
 * version, role and state: the fast path looks them up on the wire CID, after
 * egress translation and before ingress translation, so PCCOM's keyed checksum
 * covers the wire addresses on both ends. Pure.
 */
import type { FiveTuple } from '../flows/cid.js';
import type { XlatEntry } from '../flows/flow-maps.js';
import type { PitEntry } from '../flows/pit-entry.js';
import type { AddrPort } from './cu-wire.js';

/** Which ends of the flow are off their original address: this one, the peer, or both (both moved at once). */
export type MoveEnd = 'mover' | 'stationary' | 'both';

/** A flow as this end's sockets see it. */
export interface StackFlow {
  local: AddrPort;
  remote: AddrPort;
  proto: number;
}

/** What a PIT entry of the flow holds besides its slot (copied onto the re-keyed slots). */
export type PitTemplate = Omit<PitEntry, 'flow' | 'dir'>;

export interface CitEntries {
  /** The flow's wire CID, forward = this end's egress. */
  wire: FiveTuple;
  pit: PitEntry[];
  xlat: XlatEntry[];
}

function tuple(s: AddrPort, d: AddrPort, proto: number): FiveTuple {
  return { saddr: s.addr, sport: s.port, daddr: d.addr, dport: d.port, proto };
}

export function sameAddrPort(a: AddrPort, b: AddrPort): boolean {
  return a.addr === b.addr && a.port === b.port;
}

/**
 * The entries of `end` for `flow` (stack view) whose moving side is now on the
 * wire at `next`. `egress`/`ingress`: the values of the flow's PIT entries.
 */
export function citEntries(end: 'mover' | 'stationary', flow: StackFlow, next: AddrPort, egress: PitTemplate, ingress: PitTemplate): CitEntries {
  return citBetween(flow, end === 'mover' ? next : flow.local, end === 'mover' ? flow.remote : next, egress, ingress);
}

/**
 * The entries for `flow` (stack view) whose ends are on the wire at
 * `wireLocal` (this end) and `wireRemote` (the peer): one translation for
 * whatever moved, either end or both (both ends moved at once: egress
 * rewrites source and destination). Nothing moved: no XLAT entries.
 */
export function citBetween(flow: StackFlow, wireLocal: AddrPort, wireRemote: AddrPort, egress: PitTemplate, ingress: PitTemplate): CitEntries {
  const stackOut = tuple(flow.local, flow.remote, flow.proto);
  const stackIn = tuple(flow.remote, flow.local, flow.proto);
  const wireOut = tuple(wireLocal, wireRemote, flow.proto);
  const wireIn = tuple(wireRemote, wireLocal, flow.proto);
  const pit: PitEntry[] = [{ ...egress, flow: wireOut, dir: 'egress' }, { ...ingress, flow: wireIn, dir: 'ingress' }];
  const moved = !sameAddrPort(wireLocal, flow.local) || !sameAddrPort(wireRemote, flow.remote);
  const xlat: XlatEntry[] = moved
    ? [
      { flow: stackOut, dir: 'egress', to: strip(wireOut), kind: 'cit' },
      { flow: wireIn, dir: 'ingress', to: strip(stackIn), kind: 'cit' },
    ]
    : [];
  return { wire: wireOut, pit, xlat };
}

/** Which end is off its original address (undefined: neither). */
export function endOf(flow: StackFlow, wireLocal: AddrPort, wireRemote: AddrPort): MoveEnd | undefined {
  const l = !sameAddrPort(wireLocal, flow.local);
  const r = !sameAddrPort(wireRemote, flow.remote);
  return l && r ? 'both' : l ? 'mover' : r ? 'stationary' : undefined;
}

function strip(t: FiveTuple): XlatEntry['to'] {
  return { saddr: t.saddr, daddr: t.daddr, sport: t.sport, dport: t.dport };
}

/** The identity key of a flow on one end (stack view, this end first). */
export function stackFlowKey(f: StackFlow): string {
  return `${f.proto}/${f.local.addr}:${f.local.port}>${f.remote.addr}:${f.remote.port}`;
}
