/**
 * Memory back to baseline after a burst (issue 11 item 3). A flood of punted
 * packets (new flows from a non-member, a DDE storm) makes V8 grow its heap
 * and glibc its arenas; both keep the pages after the burst, so the agent's
 * RSS stayed at twice its baseline long after the flood ended. When a burst
 * is over (the punt rate was at least `burstPerSec`, then stayed under
 * `quietPerSec` for `quietForMs`), this runs one full garbage collection and
 * glibc's malloc_trim(0), once per burst: a few milliseconds of work at a
 * moment the agent is idle, never during the burst itself. malloc_trim runs
 * once more `lateTrimMs` later: V8 frees the page metadata of the pages the
 * collection emptied from its background threads after the collection
 * returns, and those frees came after the first trim (bench/dprp-flood:
 * ~60 MB free in glibc's arenas, several of them still resident).
 *
 * A quiet ring is not yet the end of a burst: the flows a flood left in the
 * agent's tables (`held`: the parts' state on behalf of unauthenticated
 * peers, the stash) expire only after their short idle timeout, and their
 * memory freed after a relief stayed resident (bench/dprp-flood under load:
 * 1,736 flows still held at the relief, RSS +14.6 % 10 s after). So the
 * relief also waits until `held` is back within `heldFloor` of what it was
 * before the burst, at most `maxWaitMs` after the quiet began (a GE whose
 * peers keep it holding more is relieved anyway).
 * Pure apart from the injected gc/trim (test/unit/memory-relief.test.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * glibc's mmap threshold the agent pins at start (mallocMmapThreshold): every
 * block over 12 KiB gets its own mapping, returned to the kernel when it is
 * freed. V8's compiler zones and other such transient blocks, kept in the
 * arenas, left the few a burst kept alive pinning the pages around them,
 * which malloc_trim cannot give back (bench/dprp-flood, 50,000 flows/s x 10 s
 * twice: RSS 12 s after the floods +3.7..+4.7 % / +7.3..+8.3 % of the
 * baseline with glibc's 128 KiB; -3.1..-2.4 % / +0.4..+0.7 % with 8 or
 * 12 KiB). Not 8 KiB: Node's Buffer pool slabs (8 KiB + malloc's header)
 * would then each be a mapping, +30-40 us of system time per DPRP
 * negotiation; at 12 KiB they stay in the arenas (+10 us, within the
 * noise: docs/dprp.md "Bounds"). Pinned, the threshold also stops glibc
 * raising it each time a large block is freed.
 */
export const MALLOC_MMAP_THRESHOLD = 12 * 1024;

export interface MemoryReliefOptions {
  burstPerSec?: number;
  quietPerSec?: number;
  quietForMs?: number;
  /** The second malloc_trim, this long after the relief (0: none). */
  lateTrimMs?: number;
  now?: () => number;
  gc?: () => void;
  trim?: () => void;
  /** What the burst left in the agent's tables (records); the relief waits for it to drain. */
  held?: () => number;
  /** `held` at most this far above its value before the burst counts as drained (default 256). */
  heldFloor?: number;
  /** The longest the relief waits for `held` to drain once the punts are quiet (default 30 s). */
  maxWaitMs?: number;
  /** Called after each relief (the agent counts and logs it). */
  onRelief?: (info: { peakPerSec: number; held: number }) => void;
}

/**
 * The V8 full collection, obtained once without --expose-gc on the command
 * line: a major GC, then one that reduces the footprint as before a heap
 * snapshot (it also frees the ArrayBuffers the first one only finalised).
 */
export function v8FullGc(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (o?: { type?: string; execution?: string }) => void;
  return () => {
    // Compacting: a burst's survivors are spread thinly over the pages the burst
    // filled, and V8's own choice leaves most of those pages in place.
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
      try { gc({ type: 'major-snapshot', execution: 'sync' }); } catch { /* an older V8 without the option: the first GC did most of it */ }
    } finally { setFlagsFromString('--no-compact-on-every-full-gc'); }
  };
}

export class MemoryRelief {
  private count = 0;
  private windowStart: number;
  private peak = 0;
  private quietSince: number | null = null;
  private readonly burstPerSec: number;
  private readonly quietPerSec: number;
  private readonly quietForMs: number;
  private readonly lateTrimMs: number;
  private lateTrimAt: number | null = null;
  private heldBefore = 0;
  private readonly heldFloor: number;
  private readonly maxWaitMs: number;
  private readonly now: () => number;

  constructor(private readonly o: MemoryReliefOptions = {}) {
    this.burstPerSec = o.burstPerSec ?? 2_000;
    this.quietPerSec = o.quietPerSec ?? 100;
    this.quietForMs = o.quietForMs ?? 3_000;
    this.lateTrimMs = o.lateTrimMs ?? 2_000;
    this.heldFloor = o.heldFloor ?? 256;
    this.maxWaitMs = o.maxWaitMs ?? 30_000;
    this.now = o.now ?? Date.now;
    this.windowStart = this.now();
  }

  /** `n` punted records were handled. */
  note(n: number): void {
    this.count += n;
  }

  /** Call about once a second. Returns true when it relieved memory. */
  tick(): boolean {
    const t = this.now();
    if (this.lateTrimAt !== null && t >= this.lateTrimAt) {
      this.lateTrimAt = null;
      this.o.trim?.();
    }
    const ms = Math.max(1, t - this.windowStart);
    const rate = (this.count * 1000) / ms;
    this.count = 0;
    this.windowStart = t;
    const held = this.o.held?.() ?? 0;
    if (rate >= this.burstPerSec) {
      this.peak = Math.max(this.peak, rate);
      this.quietSince = null;
      return false;
    }
    if (this.peak === 0) {
      // Before any burst (or after its relief): what the GE holds in normal operation.
      this.heldBefore = held;
      return false;
    }
    if (rate >= this.quietPerSec) {
      this.quietSince = null;
      return false;
    }
    this.quietSince ??= t;
    if (t - this.quietSince < this.quietForMs) return false;
    const drained = held <= this.heldBefore + this.heldFloor;
    if (!drained && t - this.quietSince < this.maxWaitMs) return false;
    const peakPerSec = Math.round(this.peak);
    this.peak = 0;
    this.quietSince = null;
    this.o.gc?.();
    this.o.trim?.();
    if (this.lateTrimMs > 0) this.lateTrimAt = t + this.lateTrimMs;
    this.o.onRelief?.({ peakPerSec, held });
    return true;
  }
}
