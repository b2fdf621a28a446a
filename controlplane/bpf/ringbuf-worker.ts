/**
 * Worker thread body: blocks in ring_buffer__poll (koffi calls and callbacks
 * stay on this thread) and posts batches of raw records to the main thread,
 * transferring their memory. Stops when the shared flag is set.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RingBuffer } from './libbpf.js';

export interface RingbufWorkerData {
  mapFd: number;
  /** Int32Array(1) over a SharedArrayBuffer: non-zero = stop. */
  stop: SharedArrayBuffer;
  pollMs: number;
  /** Flush a batch when it reaches this many records. */
  maxBatch: number;
}

export type RingbufWorkerMsg = { type: 'records'; records: ArrayBuffer[] } | { type: 'error'; message: string } | { type: 'closed' };

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('ringbuf-worker must run as a worker thread');
  const d = workerData as RingbufWorkerData;
  const stop = new Int32Array(d.stop);
  let batch: ArrayBuffer[] = [];
  const flush = (): void => {
    if (batch.length === 0) return;
    const msg: RingbufWorkerMsg = { type: 'records', records: batch };
    port.postMessage(msg, batch);
    batch = [];
  };
  let rb: RingBuffer | null = null;
  try {
    rb = new RingBuffer(d.mapFd, (rec) => {
      batch.push(rec.buffer as ArrayBuffer);
      if (batch.length >= d.maxBatch) flush();
    });
    while (Atomics.load(stop, 0) === 0) {
      rb.poll(d.pollMs);
      flush();
    }
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message } satisfies RingbufWorkerMsg);
  } finally {
    rb?.close();
    port.postMessage({ type: 'closed' } satisfies RingbufWorkerMsg);
  }
}

main();
