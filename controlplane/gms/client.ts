/**
 * Agent side of the GMS: enrollment, and the subscription that keeps the
 * fast path's key map equal to what the GMS delivers.
 *
 * startGmsClient(): installs the cached keys at once (so a restart while the
 * GMS is down keeps working), then holds one server-sent-events stream over
 * mutual TLS. Every `state` event is reconciled into the KeySink (set new
 * versions, delete the ones no longer delivered or past their grace) and
 * cached on disk. Disconnects are retried with full-jitter exponential
 * backoff. An authoritative refusal (GE removed or certificate revoked) wipes
 * the keys: that GE is no longer a member of anything.
 */
import { request as httpsRequest, Agent } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { codelessWireCode, GscipError, readGmsErrorBody, refusesIdentity } from '../errors/catalogue.js';
import { logger } from '../log/logger.js';
import { certFingerprint, createCsr, exportPrivateKeyPem, generateKeyPair, normalizeFingerprint } from './ca.js';
import { dropCache, loadCache, loadIdentity, saveCache, saveIdentity, writeStatusFile, type AgentIdentity } from './agent-files.js';
import { gmsClientKeysRefusedTotal } from '../metrics/metrics.js';
import { usableKeys, type RefusedKey, type UsableKey } from './delivered-keys.js';
import type { Cipher, GeDelivery } from './model.js';

const log = logger('gms-client');

/** Where group keys go: the fast path's key map ((group, version) -> 32-byte key, cipher rounds). */
export interface KeySink {
  /** `cipher` is the version's PCCOM cipher; a key-map sink turns it into the entry's flags. */
  set(group: number, version: number, key: Buffer, cipher: Cipher): void | Promise<void>;
  del(group: number, version: number): void | Promise<void>;
  /**
   * Optional: the (group, version)s the sink holds now. With it, the first
   * reconciliation also deletes entries a previous run left behind (e.g. pinned
   * maps adopted after a restart, holding a version that expired meanwhile).
   */
  list?(): Array<[group: number, version: number]>;
}

/** The GMS refused a GE request; code is the wire code it sent (catalogue GMS_WIRE; a newer GMS may send one this build lacks). */
export class GmsRefusedError extends GscipError<string> {
  constructor(readonly status: number, code: string, message: string) { super(code, message); }
}

// ------------------------------------------------------------------ enrollment
export interface EnrollOptions {
  gmsUrl: string;
  /** Further GMS replicas (same CA) the agent fails over to; enrollment itself goes to gmsUrl. */
  moreGmsUrls?: string[];
  /** A one-time token (gms token issue), or else the directory user's ID and password (GSRA remote users). */
  token?: string; ldapUser?: string; password?: string;
  caFingerprint?: string; caPem?: string; dataDir: string;
}

