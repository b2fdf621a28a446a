/**
 * The GMS store on PostgreSQL (the `pg` client), for several GMS replicas on
 * one database. Same tables and meaning as the SQLite store (store.ts), in
 * numbered migrations applied once under an advisory lock (replicas starting
 * together do not race), plus what replicas need:
 *  - every change commits with a NOTIFY on channel `gscip_gms` (delivered at
 *    COMMIT, never for a rolled-back change) carrying a number from the
 *    `change_seq` sequence: every replica LISTENs and pushes to its own
 *    subscribers;
 *  - the leader is whoever holds session advisory lock LEADER_LOCK on its
 *    own connection: a replica that dies (or loses its connection) frees it
 *    at once, and a follower polling every leaseCheckMs takes over;
 *  - rows of table `replicas`, one per live replica, heartbeat every second
 *    (`gscip gms status`).
 * A master key is required: group keys and the CA key are sealed (at-rest.ts).
 */
import { actToColumn, withAct } from './act-column.js';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { AtRest, AtRestError, CA_KEY_AAD, groupKeyAad } from './at-rest.js';
import { logger } from '../log/logger.js';
import { ownersOf } from './gnat-reports.js';
import type { GnatReportRow } from './store.js';
import { EMPTY_POLICY, GROUP_KEY_BYTES, isCipher, type Cipher, type GeDef, type GeMode, type GeType, type GroupDef, type GroupKey, type NetworkPolicy, type NetworkState } from './model.js';
import type { Plan } from './plan.js';
import { nextRotation } from './scheduler.js';
import { failpoint } from './failpoint.js';
import type { CertRow, TokenCheck } from './store.js';
import { redactUrl, type ChangeNote, type DatabaseInfo, type GmsBackend, type ReplicaHandlers, type ReplicaRow } from './store-backend.js';

const log = logger('gms-pg');
export const CHANNEL = 'gscip_gms';
/** Advisory lock keys (two int4 halves: 'GSCP' and a number). */
const LOCK_NS = 0x47534350;
const LEADER_LOCK = 1;
const MIGRATE_LOCK = 2;
const APPLY_LOCK = 3;

/** Numbered schema changes, applied in order, each once (schema_migrations). Append only. */
export const PG_MIGRATIONS: ReadonlyArray<{ version: number; what: string; sql: string }> = [
  { version: 1, what: 'the GMS tables (as store.ts, with per-group ciphers)', sql: `
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE groups (
  id BIGINT PRIMARY KEY, name TEXT NOT NULL,
  schedule TEXT NOT NULL, timezone TEXT NOT NULL, grace_s BIGINT NOT NULL,
  cipher TEXT NOT NULL DEFAULT 'chacha20');
CREATE TABLE ges (
  user_id TEXT PRIMARY KEY, type TEXT NOT NULL, mode TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE memberships (
  user_id TEXT NOT NULL REFERENCES ges(user_id) ON DELETE CASCADE,
  group_id BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, group_id));
CREATE TABLE key_versions (group_id BIGINT PRIMARY KEY, last_version BIGINT NOT NULL);
CREATE TABLE group_keys (
  group_id BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  version BIGINT NOT NULL, key BYTEA NOT NULL,
  created_at BIGINT NOT NULL, expires_at BIGINT,
  cipher TEXT NOT NULL DEFAULT 'chacha20',
  PRIMARY KEY (group_id, version));
CREATE TABLE rotations (
  group_id BIGINT NOT NULL, version BIGINT NOT NULL, at BIGINT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE certs (
  serial TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('ge','admin')), user_id TEXT NOT NULL,
  issued_at BIGINT NOT NULL, not_after BIGINT NOT NULL, revoked_at BIGINT);
CREATE TABLE tokens (
  hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, used_at BIGINT);` },
  { version: 2, what: 'replicas and the change sequence', sql: `
CREATE TABLE replicas (
  id TEXT PRIMARY KEY, url TEXT NOT NULL, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL,
  leader BOOLEAN NOT NULL, seen_seq BIGINT NOT NULL,
  lock_pid INTEGER);
CREATE SEQUENCE change_seq;` },
  { version: 3, what: 'a GNAT\'s ACT (NAT-f) per GE', sql: `
ALTER TABLE ges ADD COLUMN act TEXT NOT NULL DEFAULT '[]';` },
  { version: 4, what: 'the external addresses GNATs report at run time (NAT-f)', sql: `
CREATE TABLE gnat_reports (user_id TEXT PRIMARY KEY, addr TEXT NOT NULL, at_ms BIGINT NOT NULL);` },
];

