/**
 * Reads a BPF ring buffer and hands decoded records to a callback on the
 * main thread (the agent's punt ring: controlplane/agent/punt-reader.ts).
 *
 * Why not a worker thread: a record that crosses worker -> main via
 * postMessage waited 180-450 µs under load (clone + MessagePort wake-up), and
 * a new flow puts five punts on its critical path. Here only the WAIT leaves
 * the main thread: epoll_wait on the ring's epoll fd runs in the libuv thread
 * pool (koffi async call, one pool thread, at most pollMs per call); when it
 * reports records, ring_buffer__consume runs on the main thread and the libbpf
 * callback decodes each record straight out of the ring (one copy, by the
 * codec), so a punt reaches its handler with one thread-pool completion
 * between it and the kernel.
 *
 * With the native addon (controlplane/bpf/ring-poll-addon.ts) not even that:
 * the ring's epoll fd is watched by the event loop itself (uv_poll), so a punt
 * wakes the loop once and is consumed in that same turn. Without the addon
 * (not built here) the thread-pool wait above is used; `wait` says which.
 */
import { RingBuffer } from './libbpf.js';
import { epollWaitAsync } from './libc.js';
import { ringWaitChoice, type RingPollAddon, type RingWait } from './ring-poll-addon.js';

export interface RingReaderOptions {
  /** Longest single wait in the thread pool; also bounds how long close() takes. */
  pollMs?: number;
  /** Hand records over in batches of at most this many. */
  maxBatch?: number;
  /** A record that could not be decoded (skipped; the reader goes on). */
  onError?: (e: Error) => void;
  /** The reader itself stopped (wait or consume failed): no more punts will arrive. */
  onFatal?: (e: Error) => void;
  /** 'thread-pool' forces the fallback wait; default: the event loop when the addon loads. */
  wait?: RingWait;
  /** Where the addon is (default build/native/gscip_ring_poll.node). */
  addonPath?: string;
  /** Called with CLOCK_MONOTONIC ns when the reader wakes for records (the DPRP stage profile). */
  onWake?: (nowNs: bigint) => void;
}

/** Consecutive failed waits (EINTR and the like) before the reader gives up. */
const MAX_WAIT_FAILURES = 16;

export class RingReader<T> {
  private readonly rb: RingBuffer;
  private readonly epfd: number;
  private readonly pollMs: number;
  private readonly maxBatch: number;
  private readonly onRecords: (recs: T[]) => void;
  private readonly onError: (e: Error) => void;
  private readonly onFatal: (e: Error) => void;
  private batch: T[] = [];
  private stopping = false;
  private failures = 0;
  private waiting = false;
  private stopped: (() => void) | null = null;
  private readonly closed: Promise<void>;
  /** Which wait runs: 'event-loop' (addon) or 'thread-pool'. */
  readonly wait: RingWait;
  /** Why that one (the addon's path, or why it is not used). */
  readonly waitDetail: string;
  private readonly addon: RingPollAddon | null;
  private watch: object | null = null;
  private readonly onWake: ((nowNs: bigint) => void) | null;

  /**
   * `mapFd` must stay open while the reader runs. `decode` turns one record
   * (a view into the ring, valid only during the call) into a T; a throw
   * skips that record (onError).
   */
  constructor(mapFd: number, private readonly decode: (view: Buffer) => T, onRecords: (recs: T[]) => void, opts: RingReaderOptions = {}) {
    this.pollMs = opts.pollMs ?? 100;
    this.maxBatch = opts.maxBatch ?? 256;
    this.onRecords = onRecords;
    this.onError = opts.onError ?? ((e: Error) => { throw e; });
    this.onFatal = opts.onFatal ?? this.onError;
    this.onWake = opts.onWake ?? null;
    const choice = ringWaitChoice({ addonPath: opts.addonPath, wait: opts.wait });
    this.wait = choice.wait;
    this.waitDetail = choice.detail;
    this.addon = choice.addon;
    this.closed = new Promise<void>((resolve) => { this.stopped = resolve; });
    this.rb = new RingBuffer(mapFd, (view) => this.onRecord(view), { borrow: true });
    try {
      this.epfd = this.rb.epollFd();
    } catch (e) { this.rb.close(); throw e; }
    // Records already waiting (e.g. punted while no agent ran) are read on the first turn of the loop.
    if (this.addon) this.watchOnLoop(this.addon);
    else setImmediate(() => this.drain());
  }