/** Enroll once: pin the GMS CA, generate a key pair, send a CSR with the one-time token. */
export async function enroll(o: EnrollOptions): Promise<{ userId: string; caFingerprint: string }> {
  const url = new URL(o.gmsUrl);
  const urls = [url.origin];
  for (const u of [o.gmsUrl, ...(o.moreGmsUrls ?? [])]) {
    let p: URL;
    try { p = new URL(u); } catch { throw new Error(`gms: not a URL: ${u}`); }
    if (p.protocol !== 'https:') throw new Error(`gms: must be an https:// URL, got ${u}`);
    if (!urls.includes(p.origin)) urls.push(p.origin);
  }
  let caPem = o.caPem;
  if (!caPem) {
    if (!o.caFingerprint) throw new Error('ca-fingerprint or ca-file: one is required to trust the GMS');
    // The CA is fetched unauthenticated, then trusted only if its fingerprint matches.
    caPem = (await rawRequest(url, '/v1/ca', { rejectUnauthorized: false })).body;
  }
  const fp = certFingerprint(caPem);
  if (o.caFingerprint && normalizeFingerprint(o.caFingerprint) !== fp) {
    throw new Error(`ca-fingerprint: the GMS presented CA ${fp}, expected ${normalizeFingerprint(o.caFingerprint)}`);
  }
  if ((o.token === undefined) === (o.ldapUser === undefined)) throw new Error('token or ldap-user: give exactly one');
  if (o.ldapUser !== undefined && !o.password) throw new Error('password: required with ldap-user');
  const keys = await generateKeyPair();
  const csr = await createCsr('gscip-enrollment', keys);
  // Only over TLS verified against the pinned CA: the password goes nowhere else (the GMS binds to its directory over TLS).
  const body = o.token !== undefined ? { token: o.token, csr } : { ldapUser: o.ldapUser, password: o.password, csr };
  const r = await rawRequest(url, '/v1/enroll', { ca: caPem, method: 'POST', body: JSON.stringify(body) });
  if (r.status !== 200) throw refusal(r.status, r.body);
  const out = JSON.parse(r.body) as { userId: string; certPem: string; caPem: string };
  saveIdentity(o.dataDir, { url: url.origin, urls, userId: out.userId, caFingerprint: fp, keyPem: await exportPrivateKeyPem(keys.privateKey), certPem: out.certPem, caPem });
  log.info({ userId: out.userId, gms: url.origin }, 'enrolled');
  return { userId: out.userId, caFingerprint: fp };
}

/** One GET /v1/ge/self with the agent's identity, from the first replica that answers. Throws GmsRefusedError when refused. */
export async function fetchGeState(dataDir: string): Promise<GeDelivery> {
  const id = loadIdentity(dataDir);
  let last: unknown;
  for (const u of id.urls) {
    let r: RawResponse;
    try { r = await rawRequest(new URL(u), '/v1/ge/self', tlsOf(id)); } catch (e) { last = e; continue; }
    if (r.status !== 200) throw refusal(r.status, r.body);
    return JSON.parse(r.body) as GeDelivery;
  }
  throw last;
}

/**
 * A GNAT's external address now (nat.follow), to every GMS replica the agent
 * knows (each keeps reports in memory: docs/natf.md): one POST /v1/ge/external
 * with the agent's identity per replica; the result per replica: `ok`, the
 * refusal's wire code, or `error` (no answer).
 */
export async function reportExternal(dataDir: string, addr: string): Promise<Array<{ url: string; result: string }>> {
  const id = loadIdentity(dataDir);
  const body = JSON.stringify({ external: addr });
  return Promise.all(id.urls.map(async (u) => {
    try {
      const r = await rawRequest(new URL(u), '/v1/ge/external', { ...tlsOf(id), method: 'POST', body, timeoutMs: 5000 });
      return { url: u, result: r.status === 200 ? 'ok' : refusal(r.status, r.body).code };
    } catch { return { url: u, result: 'error' }; }
  }));
}

// ------------------------------------------------------------------ subscription
export interface GmsClientOptions {
  dataDir: string;
  /** Backoff: first retry within baseMs, doubling up to maxMs (full jitter). */
  backoff?: { baseMs: number; maxMs: number };
  /** No byte (not even a heartbeat) for this long -> reconnect. */
  idleTimeoutMs?: number;
  /** Called after each reconciliation (tests, agent status). */
  onUpdate?: (d: GeDelivery) => void;
}

export type GmsConnState = 'connecting' | 'connected' | 'disconnected' | 'refused' | 'stopped';

export interface GmsClientStatus {
  userId: string;
  /** The replica in use (or being tried). */
  gms: string;
  /** Every replica the agent knows. */
  gmsUrls: string[];
  state: GmsConnState;
  type: string | null;
  mode: string | null;
  groups: number[];
  keys: Array<{ group: number; version: number; cipher: Cipher; ageSeconds: number; state: 'current' | 'grace'; expiresAt: string | null }>;
  lastUpdateAt: string | null;
  lastError: string | null;
  reconnects: number;
}

