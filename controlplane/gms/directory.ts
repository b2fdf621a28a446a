/**
 * Remote users from an LDAP directory (GSRA, seed 004 section 3.4): a user
 * enrolls a laptop with the user ID and password the directory already
 * holds; their directory groups give their GSCIP groups; leaving a group or
 * being disabled takes them away.
 *
 * How the GMS notices a change (chosen, docs/gsra.md "Directory"): it
 * re-reads the membership of every enrolled directory user every
 * `syncSeconds` (default 1 s: 1 + one search per mapped group, whatever the
 * number of users), and re-checks a user live whenever that user's agent
 * asks for its state (GET /v1/ge/self, a new subscription). No LDAP
 * persistent search or syncrepl: those need server-side modules the
 * directory's owner may not run, and the poll's cost is bounded.
 *
 * Pure decisions (groupsOf, diffUsers) are separate from the I/O (the
 * LdapOps given, by default the ldap-utils tools), so the unit tests drive
 * them without a server.
 */
import { ldapBind, ldapSearch, LdapError, normalizeDn, escapeFilterValue, type LdapEndpoint, type LdapEntry, type SearchOptions } from './ldap-tools.js';
import type { DirectoryConfig } from './directory-config.js';
import type { GeDef } from './model.js';
import { GscipError } from '../errors/catalogue.js';

export interface LdapOps {
  bind(ep: LdapEndpoint, dn: string, password: string): Promise<void>;
  search(ep: LdapEndpoint, o: SearchOptions): Promise<LdapEntry[]>;
}
const TOOLS: LdapOps = { bind: ldapBind, search: ldapSearch };

/** User IDs a directory user may have: the same rule as a GE's user ID. */
export const DIRECTORY_USER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** What the directory says of one user right now. */
export interface DirectoryUser { userId: string; dn: string; groups: number[] }

/** Why the directory refused an enrollment (the GMS answers each with its wire code). */
export type DirectoryRefusalReason = 'credentials' | 'no_group' | 'unreachable' | 'bad_user_id';

/** A refusal of directory enrollment. */
export class DirectoryRefusal extends GscipError {
  constructor(readonly reason: DirectoryRefusalReason, message: string) { super('GSCIP_E_DIRECTORY_REFUSED', message); }
}

/** The GSCIP groups of a user DN, from the member DNs of each mapped directory group. Sorted, unique. */
export function groupsOf(userDn: string, members: ReadonlyMap<string, ReadonlySet<string>>, cfg: Pick<DirectoryConfig, 'groups'>): number[] {
  const me = normalizeDn(userDn);
  const out = new Set<number>();
  for (const g of cfg.groups) if (members.get(normalizeDn(g.dn))?.has(me)) for (const id of g.gscipGroups) out.add(id);
  return [...out].sort((a, b) => a - b);
}

export interface UserChange { userId: string; left: number[]; joined: number[]; gone: boolean }

/** What changed between two views of the enrolled users (gone = no longer an enabled user of the directory). */
export function diffUsers(before: ReadonlyMap<string, DirectoryUser>, after: ReadonlyMap<string, DirectoryUser>): UserChange[] {
  const out: UserChange[] = [];
  for (const [id, b] of before) {
    const a = after.get(id);
    const left = b.groups.filter((g) => !a?.groups.includes(g));
    const joined = a ? a.groups.filter((g) => !b.groups.includes(g)) : [];
    if (!a || left.length || joined.length) out.push({ userId: id, left, joined, gone: !a });
  }
  for (const [id, a] of after) if (!before.has(id) && a.groups.length) out.push({ userId: id, left: [], joined: [...a.groups], gone: false });
  return out;
}

export class Directory {
  private readonly ep: LdapEndpoint;
  /** The last view of each enrolled directory user (absent: unknown or not an enabled user). */
  private users = new Map<string, DirectoryUser>();
  private lastOkAt = Date.now();
  lastError: string | null = null;

  constructor(readonly cfg: DirectoryConfig, private readonly ops: LdapOps = TOOLS) {
    this.ep = { url: cfg.url, startTls: cfg.startTls, caFile: cfg.caFile, timeoutSeconds: cfg.timeoutSeconds };
  }

  private search(o: Omit<SearchOptions, 'bindDn' | 'bindPassword'>): Promise<LdapEntry[]> {
    return this.ops.search(this.ep, { ...o, bindDn: this.cfg.bind?.dn, bindPassword: this.cfg.bind?.password });
  }

