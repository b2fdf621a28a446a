/**
 * `gscip gms serve`: the Group Management Server.
 *
 * One HTTPS listener (TLS 1.3). Client certificates are requested on every
 * connection and verified against the GMS's own CA; only the bootstrap routes
 * (`GET /v1/ca`, `POST /v1/enroll`) work without one. Everything else needs a
 * certificate that the CA issued, that has not expired (TLS checks), that is
 * recorded in the database, not revoked, of the right role, and (for a GE)
 * whose GE still exists.
 *
 * GE routes:    GET /v1/ge/self      its info and keys
 *               GET /v1/ge/events    server-sent events: `state` at once and on every change
 *               POST /v1/ge/external a GNAT's external address now (gnat-reports.ts): every GE's `gnats` gets it
 * Admin routes: GET /v1/admin/network|ges|groups|keys|status, POST /v1/admin/apply|tokens|rotate|revoke
 *
 * The store is a GmsBackend (store-backend.ts): the embedded SQLite file, or
 * PostgreSQL shared by several replicas of this server. Every replica serves
 * agents and admins; only the leader (the backend says which) runs scheduled
 * rotations and expiry; a change made through another replica arrives as a
 * ChangeNote and is pushed to this replica's subscribers like a local one.
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { logger } from '../log/logger.js';
import {
  gmsAuthRefusedTotal, gmsGnatReportsTotal, gmsDirectoryRevocationsTotal, gmsDirectorySyncsTotal, gmsEnrollmentsTotal, gmsPushesTotal, gmsRotationsTotal, registry, setGmsGaugeSource, enableProcessMetrics,
} from '../metrics/metrics.js';
import { checkCsr, GmsCa } from './ca.js';
import { buildDelivery, deliveryDigest, keysByGroup, type GsraExtras } from './delivery.js';
import type { GmsWireCode } from '../errors/catalogue.js';
import { HttpError, readJson, sendJson } from './http-util.js';
import type { GeDef } from './model.js';
import { computePlan, formatPlan, planIsEmpty } from './plan.js';
import { nextRotation, timerDelay } from './scheduler.js';
import { SpecError, validateNetwork } from './spec.js';
import { openBackend, type ChangeNote, type DatabaseInfo, type GmsBackend, type ReplicaRow } from './store-backend.js';
import { AtRest } from './at-rest.js';
import { ensurePrivateDir, writePrivateFileAtomic } from './secure-fs.js';
import { lockDataDir } from './data-dir-lock.js';
import type { DirectoryConfig } from './directory-config.js';
import { Directory, DirectoryRefusal, type LdapOps } from './directory.js';
import { GNAT_REPORT_TTL_MS, GnatReports } from './gnat-reports.js';
import { usableExternal } from '../natf/external-follow.js';
import type { NetworkPolicy } from './model.js';

const log = logger('gms');
const MAX_STREAM_BACKLOG = 1 << 20; // bytes queued to one SSE subscriber

export interface GmsServerOptions {
  dataDir: string;
  host: string;
  port: number; // 0 = any free port
  /** Extra names/IPs the server certificate is valid for (the listen host is always included). */
  serverNames?: string[];
  /** Default lifetime of an enrollment token. */
  tokenTtlSeconds?: number;
  /** Lifetime of GE client certificates. */
  geCertDays?: number;
  /** Interval of SSE keep-alive comments. */
  heartbeatMs?: number;
  /** Optional plain-HTTP Prometheus endpoint, e.g. 127.0.0.1:9464. */
  metricsListen?: { host: string; port: number };
  /** Database URL: `sqlite:` (default, <data-dir>/gms.sqlite) or `postgresql://...` (several replicas). */
  database?: string;
  /** Master key ring for secrets at rest (required with PostgreSQL). Default: AtRest.load(masterKeyFile) */
  atRest?: AtRest;
  masterKeyFile?: string;
  /** This replica's name in the replica table (default: host:port of its URL). */
  replicaId?: string;
  /** URL other hosts reach this replica at, as `gms status` shows it (default: its listen URL). */
  advertiseUrl?: string;
  /** Remote users from an LDAP directory (GSRA): enrollment by user ID and password, groups from directory groups. */
  directory?: DirectoryConfig;
  /** Tests only: the LDAP operations (default: the ldap-utils tools). */
  directoryOps?: LdapOps;
}

/** Files the administrator CLI uses to reach this GMS (written at start). */
export interface AdminEndpointFile { url: string; caFingerprint: string }
export const ADMIN_DIR = 'admin';

/** A replica whose heartbeat is older than this is shown as dead. */
const REPLICA_DEAD_MS = 5000;

export interface GmsStatus {
  self: string;
  leader: string | null;
  database: DatabaseInfo;
  replicas: Array<ReplicaRow & { self: boolean; heartbeatAgeMs: number; alive: boolean; lagChanges: number }>;
}

interface Peer { serial: string; role: 'ge' | 'admin'; userId: string; notAfter: number }
interface Stream { res: ServerResponse; userId: string; lastDigest: string }

type RotationReason = 'schedule' | 'demand' | 'member_left' | 'group_created' | 'cipher_changed';

