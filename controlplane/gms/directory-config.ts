/**
 * The GMS's user directory (GSRA, seed 004 section 3.4): which LDAP server
 * holds the remote users, how to find a user, which directory groups give
 * which GSCIP groups. A file of its own (`gscip gms serve --directory F`),
 * not part of network.yaml: it names a server and secrets, not the network,
 * and it is read by the replica that uses it.
 *
 *   apiVersion: gscip/v1
 *   kind: Directory
 *   url: ldaps://ldap.example.net:636     # or ldap://... with startTls: true; never in clear
 *   caFile: /etc/gscip/ldap-ca.pem        # the directory server's certificate must chain to it
 *   users: { base: "ou=people,dc=example,dc=net", attribute: uid, enabledFilter: "(!(description=disabled))" }
 *   bind: { dn: "cn=gms,ou=services,dc=example,dc=net", passwordFile: /etc/gscip/ldap-gms.pw }   # optional
 *   groups:
 *     - { dn: "cn=staff,ou=groups,dc=example,dc=net", gscipGroups: [1] }
 *   memberAttribute: member   # the group attribute holding member DNs
 *   mode: CL                  # the mode the remote GEs get (they are GENs)
 *   syncSeconds: 1            # how often the GMS re-reads the membership of enrolled users
 *   staleSeconds: 30          # directory unreachable this long -> enrolled users lose their groups
 *   timeoutSeconds: 5
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { GscipError } from '../errors/catalogue.js';
import { GE_MODES, type GeMode } from './model.js';
import { formatPath } from './spec.js';

export class DirectoryConfigError extends GscipError {
  constructor(readonly problems: string[]) {
    super('GSCIP_E_DIRECTORY_CONFIG', `invalid directory file:\n  ${problems.join('\n  ')}`);
  }
}

const DN = z.string().min(3).max(1024).refine((s) => /^[A-Za-z][A-Za-z0-9-]*=[^,]+(,\s*[A-Za-z][A-Za-z0-9-]*=[^,]+)*$/.test(s), 'must be a DN such as "ou=people,dc=example,dc=net"');
const FILTER = z.string().refine((s) => s.startsWith('(') && s.endsWith(')') && balanced(s), 'must be an LDAP filter in parentheses, e.g. "(!(description=disabled))"');

function balanced(s: string): boolean {
  let d = 0;
  for (const c of s.replace(/\\./g, '')) { if (c === '(') d++; else if (c === ')' && --d < 0) return false; }
  return d === 0;
}

const schema = z.strictObject({
  apiVersion: z.literal('gscip/v1'),
  kind: z.literal('Directory'),
  url: z.string().regex(/^ldaps?:\/\/[^/\s]+\/?$/, 'must be ldaps://HOST[:PORT] or ldap://HOST[:PORT] (with startTls: true)'),
  startTls: z.boolean().default(false),
  caFile: z.string().min(1),
  users: z.strictObject({
    base: DN,
    attribute: z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'must be an attribute name such as uid').default('uid'),
    enabledFilter: FILTER.optional(),
  }),
  bind: z.strictObject({ dn: DN, passwordFile: z.string().min(1) }).optional(),
  groups: z.array(z.strictObject({ dn: DN, gscipGroups: z.array(z.number().int().min(1).max(0xffffffff)).min(1) })).min(1),
  memberAttribute: z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/).default('member'),
  mode: z.enum(GE_MODES).default('CL'),
  syncSeconds: z.number().min(0.2).max(3600).default(1),
  staleSeconds: z.number().min(1).max(86400).default(30),
  timeoutSeconds: z.number().int().min(1).max(60).default(5),
}).superRefine((c, ctx) => {
  if (c.url.startsWith('ldap://') && !c.startTls) ctx.addIssue({ code: 'custom', path: ['startTls'], message: 'an ldap:// URL needs startTls: true (passwords never travel in clear); or use ldaps://' });
  if (c.url.startsWith('ldaps://') && c.startTls) ctx.addIssue({ code: 'custom', path: ['startTls'], message: 'ldaps:// is TLS already; startTls is for ldap:// URLs' });
});

export interface DirectoryConfig {
  url: string; startTls: boolean; caFile: string;
  users: { base: string; attribute: string; enabledFilter?: string };
  bind?: { dn: string; password: string };
  groups: Array<{ dn: string; gscipGroups: number[] }>;
  memberAttribute: string;
  mode: GeMode;
  syncSeconds: number; staleSeconds: number; timeoutSeconds: number;
}

/** Validate a parsed directory document; every problem named with its path, the file rejected whole. */
export function validateDirectory(doc: unknown, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): DirectoryConfig {
  const r = schema.safeParse(doc);
  if (!r.success) throw new DirectoryConfigError(r.error.issues.map((i) => `${formatPath(i.path) || '(file)'}: ${i.message}`));
  const c = r.data;
  const problems: string[] = [];
  try { readFile(c.caFile); } catch (e) { problems.push(`caFile: cannot read ${c.caFile}: ${(e as Error).message}`); }
  let bind: DirectoryConfig['bind'];
  if (c.bind) {
    try { bind = { dn: c.bind.dn, password: readFile(c.bind.passwordFile).replace(/\r?\n$/, '') }; } catch (e) { problems.push(`bind.passwordFile: cannot read ${c.bind.passwordFile}: ${(e as Error).message}`); }
  }
  if (problems.length) throw new DirectoryConfigError(problems);
  return { ...c, bind };
}

export function parseDirectoryYaml(text: string): DirectoryConfig {
  const d = parseDocument(text);
  if (d.errors.length) throw new DirectoryConfigError(d.errors.map((e) => `(yaml): ${e.message}`));
  return validateDirectory(d.toJS());
}
