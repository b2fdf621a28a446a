/**
 * The GSRA router's decisions (seed 004 section 3.2, steps 3-5), pure and
 * bounded: who may reach which internal server (IN), the port t reserved for
 * an admitted flow, the binding answer, and the router's translation
 *
 *     {GEN:s <-> GGR:t}  <=>  {PGR:t <-> PIN:d}
 *
 * it hands to the NAT stage. What it knows comes from the GMS: the INs with
 * their groups (the router's ACT), the remote users it may admit now with
 * their groups (`remoteUsers`). A user leaving a group or disabled: setUsers
 * returns that user's mappings, which the caller deletes from the fast path
 * (existing flows cut), and every later request of theirs is refused.
 * No I/O, no clock of its own: `now` is given.
 */
import { randomBytes } from 'node:crypto';
import type { RefuseReason } from './wire.js';

export interface InternalServer {
  /** Lower case, no trailing dot. */
  name: string;
  /** PIN: the IN's private address. */
  address: string;
  outsideAccess: 'allow' | 'deny';
  groups: readonly number[];
  /** The service ports admitted; absent: every port. Another port only as an announced FTP data port. */
  ports?: readonly number[];
}

export interface AdmissibleUser { userId: string; groups: readonly number[]; key: Buffer }

export interface AddrPort { addr: string; port: number }

export interface AdmissionLimits {
  /** Ports t the router reserves from (both sides of the router use the same t). */
  portLo: number;
  portHi: number;
  /** Mappings + reservations at most: a full table refuses (counted), never evicts a live flow. */
  maxEntries: number;
  /** A reservation not mapped within this long is freed. */
  leaseMs: number;
  /** A mapping with no traffic for this long is removed (the NAT stage's last-seen time, given to expire()). */
  idleMs: number;
}

export const DEFAULT_LIMITS: AdmissionLimits = { portLo: 40000, portHi: 49999, maxEntries: 8192, leaseMs: 10_000, idleMs: 300_000 };

/** Announced FTP data ports kept at most (oldest dropped first), and how long one stays admissible by default. */
export const MAX_ANNOUNCED = 4096;
export const ANNOUNCE_MS = 60_000;

export interface Reservation {
  t: number;
  userId: string;
  group: number;
  server: InternalServer;
  proto: number;
  dport: number;
  expiresAt: number;
  /** BIND's answer, when EN is behind a home router: where its packets come from. */
  seen?: AddrPort;
}

/** One admitted flow as the NAT stage holds it. */
export interface Mapping {
  t: number;
  userId: string;
  group: number;
  proto: number;
  /** GEN:s (or GHR:m behind a home router): the EN's end on the Internet leg. */
  en: AddrPort;
  /** PIN:d. */
  inside: AddrPort;
  createdAt: number;
  lastSeenAt: number;
  /** The EN bound first (BIND): it is behind a home NAT. */
  bound?: boolean;
  /**
   * A bound UDP flow whose EN asked for PCCOM's UDP wire-valid form: the per-flow keys' salt (8 random
   * bytes, hex), sent in MAP_OK; a retried MAP gets the same mapping and so the same salt.
   */
  salt?: string;
}

export type Decision<T> = { ok: true; value: T } | { ok: false; reason: RefuseReason };
const refuse = (reason: RefuseReason): { ok: false; reason: RefuseReason } => ({ ok: false, reason });

export class GsraAdmission {
  private servers = new Map<string, InternalServer>();
  private users = new Map<string, AdmissibleUser>();
  /** Keys of users removed lately (bounded): their requests still authenticate, so the refusal can be MAC'd and the app fails at once. */
  private readonly former = new Map<string, Buffer>();
  static readonly MAX_FORMER = 1024;
  private readonly reserved = new Map<number, Reservation>();
  private readonly mapped = new Map<number, Mapping>();
  /** FTP data ports an IN announced to a user's control connection: "user|PIN|proto|port" -> expiry. */
  private readonly announced = new Map<string, number>();
  private nextPort: number;

