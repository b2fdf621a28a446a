/**
 * A route for each virtual address (NAT-f initiator): the application's
 * packet to V1 must leave through the interface toward the GNAT it stands for,
 * from this GE's address on it, so the egress program sees it, translates it
 * (VAT) and encrypts it. `ip route replace V1/32 via <next hop to G2> dev
 * <that interface> src <own address> onlink` (the next hop: G2's gateway, or
 * G2 itself when on-link, so the neighbour looked up is a real one), made
 * when the NRT binds V1 and removed when the entry goes. Without it the
 * application gets ENETUNREACH. Uses iproute2 (`ip`), as the lab does; one
 * call per new virtual address, not per packet.
 */
import { execFileSync } from 'node:child_process';

export interface RouteRunner { (args: string[]): string }

const runIp: RouteRunner = (args) => execFileSync('ip', args, { encoding: 'utf8', timeout: 5000 });

/** `ip -o route get G2` -> its device, next hop and source; null when unroutable. */
export function routeOf(out: string, dst: string): { dev: string; via: string; src: string | null } | null {
  const dev = /\bdev (\S+)/.exec(out)?.[1];
  if (!dev) return null;
  return { dev, via: /\bvia (\S+)/.exec(out)?.[1] ?? dst, src: /\bsrc (\S+)/.exec(out)?.[1] ?? null };
}

export class VirtualRoutes {
  private readonly routes = new Map<string, string>();  // virtual -> GNAT

  constructor(private readonly run: RouteRunner = runIp) {}

  /** Route V toward G2 (again if G2's route changed); false when G2 has no route (the answer is still given). */
  ensure(virtual: string, gnat: string): boolean {
    if (this.routes.get(virtual) === gnat) return true;
    const r = routeOf(this.run(['-o', '-4', 'route', 'get', gnat]), gnat);
    if (!r) return false;
    this.run(['-4', 'route', 'replace', `${virtual}/32`, 'via', r.via, 'dev', r.dev, ...(r.src ? ['src', r.src] : []), 'onlink']);
    this.routes.set(virtual, gnat);
    return true;
  }

  /** Removes the routes of virtual addresses no longer in `live`. Returns how many. */
  prune(live: ReadonlySet<string>): number {
    let n = 0;
    for (const v of [...this.routes.keys()]) {
      if (live.has(v)) continue;
      try { this.run(['-4', 'route', 'del', `${v}/32`]); } catch { /* already gone */ }
      this.routes.delete(v);
      n++;
    }
    return n;
  }

  /** Every route this part made (not called at agent stop: established flows need them). */
  clear(): void { this.prune(new Set()); }
}
