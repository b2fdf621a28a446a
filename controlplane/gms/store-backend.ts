/**
 * The GMS store as the server sees it, whatever the engine: every method is
 * one transaction (all or nothing), asynchronous, and the same semantics on
 * both engines:
 *   sqlite      the embedded default (store.ts: sql.js, one file in the data dir, one GMS process)
 *   postgresql  store-pg.ts: one database, several GMS replicas on it
 * `openBackend()` picks one from a connection URL. Besides the data, a backend
 * coordinates replicas: who is the leader (the one replica that runs
 * scheduled rotations), telling every replica about a change made through
 * any of them, and the replica table `gscip gms status` reads.
 */
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { GscipError } from '../errors/catalogue.js';
import type { AtRest } from './at-rest.js';
import type { GeDef, GroupKey, NetworkPolicy, NetworkState } from './model.js';
import type { Plan } from './plan.js';
import { GmsStore, type CertRow, type GnatReportRow, type TokenCheck } from './store.js';
import { writePrivateFileAtomic, ensurePrivateDir } from './secure-fs.js';

export type { CertRow, GnatReportRow, TokenCheck };

export class GmsDatabaseError extends GscipError {
  constructor(message: string) { super('GSCIP_E_GMS_DATABASE', message); }
}

/** What changed, as every replica hears it (LISTEN/NOTIFY payload with PostgreSQL). */
export interface ChangeNote {
  /** Replica that made the change. */
  origin: string;
  /** Monotonic change number (the database's change sequence). */
  seq: number;
  kind: 'apply' | 'rotate' | 'expire' | 'revoke' | 'token' | 'enroll';
  /** GEs whose streams must be hung up (removed or revoked). */
  dropUsers?: string[];
}

export interface ReplicaRow {
  id: string;
  url: string;
  leader: boolean;
  startedAt: number;
  heartbeatAt: number;
  /** Last change number this replica has applied to its subscribers. */
  seenSeq: number;
}

export interface ReplicaHandlers {
  /** Leadership gained (true) or lost (false). */
  onLeader(leader: boolean): void;
  /** A change made through another replica (or missed ones: resync). */
  onChange(note: ChangeNote | null): void;
}

export interface DatabaseInfo { kind: 'sqlite' | 'postgresql'; location: string; version: string; changeSeq: number; encryptedAtRest: boolean }

export interface GmsBackend {
  readonly kind: 'sqlite' | 'postgresql';
  close(): Promise<void>;

  getMeta(k: string): Promise<string | undefined>;
  readNetwork(): Promise<NetworkState>;
  /** The network-wide rules (NetworkPolicy); none before any was applied. */
  readPolicy(): Promise<NetworkPolicy>;
  getGe(userId: string): Promise<GeDef | undefined>;
  /** Keys opened (decrypted) under the replica's master key. */
  allKeys(): Promise<GroupKey[]>;
  nextKeyExpiry(): Promise<number | null>;
  rotationCount(): Promise<number>;
  getCert(serial: string): Promise<CertRow | undefined>;
  enrolledGes(now: number): Promise<string[]>;
  /** User IDs with a valid GE certificate whether or not the network file has them (directory users, GSRA). */
  certifiedUsers(now: number): Promise<string[]>;

  applyPlan(plan: Plan, now: number): Promise<Array<{ groupId: number; version: number }>>;
  rotate(groupId: number, now: number, reason: string): Promise<number>;
  /**
   * The scheduled rotation of a group, if it is still due: decided inside the
   * transaction from the group's current key (with PostgreSQL under a row
   * lock), so two replicas that both think they lead rotate it once.
   */
  rotateIfDue(groupId: number, now: number): Promise<number | null>;
  expireKeys(now: number): Promise<Array<{ groupId: number; version: number }>>;
  addCert(c: Omit<CertRow, 'revokedAt'>): Promise<void>;
  revokeGe(userId: string, now: number): Promise<number>;
  addToken(hash: string, userId: string, now: number, expiresAt: number): Promise<void>;
  consumeToken(hash: string, now: number): Promise<TokenCheck>;

  /** The GNATs' reported external addresses (gnat-reports.ts): run-time state, kept across a restart. */
  gnatReports(): Promise<GnatReportRow[]>;
  /** Keep one report (a GNAT's newer one replaces it); reports older than `lapsedBeforeMs` are removed. */
  saveGnatReport(r: GnatReportRow, lapsedBeforeMs: number): Promise<void>;

  /** The CA (certificate + private key PEM), or null before the first start. */
  loadCa(): Promise<{ certPem: string; keyPem: string } | null>;
  /** Store the CA unless one is there already; returns the one stored (two replicas starting at once agree). */
  saveCa(ca: { certPem: string; keyPem: string }): Promise<{ certPem: string; keyPem: string }>;
  /** Re-seal every secret under the current master key. Returns how many were re-sealed. */
  rekey(): Promise<{ groupKeys: number; caKey: boolean }>;

  /** Join the replica set as `self`; handlers fire until close(). */
  coordinate(self: { id: string; url: string }, h: ReplicaHandlers): Promise<void>;
  /** This replica has pushed every change up to seq to its subscribers. */
  markSeen(seq: number): void;
  replicas(): Promise<ReplicaRow[]>;
  info(): Promise<DatabaseInfo>;
}

