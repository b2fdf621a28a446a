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
import { execFile, spawnSync } from 'node:child_process';
import { parseMonitorLine } from './move-events.js';
import { NetlinkAddresses } from './netlink-addr.js';

function ip(args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 5000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim() };
}

/** `ip` without blocking the event loop (a move's answer must not wait behind it). */
function ipAsync(args: string[]): Promise<{ ok: boolean; err: string }> {
  return new Promise((resolve) => {
    execFile('ip', args, { encoding: 'utf8', timeout: 5000 }, (e, _out, err) => resolve({ ok: !e, err: (err ?? '').trim() }));
  });
}

/**
 * The kept addresses. keep/release run `ip` in the background, one at a time
 * in call order (a keep and a release of one address never swap); the set
 * says what is (or is about to be) kept at once. releaseAll (agent stop) is
 * synchronous.
 */
export class AddressKeeper {
  private readonly kept = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  /** The fast add (netlink-addr.ts), before the `ip` call that confirms it; absent in unit tests. */
  private readonly fast: { addHostAddress(addr: string): void; close(): void } | null;

  constructor(private readonly onError: (what: string, err: string) => void, private readonly run: (args: string[]) => Promise<{ ok: boolean; err: string }> = ipAsync,
    fast: { addHostAddress(addr: string): void; close(): void } | null = run === ipAsync ? new NetlinkAddresses() : null) {
    this.fast = fast;
  }

  /** Releases queued and not yet run, per address. */
  private readonly releasing = new Map<string, number>();

  private then(fn: () => Promise<void>): void {
    this.queue = this.queue.then(() => (this.closed ? undefined : fn()));
  }

  keep(addr: string): void {
    if (this.kept.has(addr) || this.closed) return;
    this.kept.add(addr);
    // At once when nothing queued can undo it (a release of it still waiting would run after: wrong order).
    if (this.fast && !this.releasing.get(addr)) {
      try { this.fast.addHostAddress(addr); } catch { /* the ip call below adds it */ }
    }
    this.then(async () => {
      const r = await this.run(['addr', 'add', `${addr}/32`, 'dev', 'lo']);
      if (!r.ok && !/File exists/.test(r.err)) { this.kept.delete(addr); this.onError(`keep ${addr}`, r.err); }
    });
  }

  release(addr: string): void {
    if (!this.kept.delete(addr)) return;
    this.releasing.set(addr, (this.releasing.get(addr) ?? 0) + 1);
    this.then(async () => {
      const left = (this.releasing.get(addr) ?? 1) - 1;
      if (left) this.releasing.set(addr, left); else this.releasing.delete(addr);
      const r = await this.run(['addr', 'del', `${addr}/32`, 'dev', 'lo']);
      if (!r.ok) this.onError(`release ${addr}`, r.err);
    });
  }

  /** Addresses kept now (or being added). */
  list(): string[] {
    return [...this.kept];
  }

  /** The `ip` calls queued so far have run. */
  settled(): Promise<void> {
    return this.queue;
  }

  releaseAll(): void {
    this.closed = true;
    this.fast?.close();
    for (const a of [...this.kept]) ip(['addr', 'del', `${a}/32`, 'dev', 'lo']);
    this.kept.clear();
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
