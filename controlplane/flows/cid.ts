/**
 * The vocabulary of a flow's keys, shared by the flow table and every part
 * that writes PIT/XLAT entries: a 5-tuple as the fast path sees it at one
 * interface, its direction, and the string keys the control plane indexes
 * them by. Pure; no runtime imports, so any part can use it without a cycle.
 */
import type { DirName } from '../maps/vocabulary.js';

/** A CID without its direction: addresses dotted, ports in host order. */
export interface FiveTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
}

/** The hook a PIT/XLAT entry is looked up on (the ABI's `enum gscip_dir`, by name): 'ingress' | 'egress'. */
export type PitDir = DirName;

/** What keys one PIT (or XLAT) entry: the CID as on the wire at the interface, plus direction. */
export interface MapSlot {
  flow: FiveTuple;
  dir: PitDir;
}

export function reverseFlow<F extends FiveTuple>(f: F): FiveTuple {
  return { saddr: f.daddr, daddr: f.saddr, sport: f.dport, dport: f.sport, proto: f.proto };
}

/** Directed key of a flow. */
export function flowKey(f: FiveTuple): string {
  return `${f.proto}/${f.saddr}:${f.sport}>${f.daddr}:${f.dport}`;
}

/** Same string for a flow and its reverse. */
export function canonicalFlowKey(f: FiveTuple): string {
  const a = `${f.saddr}:${f.sport}`;
  const b = `${f.daddr}:${f.dport}`;
  return a <= b ? `${f.proto}/${a}|${b}` : `${f.proto}/${b}|${a}`;
}

/** Key of one map slot (flow and direction). */
export function slotKey(e: MapSlot): string {
  return `${flowKey(e.flow)}@${e.dir}`;
}

export function sameFiveTuple(a: FiveTuple, b: FiveTuple): boolean {
  return a.saddr === b.saddr && a.daddr === b.daddr && a.sport === b.sport && a.dport === b.dport && a.proto === b.proto;
}