export class GmsServer {
  private https!: Server;
  private metricsHttp?: HttpServer;
  private readonly streams = new Map<string, Set<Stream>>();
  /** The external addresses GNATs reported (nat.follow), added to every GE's `gnats`. */
  private readonly gnatReports = new GnatReports();
  private lastReported = '';
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private pushScheduled = false;
  private pushing: Promise<void> = Promise.resolve();
  private timerRun: Promise<void> = Promise.resolve();
  /** Only the leader runs scheduled rotations and expiry (always true with SQLite). */
  private leader = false;
  /** Highest change number pushed to this replica's subscribers. */
  private seenSeq = 0;
  private pendingSeq = 0;
  /** Cached for the Prometheus gauges (their collect() is synchronous). */
  private gauges = { enrolled: 0, keyAges: [] as Array<[number, number]> };
  replicaId = '';
  private unlock: () => void = () => undefined;
  /** http://host:port/metrics when metricsListen was given. */
  metricsUrl: string | null = null;
  private closed = false;
  url = '';
  /** The directory of remote users, when configured (docs/gsra.md "Directory"). */
  readonly directory: Directory | null;
  private directoryTimer: NodeJS.Timeout | null = null;
  private directoryRun: Promise<void> = Promise.resolve();

  private constructor(readonly opts: GmsServerOptions, readonly store: GmsBackend, readonly ca: GmsCa, private readonly gsraSecret: Buffer) {
    this.directory = opts.directory ? new Directory(opts.directory, opts.directoryOps) : null;
  }

  static async start(opts: GmsServerOptions): Promise<GmsServer> {
    ensurePrivateDir(opts.dataDir);
    const unlock = lockDataDir(opts.dataDir); // one process per data dir (admin credentials; the SQLite file)
    let store: GmsBackend | null = null;
    let s: GmsServer | null = null;
    try {
      const atRest = opts.atRest ?? AtRest.load(opts.masterKeyFile);
      store = await openBackend({ dataDir: opts.dataDir, database: opts.database, atRest });
      const { ca, gsraSecret } = await loadOrCreateCa(store);
      s = new GmsServer(opts, store, ca, gsraSecret);
      s.unlock = unlock;
      // The GNATs' reports from before a restart (a lapsed one stays lapsed): delivered from the first push.
      s.gnatReports.load(await store.gnatReports());
      await s.listen();
      s.replicaId = opts.replicaId ?? new URL(s.url).host;
      await s.ensureAdminCredentials();
      const srv = s;
      await store.coordinate({ id: s.replicaId, url: opts.advertiseUrl ?? s.url }, {
        onLeader: (l) => { srv.leader = l; srv.armTimer(); },
        onChange: (n) => srv.onRemoteChange(n),
      });
      await s.refreshGauges();
    } catch (e) {
      if (s) await s.close().catch(() => undefined);
      else await store?.close().catch(() => undefined);
      unlock();
      throw e;
    }
    s.armTimer();
    s.armDirectorySync();
    setGmsGaugeSource({
      enrolled: () => s.gauges.enrolled,
      connected: () => s.streams.size,
      keyAges: () => s.gauges.keyAges,
    });
    return s;
  }

  isLeader(): boolean { return this.leader; }

  /** A change made through another replica (null: possibly missed changes): push, re-arm, hang up dropped GEs. */
  private onRemoteChange(n: ChangeNote | null): void {
    if (this.closed) return;
    for (const u of n?.dropUsers ?? []) this.dropStreams(u);
    if (n) this.pendingSeq = Math.max(this.pendingSeq, n.seq);
    this.armTimer();
    this.schedulePush();
  }

  private async refreshGauges(): Promise<void> {
    const now = Date.now();
    this.gauges.enrolled = (await this.store.enrolledGes(now)).length;
    this.gauges.keyAges = (await this.store.allKeys()).filter((k) => k.expiresAt === null).map((k) => [k.groupId, (now - k.createdAt) / 1000]);
  }

