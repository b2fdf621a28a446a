/**
 * The agent's punt reader: the generic ring-buffer reader
 * (controlplane/bpf/ring-reader.ts) over the punt ring, decoding each record
 * with the ABI's punt-record codec.
 */
import { RingReader, type RingReaderOptions } from '../bpf/ring-reader.js';
import { decodePuntRec, type PuntRec } from '../maps/codecs.js';

export type PuntReaderOptions = RingReaderOptions;

export class PuntReader extends RingReader<PuntRec> {
  constructor(mapFd: number, onRecords: (recs: PuntRec[]) => void, opts: PuntReaderOptions = {}) {
    super(mapFd, decodePuntRec, onRecords, opts);
  }
}
