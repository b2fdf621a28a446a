/**
 * A throw-away OpenLDAP server (Debian slapd) for one test file: its own
 * cn=config built with slapadd from an LDIF written here, its own MDB
 * database, a TLS certificate issued by a CA the test generates, and one
 * listener: ldaps:// on 127.0.0.1 (a free port) — nothing outside loopback
 * can reach it, nothing is ever sent in clear. slapd runs in the foreground
 * (`-d 0`) as a child of the test; its pid and dir are in the scratch
 * manifest before it starts, so a SIGKILLed test leaves nothing running.
 *
 * Directory layout: dc=example,dc=net with ou=people (inetOrgPerson, uid,
 * userPassword as {SSHA}) and ou=groups (groupOfNames, member DNs). The
 * administrator (rootdn cn=admin,dc=example,dc=net) changes it through
 * ldapmodify over the same ldaps:// listener.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ScratchGuard } from '../../controlplane/lab/scratch-guard.js';
import { startScratchChild, stopScratchChild } from './scratch-server.js';
import { GmsCa } from '../../controlplane/gms/ca.js';

export const SUFFIX = 'dc=example,dc=net';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
const ADMIN_DN = `cn=admin,${SUFFIX}`;

/** Why this host cannot run the slapd tests, or null. */
export function slapdUnavailable(): string | null {
  for (const p of ['/usr/sbin/slapd', '/usr/sbin/slapadd', '/usr/sbin/slappasswd', '/usr/bin/ldapmodify', '/usr/bin/ldapsearch']) {
    if (!existsSync(p)) return `${p} missing (apt-get install slapd ldap-utils)`;
  }
  if (process.getuid?.() !== 0) return 'needs root';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const a = s.address(); s.close(() => resolve(typeof a === 'object' && a ? a.port : 0)); });
  });
}

export interface LdapUser { uid: string; password: string }

export class TestSlapd {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  url = '';
  readonly caFile: string;
  readonly adminPassword = 'admin-secret-for-tests';

  private constructor(readonly dir: string, private readonly netns: string | null) { this.caFile = join(dir, 'ca.crt'); }

  /**
   * Start slapd with `users` in ou=people and `groups` (cn -> member uids) in
   * ou=groups; with `netns`, slapd (and every LDAP tool this class runs)
   * lives in that test namespace, still on its 127.0.0.1 only.
   */
  static async start(users: LdapUser[], groups: Record<string, string[]>, opts: { netns?: string } = {}): Promise<TestSlapd> {
    const why = slapdUnavailable();
    if (why) throw new Error(why);
    const guard = ScratchGuard.get();
    const dir = mkdtempSync('/tmp/gscip-slapd-');
    guard.add('path', dir);
    const s = new TestSlapd(dir, opts.netns ?? null);
    try {
      await s.build(users, groups);
      await s.boot();
    } catch (e) { await s.destroy(); throw e; }
    return s;
  }

  userDn(uid: string): string { return `uid=${uid},${PEOPLE}`; }
  groupDn(cn: string): string { return `cn=${cn},${GROUPS}`; }

