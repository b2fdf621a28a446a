/**
 * `gscip gms ...`: run the Group Management Server and administer it.
 *   serve         run the GMS (HTTPS + mutual TLS, embedded SQLite in --data-dir)
 *   apply         make the GMS match a network.yaml (--dry-run prints the diff only)
 *   load-report   how many items an administrator writes for a network.yaml
 *   token issue   one-time enrollment token for a GE
 *   rotate        rotate a group's key now
 *   revoke        revoke a GE's certificates
 *   ls            ges | groups | keys (never key material)
 *   status        replicas, leader, database, each replica's lag
 *   migrate       copy a stopped SQLite GMS into an empty PostgreSQL database (every table compared)
 *   rekey         re-seal the database's secrets under the first key of the master key ring
 *   master-key    generate a master key file
 */
import { readFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { parse as parseYaml } from 'yaml';
import { parseDirectoryYaml } from '../../gms/directory-config.js';
import { GmsAdminClient, AdminError } from '../../gms/admin-client.js';
import { changeReport, countOptionalGroupItems, formatChangeReport, formatLoadReport, loadReport } from '../../gms/load-report.js';
import { GmsServer, type GmsStatus } from '../../gms/server.js';
import { AtRest } from '../../gms/at-rest.js';
import { formatMigrateReport, migrateSqliteToPostgres } from '../../gms/migrate.js';
import { openBackend } from '../../gms/store-backend.js';
import { lockDataDir } from '../../gms/data-dir-lock.js';
import { writePrivateFileAtomic } from '../../gms/secure-fs.js';
import { parseNetworkYaml, SpecError } from '../../gms/spec.js';

export function parseListen(s: string, what = 'listen'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what}: expected HOST:PORT, got "${s}"`);
  return { host: m[1] ?? m[2], port };
}

/** Print an error the operator can act on and set a failing exit code. */
function fail(e: unknown): void {
  if (e instanceof SpecError) process.stderr.write(`${e.message}\n`);
  else if (e instanceof AdminError) process.stderr.write(`error: ${e.message}${e.problems.length ? `\n  ${e.problems.join('\n  ')}` : ''}\n`);
  else process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exitCode = 1;
}

interface AdminArgs { 'data-dir': string; gms?: string }
const adminOpts = (y: Argv) => y
  .option('data-dir', { type: 'string', demandOption: true, describe: 'the GMS data directory (holds the admin credentials)' })
  .option('gms', { type: 'string', describe: 'GMS URL (default: the one the server recorded)' });
const admin = (a: AdminArgs) => GmsAdminClient.fromDataDir(a['data-dir'], a.gms);

const dbOpts = (y: Argv) => y
  .option('database', { type: 'string', describe: 'sqlite: (default, <data-dir>/gms.sqlite) or postgresql://user@host/db (several replicas)' })
  .option('master-key-file', { type: 'string', describe: 'master key ring (0600) sealing the CA key and group keys at rest; default $GSCIP_GMS_MASTER_KEY' });

const serve: CommandModule<object, { 'data-dir': string; listen: string; 'server-name': string[]; 'token-ttl': number; 'cert-days': number; metrics?: string; database?: string; 'master-key-file'?: string; 'replica-id'?: string; 'advertise-url'?: string; directory?: string }> = {
  command: 'serve',
  describe: 'run the Group Management Server',
  builder: (y) => dbOpts(y)
    .option('data-dir', { type: 'string', demandOption: true, describe: 'admin credentials; with SQLite the database and CA too (created 0700)' })
    .option('listen', { type: 'string', default: '127.0.0.1:7443', describe: 'HOST:PORT for HTTPS (port 0 = any free port)' })
    .option('server-name', { type: 'string', array: true, default: [] as string[], describe: 'extra DNS names/IPs for the server certificate' })
    .option('token-ttl', { type: 'number', default: 86400, describe: 'default enrollment token lifetime, seconds' })
    .option('cert-days', { type: 'number', default: 365, describe: 'GE certificate lifetime, days' })
    .option('metrics', { type: 'string', describe: 'HOST:PORT for a plain-HTTP Prometheus /metrics endpoint' })
    .option('replica-id', { type: 'string', describe: 'this replica\'s name in gms status (default: its HOST:PORT)' })
    .option('advertise-url', { type: 'string', describe: 'the URL agents reach this replica at (gms status)' })
    .option('directory', { type: 'string', describe: 'directory.yaml: the LDAP directory of remote users (GSRA), docs/gsra.md' }) as never,
  handler: async (a) => {
    try {
      const l = parseListen(a.listen);
      const s = await GmsServer.start({
        dataDir: a['data-dir'], host: l.host, port: l.port, serverNames: a['server-name'],
        tokenTtlSeconds: a['token-ttl'], geCertDays: a['cert-days'], metricsListen: a.metrics ? parseListen(a.metrics, 'metrics') : undefined,
        database: a.database, masterKeyFile: a['master-key-file'], replicaId: a['replica-id'], advertiseUrl: a['advertise-url'],
        directory: a.directory ? parseDirectoryYaml(readFileSync(a.directory, 'utf8')) : undefined,
      });
      process.stdout.write(`GMS listening on ${s.url}\nCA fingerprint (give to agents): ${s.ca.fingerprint()}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => { void s.close().then(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    } catch (e) { fail(e); }
  },
};