  /** Level-triggered: each callback consumes all there is; uv_poll calls again only for new records. */
  private watchOnLoop(addon: RingPollAddon): void {
    try {
      this.watch = addon.watch(this.epfd, (status) => {
        if (this.stopping) return;
        if (status < 0) {
          if (++this.failures > MAX_WAIT_FAILURES) { this.fatal(new Error(`uv_poll on epoll fd ${this.epfd} failed (libuv error ${status})`)); return; }
        } else this.failures = 0;
        this.consumeAndDeliver();
      });
    } catch (e) { this.rb.close(); throw e; }
  }

  /** Called by libbpf inside consume(), on this thread; `view` points into the ring. */
  private onRecord(view: Buffer): void {
    let rec: T;
    try { rec = this.decode(view); } catch (e) { this.onError(e as Error); return; }
    this.batch.push(rec);
    // Errors must not escape into libbpf's callback (RingBuffer would swallow them).
    if (this.batch.length >= this.maxBatch) { try { this.flush(); } catch (e) { this.onError(e as Error); } }
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const b = this.batch;
    this.batch = [];
    this.onRecords(b);
  }

  /** Consume what is there and deliver it; false when the reader stopped. */
  private consumeAndDeliver(): boolean {
    if (this.onWake) this.onWake(process.hrtime.bigint());
    this.consuming = true;
    try {
      this.rb.consume();
    } catch (e) {
      this.batch = [];
      this.consuming = false;
      this.fatal(e as Error);
      return false;
    }
    this.consuming = false;
    try { this.flush(); } catch (e) { this.onError(e as Error); }
    return true;
  }

  private consuming = false;

  /**
   * Deliver, now, the records the ring already holds (none: a read of the
   * ring's positions, no syscall). For a caller about to act on the absence of
   * an answer, e.g. a retransmission timer: libuv runs due timers before it
   * polls, so under load a timer could otherwise fire while its answer waits
   * in the ring. Not from inside a delivery (returns at once there), not
   * after close().
   */
  pollNow(): void {
    if (this.stopping || this.consuming || this.stopped === null) return;
    this.consumeAndDeliver();
  }

  /** Thread-pool wait: consume what is there, deliver it, then wait again. */
  private drain(): void {
    if (this.stopping) { this.finish(); return; }
    if (this.consumeAndDeliver()) this.waitInPool();
  }

  private waitInPool(): void {
    if (this.stopping) { this.finish(); return; }
    this.waiting = true;
    epollWaitAsync(this.epfd, this.pollMs, (err) => {
      this.waiting = false;
      if (err) {
        if (++this.failures > MAX_WAIT_FAILURES) { this.fatal(err); return; }
      } else this.failures = 0;
      this.drain();
    });
  }

  private fatal(e: Error): void {
    this.stopping = true;
    this.finish();
    this.onFatal(new Error(`ring reader: ${e.message}`));
  }

  private finish(): void {
    if (this.watch && this.addon) { this.addon.unwatch(this.watch); this.watch = null; }
    if (this.waiting || this.stopped === null) return;
    this.rb.close();
    this.stopped();
    this.stopped = null;
  }

  /** Stop reading (at once on the event loop, within pollMs in the thread pool) and free the ring buffer consumer. */
  async close(): Promise<void> {
    this.stopping = true;
    if (!this.waiting) this.finish();
    await this.closed;
  }
}
