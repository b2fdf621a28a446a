/**
 * Which interface the kernel sends a destination out of (`ip -o -4 route get`),
 * as an ifindex, remembered a short while per destination (bounded): a GE on
 * the path sends a CU-ACK it took off its guarded interface's ingress on out
 * of the interface toward the mover (transit.ts). undefined: no route known.
 */
import { spawnSync } from 'node:child_process';
import { ifNameToIndex } from '../bpf/libc.js';

export const NEXT_HOP_TTL_MS = 2000;
export const NEXT_HOP_MAX = 1024;

/** The device of an `ip -o -4 route get` answer line, or undefined. */
export function deviceOfRouteGet(line: string): string | undefined {
  const m = / dev (\S+)/.exec(line);
  return m?.[1];
}

export class NextHopDevices {
  private readonly cache = new Map<string, { ifindex: number | undefined; atMs: number }>();

  constructor(private readonly lookup: (dst: string) => string | undefined = routeGetDevice, private readonly nowMs: () => number = () => performance.now()) {}

  ifindexFor(dst: string): number | undefined {
    const now = this.nowMs();
    const c = this.cache.get(dst);
    if (c && now - c.atMs < NEXT_HOP_TTL_MS) return c.ifindex;
    const dev = this.lookup(dst);
    let ifindex: number | undefined;
    if (dev) {
      // if_nametoindex(3): this network namespace's interfaces (/sys may be another namespace's mount).
      try { ifindex = ifNameToIndex(dev) || undefined; } catch { ifindex = undefined; }
    }
    this.cache.delete(dst);
    if (this.cache.size >= NEXT_HOP_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(dst, { ifindex, atMs: now });
    return ifindex;
  }
}

function routeGetDevice(dst: string): string | undefined {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(dst)) return undefined;
  const r = spawnSync('ip', ['-o', '-4', 'route', 'get', dst], { encoding: 'utf8', timeout: 2000 });
  return r.status === 0 ? deviceOfRouteGet(r.stdout ?? '') : undefined;
}
