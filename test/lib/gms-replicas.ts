/**
 * Several `gscip gms serve` processes on one PostgreSQL database, as a site
 * runs them: each its own process (so a test can SIGKILL one), its own data
 * dir (admin credentials), a fixed loopback port (a restarted replica keeps
 * its URL), the same master key. Every pid is in the scratch manifest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { ScratchGuard } from '../../controlplane/lab/scratch-guard.js';
import { GmsAdminClient } from '../../controlplane/gms/admin-client.js';
import { AtRest } from '../../controlplane/gms/at-rest.js';
import type { GmsStatus } from '../../controlplane/gms/server.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const a = s.address(); const p = typeof a === 'object' && a ? a.port : 0; s.close(() => res(p)); });
  });
}

export interface Replica {
  id: string;
  dataDir: string;
  port: number;
  url: string;
  child: ChildProcess | null;
  /** Everything the process wrote to stderr (failpoint lines, errors). */
  stderr: string;
  exited: Promise<void>;
}

export class GmsReplicaSet {
  readonly replicas: Replica[] = [];
  readonly keyFile: string;
  readonly atRest: AtRest;
  private readonly root: string;

  constructor(readonly database: string, readonly tag: string) {
    this.root = mkdtempSync(`/tmp/gscip-gms-${tag}-`);
    ScratchGuard.get().add('path', this.root);
    const key = AtRest.generateKey();
    this.atRest = AtRest.fromKeys([key]);
    this.keyFile = join(this.root, 'master.key');
    writeFileSync(this.keyFile, `${key.toString('hex')}\n`, { mode: 0o600 });
  }

  /** Add replica `id` and start it; resolves once it listens. */
  async add(id: string, env: Record<string, string> = {}): Promise<Replica> {
    const dataDir = join(this.root, id);
    const port = await freePort();
    const r: Replica = { id, dataDir, port, url: `https://127.0.0.1:${port}`, child: null, stderr: '', exited: Promise.resolve() };
    this.replicas.push(r);
    await this.boot(r, env);
    return r;
  }

  async boot(r: Replica, env: Record<string, string> = {}): Promise<void> {
    const child = spawn(process.execPath, [MAIN, 'gms', 'serve', '--data-dir', r.dataDir, '--listen', `127.0.0.1:${r.port}`,
      '--database', this.database, '--master-key-file', this.keyFile, '--replica-id', r.id],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GSCIP_LOG_LEVEL: 'warn', ...env } });
    ScratchGuard.get().add('pid', String(child.pid));
    r.child = child;
    r.exited = new Promise((res) => child.once('exit', () => res()));
    let out = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (r.stderr.length < 100_000) r.stderr += d; });
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`replica ${r.id} did not start in 30 s: ${r.stderr.slice(-2000)}`)), 30_000);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (/GMS listening on https:\/\//.test(out)) { clearTimeout(t); res(); }
      });
      child.once('exit', (c) => { clearTimeout(t); rej(new Error(`replica ${r.id} exited ${c}: ${r.stderr.slice(-2000)}`)); });
    });
  }

  get(id: string): Replica { const r = this.replicas.find((x) => x.id === id); if (!r) throw new Error(`no replica ${id}`); return r; }
  alive(): Replica[] { return this.replicas.filter((r) => r.child && r.child.exitCode === null && r.child.signalCode === null); }
  admin(id?: string): GmsAdminClient { return GmsAdminClient.fromDataDir((id ? this.get(id) : this.alive()[0]).dataDir); }
  status(id?: string): Promise<GmsStatus> { return this.admin(id).status(); }

  /** SIGKILL: no cleanup of any kind (its connections drop, its replica row stays). */
  async kill(id: string): Promise<void> {
    const r = this.get(id);
    if (!r.child) return;
    r.child.kill('SIGKILL');
    await r.exited;
    ScratchGuard.get().removed('pid', String(r.child.pid));
    r.child = null;
  }

  async stop(id: string): Promise<void> {
    const r = this.get(id);
    if (!r.child) return;
    r.child.kill('SIGTERM');
    const t = setTimeout(() => r.child?.kill('SIGKILL'), 10_000);
    await r.exited;
    clearTimeout(t);
    ScratchGuard.get().removed('pid', String(r.child.pid));
    r.child = null;
  }

  async destroy(): Promise<void> {
    for (const r of this.replicas) await this.stop(r.id);
    rmSync(this.root, { recursive: true, force: true });
    ScratchGuard.get().removed('path', this.root);
  }
}