export interface GmsClientHandle {
  stop(): Promise<void>;
  status(): GmsClientStatus;
}

export async function startGmsClient(opts: GmsClientOptions, sink: KeySink): Promise<GmsClientHandle> {
  const c = new GmsClient(opts, sink);
  await c.start();
  return c;
}

class GmsClient implements GmsClientHandle {
  private readonly id: AgentIdentity;
  private readonly agent: Agent;
  /** What the sink holds, by "group/version"; key '' = adopted from the sink, bytes unknown. */
  private readonly installed = new Map<string, UsableKey>();
  /** Refused "group/version/cipher"s still delivered: logged and counted once each. */
  private refusedSeen = new Set<string>();
  private current: GeDelivery | null = null;
  private state: GmsConnState = 'connecting';
  private lastUpdateAt: number | null = null;
  private lastError: string | null = null;
  private reconnects = 0;
  private attempt = 0;
  /** Index in id.urls of the replica in use. */
  private urlIdx = 0;
  /** While failing over: the replicas not yet tried in this round (random order); null after a success. */
  private pending: number[] | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private req: ReturnType<typeof httpsRequest> | null = null;
  private chain: Promise<void> = Promise.resolve(); // reconciliations run one at a time

  constructor(private readonly opts: GmsClientOptions, private readonly sink: KeySink) {
    this.id = loadIdentity(opts.dataDir);
    this.agent = new Agent({ ...tlsOf(this.id), keepAlive: false, maxSockets: 2 });
  }

  async start(): Promise<void> {
    for (const [group, version] of this.sink.list?.() ?? []) {
      this.installed.set(`${group}/${version}`, { group, version, key: '', cipher: 'chacha20' }); // unknown bytes: re-set if still wanted
    }
    const cached = loadCache(this.opts.dataDir);
    if (cached) {
      log.info({ keys: cached.keys.map((k) => ({ group: k.group, version: k.version })) }, 'installing cached keys');
      await this.enqueue(cached, false);
    }
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.req?.destroy();
    this.agent.destroy();
    await this.chain;
    this.publish();
  }

  /** status.json in the data dir, for `gscip agent status` from another process (no key material). */
  private publish(): void {
    try { writeStatusFile(this.opts.dataDir, { pid: process.pid, writtenAt: Date.now(), status: this.status() }); } catch (e) {
      log.warn({ err: e }, 'cannot write GMS status file');
    }
  }

  private setState(st: GmsConnState): void {
    if (this.state === st) return;
    this.state = st;
    this.publish();
  }

  status(): GmsClientStatus {
    const now = Date.now();
    const d = this.current;
    return {
      userId: this.id.userId, gms: this.id.urls[this.urlIdx], gmsUrls: [...this.id.urls], state: this.state,
      type: d?.type ?? null, mode: d?.mode ?? null, groups: d?.groups ?? [],
      keys: [...this.installed.values()].map((k) => {
        const dk = d?.keys.find((x) => x.group === k.group && x.version === k.version);
        return {
          group: k.group, version: k.version, cipher: k.cipher, ageSeconds: dk ? Math.round((now - dk.createdAt) / 1000) : -1,
          state: dk?.expiresAt == null ? 'current' as const : 'grace' as const,
          expiresAt: dk?.expiresAt == null ? null : new Date(dk.expiresAt).toISOString(),
        };
      }).sort((a, b) => a.group - b.group || a.version - b.version),
      lastUpdateAt: this.lastUpdateAt === null ? null : new Date(this.lastUpdateAt).toISOString(),
      lastError: this.lastError, reconnects: this.reconnects,
    };
  }

  private enqueue(d: GeDelivery | null, persist: boolean): Promise<void> {
    this.chain = this.chain.then(() => this.reconcile(d, persist)).catch((e) => {
      this.lastError = `key install failed: ${(e as Error).message}`;
      log.error({ err: e }, 'key install failed');
    });
    return this.chain;
  }

