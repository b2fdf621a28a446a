/**
 * GMS store: embedded SQLite (sql.js, SQLite compiled to WebAssembly) persisted
 * to `<data-dir>/gms.sqlite`. Every change runs in one SQL transaction and the
 * database file is replaced atomically after COMMIT, so a failed apply leaves
 * nothing half-written, in memory or on disk.
 */
import { actToColumn, withAct } from './act-column.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import initSqlJs, { type Database, type SqlValue } from 'sql.js';
import { ownersOf } from './gnat-reports.js';
import { DEFAULT_CIPHER, EMPTY_POLICY, GROUP_KEY_BYTES, isCipher, type Cipher, type GeDef, type GeMode, type GeType, type GroupDef, type GroupKey, type NetworkPolicy, type NetworkState } from './model.js';
import type { Plan } from './plan.js';
import { writePrivateFileAtomic, ensurePrivateDir } from './secure-fs.js';
import { AtRest, groupKeyAad } from './at-rest.js';
import { nextRotation } from './scheduler.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  schedule TEXT NOT NULL, timezone TEXT NOT NULL, grace_s INTEGER NOT NULL,
  cipher TEXT NOT NULL DEFAULT 'chacha20');
CREATE TABLE IF NOT EXISTS ges (
  user_id TEXT PRIMARY KEY, type TEXT NOT NULL, mode TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
  user_id TEXT NOT NULL REFERENCES ges(user_id) ON DELETE CASCADE,
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, group_id));
-- last version ever issued per group number: survives removal of the group,
-- so versions stay monotonic if the number is reused.
CREATE TABLE IF NOT EXISTS key_versions (group_id INTEGER PRIMARY KEY, last_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_keys (
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  version INTEGER NOT NULL, key BLOB NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER,
  cipher TEXT NOT NULL DEFAULT 'chacha20',
  PRIMARY KEY (group_id, version));
CREATE TABLE IF NOT EXISTS rotations (
  group_id INTEGER NOT NULL, version INTEGER NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certs (
  serial TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('ge','admin')), user_id TEXT NOT NULL,
  issued_at INTEGER NOT NULL, not_after INTEGER NOT NULL, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, used_at INTEGER);
-- a GNAT's external address as it last reported it (gnat-reports.ts): run-time
-- state, not the network file's, kept so a restarted GMS delivers it at once.
CREATE TABLE IF NOT EXISTS gnat_reports (
  user_id TEXT PRIMARY KEY, addr TEXT NOT NULL, at_ms INTEGER NOT NULL);
`;

/**
 * Columns added after the first release. CREATE TABLE IF NOT EXISTS leaves an
 * existing table as it is, so a database written by an older GMS gets them
 * here, on open; the DEFAULT is what the older release meant (every key was
 * ChaCha20). Append only.
 */
const ADDED_COLUMNS: ReadonlyArray<{ table: string; column: string; decl: string }> = [
  { table: 'groups', column: 'cipher', decl: `TEXT NOT NULL DEFAULT '${DEFAULT_CIPHER}'` },
  { table: 'group_keys', column: 'cipher', decl: `TEXT NOT NULL DEFAULT '${DEFAULT_CIPHER}'` },
  { table: 'ges', column: 'act', decl: `TEXT NOT NULL DEFAULT '[]'` },
];

/** Every table and a total order of its rows (gms migrate copies and compares them in this order). */
export const TABLE_ORDER: Readonly<Record<string, string>> = {
  meta: 'k', groups: 'id', ges: 'user_id', memberships: 'user_id, group_id', key_versions: 'group_id',
  group_keys: 'group_id, version', rotations: 'group_id, version, at, reason', certs: 'serial', tokens: 'hash',
  gnat_reports: 'user_id',
};

/** A GNAT's reported external address (gnat-reports.ts), as both stores keep it. */
export interface GnatReportRow { userId: string; addr: string; atMs: number }

export interface CertRow { serial: string; kind: 'ge' | 'admin'; userId: string; issuedAt: number; notAfter: number; revokedAt: number | null }
export type TokenCheck = { ok: true; userId: string } | { ok: false; reason: 'unknown' | 'used' | 'expired' | 'ge-removed' };

export class GmsStore {
  private constructor(private db: Database, private readonly file: string, private readonly SQL: initSqlJs.SqlJsStatic, private readonly atRest: AtRest) {}

  /** `atRest`: with a master key, group keys are stored sealed (at-rest.ts); without, as they are (the default). */
  static async open(dataDir: string, atRest: AtRest = AtRest.none()): Promise<GmsStore> {
    ensurePrivateDir(dataDir);
    const SQL = await initSqlJs();
    const file = join(dataDir, 'gms.sqlite');
    const db = existsSync(file) ? new SQL.Database(readFileSync(file)) : new SQL.Database();
    db.run('PRAGMA foreign_keys = ON');
    db.exec(SCHEMA);
    const s = new GmsStore(db, file, SQL, atRest);
    s.tx(() => s.migrate()); // persists, also when there was nothing to migrate (a new file)
    return s;
  }

  close(): void { this.db.close(); }

  /** Run fn in one transaction; persist after COMMIT; on any failure nothing changes. */
  tx<T>(fn: () => T): T {
    this.db.run('BEGIN IMMEDIATE');
    let out: T;
    try {
      out = fn();
      this.db.run('COMMIT');
    } catch (e) {
      this.db.run('ROLLBACK');
      throw e;
    }
    try {
      this.persist();
    } catch (e) {
      // Memory is ahead of disk: go back to what is on disk, so both agree.
      this.db.close();
      this.db = new this.SQL.Database(readFileSync(this.file));
      this.db.run('PRAGMA foreign_keys = ON');
      throw new Error(`GMS database not saved (${(e as Error).message}); change rolled back`);
    }
    return out;
  }

  /** Bring a database from an older release up to this schema (inside the caller's tx). */
  private migrate(): void {
    for (const c of ADDED_COLUMNS) {
      const have = this.all(`PRAGMA table_info(${c.table})`).some((r) => r.name === c.column);
      if (!have) this.db.run(`ALTER TABLE ${c.table} ADD COLUMN ${c.column} ${c.decl}`);
    }
  }

  private persist(): void {
    writePrivateFileAtomic(this.file, this.db.export());
    this.db.run('PRAGMA foreign_keys = ON'); // export() resets connection pragmas
  }

  private all(sql: string, params: SqlValue[] = []): Record<string, SqlValue>[] {
    const st = this.db.prepare(sql);
    try {
      st.bind(params);
      const rows: Record<string, SqlValue>[] = [];
      while (st.step()) rows.push(st.getAsObject());
      return rows;
    } finally {
      st.free();
    }
  }
  private one(sql: string, params: SqlValue[] = []): Record<string, SqlValue> | undefined { return this.all(sql, params)[0]; }
  private run(sql: string, params: SqlValue[] = []): void { this.db.run(sql, params); }
  private changes(): number { return this.db.getRowsModified(); }

  // ---- meta ----
  getMeta(k: string): string | undefined { return this.one('SELECT v FROM meta WHERE k = ?', [k])?.v as string | undefined; }
  setMeta(k: string, v: string): void { this.run('INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', [k, v]); }

  // ---- GNAT reports (run-time state: gnat-reports.ts) ----
  gnatReports(): GnatReportRow[] {
    return this.all('SELECT user_id, addr, at_ms FROM gnat_reports ORDER BY user_id').map((r) => ({ userId: String(r.user_id), addr: String(r.addr), atMs: Number(r.at_ms) }));
  }
  /** Upsert one report; rows older than `lapsedBeforeMs` go (a GNAT that stopped reporting leaves no row). */
  saveGnatReport(r: GnatReportRow, lapsedBeforeMs: number): void {
    this.run('INSERT INTO gnat_reports(user_id, addr, at_ms) VALUES (?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET addr = excluded.addr, at_ms = excluded.at_ms', [r.userId, r.addr, r.atMs]);
    this.run('DELETE FROM gnat_reports WHERE at_ms < ?', [lapsedBeforeMs]);
  }

  // ---- network ----
  readNetwork(): NetworkState {
    const groups: GroupDef[] = this.all('SELECT * FROM groups ORDER BY id').map((r) => ({
      id: Number(r.id), name: String(r.name),
      rotation: { schedule: String(r.schedule), timezone: String(r.timezone), graceSeconds: Number(r.grace_s) },
      cipher: cipherOf(r, `group ${String(r.id)}`),
    }));
    const mem = new Map<string, number[]>();
    for (const r of this.all('SELECT user_id, group_id FROM memberships ORDER BY group_id')) {
      const u = String(r.user_id);
      mem.set(u, [...(mem.get(u) ?? []), Number(r.group_id)]);
    }
    const ges: GeDef[] = this.all('SELECT * FROM ges ORDER BY user_id').map((r) => withAct({
      userId: String(r.user_id), type: r.type as GeType, mode: r.mode as GeMode, groups: mem.get(String(r.user_id)) ?? [],
    }, r.act));
    return { groups, ges, policy: this.readPolicy() };
  }

  /** The network-wide rules (meta 'policy', JSON); none before any was applied. */
  readPolicy(): NetworkPolicy {
    const v = this.getMeta('policy');
    if (!v) return { ...EMPTY_POLICY };
    const p = JSON.parse(v) as Partial<NetworkPolicy>;
    return { requireEncryption: Array.isArray(p.requireEncryption) ? p.requireEncryption.map(String) : [], ...(Array.isArray(p.gnats) && p.gnats.length ? { gnats: p.gnats.map(String), ...ownersOf(p.gnatOwners) } : {}),
      ...(Array.isArray(p.gsraRouters) && p.gsraRouters.length ? { gsraRouters: p.gsraRouters.map(String) } : {}) };
  }

  getGe(userId: string): GeDef | undefined {
    const r = this.one('SELECT * FROM ges WHERE user_id = ?', [userId]);
    if (!r) return undefined;
    const groups = this.all('SELECT group_id FROM memberships WHERE user_id = ? ORDER BY group_id', [userId]).map((x) => Number(x.group_id));
    return withAct({ userId, type: r.type as GeType, mode: r.mode as GeMode, groups }, r.act);
  }

  /** Execute a plan (inside the caller's tx). Returns the groups rotated, with their new versions. */
  applyPlan(plan: Plan, now: number): Array<{ groupId: number; version: number }> {
    const rotated: Array<{ groupId: number; version: number }> = [];
    for (const o of plan.ops) {
      switch (o.op) {
        case 'add-group':
          this.run('INSERT INTO groups(id, name, schedule, timezone, grace_s, cipher) VALUES (?,?,?,?,?,?)',
            [o.group.id, o.group.name, o.group.rotation.schedule, o.group.rotation.timezone, o.group.rotation.graceSeconds, o.group.cipher]);
          rotated.push({ groupId: o.group.id, version: this.rotate(o.group.id, now, 'group created') });
          break;
        case 'update-group':
          // A cipher change takes effect through the plan's rotate op for this group (a new version).
          this.run('UPDATE groups SET name = ?, schedule = ?, timezone = ?, grace_s = ?, cipher = ? WHERE id = ?',
            [o.group.name, o.group.rotation.schedule, o.group.rotation.timezone, o.group.rotation.graceSeconds, o.group.cipher, o.group.id]);
          break;
        case 'remove-group':
          this.run('DELETE FROM groups WHERE id = ?', [o.id]);
          break;
        case 'add-ge':
          this.run('INSERT INTO ges(user_id, type, mode, created_at, act) VALUES (?,?,?,?,?)', [o.ge.userId, o.ge.type, o.ge.mode, now, actToColumn(o.ge.act)]);
          for (const g of o.ge.groups) this.run('INSERT INTO memberships(user_id, group_id) VALUES (?,?)', [o.ge.userId, g]);
          break;
        case 'update-ge':
          this.run('UPDATE ges SET type = ?, mode = ?, act = ? WHERE user_id = ?', [o.ge.type, o.ge.mode, actToColumn(o.ge.act), o.ge.userId]);
          this.run('DELETE FROM memberships WHERE user_id = ?', [o.ge.userId]);
          for (const g of o.ge.groups) this.run('INSERT INTO memberships(user_id, group_id) VALUES (?,?)', [o.ge.userId, g]);
          break;
        case 'remove-ge':
          this.run('DELETE FROM ges WHERE user_id = ?', [o.userId]);
          this.run('UPDATE certs SET revoked_at = ? WHERE user_id = ? AND kind = \'ge\' AND revoked_at IS NULL', [now, o.userId]);
          this.run('DELETE FROM tokens WHERE user_id = ?', [o.userId]);
          break;
        case 'set-policy':
          this.setMeta('policy', JSON.stringify(o.policy));
          break;
        case 'rotate':
          rotated.push({ groupId: o.groupId, version: this.rotate(o.groupId, now, o.reason) });
          break;
      }
    }
    return rotated;
  }

  // ---- keys ----
  /**
   * New key version for a group (inside the caller's tx), under the group's
   * current cipher. The previous current version is kept (with its own
   * cipher) until now + grace, then expireKeys() removes it.
   */
  rotate(groupId: number, now: number, reason: string): number {
    const g = this.one('SELECT grace_s, cipher FROM groups WHERE id = ?', [groupId]);
    if (!g) throw new Error(`group ${groupId} does not exist`);
    const last = Number(this.one('SELECT last_version FROM key_versions WHERE group_id = ?', [groupId])?.last_version ?? 0);
    const version = last + 1;
    if (version > 0xffffffff) throw new Error(`group ${groupId}: key version space exhausted`);
    this.run('UPDATE group_keys SET expires_at = ? WHERE group_id = ? AND expires_at IS NULL', [now + Number(g.grace_s) * 1000, groupId]);
    this.run('INSERT INTO group_keys(group_id, version, key, created_at, expires_at, cipher) VALUES (?,?,?,?,NULL,?)',
      [groupId, version, this.atRest.seal(randomBytes(GROUP_KEY_BYTES), groupKeyAad(groupId, version)), now, cipherOf(g, `group ${groupId}`)]);
    this.run('INSERT INTO key_versions(group_id, last_version) VALUES (?,?) ON CONFLICT(group_id) DO UPDATE SET last_version = excluded.last_version', [groupId, version]);
    this.run('INSERT INTO rotations(group_id, version, at, reason) VALUES (?,?,?,?)', [groupId, version, now, reason]);
    return version;
  }

  /**
   * The group's scheduled rotation if it is due at `now` (inside the caller's
   * tx): due = the schedule's next time after the current version was made.
   * Decided here, from the database, so a second caller rotates nothing.
   */
  rotateIfDue(groupId: number, now: number): number | null {
    const net = this.readNetwork().groups.find((g) => g.id === groupId);
    if (!net) return null;
    const cur = this.one('SELECT MAX(created_at) AS t FROM group_keys WHERE group_id = ? AND expires_at IS NULL', [groupId]);
    if (nextRotation(net, cur?.t == null ? 0 : Number(cur.t)) > now) return null;
    return this.rotate(groupId, now, 'scheduled');
  }

  /** Re-seal every group key under the current master key (inside the caller's tx). */
  rekey(): number {
    let n = 0;
    for (const r of this.all('SELECT group_id, version, key FROM group_keys')) {
      const blob = Buffer.from(r.key as Uint8Array);
      if (this.atRest.isCurrent(blob)) continue;
      const aad = groupKeyAad(Number(r.group_id), Number(r.version));
      this.run('UPDATE group_keys SET key = ? WHERE group_id = ? AND version = ?', [this.atRest.seal(this.atRest.open(blob, aad), aad), r.group_id, r.version]);
      n++;
    }
    return n;
  }

  /** Every row of every table, in a stable order, as stored (for gms migrate). */
  dumpTables(): Record<string, Array<Record<string, SqlValue>>> {
    const out: Record<string, Array<Record<string, SqlValue>>> = {};
    for (const [t, order] of Object.entries(TABLE_ORDER)) out[t] = this.all(`SELECT * FROM ${t} ORDER BY ${order}`);
    return out;
  }

  /** Delete superseded versions whose grace has ended (inside the caller's tx). */
  expireKeys(now: number): Array<{ groupId: number; version: number }> {
    const gone = this.all('SELECT group_id, version FROM group_keys WHERE expires_at IS NOT NULL AND expires_at <= ?', [now])
      .map((r) => ({ groupId: Number(r.group_id), version: Number(r.version) }));
    this.run('DELETE FROM group_keys WHERE expires_at IS NOT NULL AND expires_at <= ?', [now]);
    return gone;
  }

  nextKeyExpiry(): number | null {
    const r = this.one('SELECT MIN(expires_at) AS t FROM group_keys WHERE expires_at IS NOT NULL');
    return r?.t == null ? null : Number(r.t);
  }

  allKeys(): GroupKey[] {
    return this.all('SELECT * FROM group_keys ORDER BY group_id, version').map((r) => ({
      groupId: Number(r.group_id), version: Number(r.version),
      key: this.atRest.open(Buffer.from(r.key as Uint8Array), groupKeyAad(Number(r.group_id), Number(r.version))),
      createdAt: Number(r.created_at), expiresAt: r.expires_at == null ? null : Number(r.expires_at),
      cipher: cipherOf(r, `group ${String(r.group_id)} key v${String(r.version)}`),
    }));
  }

  rotationCount(): number { return Number(this.one('SELECT COUNT(*) AS n FROM rotations')?.n ?? 0); }

  // ---- certificates ----
  addCert(c: Omit<CertRow, 'revokedAt'>): void {
    this.run('INSERT INTO certs(serial, kind, user_id, issued_at, not_after, revoked_at) VALUES (?,?,?,?,?,NULL)',
      [c.serial, c.kind, c.userId, c.issuedAt, c.notAfter]);
  }
  getCert(serial: string): CertRow | undefined {
    const r = this.one('SELECT * FROM certs WHERE serial = ?', [serial]);
    return r && { serial, kind: r.kind as 'ge' | 'admin', userId: String(r.user_id), issuedAt: Number(r.issued_at), notAfter: Number(r.not_after), revokedAt: r.revoked_at == null ? null : Number(r.revoked_at) };
  }
  /** Revoke every certificate of a GE. Returns how many were revoked. */
  revokeGe(userId: string, now: number): number {
    this.run('UPDATE certs SET revoked_at = ? WHERE user_id = ? AND kind = \'ge\' AND revoked_at IS NULL', [now, userId]);
    return this.changes();
  }
  /** User IDs holding a valid GE certificate, in the network file or not (directory users are not: GSRA). */
  certifiedUsers(now: number): string[] {
    return this.all('SELECT DISTINCT user_id AS u FROM certs WHERE kind = \'ge\' AND revoked_at IS NULL AND not_after > ? ORDER BY u', [now]).map((r) => String(r.u));
  }
  enrolledGes(now: number): string[] {
    return this.all('SELECT DISTINCT c.user_id AS u FROM certs c JOIN ges g ON g.user_id = c.user_id WHERE c.kind = \'ge\' AND c.revoked_at IS NULL AND c.not_after > ? ORDER BY u', [now])
      .map((r) => String(r.u));
  }

  // ---- enrollment tokens (only their SHA-256 is stored) ----
  addToken(hash: string, userId: string, now: number, expiresAt: number): void {
    this.run('INSERT INTO tokens(hash, user_id, created_at, expires_at, used_at) VALUES (?,?,?,?,NULL)', [hash, userId, now, expiresAt]);
  }
  /** Check and burn a token (inside the caller's tx). */
  consumeToken(hash: string, now: number): TokenCheck {
    const r = this.one('SELECT * FROM tokens WHERE hash = ?', [hash]);
    if (!r) return { ok: false, reason: 'unknown' };
    if (r.used_at != null) return { ok: false, reason: 'used' };
    if (Number(r.expires_at) <= now) return { ok: false, reason: 'expired' };
    const userId = String(r.user_id);
    if (!this.getGe(userId)) return { ok: false, reason: 'ge-removed' };
    this.run('UPDATE tokens SET used_at = ? WHERE hash = ?', [now, hash]);
    return { ok: true, userId };
  }
}

/** A row's cipher column; a name this release does not know is a corrupt or newer database, not ChaCha20. */
function cipherOf(r: Record<string, SqlValue>, what: string): Cipher {
  if (!isCipher(r.cipher)) throw new Error(`GMS database: ${what} has cipher ${JSON.stringify(r.cipher)}, not one this release knows`);
  return r.cipher;
}
