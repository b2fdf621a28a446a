/**
 * The external addresses GNATs report at run time (POST /v1/ge/external,
 * docs/natf.md "When the external address changes"): a GNAT whose outside
 * address changed (`nat.follow`) tells the GMS, and every GE's `gnats` list
 * then holds the new address next to the network file's. Kept in memory per
 * replica (the GNAT reports to every replica it knows, again every
 * `refreshMs`) and in the store (the server saves each one and loads them at
 * start, so a restarted replica delivers the address at once instead of the
 * file's old one until the GNAT's next refresh); a report not refreshed
 * within `ttlMs` lapses, so a GNAT that is gone does not keep an address in
 * everyone's list. One address per GNAT: a new report replaces its previous
 * one. Pure, over an injected clock.
 */
export const GNAT_REPORT_TTL_MS = 10 * 60_000;

export class GnatReports {
  private readonly byGe = new Map<string, { addr: string; atMs: number }>();

  constructor(private readonly ttlMs = GNAT_REPORT_TTL_MS) {}

  /** GNAT `userId` has `addr` now; true when the delivered list changes. */
  report(userId: string, addr: string, nowMs: number): boolean {
    const before = this.list(nowMs).join();
    this.byGe.set(userId, { addr, atMs: nowMs });
    return this.list(nowMs).join() !== before;
  }

  /** Reports kept in the store (at start): each as if made at its own time, so a lapsed one stays lapsed. */
  load(rows: ReadonlyArray<{ userId: string; addr: string; atMs: number }>): void {
    for (const r of rows) {
      const have = this.byGe.get(r.userId);
      if (!have || have.atMs < r.atMs) this.byGe.set(r.userId, { addr: r.addr, atMs: r.atMs });
    }
  }

  /** Forget a GNAT's report (it left the network, or is no longer a GNAT). */
  drop(userId: string): boolean {
    return this.byGe.delete(userId);
  }

  /** The live reported addresses, sorted, unique (lapsed reports removed). */
  list(nowMs: number): string[] {
    for (const [u, r] of this.byGe) if (nowMs - r.atMs > this.ttlMs) this.byGe.delete(u);
    return [...new Set([...this.byGe.values()].map((r) => r.addr))].sort();
  }

  /**
   * What every GE is told: the network file's GNAT addresses with the
   * reported ones, a reporting GNAT's own file address left out (`owners`:
   * which GNAT each file address is; one still named by a GNAT that did not
   * report stays).
   */
  gnats(fileGnats: readonly string[] | undefined, nowMs: number, owners: Readonly<Record<string, string>> = {}): string[] {
    const live = this.list(nowMs);
    const replaced = new Set<string>();
    for (const u of this.byGe.keys()) if (owners[u]) replaced.add(owners[u]);
    for (const [u, a] of Object.entries(owners)) if (!this.byGe.has(u)) replaced.delete(a);
    return [...new Set([...(fileGnats ?? []).filter((a) => !replaced.has(a)), ...live])].sort();
  }
}

/** A stored policy's gnatOwners, kept only when it is a map of strings ({} when absent or malformed: reports then only add). */
export function ownersOf(v: unknown): { gnatOwners?: Record<string, string> } {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, a] of Object.entries(v as Record<string, unknown>)) if (typeof a === 'string') out[k] = a;
  return Object.keys(out).length ? { gnatOwners: out } : {};
}
