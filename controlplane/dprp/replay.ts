/**
 * Replay protection for DPRP messages: a timestamp window plus a bounded cache
 * of messages already accepted. When the cache is full the oldest entry is
 * evicted and the acceptance floor rises to its timestamp, so an evicted
 * message can never be accepted again (it is then "stale" instead of "replay").
 */
export type ReplayVerdict = 'ok' | 'replay' | 'stale' | 'future';

export interface ReplayCacheOptions {
  /** Accept messages whose timestamp is within this many ms of our clock. */
  windowMs: number;
  /** Bound on remembered messages. */
  maxEntries: number;
}

export const DEFAULT_REPLAY: ReplayCacheOptions = { windowMs: 30_000, maxEntries: 65_536 };

export class ReplayCache {
  /** key -> timestamp; Map keeps insertion order, which is what we evict by. */
  private seen = new Map<string, number>();
  private floorMs = 0;

  constructor(private readonly opts: ReplayCacheOptions = DEFAULT_REPLAY) {
    if (!(opts.windowMs > 0) || !(opts.maxEntries > 0)) throw new RangeError('ReplayCache: windowMs and maxEntries must be > 0');
  }

  /** Checks without remembering (call before the costlier authentication). */
  check(key: string, timestampMs: number, nowMs: number): ReplayVerdict {
    if (timestampMs > nowMs + this.opts.windowMs) return 'future';
    if (timestampMs < nowMs - this.opts.windowMs || timestampMs <= this.floorMs) return 'stale';
    if (this.seen.has(key)) return 'replay';
    return 'ok';
  }

  /** Checks and, if ok, remembers. Call after the message authenticated. */
  accept(key: string, timestampMs: number, nowMs: number): ReplayVerdict {
    const v = this.check(key, timestampMs, nowMs);
    if (v !== 'ok') return v;
    this.seen.set(key, timestampMs);
    this.prune(nowMs);
    return 'ok';
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowMs: number): void {
    // Entries older than the window are rejected as stale anyway.
    for (const [k, ts] of this.seen) {
      if (ts >= nowMs - this.opts.windowMs && this.seen.size <= this.opts.maxEntries) break;
      this.seen.delete(k);
      if (ts > this.floorMs && ts >= nowMs - this.opts.windowMs) this.floorMs = ts;
    }
  }
}
