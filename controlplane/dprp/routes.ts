/**
 * What a GE knows about addresses without any per-peer configuration: its own
 * addresses, and which interface the kernel would send a packet for an
 * address out of (a snapshot of the IPv4 main routing table, longest prefix
 * match). "Behind me" = routed out of an interface this GE does not guard
 * (a GEN's inside), which is how a GEN/GEA knows it may be the end GE.
 * Parsing is pure; `readKernelRoutes()` runs `ip -j` (blocking: start-up
 * only); `readKernelRoutesAsync()` is the periodic refresh, off the event loop.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { ipv4ToInt } from './ipv4.js';
import type { Locality } from './node.js';

export interface Route {
  /** Network address and prefix length; default route = 0.0.0.0/0. */
  net: number;
  len: number;
  dev: string;
}

export interface AddrInfo {
  dev: string;
  addr: string;
  len: number;
}

export interface KernelView {
  routes: Route[];
  addrs: AddrInfo[];
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
}

/** `ip -j -4 route show table main` output -> routes (unknown shapes are skipped). */
export function parseIpRouteJson(text: string): Route[] {
  const out: Route[] = [];
  const rows = JSON.parse(text) as Array<{ dst?: string; dev?: string }>;
  for (const r of rows) {
    if (!r.dev || !r.dst) continue;
    const [a, l] = r.dst === 'default' ? ['0.0.0.0', '0'] : r.dst.split('/');
    const len = l === undefined ? 32 : Number(l);
    if (!Number.isInteger(len) || len < 0 || len > 32) continue;
    try {
      out.push({ net: (ipv4ToInt(a) & maskOf(len)) >>> 0, len, dev: r.dev });
    } catch { /* not IPv4: skip */ }
  }
  return out;
}

/** `ip -j -4 addr show` output -> addresses. */
/** The directed broadcast of addr/len (dotted quad). */
export function directedBroadcast(addr: string, len: number): string {
  const b = (ipv4ToInt(addr) | ~maskOf(len)) >>> 0;
  return [b >>> 24, (b >>> 16) & 255, (b >>> 8) & 255, b & 255].join('.');
}

export function parseIpAddrJson(text: string): AddrInfo[] {
  const out: AddrInfo[] = [];
  const rows = JSON.parse(text) as Array<{ ifname?: string; addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }> }>;
  for (const r of rows) {
    for (const a of r.addr_info ?? []) {
      if (a.family === 'inet' && a.local && r.ifname) out.push({ dev: r.ifname, addr: a.local, len: a.prefixlen ?? 32 });
    }
  }
  return out;
}

export function readKernelRoutes(): KernelView {
  const run = (args: string[]) => execFileSync('ip', args, { encoding: 'utf8', timeout: 5_000 });
  return { routes: parseIpRouteJson(run(['-j', '-4', 'route', 'show', 'table', 'main'])), addrs: parseIpAddrJson(run(['-j', '-4', 'addr', 'show'])) };
}

const execFileAsync = promisify(execFile);

/** The same snapshot as readKernelRoutes, without blocking the event loop (both `ip` runs in parallel). */
export async function readKernelRoutesAsync(): Promise<KernelView> {
  const run = async (args: string[]) => (await execFileAsync('ip', args, { encoding: 'utf8', timeout: 5_000 })).stdout;
  const [routes, addrs] = await Promise.all([run(['-j', '-4', 'route', 'show', 'table', 'main']), run(['-j', '-4', 'addr', 'show'])]);
  return { routes: parseIpRouteJson(routes), addrs: parseIpAddrJson(addrs) };
}

export class RouteTable {
  private routes: Route[] = [];
  private local = new Set<string>();
  /** Directed broadcast addresses of this host's subnets (prefixes up to /30). */
  private broadcasts = new Set<string>();
  /** Interface indexes looked up for this snapshot's devices (ifindexOf). */
  private readonly ifindexes = new Map<string, number | undefined>();

  constructor(view: KernelView = { routes: [], addrs: [] }) {
    this.update(view);
  }

  update(view: KernelView): void {
    this.ifindexes.clear();
    // Longest prefix first, so the first match wins.
    this.routes = [...view.routes].sort((a, b) => b.len - a.len);
    this.local = new Set(view.addrs.map((a) => a.addr));
    this.broadcasts = new Set(view.addrs.filter((a) => a.len < 31).map((a) => directedBroadcast(a.addr, a.len)));
  }

  /** Whether addr is one of this host's addresses or a directed broadcast of one of its subnets. */
  isOwnOrBroadcast(addr: string): boolean {
    return this.local.has(addr) || this.broadcasts.has(addr);
  }

  isLocal(addr: string): boolean {
    return this.local.has(addr);
  }

  /**
   * The ifindex of `dev` by `lookup`, asked once per snapshot: a relay sent
   * every message to a GEN's (or GNAT's) inside through if_nametoindex, a
   * socket, an ioctl and a close each time (~13 us). A re-created interface
   * is seen at the next snapshot, as its routes are; `forget` drops one now.
   */
  ifindexOf(dev: string, lookup: (dev: string) => number | undefined): number | undefined {
    if (this.ifindexes.has(dev)) return this.ifindexes.get(dev);
    const n = lookup(dev);
    this.ifindexes.set(dev, n);
    return n;
  }

  /** Forget the ifindex looked up for `dev` (a send on it failed: the interface may be gone or new). */
  forget(dev: string): void {
    this.ifindexes.delete(dev);
  }

  /** Device the kernel would use for `addr`, or null. */
  devFor(addr: string): string | null {
    const n = ipv4ToInt(addr);
    for (const r of this.routes) if (((n & maskOf(r.len)) >>> 0) === r.net) return r.dev;
    return null;
  }

  /**
   * Where `addr` stands for a GE guarding `guarded` interfaces. A GES never has
   * anything behind it; a GEN/GEA/GNAT has what it routes out of other interfaces.
   */
  locality(addr: string, guarded: ReadonlySet<string>, canHaveInside: boolean): Locality {
    if (this.isLocal(addr)) return 'self';
    if (!canHaveInside) return 'other';
    const dev = this.devFor(addr);
    if (dev === null || dev === 'lo' || guarded.has(dev)) return 'other';
    return 'behind';
  }
}