  /** Make the sink hold exactly the unexpired keys of `d` (null = none). */
  private async reconcile(d: GeDelivery | null, persist: boolean): Promise<void> {
    const now = Date.now();
    const { usable, refused } = usableKeys(d, now);
    this.noteRefused(refused, d);
    const want = new Map<string, UsableKey>(usable.map((k) => [`${k.group}/${k.version}`, k]));
    for (const [id, k] of want) {
      const have = this.installed.get(id);
      if (have && have.key === k.key && have.cipher === k.cipher) continue;
      await this.sink.set(k.group, k.version, Buffer.from(k.key, 'base64'), k.cipher);
      this.installed.set(id, k);
    }
    for (const [id, k] of [...this.installed]) {
      if (want.has(id)) continue;
      await this.sink.del(k.group, k.version);
      this.installed.delete(id);
    }
    this.current = d;
    if (persist) {
      if (d) saveCache(this.opts.dataDir, d); else dropCache(this.opts.dataDir);
    }
    this.armExpiry(d);
    this.publish();
    if (d) this.opts.onUpdate?.(d);
  }

  /**
   * A refused key is not installed (and removed if an earlier delivery had
   * installed that version): the fast path must never run a key with rounds
   * other than the sender's. Logged and counted once per (group, version,
   * cipher); lastError says so as long as it is delivered.
   */
  private noteRefused(refused: RefusedKey[], d: GeDelivery | null): void {
    const seen = new Set<string>();
    for (const r of refused) {
      const raw = d?.keys.find((k) => k.group === r.group && k.version === r.version)?.cipher;
      const id = `${r.group}/${r.version}/${String(raw)}`;
      seen.add(id);
      if (this.refusedSeen.has(id)) continue;
      gmsClientKeysRefusedTotal.inc({ reason: r.reason });
      log.error({ group: r.group, version: r.version, reason: r.reason, detail: r.detail }, 'delivered group key refused');
    }
    this.refusedSeen = seen;
    if (refused.length) {
      this.lastError = `refused ${refused.length} delivered key(s): ${refused.map((r) => `group ${r.group} v${r.version}: ${r.detail}`).join('; ')}`;
    }
  }

