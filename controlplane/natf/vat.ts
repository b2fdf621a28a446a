/**
 * The VAT (Virtual Address Table) of a NAT-f initiator: per flow to a virtual
 * address, the two XLAT entries (kind `vat`) that make the application's view
 * (G1:X <-> V1:Y) the wire's (G1:X <-> G2:Z):
 *
 *   egress  key G1:X -> V1:Y (stack view)  value G1:X -> G2:Z (wire view)
 *   ingress key G2:Z -> G1:X (wire view)   value V1:Y -> G1:X (stack view)
 *
 * The fast path's XLAT stage applies them (egress before the PIT, ingress
 * after it: bpf/lib/xlat.h), checksums updated incrementally, so PCCOM is
 * computed over the wire addresses on both ends. Written before the flow's
 * PIT entries (DPRP's start role calls `add` first); removed when the flow's
 * PIT entries are gone (DPRP expired the flow), by `sweep`.
 */
import { Dir, XlatKind } from '../maps/abi.js';
import type { Cid, PitVal, XlatVal } from '../maps/codecs.js';
import type { Flow } from '../dprp/wire.js';

export interface VatMaps {
  xlat: { set(k: Cid, v: XlatVal): void; delete(k: Cid): unknown; entries?(): Iterable<[Cid, XlatVal]> };
  pit: { get(k: Cid): PitVal | undefined };
}

export interface VatFlow { stack: Flow; wire: Flow; createdMs: number }

const cid = (f: Flow, dir: number): Cid => ({ saddr: f.saddr, daddr: f.daddr, sport: f.sport, dport: f.dport, proto: f.proto, dir });
const rev = (f: Flow): Flow => ({ saddr: f.daddr, daddr: f.saddr, sport: f.dport, dport: f.sport, proto: f.proto });
const key = (f: Flow): string => `${f.proto}:${f.saddr}:${f.sport}>${f.daddr}:${f.dport}`;

export class VatTable {
  private readonly flows = new Map<string, VatFlow>();
  /** Live flows per virtual address. */
  private readonly perVirtual = new Map<string, number>();
  private count(v: string, d: number): void {
    const n = (this.perVirtual.get(v) ?? 0) + d;
    if (n > 0) this.perVirtual.set(v, n); else this.perVirtual.delete(v);
  }

  constructor(private readonly maps: VatMaps, private readonly nowNs: () => bigint, private readonly nowMs: () => number = Date.now) {}

  get size(): number { return this.flows.size; }
  entries(): VatFlow[] { return [...this.flows.values()]; }

  /** The application's flow `stack` (G1:X -> V1:Y) travels as `wire` (G1:X -> G2:Z). */
  add(stack: Flow, wire: Flow): void {
    const now = this.nowNs();
    const w = (f: Flow): XlatVal => ({ saddr: f.saddr, daddr: f.daddr, sport: f.sport, dport: f.dport, kind: XlatKind.VAT, created_ns: now });
    this.maps.xlat.set(cid(stack, Dir.EGRESS), w(wire));
    this.maps.xlat.set(cid(rev(wire), Dir.INGRESS), w(rev(stack)));
    if (!this.flows.has(key(stack))) this.count(stack.daddr, 1);
    this.flows.set(key(stack), { stack, wire, createdMs: this.nowMs() });
  }

  /**
   * A restarted agent takes over the VAT entries a previous one left in the
   * pinned XLAT map (their flows kept working meanwhile), so they are swept
   * when their flows end. `entries`: the map's (key, value) pairs; returns how
   * many flows were adopted.
   */
  adopt(entries: Iterable<[Cid, XlatVal]>): number {
    let n = 0;
    for (const [k, v] of entries) {
      if (v.kind !== XlatKind.VAT || k.dir !== Dir.EGRESS) continue;
      const stack: Flow = { saddr: k.saddr, daddr: k.daddr, sport: k.sport, dport: k.dport, proto: k.proto };
      if (this.flows.has(key(stack))) continue;
      this.flows.set(key(stack), { stack, wire: { saddr: v.saddr, daddr: v.daddr, sport: v.sport, dport: v.dport, proto: k.proto }, createdMs: this.nowMs() });
      this.count(stack.daddr, 1);
      n++;
    }
    return n;
  }

  /** Removes the translations of flows whose PIT entries (either direction) are gone. Returns how many. */
  sweep(): number {
    let n = 0;
    for (const [k, f] of this.flows) {
      if (this.maps.pit.get(cid(f.wire, Dir.EGRESS)) || this.maps.pit.get(cid(rev(f.wire), Dir.INGRESS))) continue;
      this.maps.xlat.delete(cid(f.stack, Dir.EGRESS));
      this.maps.xlat.delete(cid(rev(f.wire), Dir.INGRESS));
      this.flows.delete(k);
      this.count(f.stack.daddr, -1);
      n++;
    }
    return n;
  }

  /** Whether a live flow uses the virtual address (its NRT entry must not be handed to another name). */
  uses(virtual: string): boolean {
    return this.perVirtual.has(virtual);
  }
}
