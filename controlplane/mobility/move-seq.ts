/**
 * Replay protection of Mobile PPC, per flow: every move of a flow carries the
 * next move sequence number (the mover counts, per flow), and the stationary
 * end accepts a CU entry only with a number above the last one it applied to
 * that flow. The same number again with the same new address is a duplicate
 * (a CU re-sent because its answer was lost): answered again, applied once.
 * Together with the CU's timestamp window and MAC (cu-wire.ts) a recorded CU
 * can neither move a flow again nor move it back. Pure.
 */
export type SeqVerdict = 'apply' | 'duplicate' | 'replayed';

export interface MoveSeqState {
  seq: number;
  /** The wire address:port the last applied move named. */
  next: string;
}

/** What to do with a CU entry of sequence `seq` naming `next`, given the flow's last applied move (none: seq must be >= 1). */
export function judgeSeq(last: MoveSeqState | undefined, seq: number, next: string): SeqVerdict {
  if (!Number.isInteger(seq) || seq < 1) return 'replayed';
  if (!last) return 'apply';
  if (seq > last.seq) return 'apply';
  if (seq === last.seq && next === last.next) return 'duplicate';
  return 'replayed';
}

/** The mover's side: the next sequence number of each of its flows (keyed by the flow's identity). */
export class MoveCounter {
  private readonly last = new Map<string, number>();
  next(flowId: string): number {
    const n = (this.last.get(flowId) ?? 0) + 1;
    this.last.set(flowId, n);
    return n;
  }
  forget(flowId: string): void {
    this.last.delete(flowId);
  }
}
