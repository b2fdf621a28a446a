/**
 * The optional native addon that lets the ring reader wait on Node's own event
 * loop (native/ring_poll.c: uv_poll on the ring's epoll fd, callback on the
 * main thread), built by `make native` into build/native/. Absent (no Node
 * headers, no compiler, another architecture) the reader keeps its thread-pool
 * wait; which one runs is said by `ringWaitChoice()` (doctor, agent log).
 *
 *   GSCIP_RING_WAIT=thread-pool   use the thread-pool wait even with the addon
 *   GSCIP_RING_POLL_ADDON=PATH    load the addon from PATH (tests, installs)
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export interface RingPollAddon {
  /** Calls `onReadable(status)` on the main thread whenever `fd` is readable (level-triggered); status < 0 is a libuv error. */
  watch(fd: number, onReadable: (status: number) => void): object;
  /** Stops the watch (idempotent); the fd stays open. */
  unwatch(handle: object): void;
}

export type RingWait = 'event-loop' | 'thread-pool';

export interface RingWaitChoice {
  wait: RingWait;
  /** Why: the addon's path, or why it is not used. */
  detail: string;
  addon: RingPollAddon | null;
}

const ROOT = resolve(__dirname, __dirname.includes('/dist/') ? '../../..' : '../..');
export const DEFAULT_RING_POLL_ADDON = resolve(ROOT, 'build/native/gscip_ring_poll.node');

const cache = new Map<string, RingWaitChoice>();

/** Which wait the ring reader uses here, and why (loaded once per path). */
export function ringWaitChoice(opts: { addonPath?: string; wait?: RingWait } = {}): RingWaitChoice {
  const forced = opts.wait ?? (process.env.GSCIP_RING_WAIT === 'thread-pool' ? 'thread-pool' : undefined);
  if (forced === 'thread-pool') return { wait: 'thread-pool', detail: 'thread-pool wait asked for', addon: null };
  const path = opts.addonPath ?? process.env.GSCIP_RING_POLL_ADDON ?? DEFAULT_RING_POLL_ADDON;
  const known = cache.get(path);
  if (known) return known;
  let choice: RingWaitChoice;
  if (!existsSync(path)) {
    choice = { wait: 'thread-pool', detail: `no ring poll addon at ${path} (make native builds it)`, addon: null };
  } else {
    try {
      const m = require(path) as Partial<RingPollAddon>;
      if (typeof m.watch !== 'function' || typeof m.unwatch !== 'function') throw new Error('it has no watch/unwatch');
      choice = { wait: 'event-loop', detail: `ring poll addon ${path}`, addon: m as RingPollAddon };
    } catch (e) {
      choice = { wait: 'thread-pool', detail: `ring poll addon ${path} did not load: ${(e as Error).message.split('\n')[0]}`, addon: null };
    }
  }
  cache.set(path, choice);
  return choice;
}
