/**
 * Token buckets keyed by address, in a bounded table: what keeps a GE from
 * being an amplifier or a reflector (issue 11 items 3 and 4). The start role
 * limits the DDEs it sends per destination; the end role limits the RGIs it
 * answers per source (the DDE's packet source, which the node checked equals
 * the start GE it names).
 *
 * Contract: `take(key, now)` spends one token of key's bucket (burst tokens,
 * refilled at ratePerSec) and says 'ok', or refuses: 'limited' (the bucket is
 * empty) or 'full' (a new key, and the table holds maxKeys buckets none of
 * which is idle enough to be forgotten). The caller counts each refusal. A
 * bucket refilled to the brim carries no information and may be dropped; the
 * table is pruned of those at most every pruneEveryMs, so a flood of new keys
 * costs O(1) per refusal, not a scan. Pure: the clock is the caller's (ms).
 */
export interface RateLimit {
  /** Tokens a key may spend at once. */
  burst: number;
  /** Tokens per second a key earns back. */
  ratePerSec: number;
  /** Keys tracked at most (the table's bound). */
  maxKeys: number;
}

export type TakeVerdict = 'ok' | 'limited' | 'full';

interface Bucket { tokens: number; atMs: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastPruneMs = -Infinity;
  /** Least time between two prunes of a full table. */
  static readonly pruneEveryMs = 100;

  constructor(readonly limit: RateLimit) {}

  get size(): number {
    return this.buckets.size;
  }

  private refill(b: Bucket, now: number): void {
    if (now > b.atMs) {
      b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.atMs) * this.limit.ratePerSec) / 1000);
      b.atMs = now;
    }
  }

  take(key: string, now: number): TakeVerdict {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.limit.maxKeys && !this.prune(now)) return 'full';
      b = { tokens: this.limit.burst, atMs: now };
      this.buckets.set(key, b);
    }
    this.refill(b, now);
    if (b.tokens < 1) return 'limited';
    b.tokens -= 1;
    return 'ok';
  }

  /** Drops buckets that refilled to the brim; whether room was made. */
  prune(now: number): boolean {
    if (now - this.lastPruneMs < RateLimiter.pruneEveryMs) return false;
    this.lastPruneMs = now;
    for (const [k, b] of this.buckets) {
      this.refill(b, now);
      if (b.tokens >= this.limit.burst) this.buckets.delete(k);
    }
    return this.buckets.size < this.limit.maxKeys;
  }
}
