/**
 * What every part's handler hands its pure engine from the agent: the clocks
 * (wall, and monotonic from the punt context's kernel clock, the one PIT ages
 * use) and timers that never take the agent down (a throwing callback is
 * caught and logged by the handler's guard), unref'd so they never keep the
 * process alive.
 */
import type { PuntContext } from './handler.js';

export interface PartClock { nowMs(): number; monoMs(): number }
export interface PartTimers { after(ms: number, fn: () => void): { cancel(): void } }

export function partClock(ctx: Pick<PuntContext, 'nowNs'>): PartClock {
  return { nowMs: () => Date.now(), monoMs: () => Number(ctx.nowNs() / 1_000_000n) };
}

/** Timers whose callbacks run through `guard` (the handler's catch-and-log). */
export function guardedTimers(guard: (what: string, fn: () => void) => void): PartTimers {
  return {
    after: (ms, fn) => {
      const t = setTimeout(() => guard('timer', fn), ms);
      t.unref();
      return { cancel: () => clearTimeout(t) };
    },
  };
}
