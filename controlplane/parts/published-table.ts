/**
 * Tables a part keeps in the agent rather than in a map, published for the
 * CLI (`gscip maps dump nrt|act|cit`): one JSON file per table next to the
 * instance's state file, `<runDir>/<instance>.<table>.json`, rewritten
 * atomically when it changed. The reader gets null when no running agent
 * publishes the table.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export function publishedTablePath(runDir: string, instance: string, table: string): string {
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
export function readPublishedTable(runDir: string, instance: string, table: string): unknown[] | null {
  try {
    const v = JSON.parse(readFileSync(publishedTablePath(runDir, instance, table), 'utf8')) as unknown;
    return Array.isArray(v) ? v : null;
  } catch { return null; }
}
