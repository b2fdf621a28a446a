/**
 * A throw-away PostgreSQL server for one test file: initdb into a temp dir
 * owned by the unprivileged `postgres` user (the Debian package creates it;
 * the server refuses to run as root), then the postmaster in the foreground
 * as a child of the test, with TCP off (`listen_addresses = ''`) and its one
 * Unix socket inside that temp dir (0700): nothing outside the test can reach
 * it. Its pid and the dir are in the scratch manifest before anything starts,
 * so a SIGKILLed test leaves nothing running.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ScratchGuard } from '../../controlplane/lab/scratch-guard.js';
import { startScratchChild, stopScratchChild } from './scratch-server.js';

const PG_ROOT = '/usr/lib/postgresql';

/** Path of the newest installed PostgreSQL's bin dir, or null. */
export function postgresBin(): string | null {
  if (!existsSync(PG_ROOT)) return null;
  const v = readdirSync(PG_ROOT).filter((d) => existsSync(join(PG_ROOT, d, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return v.length ? join(PG_ROOT, v[0], 'bin') : null;
}

function pgUser(): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Why this host cannot run the PostgreSQL tests, or null. */
export function postgresUnavailable(): string | null {
  if (!postgresBin()) return 'PostgreSQL not installed (apt-get install postgresql)';
  if (!pgUser()) return 'no postgres system user';
  if (process.getuid?.() !== 0) return 'needs root (to run the server as the postgres user)';
  return null;
}

export class TestPostgres {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private user = { uid: -1, gid: -1 };

  private constructor(readonly dir: string, readonly bin: string) {}

  /** The socket dir and a connection URL for database `db`. */
  get socketDir(): string { return join(this.dir, 'sock'); }
  url(db = 'gscip'): string { return `postgresql://gscip@${encodeURIComponent(this.socketDir)}/${db}`; }

  static async start(): Promise<TestPostgres> {
    const why = postgresUnavailable();
    if (why) throw new Error(why);
    const u = pgUser()!;
    const guard = ScratchGuard.get();
    const dir = mkdtempSync('/tmp/gscip-pg-');
    guard.add('path', dir);
    chownSync(dir, u.uid, u.gid);
    const pg = new TestPostgres(dir, postgresBin()!);
    pg.user = u;
    const asPg = (cmd: string, args: string[]) => spawnSync(join(pg.bin, cmd), args, { encoding: 'utf8', timeout: 60_000, uid: u.uid, gid: u.gid, cwd: dir });
    const init = asPg('initdb', ['-D', join(dir, 'data'), '-U', 'gscip', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    mkdirSync(pg.socketDir, { mode: 0o700 });
    chownSync(pg.socketDir, u.uid, u.gid);
    await pg.boot();
    const cdb = asPg('createdb', ['-h', pg.socketDir, '-U', 'gscip', 'gscip']);
    if (cdb.status !== 0) { await pg.stop(); throw new Error(`createdb failed: ${cdb.stderr}`); }
    return pg;
  }

  /** Start the postmaster (again, after stop()) and wait until it accepts connections. */
  async boot(): Promise<void> {
    await startScratchChild('postgres', join(this.bin, 'postgres'), ['-D', join(this.dir, 'data'),
      '-c', "listen_addresses=", '-c', `unix_socket_directories=${this.socketDir}`, '-c', 'fsync=off',
      '-c', 'max_connections=200', '-c', 'logging_collector=off'], { uid: this.user.uid, gid: this.user.gid, cwd: this.dir },
      () => spawnSync(join(this.bin, 'pg_isready'), ['-h', this.socketDir, '-U', 'gscip', '-d', 'postgres'], { timeout: 5000 }).status === 0,
      30_000, (c) => { this.child = c.child; this.exited = c.exited; });
  }

  /** A new empty database (one per test, so tests do not see each other's rows). */
  createDb(name: string): string {
    const r = spawnSync(join(this.bin, 'createdb'), ['-h', this.socketDir, '-U', 'gscip', name], { encoding: 'utf8', timeout: 30_000, uid: this.user.uid, gid: this.user.gid, cwd: this.dir });
    if (r.status !== 0) throw new Error(`createdb ${name} failed: ${r.stderr}`);
    return this.url(name);
  }

  /** Fast shutdown of the postmaster (SIGINT), bounded; SIGKILL after 10 s. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    await stopScratchChild(c, this.exited, 'SIGINT');
    this.child = null;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
    ScratchGuard.get().removed('path', this.dir);
  }
}
