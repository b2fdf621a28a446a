/**
 * The row Mobile PPC publishes per moved flow for `gscip maps dump cit`
 * (parts/published-table.ts, table `cit`): the flow as this end's sockets see
 * it and how often it moved. The XLAT map holds only the translation.
 */
export const MOVES_TABLE = 'cit';

export interface PublishedMoves { proto: number; local: string; peer: string; moves: number }

/** Move counts by `proto local peer` from a published table (rows that are not PublishedMoves are skipped). */
export function movesByFlow(rows: unknown[] | null): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows ?? []) {
    const x = r as Partial<PublishedMoves>;
    if (typeof x.proto === 'number' && typeof x.local === 'string' && typeof x.peer === 'string' && typeof x.moves === 'number') m.set(`${x.proto} ${x.local} ${x.peer}`, x.moves);
  }
  return m;
}
