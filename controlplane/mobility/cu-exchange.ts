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

export interface ExchangeCallbacks {
  send(attempt: number): void;
  answered(attempts: number): void;
  failed(attempts: number): void;
}

export class CuExchanges {
  private readonly open = new Map<string, { attempts: number; timer: { cancel(): void } | null; cb: ExchangeCallbacks; kicked: boolean }>();

  constructor(private readonly timers: Timers, private readonly schedule: readonly number[] = CU_RETRY_MS) {}

  get pending(): number {
    return this.open.size;
  }

  /** Sends now and keeps re-sending until `ack(id)` or the schedule ends. */
  start(id: string, cb: ExchangeCallbacks): void {
    this.cancel(id);
    const x = { attempts: 0, timer: null as { cancel(): void } | null, cb, kicked: false };
    this.open.set(id, x);
    const fire = (): void => {
      if (this.open.get(id) !== x) return;
      x.attempts++;
      cb.send(x.attempts);
      const base = this.schedule[x.attempts - 1];
      const k = retryStretch(this.open.size);
      if (base === undefined) {
        x.timer = this.timers.after((this.schedule.at(-1) ?? 0) * k, () => {
          if (this.open.get(id) !== x) return;
          this.open.delete(id);
          cb.failed(x.attempts);
        });
        return;
      }
      x.timer = this.timers.after(base * k, fire);
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
