/**
 * `gscip gms migrate`: copy a stopped SQLite GMS (its data dir) into an
 * empty PostgreSQL database, then read every table back from both and
 * compare them row by row; the CA (files in the data dir) moves into the
 * database with its key sealed. Group keys are compared as key bytes (they
 * are re-sealed under the PostgreSQL replicas' master key, so the stored
 * blobs differ by design). Nothing is written to the source.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GscipError } from '../errors/catalogue.js';
import { groupKeyAad, type AtRest } from './at-rest.js';
import { lockDataDir } from './data-dir-lock.js';
import { GmsStore, TABLE_ORDER } from './store.js';
import { PgBackend } from './store-pg.js';

export class MigrateError extends GscipError {
  constructor(message: string) { super('GSCIP_E_GMS_MIGRATE', message); }
}

/** The columns of every table, in the order both schemas declare them. */
export const TABLE_COLUMNS: Readonly<Record<string, string[]>> = {
  meta: ['k', 'v'],
  groups: ['id', 'name', 'schedule', 'timezone', 'grace_s', 'cipher'],
  ges: ['user_id', 'type', 'mode', 'created_at', 'act'],
  memberships: ['user_id', 'group_id'],
  key_versions: ['group_id', 'last_version'],
  group_keys: ['group_id', 'version', 'key', 'created_at', 'expires_at', 'cipher'],
  rotations: ['group_id', 'version', 'at', 'reason'],
  certs: ['serial', 'kind', 'user_id', 'issued_at', 'not_after', 'revoked_at'],
  tokens: ['hash', 'user_id', 'created_at', 'expires_at', 'used_at'],
  gnat_reports: ['user_id', 'addr', 'at_ms'],
};
/** meta keys only the PostgreSQL store has (the CA lives in files with SQLite). */
const PG_ONLY_META = new Set(['ca_cert', 'ca_key']);

type Row = Record<string, unknown>;

/**
 * A table's rows in a form both engines agree on: only the declared columns,
 * bytes as hex, group keys as their opened bytes, sorted by every column
 * (as text: the order is only there to pair rows up).
 */
export function normalizeTable(table: string, rows: Row[], openKey: (blob: Buffer, g: number, v: number) => Buffer): string[] {
  const cols = TABLE_COLUMNS[table];
  const out = rows
    .filter((r) => table !== 'meta' || !PG_ONLY_META.has(String(r.k)))
    .map((r) => JSON.stringify(cols.map((c) => {
      const v = r[c];
      if (table === 'group_keys' && c === 'key') return openKey(Buffer.from(v as Uint8Array), Number(r.group_id), Number(r.version)).toString('hex');
      if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
      if (typeof v === 'bigint') return Number(v);
      return v ?? null;
    })));
  return out.sort();
}

export interface TableReport { table: string; source: number; target: number; identical: boolean }
export interface MigrateReport { tables: TableReport[]; ca: 'copied' | 'none'; caFingerprintMatches: boolean }

export async function migrateSqliteToPostgres(o: { dataDir: string; database: string; atRest: AtRest }): Promise<MigrateReport> {
  if (!existsSync(join(o.dataDir, 'gms.sqlite'))) throw new MigrateError(`data-dir ${o.dataDir}: no gms.sqlite to migrate`);
  const unlock = lockDataDir(o.dataDir); // the source GMS must be stopped
  let src: GmsStore | null = null;
  let dst: PgBackend | null = null;
  try {
    src = await GmsStore.open(o.dataDir, o.atRest);
    dst = await PgBackend.open(o.database, o.atRest);
    const counts = await dst.rowCounts(Object.keys(TABLE_COLUMNS));
    const busy = Object.entries(counts).filter(([, n]) => n > 0);
    if (busy.length) throw new MigrateError(`database is not empty (${busy.map(([t, n]) => `${t}: ${n} rows`).join(', ')}): migrate only into a new database`);

    const tables = src.dumpTables();
    const srcOpen = (blob: Buffer, g: number, v: number) => o.atRest.open(blob, groupKeyAad(g, v));
    // Group keys: opened from the source, sealed for the target row.
    const rows: Record<string, Row[]> = {};
    for (const t of Object.keys(TABLE_COLUMNS)) {
      rows[t] = (tables[t] ?? []).map((r) => {
        const x: Row = {};
        for (const c of TABLE_COLUMNS[t]) x[c] = r[c] instanceof Uint8Array ? Buffer.from(r[c] as Uint8Array) : r[c];
        if (t === 'group_keys') x.key = dst!.sealGroupKey(srcOpen(x.key as Buffer, Number(x.group_id), Number(x.version)), Number(x.group_id), Number(x.version));
        return x;
      });
    }
    const caDir = join(o.dataDir, 'ca');
    const ca = existsSync(join(caDir, 'ca.crt')) && existsSync(join(caDir, 'ca.key'))
      ? { certPem: readFileSync(join(caDir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(caDir, 'ca.key'), 'utf8') } : null;
    await dst.importRows(rows, TABLE_COLUMNS, ca);

    // Read back and compare, table by table.
    const back = await dst.dumpTables(Object.keys(TABLE_ORDER));
    const dstOpen = (blob: Buffer, g: number, v: number) => dst!.openGroupKey(blob, g, v);
    const report: TableReport[] = [];
    for (const t of Object.keys(TABLE_COLUMNS)) {
      const a = normalizeTable(t, tables[t] ?? [], srcOpen);
      const b = normalizeTable(t, back[t] ?? [], dstOpen);
      report.push({ table: t, source: a.length, target: b.length, identical: JSON.stringify(a) === JSON.stringify(b) });
    }
    const caBack = await dst.loadCa();
    const caOk = ca === null ? caBack === null : caBack?.certPem === ca.certPem && caBack.keyPem === ca.keyPem;
    const bad = report.filter((r) => !r.identical);
    if (bad.length || !caOk) {
      throw new MigrateError(`read back differs from the source: ${[...bad.map((r) => `${r.table} (${r.source} vs ${r.target} rows)`), ...(caOk ? [] : ['CA'])].join(', ')}; the target database holds a partial copy: drop it before retrying`);
    }
    return { tables: report, ca: ca ? 'copied' : 'none', caFingerprintMatches: caOk };
  } finally {
    src?.close();
    await dst?.close();
    unlock();
  }
}

export function formatMigrateReport(r: MigrateReport): string {
  const w = Math.max(...r.tables.map((t) => t.table.length));
  return [...r.tables.map((t) => `${t.table.padEnd(w)}  ${String(t.source).padStart(6)} rows -> ${String(t.target).padStart(6)}  ${t.identical ? 'identical' : 'DIFFERENT'}`),
    `CA: ${r.ca}${r.ca === 'copied' ? ' (certificate and key identical; key sealed under the master key)' : ''}`].join('\n');
}