  /** Member DNs (normalized) of every mapped group. */
  private async members(): Promise<Map<string, Set<string>>> {
    const m = new Map<string, Set<string>>();
    for (const g of this.cfg.groups) {
      const e = await this.search({ base: g.dn, scope: 'base', filter: '(objectClass=*)', attrs: [this.cfg.memberAttribute] });
      m.set(normalizeDn(g.dn), new Set((e[0]?.attrs.get(this.cfg.memberAttribute.toLowerCase()) ?? []).map(normalizeDn)));
    }
    return m;
  }

  /** DNs of the enabled users among `ids` (user ID -> DN); a user ID matching two entries is left out. */
  private async userDns(ids: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!ids.length) return out;
    const attr = this.cfg.users.attribute;
    for (let i = 0; i < ids.length; i += 200) { // bounded filter length
      const part = ids.slice(i, i + 200);
      const any = part.length === 1 ? `(${attr}=${escapeFilterValue(part[0])})` : `(|${part.map((u) => `(${attr}=${escapeFilterValue(u)})`).join('')})`;
      const filter = `(&${any}${this.cfg.users.enabledFilter ?? ''})`;
      const entries = await this.search({ base: this.cfg.users.base, scope: 'sub', filter, attrs: [attr] });
      const seen = new Map<string, string[]>();
      for (const e of entries) for (const v of e.attrs.get(attr.toLowerCase()) ?? []) seen.set(v.toLowerCase(), [...(seen.get(v.toLowerCase()) ?? []), e.dn]);
      for (const u of part) { const d = seen.get(u.toLowerCase()); if (d?.length === 1) out.set(u, d[0]); }
    }
    return out;
  }

  /** Check a user's password against the directory; their DN and GSCIP groups, or a DirectoryRefusal. */
  async authenticate(userId: string, password: string): Promise<DirectoryUser> {
    if (!DIRECTORY_USER_ID.test(userId)) throw new DirectoryRefusal('bad_user_id', 'ldapUser: must be 1-63 characters of A-Z a-z 0-9 . _ - starting with a letter or digit');
    try {
      const dn = (await this.userDns([userId])).get(userId);
      // An unknown or disabled user gets the same answer as a wrong password: nothing to learn by probing.
      if (!dn) throw new DirectoryRefusal('credentials', 'the directory refused this user ID and password');
      try { await this.ops.bind(this.ep, dn, password); } catch (e) {
        if (e instanceof LdapError && e.reason === 'invalid_credentials') throw new DirectoryRefusal('credentials', 'the directory refused this user ID and password');
        throw e;
      }
      const groups = groupsOf(dn, await this.members(), this.cfg);
      if (!groups.length) throw new DirectoryRefusal('no_group', `user ${userId} is in no directory group mapped to a GSCIP group`);
      const u = { userId, dn, groups };
      this.users.set(userId, u);
      return u;
    } catch (e) {
      if (e instanceof DirectoryRefusal) throw e;
      throw new DirectoryRefusal('unreachable', `directory: ${(e as Error).message}`);
    }
  }

  /** The GE a directory user is now (a GEN in its mapped groups), or null when the directory does not (or no longer) know it. */
  ge(userId: string): GeDef | null {
    const u = this.users.get(userId);
    return u ? { userId, type: 'GEN', mode: this.cfg.mode, groups: [...u.groups] } : null;
  }

  knows(userId: string): boolean { return this.users.has(userId); }

  /** Every enrolled directory user the directory last said is enabled, with their groups. */
  list(): DirectoryUser[] { return [...this.users.values()].map((u) => ({ ...u, groups: [...u.groups] })); }

  /**
   * Re-read the enrolled users `ids` (those not in the network file) and
   * return what changed. The directory unreachable: the last view stays
   * until `staleSeconds` after the last good read, then every user loses
   * their groups (fail closed).
   */
  async sync(ids: string[], now = Date.now()): Promise<{ changes: UserChange[]; stale: boolean }> {
    let next: Map<string, DirectoryUser>;
    let stale = false;
    try {
      const dns = await this.userDns(ids);
      const members = await this.members();
      next = new Map([...dns].map(([id, dn]) => [id, { userId: id, dn, groups: groupsOf(dn, members, this.cfg) }]));
      this.lastOkAt = now;
      this.lastError = null;
    } catch (e) {
      this.lastError = (e as Error).message;
      if (now - this.lastOkAt < this.cfg.staleSeconds * 1000) throw e;
      stale = true;
      next = new Map([...this.users].filter(([id]) => ids.includes(id)).map(([id, u]) => [id, { ...u, groups: [] }]));
    }
    // Only the ids asked about: a user re-checked live in between keeps their entry.
    const before = new Map([...this.users].filter(([id]) => ids.includes(id)));
    const changes = diffUsers(before, next);
    for (const id of ids) { const u = next.get(id); if (u) this.users.set(id, u); else this.users.delete(id); }
    return { changes, stale };
  }
}