const apply: CommandModule<object, AdminArgs & { file: string; 'dry-run': boolean }> = {
  command: 'apply',
  describe: 'create/update/remove GEs and groups to match a network.yaml (idempotent)',
  builder: (y) => adminOpts(y)
    .option('file', { alias: 'f', type: 'string', demandOption: true })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print the diff, change nothing' }) as never,
  handler: async (a) => {
    try {
      const net = parseNetworkYaml(readFileSync(a.file, 'utf8')); // validated here first: errors name the field
      void net;
      const r = await admin(a).apply(parseYaml(readFileSync(a.file, 'utf8')), a['dry-run']);
      process.stdout.write(`${a['dry-run'] ? '(dry run) ' : ''}${r.plan}\n`);
      for (const x of r.rotated ?? []) process.stdout.write(`group ${x.groupId}: key version ${x.version}\n`);
    } catch (e) { fail(e); }
  },
};

const loadReportCmd: CommandModule<object, { file: string; then?: string; json: boolean }> = {
  command: 'load-report',
  describe: 'count the items an administrator writes for a network.yaml (papers: GSCIP 38 vs IPsec/IKE 174 for Fig. 6); with --then, the items a change to it costs',
  builder: (y) => y.option('file', { alias: 'f', type: 'string', demandOption: true })
    .option('then', { type: 'string', describe: 'the network.yaml after a change: count what the operator changed' })
    .option('json', { type: 'boolean', default: false }) as never,
  handler: (a) => {
    try {
      const text = readFileSync(a.file, 'utf8');
      const r = loadReport(parseNetworkYaml(text), countOptionalGroupItems(parseYaml(text)));
      if (a.then === undefined) {
        process.stdout.write(a.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatLoadReport(r)}\n`);
        return;
      }
      const next = readFileSync(a.then, 'utf8');
      const c = changeReport(parseNetworkYaml(text), parseNetworkYaml(next), countOptionalGroupItems(parseYaml(text)), countOptionalGroupItems(parseYaml(next)));
      process.stdout.write(a.json ? `${JSON.stringify({ ...r, change: c }, null, 2)}\n` : `${formatLoadReport(r)}\n${formatChangeReport(c)}\n`);
    } catch (e) { fail(e); }
  },
};

const token: CommandModule<object, AdminArgs & { ge: string; ttl?: number }> = {
  command: 'token issue',
  describe: 'issue a one-time enrollment token for a GE',
  builder: (y) => adminOpts(y)
    .option('ge', { type: 'string', demandOption: true, describe: 'user ID of the GE' })
    .option('ttl', { type: 'number', describe: 'lifetime in seconds (default: the server\'s --token-ttl)' }) as never,
  handler: async (a) => {
    try {
      const r = await admin(a).issueToken(a.ge, a.ttl);
      process.stdout.write(`${r.token}\n`);
      process.stderr.write(`token for ${r.userId}, single use, expires ${new Date(r.expiresAt).toISOString()}\n`);
    } catch (e) { fail(e); }
  },
};

const rotate: CommandModule<object, AdminArgs & { group: number }> = {
  command: 'rotate',
  describe: 'rotate a group key now',
  builder: (y) => adminOpts(y).option('group', { type: 'number', demandOption: true }) as never,
  handler: async (a) => {
    try {
      const r = await admin(a).rotate(a.group);
      process.stdout.write(`group ${r.group}: key version ${r.version}\n`);
    } catch (e) { fail(e); }
  },
};

const revoke: CommandModule<object, AdminArgs & { ge: string }> = {
  command: 'revoke',
  describe: 'revoke every certificate of a GE (it must enroll again with a new token)',
  builder: (y) => adminOpts(y).option('ge', { type: 'string', demandOption: true }) as never,
  handler: async (a) => {
    try {
      const r = await admin(a).revoke(a.ge);
      process.stdout.write(`${r.userId}: ${r.revoked} certificate(s) revoked\n`);
    } catch (e) { fail(e); }
  },
};

const ls: CommandModule<object, AdminArgs & { what: 'ges' | 'groups' | 'keys' | 'users'; json: boolean }> = {
  command: 'ls <what>',
  describe: 'list ges | groups | keys | users (remote users from the directory, GSRA); key material is never shown',
  builder: (y) => adminOpts(y)
    .positional('what', { choices: ['ges', 'groups', 'keys', 'users'] as const, demandOption: true })
    .option('json', { type: 'boolean', default: false }) as never,
  handler: async (a) => {
    try {
      const rows = await admin(a).list(a.what);
      if (a.json) { process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`); return; }
      process.stdout.write(`${formatTable(rows)}\n`);
    } catch (e) { fail(e); }
  },
};

