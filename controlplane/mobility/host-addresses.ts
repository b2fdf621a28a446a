/**
 * What Mobile PPC changes on the host besides the maps, through `ip` in the
 * agent's network namespace:
 *  - the mover keeps each address its sockets use local after it left the
 *    interface (a /32 on lo), so the kernel still sends from it and delivers to
 *    it; the CIT puts the new address on the wire. Released when the address
 *    comes back (a move home).
 *  - the stationary end routes an old address the way the new one goes (a /32
 *    route), when the two differ: TC egress runs after the kernel routed the
 *    packet by the address the socket uses.
 * And the interfaces' IPv4 addresses now, for the move detector.
 */
import { spawnSync } from 'node:child_process';
import { parseMonitorLine } from './move-events.js';

function ip(args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 5000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() };
}

export class AddressKeeper {
  private readonly kept = new Set<string>();

  constructor(private readonly onError: (what: string, err: string) => void) {}

  keep(addr: string): void {
    if (this.kept.has(addr)) return;
    const r = ip(['addr', 'add', `${addr}/32`, 'dev', 'lo']);
    if (!r.ok && !/File exists/.test(r.err)) return this.onError(`keep ${addr}`, r.err);
    this.kept.add(addr);
  }

  release(addr: string): void {
    if (!this.kept.delete(addr)) return;
    const r = ip(['addr', 'del', `${addr}/32`, 'dev', 'lo']);
    if (!r.ok) this.onError(`release ${addr}`, r.err);
  }

  /** Addresses kept now. */
  list(): string[] {
    return [...this.kept];
  }

  releaseAll(): void {
    for (const a of [...this.kept]) this.release(a);
  }
}

/** `ip route get` of an address: its gateway (or null: on link) and device. */
export function routeOf(addr: string): { via: string | null; dev: string } | null {
  const r = ip(['-4', 'route', 'get', addr]);
  if (!r.ok) return null;
  const dev = /\bdev (\S+)/.exec(r.out)?.[1];
  if (!dev) return null;
  return { via: /\bvia (\S+)/.exec(r.out)?.[1] ?? null, dev };
}

export class OldAddressRoutes {
  private readonly routed = new Set<string>();
  /** The last decision per old address (its new address): a CU per 32 flows must not cost `ip` calls each. */
  private readonly decided = new Map<string, string>();

  constructor(private readonly onError: (what: string, err: string) => void) {}

  follow(oldAddr: string, newAddr: string): void {
    if (this.decided.get(oldAddr) === newAddr) return;
    this.decided.set(oldAddr, newAddr);
    const to = routeOf(newAddr);
    if (this.routed.has(oldAddr)) ip(['route', 'del', `${oldAddr}/32`]);
    this.routed.delete(oldAddr);
    const from = routeOf(oldAddr);
    if (!to || !from || (to.via === from.via && to.dev === from.dev)) return;
    const r = ip(['route', 'replace', `${oldAddr}/32`, ...(to.via ? ['via', to.via] : []), 'dev', to.dev]);
    if (!r.ok) return this.onError(`route ${oldAddr} as ${newAddr}`, r.err);
    this.routed.add(oldAddr);
  }

  removeAll(): void {
    for (const a of this.routed) ip(['route', 'del', `${a}/32`]);
    this.routed.clear();
    this.decided.clear();
  }
}

/** Every interface's IPv4 addresses now (`ip -o -4 addr show`: the monitor's line format). */
export function currentAddresses(): Array<{ dev: string; addr: string }> {
  const r = ip(['-o', '-4', 'addr', 'show']);
  const out: Array<{ dev: string; addr: string }> = [];
  for (const l of r.out.split('\n')) {
    const e = parseMonitorLine(l);
    if (e?.kind === 'addr') out.push({ dev: e.ifname, addr: e.addr });
  }
  return out;
}
