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
  onError?: (e: Error) => void;
}

export class PuntReader {
  private readonly worker: Worker;
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly closed: Promise<void>;

  /** `mapFd` must stay open while the reader runs (fds are process-wide, so the worker can use it). */
  constructor(mapFd: number, onRecords: (recs: PuntRec[]) => void, opts: PuntReaderOptions = {}) {
    const data: RingbufWorkerData = { mapFd, stop: this.stopFlag.buffer as SharedArrayBuffer, pollMs: opts.pollMs ?? 100, maxBatch: opts.maxBatch ?? 256 };
    this.worker = new Worker(join(__dirname, 'ringbuf-worker.js'), { workerData: data });
    const onError = opts.onError ?? ((e: Error) => { throw e; });
    this.closed = new Promise<void>((resolve) => {
      this.worker.on('message', (m: RingbufWorkerMsg) => {
        if (m.type === 'records') {
          const recs: PuntRec[] = [];
          for (const ab of m.records) {
            try { recs.push(decodePuntRec(Buffer.from(ab))); } catch (e) { onError(e as Error); }
          }
          if (recs.length) onRecords(recs);
        } else if (m.type === 'error') {
          onError(new Error(`punt reader: ${m.message}`));
        }
      });
      this.worker.on('error', (e) => onError(e));
      this.worker.on('exit', () => resolve());
    });
  }

  /** Stop polling (within pollMs) and wait for the worker to exit. */
  async close(): Promise<void> {
    Atomics.store(this.stopFlag, 0, 1);
    const timer = setTimeout(() => { void this.worker.terminate(); }, 5000);
    await this.closed;
    clearTimeout(timer);
  }
}
