/**
 * LDAP for the GMS through OpenLDAP's own command-line clients (Debian
 * ldap-utils): `ldapwhoami` to check a user's password by a simple bind,
 * `ldapsearch` (LDIF out) to read entries. Always over TLS: an ldaps:// URL,
 * or ldap:// with StartTLS required (`-ZZ`, the tool fails rather than go on
 * in clear); the server certificate is checked against the configured CA
 * (`LDAPTLS_REQCERT=demand`). A password goes to the tool in a 0600 file in a
 * 0700 dir, removed right after (`-y`), never on its command line (visible in
 * /proc) nor in a log.
 *
 * Why the tools and not an LDAP library: no new npm package (the rules), and
 * the tools are OpenLDAP's reference client (TLS, StartTLS, referrals, result
 * codes) instead of a BER codec of our own; the cost is a process per call
 * (~5-10 ms), paid per enrollment and per directory sync, not per packet.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GscipError } from '../errors/catalogue.js';

export interface LdapEndpoint {
  /** ldaps://host:port or ldap://host:port (then startTls must be true). */
  url: string;
  startTls: boolean;
  /** PEM file of the CA the server's certificate must chain to. */
  caFile: string;
  timeoutSeconds: number;
}

/** One entry of a search result: its DN and attributes (names lower-cased), values as strings. */
export interface LdapEntry { dn: string; attrs: Map<string, string[]> }

export type LdapFailure = 'invalid_credentials' | 'no_such_object' | 'unreachable' | 'error';
export class LdapError extends GscipError {
  constructor(readonly reason: LdapFailure, readonly resultCode: number, message: string) { super('GSCIP_E_LDAP', message); }
}

/** LDAP result code (the tools exit with it) -> our reason. */
function reasonOf(code: number): LdapFailure {
  if (code === 49) return 'invalid_credentials';
  if (code === 32) return 'no_such_object';
  if (code === 255 || code === 254 || code === 81 || code === 91) return 'unreachable'; // -1/-2 (client side), serverDown, connectError
  return 'error';
}

function run(ep: LdapEndpoint, tool: string, args: string[], password?: string): Promise<string> {
  const common = ['-x', '-H', ep.url, '-o', `nettimeout=${ep.timeoutSeconds}`, ...(ep.startTls ? ['-ZZ'] : [])];
  let pwDir: string | null = null;
  if (password !== undefined) {
    pwDir = mkdtempSync(join(tmpdir(), 'gscip-ldap-')); // 0700
    writeFileSync(join(pwDir, 'pw'), password, { mode: 0o600 });
    common.push('-y', join(pwDir, 'pw'));
  }
  // Only our settings: no ~/.ldaprc, the CA of the config, a certificate that must verify.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', LDAPTLS_CACERT: ep.caFile, LDAPTLS_REQCERT: 'demand' };
  return new Promise<string>((resolve, reject) => {
    execFile(tool, [...common, ...args], { env, timeout: (ep.timeoutSeconds + 2) * 1000, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (pwDir) rmSync(pwDir, { recursive: true, force: true });
      if (!err) { resolve(stdout); return; }
      const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 255;
      const first = String(stderr).split('\n').find((l) => l.trim()) ?? err.message;
      reject(new LdapError(reasonOf(code), code, `${tool.split('/').pop()}: ${first.trim()}`));
    });
  });
}

/** Simple bind as `dn` with `password`; resolves when the directory accepts them, else LdapError (invalid_credentials on a wrong password). */
export async function ldapBind(ep: LdapEndpoint, dn: string, password: string): Promise<void> {
  if (password.length === 0) throw new LdapError('invalid_credentials', 49, 'empty password (an unauthenticated bind proves nothing)');
  await run(ep, 'ldapwhoami', ['-D', dn], password);
}

export interface SearchOptions {
  base: string;
  scope: 'base' | 'one' | 'sub';
  filter: string;
  attrs: string[];
  /** Bind as this DN (with bindPassword) for the search; anonymous otherwise. */
  bindDn?: string;
  bindPassword?: string;
}

export async function ldapSearch(ep: LdapEndpoint, o: SearchOptions): Promise<LdapEntry[]> {
  const auth = o.bindDn ? ['-D', o.bindDn] : [];
  let out: string;
  try {
    out = await run(ep, 'ldapsearch', [...auth, '-LLL', '-o', 'ldif-wrap=no', '-b', o.base, '-s', o.scope, o.filter, ...(o.attrs.length ? o.attrs : ['1.1'])],
      o.bindDn ? (o.bindPassword ?? '') : undefined);
  } catch (e) {
    if (e instanceof LdapError && e.reason === 'no_such_object') return [];
    throw e;
  }
  return parseLdif(out);
}

/** LDIF content records as ldapsearch -LLL prints them (folded lines, `::` base64 values, comments). */
export function parseLdif(text: string): LdapEntry[] {
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const l = raw.replace(/\r$/, '');
    if (l.startsWith(' ') && lines.length && lines[lines.length - 1] !== '') lines[lines.length - 1] += l.slice(1);
    else lines.push(l);
  }
  const out: LdapEntry[] = [];
  let cur: LdapEntry | null = null;
  for (const l of lines) {
    if (l === '') { if (cur) out.push(cur); cur = null; continue; }
    if (l.startsWith('#')) continue;
    const m = /^([A-Za-z0-9;.-]+)(::?)\s?(.*)$/.exec(l);
    if (!m) continue;
    const value = m[2] === '::' ? Buffer.from(m[3], 'base64').toString('utf8') : m[3];
    const name = m[1].toLowerCase();
    if (name === 'dn') { if (cur) out.push(cur); cur = { dn: value, attrs: new Map() }; continue; }
    if (!cur) continue;
    cur.attrs.set(name, [...(cur.attrs.get(name) ?? []), value]);
  }
  if (cur) out.push(cur);
  return out;
}

/** A DN compared the way two spellings of one entry compare equal here: case and spaces around `,`/`=` ignored. */
export function normalizeDn(dn: string): string {
  return dn.split(',').map((rdn) => rdn.split('=').map((p) => p.trim().toLowerCase()).join('=')).join(',');
}

/** A value put inside an LDAP filter (RFC 4515 escaping). */
export function escapeFilterValue(v: string): string {
  return v.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