/** A connection URL (or a data dir's default) -> its engine. Passwords never appear in messages. */
export function redactUrl(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return '(unparsable URL)'; }
}

export async function openBackend(o: { dataDir: string; database?: string; atRest: AtRest }): Promise<GmsBackend> {
  const url = o.database ?? 'sqlite:';
  if (url === 'sqlite:' || url.startsWith('sqlite:')) {
    if (url !== 'sqlite:') throw new GmsDatabaseError(`database: sqlite takes no path ("sqlite:"), the file is <data-dir>/gms.sqlite; got ${url}`);
    return SqliteBackend.open(o.dataDir, o.atRest);
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PgBackend } = await import('./store-pg.js');
    return PgBackend.open(url, o.atRest);
  }
  throw new GmsDatabaseError(`database: expected sqlite: or postgresql://..., got ${redactUrl(url)}`);
}

/** The embedded engine: the synchronous GmsStore, one transaction per call; one replica, always the leader. */
export class SqliteBackend implements GmsBackend {
  readonly kind = 'sqlite' as const;
  private seq = 0;
  private constructor(readonly store: GmsStore, private readonly dataDir: string, private readonly atRest: AtRest) {}

  static async open(dataDir: string, atRest: AtRest): Promise<SqliteBackend> {
    return new SqliteBackend(await GmsStore.open(dataDir, atRest), dataDir, atRest);
  }

  async close(): Promise<void> { this.store.close(); }
  async getMeta(k: string) { return this.store.getMeta(k); }
  async readNetwork() { return this.store.readNetwork(); }
  async readPolicy() { return this.store.readPolicy(); }
  async getGe(u: string) { return this.store.getGe(u); }
  async allKeys() { return this.store.allKeys(); }
  async nextKeyExpiry() { return this.store.nextKeyExpiry(); }
  async rotationCount() { return this.store.rotationCount(); }
  async getCert(s: string) { return this.store.getCert(s); }
  async enrolledGes(now: number) { return this.store.enrolledGes(now); }
  async certifiedUsers(now: number) { return this.store.certifiedUsers(now); }
  async applyPlan(plan: Plan, now: number) { return this.store.tx(() => this.store.applyPlan(plan, now)); }
  async rotate(g: number, now: number, reason: string) { return this.store.tx(() => this.store.rotate(g, now, reason)); }
  async rotateIfDue(g: number, now: number) { return this.store.tx(() => this.store.rotateIfDue(g, now)); }
  async expireKeys(now: number) { return this.store.tx(() => this.store.expireKeys(now)); }
  async addCert(c: Omit<CertRow, 'revokedAt'>) { this.store.tx(() => this.store.addCert(c)); }
  async revokeGe(u: string, now: number) { return this.store.tx(() => this.store.revokeGe(u, now)); }
  async addToken(h: string, u: string, now: number, exp: number) { this.store.tx(() => this.store.addToken(h, u, now, exp)); }
  async consumeToken(h: string, now: number) { return this.store.tx(() => this.store.consumeToken(h, now)); }
  async gnatReports() { return this.store.gnatReports(); }
  async saveGnatReport(r: GnatReportRow, lapsedBeforeMs: number) { this.store.tx(() => this.store.saveGnatReport(r, lapsedBeforeMs)); }

  /** The CA stays where it always was: <data-dir>/ca/ca.crt and ca.key (0600). */
  async loadCa() {
    const dir = join(this.dataDir, 'ca');
    const crt = join(dir, 'ca.crt');
    const key = join(dir, 'ca.key');
    if (!existsSync(crt) || !existsSync(key)) return null;
    return { certPem: readFileSync(crt, 'utf8'), keyPem: readFileSync(key, 'utf8') };
  }
  async saveCa(ca: { certPem: string; keyPem: string }) {
    const have = await this.loadCa();
    if (have) return have;
    const dir = join(this.dataDir, 'ca');
    ensurePrivateDir(dir);
    writePrivateFileAtomic(join(dir, 'ca.key'), ca.keyPem);
    writePrivateFileAtomic(join(dir, 'ca.crt'), ca.certPem);
    return ca;
  }
  async rekey() { return { groupKeys: this.store.tx(() => this.store.rekey()), caKey: false }; }

  private self = { id: 'local', url: '' };
  private started = Date.now();
  async coordinate(self: { id: string; url: string }, h: ReplicaHandlers) { this.self = self; this.started = Date.now(); h.onLeader(true); }
  markSeen(seq: number) { this.seq = Math.max(this.seq, seq); }
  async replicas(): Promise<ReplicaRow[]> {
    return [{ id: this.self.id, url: this.self.url, leader: true, startedAt: this.started, heartbeatAt: Date.now(), seenSeq: this.seq }];
  }
  async info(): Promise<DatabaseInfo> {
    return { kind: 'sqlite', location: join(this.dataDir, 'gms.sqlite'), version: 'sql.js (SQLite)', changeSeq: this.seq, encryptedAtRest: this.atRest.enabled };
  }
}
