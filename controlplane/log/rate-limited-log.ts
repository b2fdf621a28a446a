/**
 * Log lines that an attacker or a busy network could otherwise turn into a
 * flood: at most one line per key per `perKeyMs`, and at most `maxPerWindow`
 * lines per `windowMs` overall. What is held back is counted and reported
 * with the next line that gets through (`suppressed`), so nothing is hidden,
 * only summarized. Bounded: at most `maxKeys` keys are remembered (the oldest
 * are forgotten first). Clock injected for tests.
 */
export interface RateLimitedLogOptions {
  perKeyMs?: number;
  windowMs?: number;
  maxPerWindow?: number;
  maxKeys?: number;
  now?: () => number;
}

export class RateLimitedLog {
  private readonly last = new Map<string, number>();
  private windowStart = 0;
  private inWindow = 0;
  private held = 0;
  private readonly perKeyMs: number;
  private readonly windowMs: number;
  private readonly maxPerWindow: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly emit: (fields: Record<string, unknown>, msg: string) => void, o: RateLimitedLogOptions = {}) {
    this.perKeyMs = o.perKeyMs ?? 60_000;
    this.windowMs = o.windowMs ?? 60_000;
    this.maxPerWindow = o.maxPerWindow ?? 20;
    this.maxKeys = o.maxKeys ?? 4096;
    this.now = o.now ?? Date.now;
  }

  /** Logs `msg` unless `key` was logged within perKeyMs or the window is full; true when it was logged. */
  note(key: string, fields: Record<string, unknown>, msg: string): boolean {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    const prev = this.last.get(key);
    if ((prev !== undefined && t - prev < this.perKeyMs) || this.inWindow >= this.maxPerWindow) {
      this.held++;
      return false;
    }
    this.last.delete(key);
    this.last.set(key, t);
    if (this.last.size > this.maxKeys) this.last.delete(this.last.keys().next().value as string);
    this.inWindow++;
    const suppressed = this.held;
    this.held = 0;
    this.emit(suppressed ? { ...fields, suppressed } : fields, msg);
    return true;
  }
}