  private async listen(): Promise<void> {
    // Listening on a wildcard: the certificate names every local address (agents may use any of them).
    const wildcard = this.opts.host === '0.0.0.0' || this.opts.host === '::';
    const local = wildcard ? Object.values(networkInterfaces()).flat().filter((i) => i && !i.internal).map((i) => i!.address) : [];
    const names = [...new Set([this.opts.host, '127.0.0.1', 'localhost', ...local, ...(this.opts.serverNames ?? [])])]
      .filter((n) => n !== '0.0.0.0' && n !== '::' && !n.includes('%'));
    const tlsPair = await this.ca.issueServer(names);
    this.https = createHttpsServer({
      key: tlsPair.keyPem, cert: tlsPair.certPem, ca: [this.ca.certPem],
      requestCert: true, rejectUnauthorized: false, // per-route: enrollment works without a client cert
      minVersion: 'TLSv1.3',
    }, (req, res) => { void this.handle(req, res); });
    this.https.requestTimeout = 30_000; // time to receive a request; SSE responses are not bounded by it
    this.https.headersTimeout = 10_000;
    this.https.keepAliveTimeout = 5_000;
    this.https.maxConnections = 20_000;
    await new Promise<void>((resolve, reject) => {
      this.https.once('error', reject);
      this.https.listen(this.opts.port, this.opts.host, () => { this.https.off('error', reject); resolve(); });
    });
    const addr = this.https.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    const h = this.opts.host === '0.0.0.0' ? '127.0.0.1' : this.opts.host;
    this.url = `https://${h.includes(':') ? `[${h}]` : h}:${port}`;
    const hbMs = this.opts.heartbeatMs ?? 15_000;
    this.heartbeat = setInterval(() => this.sendHeartbeats(), hbMs);
    this.heartbeat.unref();
    if (this.opts.metricsListen) {
      enableProcessMetrics();
      this.metricsHttp = createHttpServer((req, res) => {
        if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
        registry.metrics().then((m) => { res.writeHead(200, { 'content-type': registry.contentType }); res.end(m); },
          () => { res.writeHead(500).end(); });
      });
      await new Promise<void>((resolve, reject) => {
        this.metricsHttp!.once('error', reject);
        this.metricsHttp!.listen(this.opts.metricsListen!.port, this.opts.metricsListen!.host, () => { this.metricsHttp!.off('error', reject); resolve(); });
      });
      const ma = this.metricsHttp.address();
      this.metricsUrl = `http://${this.opts.metricsListen.host}:${typeof ma === 'object' && ma ? ma.port : this.opts.metricsListen.port}/metrics`;
    }
    log.info({ url: this.url, caFingerprint: this.ca.fingerprint() }, 'GMS listening');
  }

