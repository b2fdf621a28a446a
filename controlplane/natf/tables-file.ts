/**
 * The NAT-f tables that live in the agent, not in a map (the NRT of an
 * initiator, the ACT of a GNAT), published for `gscip maps dump nrt|act`:
 * one JSON file per table next to the instance's state file,
 * `<runDir>/<instance>.<table>.json`, rewritten (atomically) when it changed.
 * The VAT is in the fast path's XLAT map (kind vat) and is dumped from there.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export type NatfTable = 'nrt' | 'act';

export function tablePath(runDir: string, instance: string, table: NatfTable): string {
  return `${runDir}/${instance}.${table}.json`;
}

export class TableWriter {
  private last = '';
  constructor(private readonly path: string | null) {}

  write(rows: unknown): void {
    if (!this.path) return;
    const text = JSON.stringify(rows);
    if (text === this.last) return;
    this.last = text;
    mkdirSync(this.path.replace(/\/[^/]+$/, ''), { recursive: true, mode: 0o755 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, this.path);
  }
}

/** The rows a running agent published; null when it publishes none (no such part, or not running). */
export function readTable(runDir: string, instance: string, table: NatfTable): unknown[] | null {
  try {
    const v = JSON.parse(readFileSync(tablePath(runDir, instance, table), 'utf8')) as unknown;
    return Array.isArray(v) ? v : null;
  } catch { return null; }
}