/** int8 and numeric as JS numbers (every value here is a ms time, id or count below 2^53). */
const TYPES = {
  getTypeParser: (oid: number, format?: string) => {
    if (oid === 20 || oid === 1700) return (v: string) => Number(v);
    return (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

type Q = pg.Pool | pg.PoolClient | pg.Client;
type Row = Record<string, unknown>;

export interface PgOptions {
  /** How often a follower tries to take the leader lock (and the leader checks its connection). */
  leaseCheckMs?: number;
  heartbeatMs?: number;
}

export class PgBackend implements GmsBackend {
  readonly kind = 'postgresql' as const;
  private origin = 'startup';
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  private listener: pg.Client | null = null;
  private leaderConn: pg.Client | null = null;
  private leader = false;
  private lockPid: number | null = null;
  private seen = 0;
  private self: { id: string; url: string } = { id: 'startup', url: '' };
  private startedAt = Date.now();

  private constructor(private readonly url: string, private readonly pool: pg.Pool, private readonly atRest: AtRest, private readonly o: PgOptions) {}

  static async open(url: string, atRest: AtRest, o: PgOptions = {}): Promise<PgBackend> {
    if (!atRest.enabled) throw new AtRestError('database postgresql: a master key is required (--master-key-file or $GSCIP_GMS_MASTER_KEY): the CA key and group keys are stored sealed');
    const pool = new pg.Pool({ connectionString: url, max: 10, types: TYPES, connectionTimeoutMillis: 5000 });
    pool.on('error', (e) => log.warn({ err: e }, 'idle database connection failed'));
    const b = new PgBackend(url, pool, atRest, o);
    try { await b.migrate(); } catch (e) { await pool.end().catch(() => undefined); throw e; }
    return b;
  }

  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NS, MIGRATE_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, what TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const have = new Set((await c.query('SELECT version FROM schema_migrations')).rows.map((r: Row) => Number(r.version)));
      for (const m of PG_MIGRATIONS) {
        if (have.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          await c.query(m.sql);
          await c.query('INSERT INTO schema_migrations(version, what, applied_at) VALUES ($1, $2, $3)', [m.version, m.what, Date.now()]);
          await c.query('COMMIT');
          log.info({ version: m.version, what: m.what }, 'database migrated');
        } catch (e) { await c.query('ROLLBACK'); throw e; }
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NS, MIGRATE_LOCK]).catch(() => undefined);
      c.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    await this.pool.query('DELETE FROM replicas WHERE id = $1', [this.self.id]).catch(() => undefined);
    await this.listener?.end().catch(() => undefined);
    await this.leaderConn?.end().catch(() => undefined); // frees the leader lock
    await this.pool.end().catch(() => undefined);
  }

  private async all(sql: string, params: unknown[] = [], c: Q = this.pool): Promise<Row[]> { return (await c.query(sql, params)).rows as Row[]; }
  private async one(sql: string, params: unknown[] = [], c: Q = this.pool): Promise<Row | undefined> { return (await this.all(sql, params, c))[0]; }

  /**
   * One transaction; the change note (if any) is sent with NOTIFY inside it,
   * so replicas hear of a change exactly when it commits. Retried on a
   * serialization failure or deadlock.
   */
  private async tx<T>(kind: ChangeNote['kind'] | null, fn: (c: pg.PoolClient, note: { dropUsers: string[] }) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.pool.connect();
      try {
        await c.query('BEGIN');
        const note = { dropUsers: [] as string[] };
        const out = await fn(c, note);
        if (kind) {
          const seq = Number((await this.one("SELECT nextval('change_seq') AS s", [], c))!.s);
          const n: ChangeNote = { origin: this.origin, seq, kind, ...(note.dropUsers.length ? { dropUsers: note.dropUsers } : {}) };
          await c.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(n).slice(0, 7900)]);
        }
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        const code = (e as { code?: string }).code;
        if ((code === '40001' || code === '40P01') && attempt < 5) continue;
        throw e;
      } finally {
        c.release();
      }
    }
  }

  // ---- GNAT reports (run-time state, no change note: every replica is told by the GNAT itself) ----
  async gnatReports(): Promise<GnatReportRow[]> {
    return (await this.all('SELECT user_id, addr, at_ms FROM gnat_reports ORDER BY user_id')).map((r) => ({ userId: String(r.user_id), addr: String(r.addr), atMs: Number(r.at_ms) }));
  }
  async saveGnatReport(r: GnatReportRow, lapsedBeforeMs: number): Promise<void> {
    await this.tx(null, async (c) => {
      await c.query('INSERT INTO gnat_reports(user_id, addr, at_ms) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET addr = excluded.addr, at_ms = excluded.at_ms', [r.userId, r.addr, r.atMs]);
      await c.query('DELETE FROM gnat_reports WHERE at_ms < $1', [lapsedBeforeMs]);
    });
  }

  // ---- reads ----
  async getMeta(k: string) { return (await this.one('SELECT v FROM meta WHERE k = $1', [k]))?.v as string | undefined; }

  async readNetwork(c: Q = this.pool): Promise<NetworkState> {
    const groups: GroupDef[] = (await this.all('SELECT * FROM groups ORDER BY id', [], c)).map((r) => ({
      id: Number(r.id), name: String(r.name),
      rotation: { schedule: String(r.schedule), timezone: String(r.timezone), graceSeconds: Number(r.grace_s) },
      cipher: cipherOf(r, `group ${String(r.id)}`),
    }));
    const mem = new Map<string, number[]>();
    for (const r of await this.all('SELECT user_id, group_id FROM memberships ORDER BY group_id', [], c)) {
      const u = String(r.user_id);
      mem.set(u, [...(mem.get(u) ?? []), Number(r.group_id)]);
    }
    const ges: GeDef[] = (await this.all('SELECT * FROM ges ORDER BY user_id COLLATE "C"', [], c)).map((r) => withAct({
      userId: String(r.user_id), type: r.type as GeType, mode: r.mode as GeMode, groups: mem.get(String(r.user_id)) ?? [],
    }, r.act));
    return { groups, ges, policy: await this.readPolicy(c) };
  }

  /** The network-wide rules (meta 'policy', JSON, as the SQLite store keeps them). */
  async readPolicy(c: Q = this.pool): Promise<NetworkPolicy> {
    const r = await this.one("SELECT v FROM meta WHERE k = 'policy'", [], c);
    if (!r) return { ...EMPTY_POLICY };
    const p = JSON.parse(String(r.v)) as Partial<NetworkPolicy>;
    return { requireEncryption: Array.isArray(p.requireEncryption) ? p.requireEncryption.map(String) : [], ...(Array.isArray(p.gnats) && p.gnats.length ? { gnats: p.gnats.map(String), ...ownersOf(p.gnatOwners) } : {}),
      ...(Array.isArray(p.gsraRouters) && p.gsraRouters.length ? { gsraRouters: p.gsraRouters.map(String) } : {}) };
  }

  async getGe(userId: string, c: Q = this.pool): Promise<GeDef | undefined> {
    const r = await this.one('SELECT * FROM ges WHERE user_id = $1', [userId], c);
    if (!r) return undefined;
    const groups = (await this.all('SELECT group_id FROM memberships WHERE user_id = $1 ORDER BY group_id', [userId], c)).map((x) => Number(x.group_id));
    return withAct({ userId, type: r.type as GeType, mode: r.mode as GeMode, groups }, r.act);
  }

  async allKeys(): Promise<GroupKey[]> {
    return (await this.all('SELECT * FROM group_keys ORDER BY group_id, version')).map((r) => ({
      groupId: Number(r.group_id), version: Number(r.version),
      key: this.atRest.open(r.key as Buffer, groupKeyAad(Number(r.group_id), Number(r.version))),
      createdAt: Number(r.created_at), expiresAt: r.expires_at == null ? null : Number(r.expires_at),
      cipher: cipherOf(r, `group ${String(r.group_id)} key v${String(r.version)}`),
    }));
  }

  async nextKeyExpiry() {
    const r = await this.one('SELECT MIN(expires_at) AS t FROM group_keys WHERE expires_at IS NOT NULL');
    return r?.t == null ? null : Number(r.t);
  }
  async rotationCount() { return Number((await this.one('SELECT COUNT(*) AS n FROM rotations'))?.n ?? 0); }

  async getCert(serial: string): Promise<CertRow | undefined> {
    const r = await this.one('SELECT * FROM certs WHERE serial = $1', [serial]);
    return r && { serial, kind: r.kind as 'ge' | 'admin', userId: String(r.user_id), issuedAt: Number(r.issued_at), notAfter: Number(r.not_after), revokedAt: r.revoked_at == null ? null : Number(r.revoked_at) };
  }
  async certifiedUsers(now: number): Promise<string[]> {
    return (await this.all('SELECT u FROM (SELECT DISTINCT user_id AS u FROM certs WHERE kind = \'ge\' AND revoked_at IS NULL AND not_after > $1) x ORDER BY u COLLATE "C"', [now])).map((r) => String(r.u));
  }
  async enrolledGes(now: number): Promise<string[]> {
    return (await this.all('SELECT u FROM (SELECT DISTINCT c.user_id AS u FROM certs c JOIN ges g ON g.user_id = c.user_id WHERE c.kind = \'ge\' AND c.revoked_at IS NULL AND c.not_after > $1) x ORDER BY u COLLATE "C"', [now]))
      .map((r) => String(r.u));
  }

  // ---- changes (each one transaction) ----
  async applyPlan(plan: Plan, now: number) {
    return this.tx('apply', async (c, note) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NS, APPLY_LOCK]); // one apply at a time across replicas
      const rotated: Array<{ groupId: number; version: number }> = [];
      for (const o of plan.ops) {
        switch (o.op) {
          case 'add-group':
            await c.query('INSERT INTO groups(id, name, schedule, timezone, grace_s, cipher) VALUES ($1,$2,$3,$4,$5,$6)',
              [o.group.id, o.group.name, o.group.rotation.schedule, o.group.rotation.timezone, o.group.rotation.graceSeconds, o.group.cipher]);
            rotated.push({ groupId: o.group.id, version: await this.rotateIn(c, o.group.id, now, 'group created') });
            break;
          case 'update-group':
            await c.query('UPDATE groups SET name = $1, schedule = $2, timezone = $3, grace_s = $4, cipher = $5 WHERE id = $6',
              [o.group.name, o.group.rotation.schedule, o.group.rotation.timezone, o.group.rotation.graceSeconds, o.group.cipher, o.group.id]);
            break;
          case 'remove-group':
            await c.query('DELETE FROM groups WHERE id = $1', [o.id]);
            break;
          case 'add-ge':
            await c.query('INSERT INTO ges(user_id, type, mode, created_at, act) VALUES ($1,$2,$3,$4,$5)', [o.ge.userId, o.ge.type, o.ge.mode, now, actToColumn(o.ge.act)]);
            for (const g of o.ge.groups) await c.query('INSERT INTO memberships(user_id, group_id) VALUES ($1,$2)', [o.ge.userId, g]);
            break;
          case 'update-ge':
            await c.query('UPDATE ges SET type = $1, mode = $2, act = $3 WHERE user_id = $4', [o.ge.type, o.ge.mode, actToColumn(o.ge.act), o.ge.userId]);
            await c.query('DELETE FROM memberships WHERE user_id = $1', [o.ge.userId]);
            for (const g of o.ge.groups) await c.query('INSERT INTO memberships(user_id, group_id) VALUES ($1,$2)', [o.ge.userId, g]);
            break;
          case 'remove-ge':
            await c.query('DELETE FROM ges WHERE user_id = $1', [o.userId]);
            await c.query('UPDATE certs SET revoked_at = $1 WHERE user_id = $2 AND kind = \'ge\' AND revoked_at IS NULL', [now, o.userId]);
            await c.query('DELETE FROM tokens WHERE user_id = $1', [o.userId]);
            note.dropUsers.push(o.userId);
            break;
          case 'set-policy':
            await c.query("INSERT INTO meta(k, v) VALUES ('policy', $1) ON CONFLICT(k) DO UPDATE SET v = excluded.v", [JSON.stringify(o.policy)]);
            break;
          case 'rotate':
            rotated.push({ groupId: o.groupId, version: await this.rotateIn(c, o.groupId, now, o.reason) });
            break;
        }
      }
      return rotated;
    });
  }

  /** New key version (inside c's tx); the group row is locked, so rotations of one group are serial. */
  private async rotateIn(c: pg.PoolClient, groupId: number, now: number, reason: string): Promise<number> {
    const g = await this.one('SELECT grace_s, cipher FROM groups WHERE id = $1 FOR UPDATE', [groupId], c);
    if (!g) throw new Error(`group ${groupId} does not exist`);
    const last = Number((await this.one('SELECT last_version FROM key_versions WHERE group_id = $1', [groupId], c))?.last_version ?? 0);
    const version = last + 1;
    if (version > 0xffffffff) throw new Error(`group ${groupId}: key version space exhausted`);
    await c.query('UPDATE group_keys SET expires_at = $1 WHERE group_id = $2 AND expires_at IS NULL', [now + Number(g.grace_s) * 1000, groupId]);
    await c.query('INSERT INTO group_keys(group_id, version, key, created_at, expires_at, cipher) VALUES ($1,$2,$3,$4,NULL,$5)',
      [groupId, version, this.atRest.seal(randomBytes(GROUP_KEY_BYTES), groupKeyAad(groupId, version)), now, cipherOf(g, `group ${groupId}`)]);
    await c.query('INSERT INTO key_versions(group_id, last_version) VALUES ($1,$2) ON CONFLICT(group_id) DO UPDATE SET last_version = excluded.last_version', [groupId, version]);
    await c.query('INSERT INTO rotations(group_id, version, at, reason) VALUES ($1,$2,$3,$4)', [groupId, version, now, reason]);
    return version;
  }

  async rotate(groupId: number, now: number, reason: string) { return this.tx('rotate', (c) => this.rotateIn(c, groupId, now, reason)); }

  async rotateIfDue(groupId: number, now: number): Promise<number | null> {
    const r = await this.tx('rotate', async (c) => {
      const g = await this.one('SELECT * FROM groups WHERE id = $1 FOR UPDATE', [groupId], c);
      if (!g) return null;
      const def: GroupDef = { id: groupId, name: String(g.name), cipher: cipherOf(g, `group ${groupId}`),
        rotation: { schedule: String(g.schedule), timezone: String(g.timezone), graceSeconds: Number(g.grace_s) } };
      const cur = await this.one('SELECT MAX(created_at) AS t FROM group_keys WHERE group_id = $1 AND expires_at IS NULL', [groupId], c);
      if (nextRotation(def, cur?.t == null ? 0 : Number(cur.t)) > now) throw NOT_DUE; // nothing to tell anyone: roll back
      const v = await this.rotateIn(c, groupId, now, 'scheduled');
      await failpoint('rotation-hold', `group ${groupId} v${v} by ${this.self.id}`);
      return v;
    }).catch((e) => { if (e === NOT_DUE) return null; throw e; });
    return r;
  }

  async expireKeys(now: number) {
    const gone = await this.tx('expire', async (c) => (await this.all('DELETE FROM group_keys WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING group_id, version', [now], c))
      .map((r) => ({ groupId: Number(r.group_id), version: Number(r.version) })));
    return gone.sort((a, b) => a.groupId - b.groupId || a.version - b.version);
  }

  async addCert(x: Omit<CertRow, 'revokedAt'>) {
    await this.tx('enroll', (c) => c.query('INSERT INTO certs(serial, kind, user_id, issued_at, not_after, revoked_at) VALUES ($1,$2,$3,$4,$5,NULL)',
      [x.serial, x.kind, x.userId, x.issuedAt, x.notAfter]));
  }
  async revokeGe(userId: string, now: number) {
    return this.tx('revoke', async (c, note) => {
      note.dropUsers.push(userId);
      return (await c.query('UPDATE certs SET revoked_at = $1 WHERE user_id = $2 AND kind = \'ge\' AND revoked_at IS NULL', [now, userId])).rowCount ?? 0;
    });
  }
  async addToken(hash: string, userId: string, now: number, expiresAt: number) {
    await this.tx(null, (c) => c.query('INSERT INTO tokens(hash, user_id, created_at, expires_at, used_at) VALUES ($1,$2,$3,$4,NULL)', [hash, userId, now, expiresAt]));
  }
  async consumeToken(hash: string, now: number): Promise<TokenCheck> {
    return this.tx(null, async (c) => {
      const r = await this.one('SELECT * FROM tokens WHERE hash = $1 FOR UPDATE', [hash], c);
      if (!r) return { ok: false, reason: 'unknown' } as const;
      if (r.used_at != null) return { ok: false, reason: 'used' } as const;
      if (Number(r.expires_at) <= now) return { ok: false, reason: 'expired' } as const;
      const userId = String(r.user_id);
      if (!(await this.getGe(userId, c))) return { ok: false, reason: 'ge-removed' } as const;
      await c.query('UPDATE tokens SET used_at = $1 WHERE hash = $2', [now, hash]);
      return { ok: true, userId } as const;
    });
  }

  // ---- CA ----
  async loadCa() {
    const rows = await this.all("SELECT k, v FROM meta WHERE k IN ('ca_cert', 'ca_key')");
    const m = new Map(rows.map((r) => [String(r.k), String(r.v)]));
    if (!m.has('ca_cert') || !m.has('ca_key')) return null;
    return { certPem: m.get('ca_cert')!, keyPem: this.atRest.open(Buffer.from(m.get('ca_key')!, 'base64'), CA_KEY_AAD).toString('utf8') };
  }
  async saveCa(ca: { certPem: string; keyPem: string }) {
    await this.tx(null, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NS, MIGRATE_LOCK]);
      const have = await this.one("SELECT v FROM meta WHERE k = 'ca_cert'", [], c);
      if (have) return;
      await c.query("INSERT INTO meta(k, v) VALUES ('ca_cert', $1), ('ca_key', $2)", [ca.certPem, this.atRest.seal(Buffer.from(ca.keyPem), CA_KEY_AAD).toString('base64')]);
    });
    return (await this.loadCa())!;
  }

  async rekey() {
    return this.tx(null, async (c) => {
      let n = 0;
      for (const r of await this.all('SELECT group_id, version, key FROM group_keys FOR UPDATE', [], c)) {
        const blob = r.key as Buffer;
        if (this.atRest.isCurrent(blob)) continue;
        const aad = groupKeyAad(Number(r.group_id), Number(r.version));
        await c.query('UPDATE group_keys SET key = $1 WHERE group_id = $2 AND version = $3', [this.atRest.seal(this.atRest.open(blob, aad), aad), r.group_id, r.version]);
        n++;
      }
      let caKey = false;
      const k = await this.one("SELECT v FROM meta WHERE k = 'ca_key' FOR UPDATE", [], c);
      if (k) {
        const blob = Buffer.from(String(k.v), 'base64');
        if (!this.atRest.isCurrent(blob)) {
          await c.query("UPDATE meta SET v = $1 WHERE k = 'ca_key'", [this.atRest.seal(this.atRest.open(blob, CA_KEY_AAD), CA_KEY_AAD).toString('base64')]);
          caKey = true;
        }
      }
      return { groupKeys: n, caKey };
    });
  }

  // ---- replicas ----
  async coordinate(self: { id: string; url: string }, h: ReplicaHandlers): Promise<void> {
    this.self = self;
    this.origin = self.id;
    this.startedAt = Date.now();
    await this.heartbeat();
    await this.listen(h);
    await this.leaderTick(h);
  }

  markSeen(seq: number): void { this.seen = Math.max(this.seen, seq); }

  private later(ms: number, fn: () => Promise<void> | void): void {
    if (this.closed) return;
    const t = setTimeout(() => { this.timers = this.timers.filter((x) => x !== t); void Promise.resolve().then(fn).catch(() => undefined); }, ms);
    t.unref();
    this.timers.push(t);
  }

  private async heartbeat(): Promise<void> {
    if (this.closed) return;
    try {
      const now = Date.now();
      await this.pool.query(`INSERT INTO replicas(id, url, started_at, heartbeat_at, leader, seen_seq, lock_pid) VALUES ($1,$2,$3,$4,$5,$6,$7)
        ON CONFLICT(id) DO UPDATE SET url = excluded.url, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
          leader = excluded.leader, seen_seq = excluded.seen_seq, lock_pid = excluded.lock_pid`,
      [this.self.id, this.self.url, this.startedAt, now, this.leader, this.seen, this.lockPid]);
      await this.pool.query('DELETE FROM replicas WHERE heartbeat_at < $1', [now - 3_600_000]);
    } catch (e) {
      log.warn({ err: e }, 'replica heartbeat failed');
    }
    this.later(this.o.heartbeatMs ?? 1000, () => this.heartbeat());
  }

  /** LISTEN on a connection of its own; after a lost connection, reconnect and tell the server to resync (notes may be lost). */
  private async listen(h: ReplicaHandlers): Promise<void> {
    if (this.closed) return;
    const c = new pg.Client({ connectionString: this.url, types: TYPES, connectionTimeoutMillis: 5000 });
    let dead = false;
    const lost = (e?: Error): void => {
      if (dead) return;
      dead = true;
      if (this.closed) return;
      log.warn({ err: e }, 'LISTEN connection lost: reconnecting');
      void c.end().catch(() => undefined);
      this.listener = null;
      this.later(500, async () => { await this.listen(h); });
    };
    c.on('error', lost);
    c.on('end', () => lost());
    c.on('notification', (m) => {
      if (m.channel !== CHANNEL || !m.payload) return;
      let n: ChangeNote;
      try { n = JSON.parse(m.payload) as ChangeNote; } catch { return; }
      if (n.origin === this.self.id) { this.markSeen(n.seq); return; }
      h.onChange(n);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
      this.listener = c;
      h.onChange(null); // whatever happened while not listening
    } catch (e) {
      lost(e as Error);
    }
  }

  /** Take the leader lock if free; as leader, check the connection that holds it is alive. */
  private async leaderTick(h: ReplicaHandlers): Promise<void> {
    if (this.closed) return;
    const every = this.o.leaseCheckMs ?? 500;
    try {
      if (!this.leaderConn) {
        const c = new pg.Client({ connectionString: this.url, types: TYPES, connectionTimeoutMillis: 5000, statement_timeout: 5000 });
        c.on('error', () => undefined);
        await c.connect();
        this.leaderConn = c;
        this.lockPid = Number(((await c.query('SELECT pg_backend_pid() AS p')).rows[0] as Row).p);
      }
      if (!this.leader) {
        const r = await this.leaderConn.query('SELECT pg_try_advisory_lock($1, $2) AS got', [LOCK_NS, LEADER_LOCK]);
        if ((r.rows[0] as Row).got === true) { this.leader = true; log.info({ replica: this.self.id }, 'leader'); await this.heartbeat0(); h.onLeader(true); }
      } else {
        await this.leaderConn.query('SELECT 1');
      }
    } catch (e) {
      const was = this.leader;
      this.leader = false;
      void this.leaderConn?.end().catch(() => undefined);
      this.leaderConn = null;
      if (was) { log.warn({ err: e }, 'lost the leader lock\'s connection: no longer leader'); h.onLeader(false); }
    }
    this.later(every, () => this.leaderTick(h));
  }

  /** The replica row says leader at once (status readers do not wait for the next heartbeat). */
  private async heartbeat0(): Promise<void> {
    await this.pool.query('UPDATE replicas SET leader = $1, heartbeat_at = $2, lock_pid = $3 WHERE id = $4', [this.leader, Date.now(), this.lockPid, this.self.id]).catch(() => undefined);
  }

  /** The leader is read from pg_locks (who holds the lock now), not from the rows' own claims, which a dead replica leaves behind. */
  async replicas(): Promise<ReplicaRow[]> {
    const sql = `SELECT r.*, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = r.lock_pid
        AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2) AS holds FROM replicas r ORDER BY id`;
    return (await this.all(sql, [LOCK_NS, LEADER_LOCK])).map((r) => ({
      id: String(r.id), url: String(r.url), leader: r.holds === true, startedAt: Number(r.started_at), heartbeatAt: Number(r.heartbeat_at), seenSeq: Number(r.seen_seq),
    }));
  }

  async info(): Promise<DatabaseInfo> {
    const v = await this.one('SELECT version() AS v');
    const s = await this.one('SELECT last_value, is_called FROM change_seq');
    return { kind: 'postgresql', location: redactUrl(this.url), version: String(v?.v ?? '?').split(' on ')[0], changeSeq: s?.is_called ? Number(s.last_value) : 0, encryptedAtRest: true };
  }

  /** Every row of every table as stored, unordered (gms migrate sorts and compares them). */
  async dumpTables(tables: string[]): Promise<Record<string, Row[]>> {
    const out: Record<string, Row[]> = {};
    for (const t of tables) out[t] = await this.all(`SELECT * FROM ${t}`);
    return out;
  }

  /** For gms migrate: insert rows into an empty database in one transaction, then one NOTIFY. */
  async importRows(tables: Record<string, Row[]>, columns: Readonly<Record<string, string[]>>, ca: { certPem: string; keyPem: string } | null): Promise<void> {
    await this.tx('apply', async (c) => {
      for (const [t, cols] of Object.entries(columns)) {
        for (const r of tables[t] ?? []) {
          await c.query(`INSERT INTO ${t}(${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((k) => r[k]));
        }
      }
      if (ca) {
        await c.query("INSERT INTO meta(k, v) VALUES ('ca_cert', $1), ('ca_key', $2)", [ca.certPem, this.atRest.seal(Buffer.from(ca.keyPem), CA_KEY_AAD).toString('base64')]);
      }
    });
  }

  /** Rows in the tables a GMS fills (an empty target is required by gms migrate). */
  async rowCounts(tables: string[]): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const t of tables) out[t] = Number((await this.one(`SELECT COUNT(*) AS n FROM ${t}`))!.n);
    return out;
  }

  /** Seal a group key for a row (gms migrate). */
  sealGroupKey(plain: Buffer, group: number, version: number): Buffer { return this.atRest.seal(plain, groupKeyAad(group, version)); }
  openGroupKey(blob: Buffer, group: number, version: number): Buffer { return this.atRest.open(blob, groupKeyAad(group, version)); }
  isLeader(): boolean { return this.leader; }
}

const NOT_DUE = new Error('not due');

function cipherOf(r: Row, what: string): Cipher {
  if (!isCipher(r.cipher)) throw new Error(`GMS database: ${what} has cipher ${JSON.stringify(r.cipher)}, not one this release knows`);
  return r.cipher;
}
