/**
 * The NAT-f tables that live in the agent, not in a map (the NRT of an
 * initiator, the ACT of a GNAT), published for `gscip maps dump nrt|act`
 * (parts/published-table.ts). The VAT is in the fast path's XLAT map (kind
 * vat) and is dumped from there.
 */
import { publishedTablePath, readPublishedTable } from '../parts/published-table.js';

export { TableWriter } from '../parts/published-table.js';

export type NatfTable = 'nrt' | 'act';

export function tablePath(runDir: string, instance: string, table: NatfTable): string {
  return publishedTablePath(runDir, instance, table);
}

/** The rows a running agent published; null when it publishes none (no such part, or not running). */
export function readTable(runDir: string, instance: string, table: NatfTable): unknown[] | null {
  return readPublishedTable(runDir, instance, table);
}
