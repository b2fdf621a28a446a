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
 */
import { RingBuffer } from './libbpf.js';
import { epollWaitAsync } from './libc.js';

export interface RingReaderOptions {
  /** Longest single wait in the thread pool; also bounds how long close() takes. */
  pollMs?: number;
  /** Hand records over in batches of at most this many. */
  maxBatch?: number;
  /** A record that could not be decoded (skipped; the reader goes on). */
  onError?: (e: Error) => void;
  /** The reader itself stopped (wait or consume failed): no more punts will arrive. */
  onFatal?: (e: Error) => void;
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
    this.closed = new Promise<void>((resolve) => { this.stopped = resolve; });
    this.rb = new RingBuffer(mapFd, (view) => this.onRecord(view), { borrow: true });
    try {
      this.epfd = this.rb.epollFd();
    } catch (e) { this.rb.close(); throw e; }
    // Records already waiting (e.g. punted while no agent ran) are read on the first turn of the loop.
    setImmediate(() => this.drain());
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

  /** Consume what is there, deliver it, then wait again. */
  private drain(): void {
    if (this.stopping) { this.finish(); return; }
    try {
      this.rb.consume();
    } catch (e) {
      this.batch = [];
      this.fatal(e as Error);
      return;
    }
    try { this.flush(); } catch (e) { this.onError(e as Error); }
    this.wait();
  }

  private wait(): void {
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
    if (this.waiting || this.stopped === null) return;
    this.rb.close();
    this.stopped();
    this.stopped = null;
  }

  /** Stop reading (within pollMs) and free the ring buffer consumer. */
  async close(): Promise<void> {
    this.stopping = true;
    if (!this.waiting) this.finish();
    await this.closed;
  }
}