  /** The administrator's client certificate, created once under <data-dir>/admin (0600). */
  private async ensureAdminCredentials(): Promise<void> {
    const dir = join(this.opts.dataDir, ADMIN_DIR);
    const keyPath = join(dir, 'admin.key');
    if (!existsSync(keyPath) || !(await this.store.getCert(readSerialFile(dir) ?? ''))) {
      const c = await this.ca.issueLocalClient('admin', 'admin', 3650);
      await this.store.addCert({ serial: c.serial, kind: 'admin', userId: 'admin', issuedAt: Date.now(), notAfter: c.notAfter });
      writePrivateFileAtomic(keyPath, c.keyPem);
      writePrivateFileAtomic(join(dir, 'admin.crt'), c.certPem);
      writePrivateFileAtomic(join(dir, 'admin.serial'), c.serial);
    }
    writePrivateFileAtomic(join(dir, 'ca.crt'), this.ca.certPem);
    const ep: AdminEndpointFile = { url: this.url, caFingerprint: this.ca.fingerprint() };
    writePrivateFileAtomic(join(dir, 'endpoint.json'), JSON.stringify(ep, null, 2) + '\n');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.directoryTimer) clearTimeout(this.directoryTimer);
    setGmsGaugeSource(null);
    for (const set of this.streams.values()) for (const s of set) s.res.end();
    this.streams.clear();
    if (this.https?.listening) await new Promise<void>((resolve) => { this.https.close(() => resolve()); this.https.closeAllConnections(); });
    if (this.metricsHttp?.listening) await new Promise<void>((resolve) => this.metricsHttp!.close(() => resolve()));
    await this.pushing.catch(() => undefined);
    await this.timerRun.catch(() => undefined);
    await this.directoryRun.catch(() => undefined);
    await this.store.close();
    this.unlock();
  }

  connectedCount(): number { return this.streams.size; }

  // ---------------------------------------------------------------- routing
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://gms');
    const route = `${req.method} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /v1/ca': res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(this.ca.certPem); return;
        case 'POST /v1/enroll': return sendJson(res, 200, await this.enroll(await readJson(req)));
        case 'GET /v1/ge/self': { const p = await this.authenticate(req, 'ge'); return sendJson(res, 200, await this.deliveryFor(p.userId)); }
        case 'GET /v1/ge/events': return await this.subscribe(await this.authenticate(req, 'ge'), res);
        case 'POST /v1/ge/external': { const p = await this.authenticate(req, 'ge'); return sendJson(res, 200, await this.gnatReport(p.userId, await readJson(req))); }
      }
      if (url.pathname.startsWith('/v1/admin/')) {
        await this.authenticate(req, 'admin');
        return sendJson(res, 200, await this.admin(route, req));
      }
      throw new HttpError('not_found', `no route ${route}`);
    } catch (e) {
      const refusal = e instanceof HttpError ? e : e instanceof SpecError ? new HttpError('invalid_network', e.message, e.problems) : null;
      if (refusal) return sendJson(res, refusal.status, refusal.body());
      log.error({ err: e, route }, 'request failed');
      const internal = new HttpError('internal', (e as Error).message);
      return sendJson(res, internal.status, internal.body());
    }
  }

  /** Who is on the other end of this TLS connection, or an HttpError. */
  private async authenticate(req: IncomingMessage, role: 'ge' | 'admin'): Promise<Peer> {
    const sock = req.socket as TLSSocket;
    const cert = sock.getPeerCertificate();
    const refuse = (reason: GmsWireCode, msg: string): never => {
      gmsAuthRefusedTotal.inc({ reason });
      throw new HttpError(reason, msg);
    };
    if (!cert || !cert.serialNumber) refuse('no_cert', 'client certificate required');
    if (!sock.authorized) refuse('untrusted', `client certificate not accepted: ${String(sock.authorizationError)}`);
    const serial = cert.serialNumber.toLowerCase();
    const row = await this.store.getCert(serial);
    if (!row) refuse('unknown_cert', 'certificate not issued by this GMS database');
    if (row!.revokedAt !== null) refuse('revoked', 'certificate revoked');
    if (row!.kind !== role) refuse('wrong_role', `a ${row!.kind} certificate cannot use ${role} routes`);
    if (role === 'ge' && !(await this.geOf(row!.userId))) refuse('ge_removed', `GE ${row!.userId} no longer exists`);
    return { serial, role, userId: row!.userId, notAfter: row!.notAfter };
  }

  // ---------------------------------------------------------------- enrollment
  private async enroll(body: unknown): Promise<{ userId: string; certPem: string; caPem: string }> {
    const b = body as { token?: unknown; csr?: unknown; ldapUser?: unknown };
    if (b !== null && typeof b === 'object' && 'ldapUser' in b) return this.enrollFromDirectory(body);
    if (typeof b.token !== 'string' || b.token.length < 16) throw new HttpError('bad_request', 'token: missing');
    if (typeof b.csr !== 'string') throw new HttpError('bad_request', 'csr: missing');
    const hash = sha256(b.token);
    const now = Date.now();
    try { await checkCsr(b.csr); } catch (e) { // before the token is burnt
      gmsEnrollmentsTotal.inc({ result: 'bad_csr' });
      throw new HttpError('bad_csr', (e as Error).message);
    }
    // Burn the token first (one transaction), so two concurrent uses cannot both win.
    const check = await this.store.consumeToken(hash, now);
    if (!check.ok) {
      const code = ({ unknown: 'token_unknown', used: 'token_used', expired: 'token_expired', 'ge-removed': 'ge_removed' } as const satisfies Record<typeof check.reason, GmsWireCode>)[check.reason];
      gmsEnrollmentsTotal.inc({ result: code });
      throw new HttpError(code, check.reason === 'ge-removed' ? 'the GE of this token no longer exists' : `enrollment token ${check.reason}`);
    }
    let issued: { certPem: string; serial: string; notAfter: number };
    try {
      issued = await this.ca.issueClient(b.csr, check.userId, 'ge', this.opts.geCertDays ?? 365);
    } catch (e) {
      gmsEnrollmentsTotal.inc({ result: 'bad_csr' });
      throw new HttpError('bad_csr', (e as Error).message);
    }
    await this.store.addCert({ serial: issued.serial, kind: 'ge', userId: check.userId, issuedAt: now, notAfter: issued.notAfter });
    gmsEnrollmentsTotal.inc({ result: 'ok' });
    log.info({ userId: check.userId, serial: issued.serial }, 'GE enrolled');
    return { userId: check.userId, certPem: issued.certPem, caPem: this.ca.certPem };
  }

  /**
   * Enrollment of a remote user's laptop by the user ID and password the
   * directory holds (instead of a token): the CSR checked first, then a bind
   * as that user over TLS; the certificate names the user ID; their groups
   * come from the directory from then on (`directorySync`).
   */
  private async enrollFromDirectory(body: unknown): Promise<{ userId: string; certPem: string; caPem: string }> {
    const b = body as { ldapUser?: unknown; password?: unknown; csr?: unknown };
    const refuse = (code: GmsWireCode, msg: string): never => { gmsEnrollmentsTotal.inc({ result: code }); throw new HttpError(code, msg); };
    if (!this.directory) refuse('no_directory', 'this GMS has no directory of users (gms serve --directory)');
    if (typeof b.ldapUser !== 'string') throw new HttpError('bad_request', 'ldapUser: missing');
    if (typeof b.password !== 'string' || b.password.length === 0 || b.password.length > 1024) throw new HttpError('bad_request', 'password: missing');
    if (typeof b.csr !== 'string') throw new HttpError('bad_request', 'csr: missing');
    try { await checkCsr(b.csr); } catch (e) { refuse('bad_csr', (e as Error).message); }
    const userId = b.ldapUser;
    if (await this.store.getGe(userId)) refuse('name_taken', `user ${userId} is a GE of the network file; it enrolls with a token`);
    try { await this.directory!.authenticate(userId, b.password); } catch (e) {
      if (e instanceof DirectoryRefusal) {
        if (e.reason === 'unreachable') log.error({ userId, err: e.message }, 'directory unreachable during enrollment');
        const code = ({ credentials: 'bad_credentials', no_group: 'no_group', unreachable: 'directory_unreachable', bad_user_id: 'bad_request' } as const satisfies Record<typeof e.reason, GmsWireCode>)[e.reason];
        refuse(code, e.message);
      }
      throw e;
    }
    const now = Date.now();
    let issued: { certPem: string; serial: string; notAfter: number };
    try { issued = await this.ca.issueClient(b.csr as string, userId, 'ge', this.opts.geCertDays ?? 365); } catch (e) { return refuse('bad_csr', (e as Error).message); }
    await this.store.addCert({ serial: issued.serial, kind: 'ge', userId, issuedAt: now, notAfter: issued.notAfter });
    gmsEnrollmentsTotal.inc({ result: 'ok' });
    log.info({ userId, serial: issued.serial, groups: this.directory!.ge(userId)?.groups }, 'remote user enrolled from the directory');
    this.schedulePush(); // the GSRA routers' lists of admissible users now hold this user
    return { userId, certPem: issued.certPem, caPem: this.ca.certPem };
  }

  // ---------------------------------------------------------------- directory users
  /** A GE of the network file, else a directory user as the directory last said (checked live when not known yet). */
  private async geOf(userId: string): Promise<GeDef | null> {
    const ge = await this.store.getGe(userId);
    if (ge || !this.directory) return ge ?? null;
    if (!this.directory.knows(userId)) await this.directorySyncUsers([userId]).catch(() => undefined);
    return this.directory.ge(userId);
  }

  /** Re-read the directory every syncSeconds for every enrolled user not in the network file. */
  private armDirectorySync(): void {
    if (!this.directory || this.closed) return;
    this.directoryTimer = setTimeout(() => {
      this.directoryRun = this.directoryRun.then(async () => {
        if (this.closed) return;
        const inFile = new Set((await this.store.readNetwork()).ges.map((g) => g.userId));
        await this.directorySyncUsers((await this.store.certifiedUsers(Date.now())).filter((u) => !inFile.has(u)));
      }).catch((e) => { log.warn({ err: (e as Error).message }, 'directory sync failed: users keep their last groups until staleSeconds'); })
        .finally(() => this.armDirectorySync());
    }, this.directory.cfg.syncSeconds * 1000);
    this.directoryTimer.unref();
  }

  /** One directory read for `ids`; a user who left a group makes that group rotate (as a member leaving in apply); changes are pushed. */
  private async directorySyncUsers(ids: string[]): Promise<void> {
    const dir = this.directory!;
    let r: Awaited<ReturnType<Directory['sync']>>;
    try { r = await dir.sync(ids); } catch (e) { gmsDirectorySyncsTotal.inc({ result: 'failed' }); throw e; }
    gmsDirectorySyncsTotal.inc({ result: r.stale ? 'stale' : 'ok' });
    log.debug({ users: ids, changes: r.changes }, 'directory read');
    if (!r.changes.length) return;
    const leftGroups = new Map<number, string[]>();
    for (const c of r.changes) {
      if (c.gone || c.left.length) gmsDirectoryRevocationsTotal.inc({ reason: r.stale ? 'stale' : c.gone ? 'disabled' : 'left_group' });
      for (const g of c.left) leftGroups.set(g, [...(leftGroups.get(g) ?? []), c.userId]);
      log.info({ userId: c.userId, left: c.left, joined: c.joined, gone: c.gone, stale: r.stale }, 'directory user changed');
    }
    if (this.leader) {
      const defined = new Set((await this.store.readNetwork()).groups.map((g) => g.id));
      for (const [g, users] of leftGroups) if (defined.has(g)) await this.rotate(g, 'member_left', `directory: ${users.join(', ')} left`);
    }
    this.schedulePush();
  }

  /** A directory user's GSRA key (docs/gsra.md): the same on every replica, for the life of the CA. */
  private gsraUserKey(userId: string): Buffer {
    return createHmac('sha256', this.gsraSecret).update('GSCIP-GSRA-user/1\0').update(userId).digest();
  }

  /** What GSRA adds to `ge`'s delivery: its own key if it is a directory user; if it is a GSRA router, the users it may admit. */
  private gsraExtras(ge: GeDef, inFile: boolean): GsraExtras {
    if (!this.directory) return {};
    if (!inFile) return { userKey: this.gsraUserKey(ge.userId) };
    if (ge.type !== 'GSRA') return {};
    const remoteUsers = this.directory.list()
      .map((u) => ({ userId: u.userId, groups: u.groups.filter((g) => ge.groups.includes(g)), key: this.gsraUserKey(u.userId).toString('base64') }))
      .filter((u) => u.groups.length > 0)
      .sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    return { remoteUsers };
  }

  /**
   * A GNAT's external address now (it follows its outside interface): only a
   * GE the network file makes a GNAT may report, one usable IPv4 address;
   * a change is pushed to every subscriber.
   */
  private async gnatReport(userId: string, body: unknown): Promise<{ gnats: string[] }> {
    const ge = await this.store.getGe(userId);
    if (!ge || ge.type !== 'GNAT') {
      gmsGnatReportsTotal.inc({ result: 'not_a_gnat' });
      throw new HttpError('not_a_gnat', `GE ${userId} is not a GNAT in the network file: it reports no external address`);
    }
    const a = (body as { external?: unknown } | null)?.external;
    const ipv4 = typeof a === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(a) && a.split('.').every((x) => Number(x) <= 255);
    if (!ipv4 || !usableExternal(a, [])) {
      gmsGnatReportsTotal.inc({ result: 'bad_request' });
      throw new HttpError('bad_request', `external: ${JSON.stringify(a)} is not a usable global IPv4 address`);
    }
    const now = Date.now();
    const changed = this.gnatReports.report(userId, a, now);
    gmsGnatReportsTotal.inc({ result: changed ? 'accepted' : 'unchanged' });
    // Kept for a restart (refreshes too: the report's age decides when it lapses). Not kept: this replica
    // still uses it, the GNAT refreshes it, and it is logged and counted; the answer stays ok.
    try {
      await this.store.saveGnatReport({ userId, addr: a, atMs: now }, now - GNAT_REPORT_TTL_MS);
    } catch (e) {
      gmsGnatReportsTotal.inc({ result: 'not_saved' });
      log.warn({ err: e, userId, external: a }, 'a GNAT\'s report was not saved in the database (kept in memory)');
    }
    if (changed) {
      log.info({ userId, external: a }, 'a GNAT reported its external address: every GE is told');
      this.schedulePush();
    }
    const policy = await this.store.readPolicy();
    return { gnats: this.gnatReports.gnats(policy.gnats, now, policy.gnatOwners) };
  }

  /** The network's policy with the GNATs' reported addresses in `gnats`. */
  private withReported(policy: NetworkPolicy | undefined): NetworkPolicy | undefined {
    const reported = this.gnatReports.list(Date.now());
    if (!reported.length) return policy;
    return { ...(policy ?? { requireEncryption: [] }), gnats: this.gnatReports.gnats(policy?.gnats, Date.now(), policy?.gnatOwners) };
  }

  // ---------------------------------------------------------------- delivery
  private async deliveryFor(userId: string) {
    // A directory user is re-checked on each request for its state (the other half of "how the GMS notices").
    if (this.directory && !(await this.store.getGe(userId))) await this.directorySyncUsers([userId]).catch(() => undefined);
    const fileGe = await this.store.getGe(userId);
    const ge = fileGe ?? await this.geOf(userId);
    if (!ge) throw new HttpError('ge_removed', `GE ${userId} no longer exists`);
    return buildDelivery(ge, keysByGroup(await this.store.allKeys()), Date.now(), this.withReported(await this.store.readPolicy()), this.gsraExtras(ge, fileGe !== undefined));
  }

  private async subscribe(p: Peer, res: ServerResponse): Promise<void> {
    const d = await this.deliveryFor(p.userId);
    if (this.closed) { res.destroy(); return; }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.socket?.setNoDelay(true);
    const s: Stream = { res, userId: p.userId, lastDigest: deliveryDigest(d) };
    res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(d)}\n\n`);
    let set = this.streams.get(p.userId);
    if (!set) this.streams.set(p.userId, (set = new Set()));
    set.add(s);
    // A stream lives no longer than the certificate that opened it.
    const expiry = setTimeout(() => res.end(), Math.max(0, Math.min(p.notAfter - Date.now(), 2 ** 31 - 1)));
    expiry.unref();
    res.on('close', () => {
      clearTimeout(expiry);
      const cur = this.streams.get(p.userId);
      cur?.delete(s);
      if (cur && cur.size === 0) this.streams.delete(p.userId);
    });
  }

  /**
   * Push fresh state to every subscribed GE whose view changed; batched per
   * tick, one push at a time (a change during a push gets a push after it).
   */
  private schedulePush(): void {
    if (this.pushScheduled) return;
    this.pushScheduled = true;
    this.pushing = this.pushing.then(() => new Promise<void>((r) => setImmediate(r))).then(async () => {
      this.pushScheduled = false;
      const seq = this.pendingSeq;
      await this.pushNow();
      this.seenSeq = Math.max(this.seenSeq, seq);
      this.store.markSeen(this.seenSeq);
      await this.refreshGauges();
    }).catch((e) => {
      this.pushScheduled = false;
      log.error({ err: e }, 'push to subscribers failed (database unreachable?): retrying in 1 s');
      setTimeout(() => this.schedulePush(), 1000).unref();
    });
  }

  private async pushNow(): Promise<void> {
    if (this.closed) return;
    const net = await this.store.readNetwork();
    const keys = await this.store.allKeys();
    const now = Date.now();
    const ges = new Map<string, GeDef>(net.ges.map((g) => [g.userId, g]));
    const byGroup = keysByGroup(keys);
    const policy = this.withReported(net.policy);
    this.lastReported = this.gnatReports.list(now).join();
    for (const [userId, set] of this.streams) {
      const fileGe = ges.get(userId);
      const ge = fileGe ?? this.directory?.ge(userId);
      if (!ge) { // removed: tell it and hang up; its next request is refused
        for (const s of set) { s.res.write('event: removed\ndata: {}\n\n'); s.res.end(); }
        continue;
      }
      const d = buildDelivery(ge, byGroup, now, policy, this.gsraExtras(ge, fileGe !== undefined));
      const digest = deliveryDigest(d);
      const msg = `event: state\ndata: ${JSON.stringify(d)}\n\n`;
      for (const s of set) {
        if (s.lastDigest === digest) continue;
        s.lastDigest = digest;
        this.write(s, msg);
        gmsPushesTotal.inc();
      }
    }
  }

  private sendHeartbeats(): void {
    // A GNAT's report lapsed (it stopped refreshing it): the GEs' lists lose its address.
    if (this.gnatReports.list(Date.now()).join() !== this.lastReported) this.schedulePush();
    for (const set of this.streams.values()) for (const s of set) this.write(s, ': ping\n\n');
  }

  /** A subscriber that stopped reading is cut off rather than buffered without bound; it reconnects and gets the full state. */
  private write(s: Stream, msg: string): void {
    if (s.res.writableLength > MAX_STREAM_BACKLOG) {
      log.warn({ userId: s.userId, backlog: s.res.writableLength }, 'subscriber not reading: closing its stream');
      s.res.destroy();
      return;
    }
    s.res.write(msg);
  }

  /** Hang up the streams of a GE whose certificate was revoked. */
  private dropStreams(userId: string): void {
    for (const s of this.streams.get(userId) ?? []) { s.res.write('event: removed\ndata: {}\n\n'); s.res.end(); }
  }

  // ---------------------------------------------------------------- rotation
  /** Rotate one group now. */
  async rotate(groupId: number, reason: RotationReason, why: string): Promise<number> {
    const v = await this.store.rotate(groupId, Date.now(), why);
    gmsRotationsTotal.inc({ reason });
    log.info({ group: groupId, version: v, reason: why }, 'group key rotated');
    this.armTimer();
    this.schedulePush();
    return v;
  }

  /**
   * One timer for the earliest of: next scheduled rotation (leader only),
   * next end of a grace period (every replica: its subscribers' deliveries
   * drop the expired version). Re-armed after every change; runs one at a time.
   */
  private armTimer(): void {
    if (this.closed) return;
    this.timerRun = this.timerRun.then(async () => {
      if (this.closed) return;
      const now = Date.now();
      let due = now + 3_600_000;
      const exp = await this.store.nextKeyExpiry();
      if (exp !== null) due = Math.min(due, exp);
      if (this.leader) for (const at of (await this.rotationDue()).values()) due = Math.min(due, at);
      if (this.closed) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.onTimer(), timerDelay(due, now));
      this.timer.unref();
    }).catch((e) => {
      log.error({ err: e }, 'cannot arm the rotation timer (database unreachable?): retrying in 1 s');
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.armTimer(), 1000);
      this.timer.unref();
    });
  }

  private async rotationDue(): Promise<Map<number, number>> {
    const last = new Map<number, number>();
    for (const k of await this.store.allKeys()) if (k.expiresAt === null) last.set(k.groupId, k.createdAt);
    const out = new Map<number, number>();
    for (const g of (await this.store.readNetwork()).groups) out.set(g.id, nextRotation(g, last.get(g.id) ?? 0));
    return out;
  }

  private onTimer(): void {
    if (this.closed) return;
    this.timerRun = this.timerRun.then(async () => {
      if (this.closed) return;
      try {
        if (this.leader) {
          const now = Date.now();
          for (const [gid, at] of await this.rotationDue()) {
            if (at > now) continue;
            // Decided again inside the transaction: a replica that led a moment ago may have done it.
            const v = await this.store.rotateIfDue(gid, now);
            if (v === null) continue;
            gmsRotationsTotal.inc({ reason: 'schedule' });
            log.info({ group: gid, version: v, reason: 'scheduled', replica: this.replicaId }, 'group key rotated');
          }
          const gone = await this.store.expireKeys(Date.now());
          if (gone.length) log.info({ keys: gone }, 'superseded keys left their grace period');
        }
      } catch (e) {
        log.error({ err: e }, 'rotation timer failed');
      }
      this.schedulePush();
    });
    this.armTimer();
  }

  // ---------------------------------------------------------------- status
  /** Replicas, leader, database, and how far behind each replica is (`gscip gms status`). */
  async status(): Promise<GmsStatus> {
    const now = Date.now();
    const database = await this.store.info();
    const rows = await this.store.replicas();
    const replicas = rows.map((r) => ({
      ...r, self: r.id === this.replicaId, heartbeatAgeMs: Math.max(0, now - r.heartbeatAt),
      alive: now - r.heartbeatAt < REPLICA_DEAD_MS, lagChanges: Math.max(0, database.changeSeq - r.seenSeq),
    }));
    const leader = replicas.find((r) => r.leader && r.alive)?.id ?? null;
    return { self: this.replicaId, leader, database, replicas };
  }

  // ---------------------------------------------------------------- admin
  private async admin(route: string, req: IncomingMessage): Promise<unknown> {
    const now = Date.now();
    switch (route) {
      case 'GET /v1/admin/network': return this.store.readNetwork();
      case 'GET /v1/admin/status': return this.status();
      case 'POST /v1/admin/apply': {
        const b = (await readJson(req)) as { network?: unknown; dryRun?: unknown };
        const desired = validateNetwork(b.network);
        const plan = computePlan(await this.store.readNetwork(), desired);
        const text = formatPlan(plan);
        if (b.dryRun === true || planIsEmpty(plan)) return { applied: false, changed: !planIsEmpty(plan), plan: text, ops: plan.ops };
        const removedGes = plan.ops.flatMap((o) => (o.op === 'remove-ge' ? [o.userId] : []));
        const rotated = await this.store.applyPlan(plan, now);
        for (const r of plan.ops) {
          if (r.op === 'rotate') gmsRotationsTotal.inc({ reason: r.cause });
          if (r.op === 'add-group') gmsRotationsTotal.inc({ reason: 'group_created' });
        }
        log.info({ ops: plan.ops.length, rotated }, 'network applied');
        for (const u of removedGes) this.dropStreams(u);
        this.armTimer();
        this.schedulePush();
        return { applied: true, changed: true, plan: text, ops: plan.ops, rotated };
      }
      case 'POST /v1/admin/tokens': {
        const b = (await readJson(req)) as { userId?: unknown; ttlSeconds?: unknown };
        if (typeof b.userId !== 'string' || !(await this.store.getGe(b.userId))) throw new HttpError('unknown_ge', `ge: no GE with user ID ${JSON.stringify(b.userId)} (apply it first)`);
        const ttl = b.ttlSeconds === undefined ? (this.opts.tokenTtlSeconds ?? 86_400) : Number(b.ttlSeconds);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 30 * 86_400) throw new HttpError('bad_request', 'ttlSeconds: integer 1..2592000');
        const token = randomBytes(32).toString('base64url');
        const expiresAt = now + ttl * 1000;
        await this.store.addToken(sha256(token), b.userId as string, now, expiresAt);
        log.info({ userId: b.userId, expiresAt }, 'enrollment token issued');
        return { userId: b.userId, token, expiresAt };
      }
      case 'POST /v1/admin/rotate': {
        const b = (await readJson(req)) as { group?: unknown };
        const g = Number(b.group);
        if (!(await this.store.readNetwork()).groups.some((x) => x.id === g)) throw new HttpError('unknown_group', `group: ${String(b.group)} does not exist`);
        return { group: g, version: await this.rotate(g, 'demand', 'on demand') };
      }
      case 'POST /v1/admin/revoke': {
        const b = (await readJson(req)) as { userId?: unknown };
        if (typeof b.userId !== 'string') throw new HttpError('bad_request', 'userId: missing');
        const n = await this.store.revokeGe(b.userId as string, now);
        this.dropStreams(b.userId);
        log.info({ userId: b.userId, certificates: n }, 'GE revoked');
        return { userId: b.userId, revoked: n };
      }
      case 'GET /v1/admin/ges': {
        const enrolled = new Set(await this.store.enrolledGes(now));
        return (await this.store.readNetwork()).ges.map((g) => ({ ...g, enrolled: enrolled.has(g.userId), connected: this.streams.has(g.userId) }));
      }
      case 'GET /v1/admin/users': {
        // Remote users from the directory (GSRA): enrolled, what the directory last said of them. Never a key.
        if (!this.directory) return [];
        const inFile = new Set((await this.store.readNetwork()).ges.map((g) => g.userId));
        const known = new Map(this.directory.list().map((u) => [u.userId, u]));
        return (await this.store.certifiedUsers(now)).filter((u) => !inFile.has(u)).map((userId) => {
          const u = known.get(userId);
          return { userId, state: u ? (u.groups.length ? 'active' : 'no_group') : 'disabled_or_gone', groups: u?.groups ?? [], dn: u?.dn ?? null, connected: this.streams.has(userId) };
        });
      }
      case 'GET /v1/admin/groups': {
        const net = await this.store.readNetwork();
        const due = await this.rotationDue();
        const keys = await this.store.allKeys();
        return net.groups.map((g) => ({
          ...g,
          members: net.ges.filter((x) => x.groups.includes(g.id)).map((x) => x.userId),
          currentVersion: keys.find((k) => k.groupId === g.id && k.expiresAt === null)?.version ?? null,
          nextRotation: new Date(due.get(g.id) ?? 0).toISOString(),
        }));
      }
      case 'GET /v1/admin/keys':
        // Never key material: group, version, times only.
        return (await this.store.allKeys()).map((k) => ({
          group: k.groupId, version: k.version, cipher: k.cipher, state: k.expiresAt === null ? 'current' : 'grace',
          createdAt: new Date(k.createdAt).toISOString(), ageSeconds: Math.round((now - k.createdAt) / 1000),
          expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
        }));
    }
    throw new HttpError('not_found', `no route ${route}`);
  }
}

/**
 * The CA from the store, or a new one stored there (with several replicas starting at once, the first one stored wins).
 * Also the secret GSRA user keys derive from: from the CA key, so every replica has the same one with nothing new stored.
 */
async function loadOrCreateCa(store: GmsBackend): Promise<{ ca: GmsCa; gsraSecret: Buffer }> {
  const have = await store.loadCa();
  const pem = have ?? await store.saveCa(await GmsCa.createPem());
  const gsraSecret = createHmac('sha256', createHash('sha256').update(pem.keyPem).digest()).update('GSCIP-GSRA-user-secret/1').digest();
  return { ca: await GmsCa.fromPem(pem.certPem, pem.keyPem), gsraSecret };
}

function sha256(s: string): string { return createHash('sha256').update(s).digest('hex'); }
function readSerialFile(dir: string): string | undefined {
  try { return readFileSync(join(dir, 'admin.serial'), 'utf8').trim(); } catch { return undefined; }
}