const status: CommandModule<object, AdminArgs & { json: boolean }> = {
  command: 'status',
  describe: 'replicas, the leader, the database and each replica\'s lag',
  builder: (y) => adminOpts(y).option('json', { type: 'boolean', default: false }) as never,
  handler: async (a) => {
    try {
      const st = await admin(a).status();
      process.stdout.write(a.json ? `${JSON.stringify(st, null, 2)}\n` : `${formatStatus(st)}\n`);
    } catch (e) { fail(e); }
  },
};

export function formatStatus(st: GmsStatus): string {
  const d = st.database;
  return [
    `database: ${d.kind} ${d.location} (${d.version}), change ${d.changeSeq}, secrets ${d.encryptedAtRest ? 'sealed under the master key' : 'in clear (no master key)'}`,
    `leader:   ${st.leader ?? '(none: scheduled rotations wait)'}`,
    `answered by: ${st.self}`,
    formatTable(st.replicas.map((r) => ({
      replica: r.id, url: r.url, role: r.leader ? 'leader' : 'follower', state: r.alive ? 'alive' : 'DEAD',
      heartbeat: `${(r.heartbeatAgeMs / 1000).toFixed(1)}s ago`, lag: `${r.lagChanges} change(s)`, up: new Date(r.startedAt).toISOString(),
    }))),
  ].join('\n');
}

const migrate: CommandModule<object, { 'data-dir': string; to: string; 'master-key-file'?: string }> = {
  command: 'migrate',
  describe: 'copy a stopped SQLite GMS (--data-dir) into an empty PostgreSQL database (--to), comparing every table',
  builder: (y) => y
    .option('data-dir', { type: 'string', demandOption: true, describe: 'the SQLite GMS\'s data dir (its GMS stopped)' })
    .option('to', { type: 'string', demandOption: true, describe: 'postgresql://... of an empty database' })
    .option('master-key-file', { type: 'string', describe: 'master key ring the PostgreSQL replicas will hold (default $GSCIP_GMS_MASTER_KEY)' }) as never,
  handler: async (a) => {
    try {
      const r = await migrateSqliteToPostgres({ dataDir: a['data-dir'], database: a.to, atRest: AtRest.load(a['master-key-file']) });
      process.stdout.write(`${formatMigrateReport(r)}\nmigrated: start the replicas with --database ${a.to.replace(/:[^:@/]*@/, ':***@')} and the same master key\n`);
    } catch (e) { fail(e); }
  },
};

const rekey: CommandModule<object, { 'data-dir': string; database?: string; 'master-key-file'?: string }> = {
  command: 'rekey',
  describe: 're-seal every group key (and the CA key) under the first key of the master key ring',
  builder: (y) => dbOpts(y.option('data-dir', { type: 'string', demandOption: true, describe: 'the GMS data dir (SQLite: its GMS stopped)' })) as never,
  handler: async (a) => {
    try {
      const atRest = AtRest.load(a['master-key-file']);
      const sqlite = !a.database || a.database.startsWith('sqlite:');
      const unlock = sqlite ? lockDataDir(a['data-dir']) : () => undefined;
      try {
        const b = await openBackend({ dataDir: a['data-dir'], database: a.database, atRest });
        try {
          const r = await b.rekey();
          process.stdout.write(`re-sealed ${r.groupKeys} group key(s)${r.caKey ? ' and the CA key' : ''} under master key ${atRest.currentKeyId ?? '(none: stored in clear)'}\n`);
        } finally { await b.close(); }
      } finally { unlock(); }
    } catch (e) { fail(e); }
  },
};

const masterKey: CommandModule<object, { out: string }> = {
  command: 'master-key generate',
  describe: 'write a new master key (one line, 0600); to rotate, put it first in the ring, run rekey, drop the old line',
  builder: (y) => y.option('out', { type: 'string', demandOption: true }) as never,
  handler: (a) => {
    try {
      writePrivateFileAtomic(a.out, `${AtRest.generateKey().toString('hex')}\n`);
      process.stdout.write(`master key written to ${a.out} (id ${AtRest.fromKeys(parseFirst(a.out)).currentKeyId})\n`);
    } catch (e) { fail(e); }
  },
};
function parseFirst(file: string): Buffer[] { return [Buffer.from(readFileSync(file, 'utf8').trim(), 'hex')]; }

export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]);
  const cell = (v: unknown): string => (Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? Object.values(v).join(' ') : String(v));
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(w[i])).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export const gmsCommand: CommandModule = {
  command: 'gms <command>',
  describe: 'Group Management Server: serve, apply, load-report, token issue, rotate, revoke, ls, status, migrate, rekey, master-key generate',
  builder: (y) => y
    .command(serve as CommandModule).command(apply as CommandModule).command(loadReportCmd as CommandModule)
    .command(token as CommandModule).command(rotate as CommandModule).command(revoke as CommandModule).command(ls as CommandModule)
    .command(status as CommandModule).command(migrate as CommandModule).command(rekey as CommandModule).command(masterKey as CommandModule)
    .demandCommand(1),
  handler: () => undefined,
};