  constructor(readonly limits: AdmissionLimits = DEFAULT_LIMITS, private readonly announceMs = ANNOUNCE_MS) {
    if (!(limits.portLo >= 1024 && limits.portHi <= 65535 && limits.portLo <= limits.portHi)) throw new RangeError('GSRA ports: need 1024 <= lo <= hi <= 65535');
    this.nextPort = limits.portLo;
  }

  setServers(list: readonly InternalServer[]): void {
    this.servers = new Map(list.map((s) => [s.name.toLowerCase().replace(/\.$/, ''), s]));
  }

  /** The users the GMS says may be admitted now. Returns the mappings to cut (users gone, or no longer in the group they came in with). */
  setUsers(list: readonly AdmissibleUser[]): Mapping[] {
    for (const [id, u] of this.users) {
      if (list.some((x) => x.userId === id)) continue;
      this.former.delete(id);
      this.former.set(id, u.key);
      if (this.former.size > GsraAdmission.MAX_FORMER) this.former.delete(this.former.keys().next().value!);
    }
    this.users = new Map(list.map((u) => [u.userId, u]));
    for (const id of this.users.keys()) this.former.delete(id);
    const still = (userId: string, group: number): boolean => this.users.get(userId)?.groups.includes(group) ?? false;
    for (const [t, r] of this.reserved) if (!still(r.userId, r.group)) this.reserved.delete(t);
    const cut: Mapping[] = [];
    for (const [t, m] of this.mapped) if (!still(m.userId, m.group)) { this.mapped.delete(t); cut.push(m); }
    return cut;
  }

  /** The key a user's messages are MAC'd under (also a user removed lately, to refuse them with a MAC), or undefined. */
  keyOf(userId: string): Buffer | undefined { return this.users.get(userId)?.key ?? this.former.get(userId); }

  /** Step 3, group authentication: {EN's group, IN's name} -> a reserved port t, or why not. */
  authenticate(userId: string, group: number, name: string, proto: number, dport: number, now: number): Decision<Reservation> {
    const u = this.users.get(userId);
    if (!u) return refuse('unknown_user');
    if (!u.groups.includes(group)) return refuse('not_member');
    const s = this.servers.get(name.toLowerCase().replace(/\.$/, ''));
    if (!s) return refuse('unknown_in');
    if (s.outsideAccess !== 'allow') return refuse('in_denied');
    if (!s.groups.includes(group)) return refuse('no_shared_group');
    this.expire(now);
    if (s.ports && !s.ports.includes(dport) && !this.isAnnounced(userId, s.address, proto, dport, now)) return refuse('not_announced');
    if (this.reserved.size + this.mapped.size >= this.limits.maxEntries) return refuse('table_full');
    const t = this.freePort();
    if (t === null) return refuse('ports_exhausted');
    const r: Reservation = { t, userId, group, server: s, proto, dport, expiresAt: now + this.limits.leaseMs };
    this.reserved.set(t, r);
    return { ok: true, value: r };
  }

  /**
   * An FTP reply (227/229) the IN sent on the control connection of mapping
   * `via` announced data port `port` (fast path copy, ftp-reply.ts): that
   * user may open a TCP connection to that port of the same IN for announceMs.
   * Returns that mapping, or null when `via` is no live TCP mapping (nothing announced).
   */
  announce(via: { inside: AddrPort; en: AddrPort }, port: number, now: number): Mapping | null {
    const m = [...this.mapped.values()].find((x) => x.proto === 6 && x.inside.addr === via.inside.addr && x.inside.port === via.inside.port
      && x.en.addr === via.en.addr && x.en.port === via.en.port);
    if (!m) return null;
    const k = `${m.userId}|${m.inside.addr}|6|${port}`;
    this.announced.delete(k);
    this.announced.set(k, now + this.announceMs);
    if (this.announced.size > MAX_ANNOUNCED) this.announced.delete(this.announced.keys().next().value!);
    return m;
  }

  private isAnnounced(userId: string, pin: string, proto: number, port: number, now: number): boolean {
    const at = this.announced.get(`${userId}|${pin}|${proto}|${port}`);
    return at !== undefined && at > now;
  }

