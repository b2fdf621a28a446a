/**
 * Reads the punt ring buffer on a worker thread and hands decoded records to
 * a callback on the main thread.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { decodePuntRec, type PuntRec } from '../maps/codecs.js';
import type { RingbufWorkerData, RingbufWorkerMsg } from './ringbuf-worker.js';

export interface PuntReaderOptions {
  pollMs?: number;
  maxBatch?: number;
  /** A record that could not be decoded (skipped; the reader goes on). */
  onError?: (e: Error) => void;
  /** The reader itself stopped (worker failed or ring_buffer__poll errored): no more punts will arrive. */
  onFatal?: (e: Error) => void;
}

export class PuntReader {
  private readonly worker: Worker;
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly closed: Promise<void>;
  private stopping = false;

  /** `mapFd` must stay open while the reader runs (fds are process-wide, so the worker can use it). */
  constructor(mapFd: number, onRecords: (recs: PuntRec[]) => void, opts: PuntReaderOptions = {}) {
    const data: RingbufWorkerData = { mapFd, stop: this.stopFlag.buffer as SharedArrayBuffer, pollMs: opts.pollMs ?? 100, maxBatch: opts.maxBatch ?? 256 };
    this.worker = new Worker(join(__dirname, 'ringbuf-worker.js'), { workerData: data });
    const onError = opts.onError ?? ((e: Error) => { throw e; });
    const onFatal = opts.onFatal ?? onError;
    this.closed = new Promise<void>((resolve) => {
      this.worker.on('message', (m: RingbufWorkerMsg) => {
        if (m.type === 'records') {
          const recs: PuntRec[] = [];
          for (const ab of m.records) {
            try { recs.push(decodePuntRec(Buffer.from(ab))); } catch (e) { onError(e as Error); }
          }
          if (recs.length) onRecords(recs);
        } else if (m.type === 'error') {
          onFatal(new Error(`punt reader: ${m.message}`));
        }
      });
      this.worker.on('error', (e) => onFatal(e));
      this.worker.on('exit', (code) => {
        if (!this.stopping) onFatal(new Error(`punt reader worker exited unexpectedly (code ${code})`));
        resolve();
      });
    });
  }

  /** Stop polling (within pollMs) and wait for the worker to exit. */
  async close(): Promise<void> {
    this.stopping = true;
    Atomics.store(this.stopFlag, 0, 1);
    const timer = setTimeout(() => { void this.worker.terminate(); }, 5000);
    await this.closed;
    clearTimeout(timer);
  }
}