  /** Remove a superseded key at the end of its grace even if the GMS is unreachable then. */
  private armExpiry(d: GeDelivery | null): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const next = Math.min(...(d?.keys ?? []).map((k) => k.expiresAt ?? Infinity));
    if (!Number.isFinite(next) || this.stopped) return;
    this.expiryTimer = setTimeout(() => { void this.enqueue(this.current, false); }, Math.min(Math.max(0, next - Date.now()) + 10, 3_600_000));
    this.expiryTimer.unref();
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState('connecting');
    const url = new URL('/v1/ge/events', this.id.urls[this.urlIdx]);
    const req = httpsRequest(url, { agent: this.agent, headers: { accept: 'text/event-stream' } });
    this.req = req;
    req.setTimeout(this.opts.idleTimeoutMs ?? 45_000, () => req.destroy(new Error('no data from the GMS (idle timeout)')));
    req.on('response', (res) => this.onResponse(res));
    req.on('error', (e) => this.retry(e.message));
    req.end();
  }

  private onResponse(res: IncomingMessage): void {
    if (res.statusCode !== 200) {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4096) body += c; });
      res.on('end', () => {
        const e = refusal(res.statusCode ?? 0, body);
        if (refusesIdentity(e.code)) {
          log.warn({ code: e.code }, 'GMS refused this GE: removing every group key');
          void this.enqueue(null, true);
          this.setState('refused');
        }
        this.retry(e.message, this.state === 'refused');
      });
      return;
    }
    this.setState('connected');
    res.setEncoding('utf8');
    let buf = '';
    let gotRemoved = false;
    res.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = parseSse(block);
        if (!ev) continue;
        if (ev.event === 'state') {
          this.attempt = 0;
          this.pending = null;
          this.lastUpdateAt = Date.now();
          this.lastError = null;
          void this.enqueue(JSON.parse(ev.data) as GeDelivery, true);
        } else if (ev.event === 'removed') {
          gotRemoved = true;
        }
      }
      if (buf.length > 1 << 20) res.destroy(new Error('SSE event larger than 1 MiB'));
    });
    res.on('end', () => this.retry(gotRemoved ? 'GMS removed this GE' : 'stream closed by the GMS'));
    res.on('error', (e) => this.retry(e.message));
  }

  private retry(reason: string, refused = false): void {
    if (this.stopped || this.retryTimer) return;
    this.req?.destroy();
    this.req = null;
    this.lastError = reason;
    if (!refused) this.setState('disconnected');
    const { baseMs, maxMs } = this.opts.backoff ?? { baseMs: 500, maxMs: 30_000 };
    // Fail over: every other replica once, in random order (a dead replica's agents spread over the
    // rest instead of all landing on the next one), each within baseMs; back off only after a round
    // in which every replica failed.
    const n = this.id.urls.length;
    const from = this.id.urls[this.urlIdx];
    let delay: number;
    this.pending ??= shuffled([...Array(n).keys()].filter((i) => i !== this.urlIdx));
    if (!refused && this.pending.length) {
      this.urlIdx = this.pending.shift()!;
      delay = backoffDelay(0, baseMs, maxMs);
    } else {
      delay = refused ? maxMs : backoffDelay(this.attempt, baseMs, maxMs);
      this.attempt++;
      this.pending = null;
      this.urlIdx = (this.urlIdx + 1) % n;
    }
    this.reconnects++;
    log.warn({ reason, gms: from, next: this.id.urls[this.urlIdx], retryInMs: delay }, 'GMS connection lost');
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.connect(); }, delay);
    this.retryTimer.unref?.();
  }
}

// ------------------------------------------------------------------ helpers
/** The mutual-TLS options of an enrolled agent (its key and certificate, the pinned CA). */
export function tlsOf(id: AgentIdentity) { return { key: id.keyPem, cert: id.certPem, ca: id.caPem }; }

function shuffled<T>(xs: T[], rand: () => number = Math.random): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [xs[i], xs[j]] = [xs[j], xs[i]]; }
  return xs;
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base * 2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, rand: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(rand() * ceiling);
}

/** One server-sent-events block (lines up to a blank line) -> event name and data; comments ignored. */
export function parseSse(block: string): { event: string; data: string } | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':') || line === '') continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}

/** The GmsRefusedError for a GMS error answer (the body HttpError.body() built). */
export function refusal(status: number, body: string): GmsRefusedError {
  const r = readGmsErrorBody(status, body);
  if (!r) return new GmsRefusedError(status, codelessWireCode(status), `GMS answered HTTP ${status}`);
  return new GmsRefusedError(status, r.code, `GMS refused (${status} ${r.sent.error}): ${r.sent.message}`);
}

export interface RawResponse {
  status: number;
  body: string;
  /** The server's Date header (RFC 7231, 1 s resolution), if it sent one: gscip doctor compares clocks with it. */
  date?: string;
}

/** One HTTPS request, body read whole (bounded), timeout 10 s. */
export function rawRequest(base: URL, path: string, o: { method?: string; body?: string; ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean; timeoutMs?: number }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, base), {
      method: o.method ?? 'GET', ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized ?? true, agent: false,
      headers: o.body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body) } : {},
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4 << 20) body += c; });
      const date = res.headers.date;
      res.on('end', () => resolve(date ? { status: res.statusCode ?? 0, body, date } : { status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(o.timeoutMs ?? 10_000, () => req.destroy(new Error(`${path}: no answer within ${o.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(o.body);
  });
}