  /** Step 4, binding: the address and port the BIND for t came from (GHR:m behind a home router). */
  bind(userId: string, t: number, seen: AddrPort): Decision<AddrPort> {
    const r = this.reserved.get(t);
    if (!r) return refuse('unknown_port');
    if (r.userId !== userId) return refuse('wrong_user');
    r.seen = { ...seen };
    return { ok: true, value: { ...seen } };
  }

  /**
   * Step 5, mapping: the session of the stashed packet on t. The EN's end must
   * be where its packets come from (the BIND's answer when there was one, or
   * the MAP's own source), protocol and d those admitted.
   */
  map(userId: string, t: number, proto: number, en: AddrPort, dport: number, from: AddrPort, now: number, o: { udpWire?: boolean } = {}): Decision<Mapping> {
    const r = this.reserved.get(t);
    if (!r) {
      const m = this.mapped.get(t); // a retried MAP whose answer was lost: the same mapping again
      if (m && m.userId === userId && m.proto === proto && m.en.addr === en.addr && m.en.port === en.port) return { ok: true, value: m };
      return refuse('unknown_port');
    }
    if (r.userId !== userId) return refuse('wrong_user');
    const expectAddr = r.seen?.addr ?? from.addr;
    if (proto !== r.proto || dport !== r.dport || en.addr !== expectAddr || (r.seen && en.port !== r.seen.port)) return refuse('bad_session');
    this.reserved.delete(t);
    const m: Mapping = { t, userId, group: r.group, proto, en: { ...en }, inside: { addr: r.server.address, port: dport }, createdAt: now, lastSeenAt: now, ...(r.seen ? { bound: true } : {}),
      ...(r.seen && proto === 17 && o.udpWire ? { salt: randomBytes(8).toString('hex') } : {}) };
    this.mapped.set(t, m);
    return { ok: true, value: m };
  }

  /** CLOSE: the EN frees t. Returns the mapping to delete, if any. */
  close(userId: string, t: number): Mapping | null {
    const r = this.reserved.get(t);
    if (r && r.userId === userId) this.reserved.delete(t);
    const m = this.mapped.get(t);
    if (m && m.userId === userId) { this.mapped.delete(t); return m; }
    return null;
  }

  /** The NAT stage saw traffic on t at `at` (its last-seen time). */
  touch(t: number, at: number): void { const m = this.mapped.get(t); if (m && at > m.lastSeenAt) m.lastSeenAt = at; }

  /** Frees reservations past their lease; returns the mappings idle for idleMs (to delete from the fast path). */
  expire(now: number): Mapping[] {
    for (const [t, r] of this.reserved) if (r.expiresAt <= now) this.reserved.delete(t);
    for (const [k, at] of this.announced) if (at <= now) this.announced.delete(k);
    const out: Mapping[] = [];
    for (const [t, m] of this.mapped) if (now - m.lastSeenAt >= this.limits.idleMs) { this.mapped.delete(t); out.push(m); }
    return out;
  }

  mappings(): Mapping[] { return [...this.mapped.values()]; }
  /** The FTP data ports announced and still admissible (status). */
  announcements(now: number): Array<{ userId: string; pin: string; port: number; expiresInMs: number }> {
    const out: Array<{ userId: string; pin: string; port: number; expiresInMs: number }> = [];
    for (const [k, at] of this.announced) {
      if (at <= now) continue;
      const [userId, pin, , port] = k.split('|');
      out.push({ userId, pin, port: Number(port), expiresInMs: at - now });
    }
    return out;
  }
  reservations(): Reservation[] { return [...this.reserved.values()]; }
  /** Users with at least one mapping: "active remote users". */
  activeUsers(): string[] { return [...new Set([...this.mapped.values()].map((m) => m.userId))].sort(); }

  private freePort(): number | null {
    const span = this.limits.portHi - this.limits.portLo + 1;
    for (let i = 0; i < span; i++) {
      const p = this.nextPort;
      this.nextPort = p >= this.limits.portHi ? this.limits.portLo : p + 1;
      if (!this.reserved.has(p) && !this.mapped.has(p)) return p;
    }
    return null;
  }
}
