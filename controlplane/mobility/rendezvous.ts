/**
 * The rendezvous of Mobile PPC when both ends move at once (docs/mobility.md):
 * each end's CU went to the other's old address and is lost, so the mover asks
 * DNS where the peer is now. Each GE's DDNS (ddns.ts) puts its new address into
 * the zone right after its move; both ends already trust that zone's server
 * (new connections resolve through it).
 *
 * The names to watch are configured (`mobility.rendezvous.names`: the peers a
 * GE keeps live flows with). Which name a peer address belongs to is learnt by
 * resolving them: at start, every `refreshMs`, and when a peer address is
 * unknown. Each name keeps the addresses it had (bounded), so after the peer
 * moved its old address still leads to its name. `locate(peer)` asks the server
 * again for the names that had `peer` and returns an address one of them has
 * now instead (undefined: none, or the zone still says `peer`).
 */
export interface RendezvousDeps {
  names: readonly string[];
  /** The name's A records now (dns-query.ts queryA against the zone's server). */
  resolve(name: string): Promise<string[]>;
  onError?(name: string, err: unknown): void;
}

/** Addresses remembered per name. */
export const NAME_HISTORY = 8;

export class DnsRendezvous {
  private readonly seen = new Map<string, string[]>();
  private refreshing: Promise<void> | null = null;

  constructor(private readonly d: RendezvousDeps) {}

  /** Resolves every name once (all at once; each answer recorded). */
  refresh(): Promise<void> {
    this.refreshing ??= Promise.all(this.d.names.map((n) => this.ask(n))).then(() => { this.refreshing = null; });
    return this.refreshing;
  }

  /** The names that have had `addr`. */
  namesOf(addr: string): string[] {
    return [...this.seen].filter(([, l]) => l.includes(addr)).map(([n]) => n);
  }

  async locate(peer: string): Promise<string | undefined> {
    if (!this.namesOf(peer).length) await this.refresh();
    for (const n of this.namesOf(peer)) {
      const now = await this.ask(n);
      const other = now.find((a) => a !== peer);
      if (other && !now.includes(peer)) return other;
    }
    return undefined;
  }

  private async ask(name: string): Promise<string[]> {
    try {
      const addrs = await this.d.resolve(name);
      const l = this.seen.get(name) ?? [];
      for (const a of addrs) {
        const i = l.indexOf(a);
        if (i >= 0) l.splice(i, 1);
        l.push(a);
      }
      this.seen.set(name, l.slice(-NAME_HISTORY));
      return addrs;
    } catch (e) {
      this.d.onError?.(name, e);
      return [];
    }
  }
}