  private async build(users: LdapUser[], groups: Record<string, string[]>): Promise<void> {
    const pem = await GmsCa.createPem('GSCIP test LDAP CA');
    const ca = await GmsCa.fromPem(pem.certPem, pem.keyPem);
    const tls = await ca.issueServer(['127.0.0.1', 'localhost']);
    writeFileSync(this.caFile, ca.certPem);
    writeFileSync(join(this.dir, 'server.crt'), tls.certPem);
    writeFileSync(join(this.dir, 'server.key'), tls.keyPem, { mode: 0o600 });
    const conf = join(this.dir, 'slapd.d');
    const db = join(this.dir, 'db');
    mkdirSync(conf, { mode: 0o700 });
    mkdirSync(db, { mode: 0o700 });
    const config = [
      'dn: cn=config', 'objectClass: olcGlobal', 'cn: config',
      `olcPidFile: ${join(this.dir, 'slapd.pid')}`, `olcArgsFile: ${join(this.dir, 'slapd.args')}`, 'olcLogLevel: none',
      `olcTLSCertificateFile: ${join(this.dir, 'server.crt')}`, `olcTLSCertificateKeyFile: ${join(this.dir, 'server.key')}`,
      `olcTLSCACertificateFile: ${this.caFile}`,
      '',
      'dn: cn=module{0},cn=config', 'objectClass: olcModuleList', 'cn: module{0}', 'olcModulePath: /usr/lib/ldap', 'olcModuleLoad: back_mdb',
      '',
      'dn: cn=schema,cn=config', 'objectClass: olcSchemaConfig', 'cn: schema',
      '',
      'include: file:///etc/ldap/schema/core.ldif', '', 'include: file:///etc/ldap/schema/cosine.ldif', '',
      'include: file:///etc/ldap/schema/nis.ldif', '', 'include: file:///etc/ldap/schema/inetorgperson.ldif',
      '',
      'dn: olcDatabase={-1}frontend,cn=config', 'objectClass: olcDatabaseConfig', 'objectClass: olcFrontendConfig', 'olcDatabase: {-1}frontend',
      '',
      'dn: olcDatabase={0}config,cn=config', 'objectClass: olcDatabaseConfig', 'olcDatabase: {0}config', 'olcRootDN: cn=admin,cn=config',
      '',
      'dn: olcDatabase={1}mdb,cn=config', 'objectClass: olcDatabaseConfig', 'objectClass: olcMdbConfig', 'olcDatabase: {1}mdb',
      `olcSuffix: ${SUFFIX}`, `olcDbDirectory: ${db}`, 'olcDbMaxSize: 67108864', `olcRootDN: ${ADMIN_DN}`,
      `olcRootPW: ${this.adminPassword}`, 'olcDbIndex: objectClass eq', 'olcDbIndex: uid eq', 'olcDbIndex: member eq',
      'olcAccess: to attrs=userPassword by self write by anonymous auth by * none',
      'olcAccess: to * by * read',
      '',
    ].join('\n');
    writeFileSync(join(this.dir, 'config.ldif'), config);
    run('/usr/sbin/slapadd', ['-n', '0', '-F', conf, '-l', join(this.dir, 'config.ldif')]);
    const data: string[] = [
      `dn: ${SUFFIX}`, 'objectClass: dcObject', 'objectClass: organization', 'o: example', 'dc: example', '',
      `dn: ${PEOPLE}`, 'objectClass: organizationalUnit', 'ou: people', '',
      `dn: ${GROUPS}`, 'objectClass: organizationalUnit', 'ou: groups', '',
    ];
    for (const u of users) data.push(...this.userEntry(u), '');
    for (const [cn, members] of Object.entries(groups)) {
      // groupOfNames needs one member at least: a placeholder that is no user keeps an emptied group valid.
      data.push(`dn: ${this.groupDn(cn)}`, 'objectClass: groupOfNames', `cn: ${cn}`, `member: cn=nobody,${SUFFIX}`,
        ...members.map((m) => `member: ${this.userDn(m)}`), '');
    }
    writeFileSync(join(this.dir, 'data.ldif'), data.join('\n'));
    run('/usr/sbin/slapadd', ['-n', '1', '-F', conf, '-l', join(this.dir, 'data.ldif')]);
  }

  private userEntry(u: LdapUser): string[] {
    const hash = run('/usr/sbin/slappasswd', ['-h', '{SSHA}', '-s', u.password]).trim();
    return [`dn: ${this.userDn(u.uid)}`, 'objectClass: inetOrgPerson', `uid: ${u.uid}`, `cn: ${u.uid}`, `sn: ${u.uid}`, `userPassword: ${hash}`];
  }

  /** Start slapd and wait until an anonymous search over ldaps:// answers. */
  async boot(): Promise<void> {
    const port = await freePort();
    this.url = `ldaps://127.0.0.1:${port}`;
    const [cmd, args] = this.inNs('/usr/sbin/slapd', ['-d', '0', '-F', join(this.dir, 'slapd.d'), '-h', `${this.url}/`]);
    await startScratchChild('slapd', cmd, args, {},
      () => spawnSync(...this.inNs('/usr/bin/ldapsearch', ['-x', '-LLL', '-H', this.url, '-b', SUFFIX, '-s', 'base', '1.1']), { env: this.env(), timeout: 5000 }).status === 0,
      20_000, (c) => { this.child = c.child; this.exited = c.exited; });
  }

  /** The command run in this server's namespace (nsenter execs it: the pid is the tool's own). */
  private inNs(cmd: string, args: string[]): [string, string[]] {
    return this.netns ? ['nsenter', [`--net=/run/netns/${this.netns}`, cmd, ...args]] : [cmd, args];
  }

  /** Environment for ldap-utils: trust the test CA only, demand a valid server certificate. */
  env(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, HOME: this.dir, LDAPTLS_CACERT: this.caFile, LDAPTLS_REQCERT: 'demand' };
  }

  /** Apply an LDIF change as the directory administrator. */
  modify(ldif: string): void {
    const r = spawnSync(...this.inNs('/usr/bin/ldapmodify', ['-x', '-H', this.url, '-D', ADMIN_DN, '-w', this.adminPassword]),
      { input: ldif, env: this.env(), encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`ldapmodify failed (${r.status}): ${r.stderr}`);
  }

  removeMember(group: string, uid: string): void {
    this.modify(`dn: ${this.groupDn(group)}\nchangetype: modify\ndelete: member\nmember: ${this.userDn(uid)}\n`);
  }

  addMember(group: string, uid: string): void {
    this.modify(`dn: ${this.groupDn(group)}\nchangetype: modify\nadd: member\nmember: ${this.userDn(uid)}\n`);
  }

  /** Mark an account disabled the way the GMS's `enabledFilter` in the tests reads it. */
  disable(uid: string): void {
    this.modify(`dn: ${this.userDn(uid)}\nchangetype: modify\nreplace: description\ndescription: disabled\n`);
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    await stopScratchChild(c, this.exited, 'SIGTERM');
    this.child = null;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
    ScratchGuard.get().removed('path', this.dir);
  }
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
