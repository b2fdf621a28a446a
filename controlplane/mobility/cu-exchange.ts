/**
 * The CU exchange of the mover: each CU is sent, and sent again on a bounded
 * backoff until its CU-ACK comes (answered) or the schedule runs out (failed).
 * One exchange per CU id; a CU carries up to CU_MAX_ENTRIES flows of one peer.
 * Pure: timers injected.
 */
export interface Timers {
  after(ms: number, fn: () => void): { cancel(): void };
}

/**
 * Delays before each re-send, ms: 8 sends over ~3.2 s, then the exchange
 * fails. Short at first: right after a move the first CU often leaves before
 * the new route or the new router's neighbour entry exists.
 */
export const CU_RETRY_MS: readonly number[] = [25, 50, 100, 200, 400, 800, 1600];

/**
 * With many exchanges open at once (a GE with many flows moved: one CU per 32
 * flows and peer) the peers answer them in turn, so each re-send waits
 * longer: the delays are stretched by open / RETRY_STRETCH_PER (at least 1,
 * at most RETRY_STRETCH_MAX). 400 CUs at the plain schedule were sent 1,729
 * times, each duplicate a MAC check and an answer more at the peer.
 */
export const RETRY_STRETCH_PER = 8;
export const RETRY_STRETCH_MAX = 8;

export function retryStretch(open: number): number {
  return Math.min(RETRY_STRETCH_MAX, Math.max(1, open / RETRY_STRETCH_PER));
}

/**
 * A re-send (or the give-up) of an exchange the peer has not reached yet is
 * put off while answers keep coming: the peer answers CUs in the order they
 * came, so while answers to CUs sent before this one arrive (the last one
 * less than the exchange's current delay ago) and none to a CU sent after it,
 * the peer is still working through the CUs ahead of it, and a duplicate
 * would only queue behind them (each a MAC check and an answer more there).
 * At most POSTPONE_MAX times per exchange (bounded: a peer that keeps
 * answering others but lost this one re-sends it after that). The order is
 * this end's over all its exchanges: one peer's answers come in order; for
 * CUs to different peers it is a guess, wrong only in delaying a re-send
 * while other answers keep coming.
 */
export const POSTPONE_MAX = 16;

/**
 * A re-send timer that fires this much later than it was due (the event loop
 * was busy, e.g. writing a large move's flows) is looked at again once after
 * the loop's next poll: the answers that came meanwhile are read first (the
 * timers of a loop turn run before its I/O), so a CU answered while this end
 * was busy is not sent again.
 */
export const LATE_MS = 10;

export interface ExchangeCallbacks {
  send(attempt: number): void;
  answered(attempts: number): void;
  failed(attempts: number): void;
}

interface Open { attempts: number; timer: { cancel(): void } | null; cb: ExchangeCallbacks; kicked: boolean; order: number; postponed: number }

export class CuExchanges {
  private readonly open = new Map<string, Open>();
  /** First-send order of the exchanges; the highest order answered and when (monotonic ms). */
  private sent = 0;
  private reached = 0;
  private answeredAtMs = -Infinity;
  private postponedTotal = 0;

  /** `nowMs`: a monotonic clock (absent: re-sends are never put off). */
  constructor(private readonly timers: Timers, private readonly schedule: readonly number[] = CU_RETRY_MS, private readonly nowMs?: () => number) {}

  get pending(): number {
    return this.open.size;
  }

  /** Re-sends put off so far because the peer had not reached the CU yet (POSTPONE_MAX). */
  get postponed(): number {
    return this.postponedTotal;
  }

  /** Whether `x`'s re-send (or give-up), due after `delay` ms, should wait: answers still coming, none to it or a later CU. */
  private notReached(x: Open, delay: number): boolean {
    if (!this.nowMs || x.postponed >= POSTPONE_MAX || x.order <= this.reached) return false;
    return this.nowMs() - this.answeredAtMs < delay;
  }

  /** Sends now and keeps re-sending until `ack(id)` or the schedule ends. */
  start(id: string, cb: ExchangeCallbacks): void {
    this.cancel(id);
    const x: Open = { attempts: 0, timer: null, cb, kicked: false, order: ++this.sent, postponed: 0 };
    this.open.set(id, x);
    // Runs `fn` after `delay`, or later while the peer has not reached this CU (notReached).
    const after = (delay: number, fn: () => void): void => {
      const due = this.nowMs ? this.nowMs() + delay : 0;
      x.timer = this.timers.after(delay, () => {
        if (this.open.get(id) !== x) return;
        if (this.nowMs && this.nowMs() - due > LATE_MS) {
          // Late: once more after the answers waiting now were read (they may include this one's).
          x.timer = this.timers.after(0, () => { if (this.open.get(id) === x) decide(); });
          return;
        }
        decide();
      });
      const decide = (): void => {
        if (this.notReached(x, delay)) {
          x.postponed++;
          this.postponedTotal++;
          after(delay, fn);
          return;
        }
        fn();
      };
    };
    const fire = (): void => {
      x.attempts++;
      cb.send(x.attempts);
      const base = this.schedule[x.attempts - 1];
      const k = retryStretch(this.open.size);
      if (base === undefined) {
        after((this.schedule.at(-1) ?? 0) * k, () => {
          this.open.delete(id);
          cb.failed(x.attempts);
        });
        return;
      }
      after(base * k, fire);
    };
    fire();
  }

  /**
   * Re-sends every open exchange now, once per exchange (a new route appeared:
   * the path the CU needs may exist now). The kick counts as one of the
   * schedule's sends, so the exchange stays bounded. Returns how many were re-sent.
   */
  kick(): number {
    let n = 0;
    for (const x of this.open.values()) {
      if (x.kicked) continue;
      x.kicked = true;
      x.attempts++;
      x.cb.send(x.attempts);
      n++;
    }
    return n;
  }

  /** The CU-ACK of `id` came; false if no such exchange is open (late, duplicate, or never sent). */
  ack(id: string): boolean {
    const x = this.open.get(id);
    if (!x) return false;
    x.timer?.cancel();
    this.open.delete(id);
    if (x.order > this.reached) this.reached = x.order;
    if (this.nowMs) this.answeredAtMs = this.nowMs();
    x.cb.answered(x.attempts);
    return true;
  }

  cancel(id: string): void {
    const x = this.open.get(id);
    if (!x) return;
    x.timer?.cancel();
    this.open.delete(id);
  }

  close(): void {
    for (const id of [...this.open.keys()]) this.cancel(id);
  }
}
