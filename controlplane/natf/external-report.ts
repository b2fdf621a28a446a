/**
 * A GNAT that follows its outside address (`nat.follow`) tells its GMS the
 * address it uses (gms/client.ts reportExternal: every replica, mTLS with the
 * agent's identity), and the GMS adds it to every GE's `gnats` (docs/natf.md
 * "When the external address changes"). Sent at start and at each change,
 * again every tick until every replica said ok, then every `refreshMs` (the
 * GMS keeps reports in memory and lets an unrefreshed one lapse). One report
 * in flight at a time. Over an injected sender and clock (unit tests).
 */
export type ReportSender = (addr: string) => Promise<Array<{ url: string; result: string }>>;

export const EXTERNAL_REPORT_REFRESH_MS = 60_000;

export class ExternalReporter {
  private addr: string | null = null;
  private okAtMs = -Infinity;
  private inFlight = false;

  constructor(private readonly send: ReportSender, private readonly nowMs: () => number,
    private readonly onResult: (r: { url: string; result: string; addr: string; error?: string }) => void = () => undefined,
    private readonly refreshMs = EXTERNAL_REPORT_REFRESH_MS) {}

  /** The address in use (at start, and at each change): reported at once. */
  set(addr: string): void {
    if (addr !== this.addr) { this.addr = addr; this.okAtMs = -Infinity; }
    this.tick();
  }

  /** Reports when due: never reported ok for this address, or the last ok is `refreshMs` old. */
  tick(): void {
    const addr = this.addr;
    if (!addr || this.inFlight || this.nowMs() - this.okAtMs < this.refreshMs) return;
    this.inFlight = true;
    const at = this.nowMs();
    this.send(addr).then((rs) => {
      for (const r of rs) this.onResult({ ...r, addr });
      if (rs.length && rs.every((r) => r.result === 'ok') && this.addr === addr) this.okAtMs = at;
    }, (e: unknown) => this.onResult({ url: '', result: 'error', addr, error: (e as Error).message }))
      .finally(() => { this.inFlight = false; });
  }
}
