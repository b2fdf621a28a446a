/**
 * Move detection from the kernel's rtnetlink events (RTM_NEWADDR,
 * RTM_DELADDR, RTM_NEWROUTE/DELROUTE), never by polling: `ip -o -4 monitor
 * address route` runs as a child process in the agent's network namespace and
 * prints one line per event; `parseMonitorLine` turns a line into an event
 * (tested on the lines iproute2 prints), `MonitorReader` restarts the child
 * with a bounded backoff if it dies, and `MoveDetector` (pure) turns address
 * events on the guarded interfaces into moves: an address this GE's flows use
 * is gone and another one is (or becomes) the interface's, as when DHCP
 * replaces the address or the interface is re-plugged into another subnet
 * (in either order: the new address first, or the old one removed first).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export type MonitorEvent =
  | { kind: 'addr'; deleted: boolean; ifindex: number; ifname: string; addr: string; prefixLen: number }
  | { kind: 'route'; deleted: boolean; isDefault: boolean; dev: string | null };

const ADDR_LINE = /^(Deleted )?(\d+):\s+(\S+)\s+inet (\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})\b/;
const ROUTE_DEV = /\bdev (\S+)/;
const ROUTE_START = /^(Deleted )?(default|local|broadcast|unicast|\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?)\b/;

/** One line of `ip -o -4 monitor address route`, or null for a line that is neither (e.g. an IPv6 or neighbour one). */
export function parseMonitorLine(line: string): MonitorEvent | null {
  const l = line.trim();
  const a = ADDR_LINE.exec(l);
  if (a) {
    const ifname = a[3].replace(/@.*$/, '');
    return { kind: 'addr', deleted: !!a[1], ifindex: Number(a[2]), ifname, addr: a[4], prefixLen: Number(a[5]) };
  }
  const r = ROUTE_START.exec(l);
  if (r) return { kind: 'route', deleted: !!r[1], isDefault: r[2] === 'default', dev: ROUTE_DEV.exec(l)?.[1] ?? null };
  return null;
}

/**
 * Whether a route event may be the path an unanswered CU was waiting for (the
 * engine then re-sends its open CUs once: `onRoute`): a new route on a
 * guarded interface (or of no known device). Not the local route each
 * address the agent keeps on `lo` brings (host-addresses.ts): at the end of a
 * move of many flows that one re-sent every CU of the move at once.
 */
export function routeMayCarryCu(e: MonitorEvent, guarded: readonly string[]): boolean {
  return e.kind === 'route' && !e.deleted && (e.dev === null || guarded.includes(e.dev));
}

/** A move of this GE's address on a guarded interface. */
export interface Move {
  ifname: string;
  from: string;
  to: string;
}

/**
 * Pure: address events in, moves out. `addrs` is each guarded interface's
 * IPv4 addresses now (seeded from `ip -4 addr` at start); an address removed
 * while the interface has no other waits for the next one.
 */
export class MoveDetector {
  private readonly addrs = new Map<string, string[]>();
  private readonly lost = new Map<string, string[]>();

  constructor(guarded: readonly string[], initial: ReadonlyArray<{ dev: string; addr: string }>) {
    for (const g of guarded) this.addrs.set(g, initial.filter((a) => a.dev === g).map((a) => a.addr));
  }

  /** The addresses of a guarded interface now. */
  current(ifname: string): readonly string[] {
    return this.addrs.get(ifname) ?? [];
  }

  on(e: MonitorEvent): Move[] {
    if (e.kind !== 'addr') return [];
    const list = this.addrs.get(e.ifname);
    if (!list) return [];
    if (e.deleted) {
      const i = list.indexOf(e.addr);
      if (i >= 0) list.splice(i, 1);
      if (list.length) return [{ ifname: e.ifname, from: e.addr, to: list[0] }];
      this.lost.set(e.ifname, [...(this.lost.get(e.ifname) ?? []).filter((x) => x !== e.addr), e.addr]);
      return [];
    }
    if (list.includes(e.addr)) return [];
    list.push(e.addr);
    const gone = this.lost.get(e.ifname) ?? [];
    this.lost.delete(e.ifname);
    return gone.filter((from) => from !== e.addr).map((from) => ({ ifname: e.ifname, from, to: e.addr }));
  }
}

export interface MonitorReaderOptions {
  onEvent(e: MonitorEvent): void;
  onError?(e: Error): void;
  /** Restart delays after the child dies, ms (the last repeats); bounded: at most `maxRestarts`. */
  backoffMs?: readonly number[];
  maxRestarts?: number;
  /** Test hook: the command (default `ip -o -4 monitor address route`). */
  command?: [string, string[]];
}

/** Reads the monitor child's lines; restarts it (bounded) when it exits before close(). */
export class MonitorReader {
  private child: ChildProcess | null = null;
  private closed = false;
  private restarts = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: MonitorReaderOptions) {
    this.start();
  }

  /** Resolves once the child runs (its netlink socket is subscribed shortly after exec). */
  private start(): void {
    const [cmd, args] = this.o.command ?? ['ip', ['-o', '-4', 'monitor', 'address', 'route']];
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const e = parseMonitorLine(l);
        if (e) this.o.onEvent(e);
      }
      if (buf.length > 65_536) buf = '';
    });
    child.stderr!.resume();
    child.on('error', (e) => this.o.onError?.(e));
    child.on('exit', (code, sig) => {
      if (this.closed) return;
      const backoff = this.o.backoffMs ?? [100, 500, 2000];
      if (this.restarts >= (this.o.maxRestarts ?? 20)) {
        this.o.onError?.(new Error(`ip monitor exited (${code ?? sig}) ${this.restarts} times; move detection stopped`));
        return;
      }
      const delay = backoff[Math.min(this.restarts, backoff.length - 1)];
      this.restarts++;
      this.o.onError?.(new Error(`ip monitor exited (${code ?? sig}); restarting in ${delay} ms`));
      this.timer = setTimeout(() => this.start(), delay);
      this.timer.unref();
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.child?.kill('SIGTERM');
    this.child = null;
  }
}
