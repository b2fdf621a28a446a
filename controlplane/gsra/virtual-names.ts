/**
 * IN names and their virtual addresses (VIN) on the EN (seed 004 section
 * 3.2 step 1: the EN resolves the IN's name, gets GGR, and its kernel
 * rewrites the answer to a VIN). The DNS interception that does this on a
 * GE belongs to NAT-f (docs/natf.md, NRT; being built in its own branch):
 * until it lands, GSRA takes VINs through this table, which the GSRA part's
 * config or CLI fill (`register`) or which hands out the next free one
 * (`resolve`). When NAT-f's NRT rewrites an answer, it calls `register`
 * with the name, the router (GGR) and the VIN it chose: one table, no
 * second allocator. Addresses from 198.18.0.0/15 (RFC 2544, the project's
 * virtual range), bounded.
 */
import { readIpv4, writeIpv4 } from '../dprp/ipv4.js';

export interface VirtualName { name: string; vin: string; ggr: string }

const BASE = 0xc6120000; // 198.18.0.0
const SIZE = 1 << 17;    // /15

function toAddr(n: number): string { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return readIpv4(b, 0); }
function toNum(a: string): number { const b = Buffer.alloc(4); writeIpv4(b, 0, a, 'VIN'); return b.readUInt32BE(0); }

export function isVirtual(addr: string): boolean {
  try { const n = toNum(addr); return n >= BASE && n < BASE + SIZE; } catch { return false; }
}

export class VirtualNames {
  private readonly byName = new Map<string, VirtualName>();
  private readonly byVin = new Map<string, VirtualName>();
  private next = 1;

  constructor(readonly max = 4096) {}

  /** Record name -> VIN behind router GGR (NAT-f's NRT, the config, the CLI). */
  register(name: string, vin: string, ggr: string): VirtualName {
    const n = name.toLowerCase().replace(/\.$/, '');
    if (!isVirtual(vin)) throw new RangeError(`VIN ${vin} is not in 198.18.0.0/15`);
    const other = this.byVin.get(vin);
    if (other && other.name !== n) throw new RangeError(`VIN ${vin} is already ${other.name}`);
    if (!this.byName.has(n) && this.byName.size >= this.max) throw new RangeError(`virtual names: table full (${this.max})`);
    const old = this.byName.get(n);
    if (old) this.byVin.delete(old.vin);
    const e = { name: n, vin, ggr };
    this.byName.set(n, e);
    this.byVin.set(vin, e);
    return e;
  }

  /** The VIN of `name` behind `ggr`, allocating the next free one the first time. */
  resolve(name: string, ggr: string): VirtualName {
    const have = this.byName.get(name.toLowerCase().replace(/\.$/, ''));
    if (have && have.ggr === ggr) return have;
    for (let i = 0; i < SIZE - 2; i++) {
      const vin = toAddr(BASE + this.next);
      this.next = this.next >= SIZE - 2 ? 1 : this.next + 1;
      if (!this.byVin.has(vin)) return this.register(name, vin, ggr);
    }
    throw new RangeError('virtual names: no free VIN');
  }

  byAddress(vin: string): VirtualName | undefined { return this.byVin.get(vin); }
  list(): VirtualName[] { return [...this.byName.values()]; }
}
