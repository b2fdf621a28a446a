/**
 * The NRT (Name Relation Table) of an initiating GE (SPEC section 2 and 6):
 * {host name, real address (a GNAT's), virtual address handed to the
 * application}, with virtual addresses from a bounded pool (198.18.0.0/15 by
 * default), one per (name, real address), kept as long as answers keep
 * coming and expired `lifetimeS` after the last one; and the rewrite of a DNS
 * answer (dns-answer.ts) against it: every A record naming a GNAT gets its
 * virtual address and a TTL no longer than the entry's remaining life; an
 * exhausted pool turns the answer into SERVFAIL (a prompt failure for the
 * application, counted), never an answer with the real address of a NAT the
 * application cannot reach through. Pure: clock injected.
 *
 * Not built: who calls it (the DNS interception), the VAT it feeds, the
 * extended DPRP (docs/natf.md "What is not built yet").
 */
import { parseAnswer, patchAnswer, servfail, type Rewrite } from './dns-answer.js';

export interface NrtEntry { name: string; real: string; virtual: string; expiresMs: number }

function ipToInt(a: string): number { return a.split('.').reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0); }
function intToIp(n: number): string { return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.'); }

export interface NrtOptions {
  /** The virtual prefix (default 198.18.0.0/15). */
  pool?: { base: string; length: number };
  /** How long an entry lives after the last answer that used it. */
  lifetimeS: number;
  /** At most this many entries (default: the pool's size). */
  maxEntries?: number;
  /** A virtual address live flows still use (the VAT): never handed to another name, even after its entry expired. */
  inUse?: (virtual: string) => boolean;
}

export type RewriteOutcome =
  | { kind: 'untouched' }                       // no A record names a GNAT
  | { kind: 'rewritten'; message: Buffer; entries: NrtEntry[] }
  | { kind: 'refused'; message: Buffer; reason: 'pool_exhausted' };

export class Nrt {
  private readonly byKey = new Map<string, NrtEntry>();
  private readonly byVirtual = new Map<string, NrtEntry>();
  private readonly base: number;
  private readonly size: number;
  private readonly max: number;
  private cursor = 0;

  constructor(private readonly o: NrtOptions, private readonly nowMs: () => number) {
    const pool = o.pool ?? { base: '198.18.0.0', length: 15 };
    this.base = ipToInt(pool.base);
    this.size = 2 ** (32 - pool.length);
    this.max = Math.min(o.maxEntries ?? this.size, this.size);
  }

  count(): number { return this.byKey.size; }
  entries(): NrtEntry[] { return [...this.byKey.values()]; }
  lookupVirtual(v: string): NrtEntry | undefined {
    const e = this.byVirtual.get(v);
    return e && e.expiresMs > this.nowMs() ? e : undefined;
  }

  /**
   * Takes back an entry a previous agent published (tables-file.ts), so an
   * application that kept the virtual address reaches the same name after an
   * agent restart. Refused (false) when it is outside the pool, already past
   * its life, or its address or (name, GNAT) is taken.
   */
  restore(e: NrtEntry): boolean {
    const n = ipToInt(e.virtual);
    if (((n - this.base) >>> 0) >= this.size || e.expiresMs <= this.nowMs() || this.byKey.size >= this.max) return false;
    const key = `${e.name}|${e.real}`;
    if (this.byKey.has(key) || this.byVirtual.has(e.virtual)) return false;
    const x = { ...e };
    this.byKey.set(key, x);
    this.byVirtual.set(e.virtual, x);
    return true;
  }

  /** Remove entries past their life; returns how many. */
  expire(): number {
    const now = this.nowMs();
    let n = 0;
    for (const [k, e] of this.byKey) if (e.expiresMs <= now) { this.byKey.delete(k); this.byVirtual.delete(e.virtual); n++; }
    return n;
  }

  /** The entry of (name, real), made or refreshed; null when the pool is exhausted. */
  bind(name: string, real: string): NrtEntry | null {
    const now = this.nowMs();
    const key = `${name}|${real}`;
    const had = this.byKey.get(key);
    if (had && had.expiresMs > now) { had.expiresMs = now + this.o.lifetimeS * 1000; return had; }
    if (had) { this.byKey.delete(key); this.byVirtual.delete(had.virtual); }
    if (this.byKey.size >= this.max) { this.expire(); if (this.byKey.size >= this.max) return null; }
    for (let i = 0; i < this.size; i++) {
      const n = (this.base + ((this.cursor + i) % this.size)) >>> 0;
      if ((n & 0xff) === 0 || (n & 0xff) === 0xff) continue;  // no .0 or .255 handed to an application
      const v = intToIp(n);
      const old = this.byVirtual.get(v);
      if (old && old.expiresMs > now) continue;
      if (this.o.inUse?.(v)) continue;
      if (old) { this.byVirtual.delete(v); this.byKey.delete(`${old.name}|${old.real}`); }
      this.cursor = (this.cursor + i + 1) % this.size;
      const e: NrtEntry = { name, real, virtual: v, expiresMs: now + this.o.lifetimeS * 1000 };
      this.byKey.set(key, e);
      this.byVirtual.set(v, e);
      return e;
    }
    return null;
  }

  /**
   * Rewrite one DNS response: A records whose address is in `gnats` get the
   * virtual address of (question name, that address). Throws DnsFormatError
   * on a message it cannot read (the caller passes it on untouched, counted).
   */
  rewrite(message: Buffer, gnats: ReadonlySet<string>): RewriteOutcome {
    const ans = parseAnswer(message);
    const hits = ans.a.map((r, index) => ({ r, index })).filter((x) => gnats.has(x.r.address));
    if (!hits.length) return { kind: 'untouched' };
    const rewrites: Rewrite[] = [];
    const entries: NrtEntry[] = [];
    const now = this.nowMs();
    for (const { r, index } of hits) {
      const e = this.bind(ans.qname, r.address);
      if (!e) return { kind: 'refused', message: servfail(message, ans.questionEnd), reason: 'pool_exhausted' };
      const life = Math.max(0, Math.floor((e.expiresMs - now) / 1000));
      rewrites.push({ index, address: e.virtual, ttl: Math.min(r.ttl, life) });
      entries.push(e);
    }
    return { kind: 'rewritten', message: patchAnswer(message, ans, rewrites), entries };
  }
}
