/**
 * The GSRA router's state as `gscip gsra status` shows it: admissible users
 * (never their keys), INs, reservations, mappings
 * {GEN:s <-> GGR:t} <=> {PGR:t <-> PIN:d}. Written by the router part every
 * tick to `gsra.statusFile`; pure formatting here.
 */
import { table } from '../cli/output.js';
import type { GsraAdmission, InternalServer } from './admission.js';

export interface GsraRouterStatus {
  writtenAt: number;
  ggr: string;
  pgr: string;
  users: Array<{ userId: string; groups: number[]; mappings: number }>;
  servers: InternalServer[];
  reservations: Array<{ t: number; userId: string; server: string; proto: number; dport: number; expiresInMs: number }>;
  mappings: Array<{ t: number; userId: string; group: number; proto: number; en: string; inside: string; ageMs: number; idleMs: number }>;
  /** FTP data ports an IN announced on a user's control connection, still admissible (absent in files of older agents). */
  announced?: Array<{ userId: string; pin: string; port: number; expiresInMs: number }>;
}

export function routerStatus(a: GsraAdmission, addrs: { ggr: string; pgr: string }, users: Array<{ userId: string; groups: readonly number[] }>, servers: InternalServer[], now: number): GsraRouterStatus {
  const maps = a.mappings();
  return {
    writtenAt: now, ...addrs,
    users: users.map((u) => ({ userId: u.userId, groups: [...u.groups], mappings: maps.filter((m) => m.userId === u.userId).length })),
    servers,
    reservations: a.reservations().map((r) => ({ t: r.t, userId: r.userId, server: r.server.name, proto: r.proto, dport: r.dport, expiresInMs: r.expiresAt - now })),
    mappings: maps.map((m) => ({ t: m.t, userId: m.userId, group: m.group, proto: m.proto, en: `${m.en.addr}:${m.en.port}`, inside: `${m.inside.addr}:${m.inside.port}`, ageMs: now - m.createdAt, idleMs: now - m.lastSeenAt })),
    announced: a.announcements(now),
  };
}

const PROTO: Record<number, string> = { 6: 'tcp', 17: 'udp' };

export function formatRouterStatus(s: GsraRouterStatus, now = Date.now()): string {
  const active = s.users.filter((u) => u.mappings > 0).length;
  return [
    `GSRA router GGR ${s.ggr}, PGR ${s.pgr} (state of ${((now - s.writtenAt) / 1000).toFixed(1)} s ago)`,
    `users: ${s.users.length} admissible, ${active} active`,
    table(['USER', 'GROUPS', 'MAPPINGS'], s.users.map((u) => [u.userId, u.groups.join(','), u.mappings])),
    `internal servers: ${s.servers.length}`,
    table(['NAME', 'ADDRESS', 'GROUPS', 'ACCESS', 'PORTS'], s.servers.map((x) => [x.name, x.address, x.groups.join(','), x.outsideAccess, x.ports?.join(',') ?? 'any'])),
    `mappings: ${s.mappings.length} ({GEN:s <-> GGR:t} <=> {PGR:t <-> PIN:d}), reservations: ${s.reservations.length}`,
    table(['PROTO', 'USER', 'EN (GEN:s)', 'ROUTER (GGR:t / PGR:t)', 'IN (PIN:d)', 'AGE_S', 'IDLE_S'],
      s.mappings.map((m) => [PROTO[m.proto] ?? String(m.proto), m.userId, m.en, `${s.ggr}:${m.t} / ${s.pgr}:${m.t}`, m.inside, (m.ageMs / 1000).toFixed(1), (m.idleMs / 1000).toFixed(1)])),
    ...(s.announced?.length ? [`FTP data ports announced: ${s.announced.length}`,
      table(['USER', 'IN (PIN)', 'PORT', 'EXPIRES_S'], s.announced.map((x) => [x.userId, x.pin, x.port, (x.expiresInMs / 1000).toFixed(1)]))] : []),
  ].join('\n');
}
