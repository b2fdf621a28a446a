/** Shared scaffolding for the GMS tests: temp dirs, a GMS on loopback, enrolled agents, recording sinks. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GmsServer, type GmsServerOptions } from '../../controlplane/gms/server.js';
import { GmsAdminClient } from '../../controlplane/gms/admin-client.js';
import { enroll, startGmsClient, type GmsClientHandle, type KeySink } from '../../controlplane/gms/client.js';
import type { Cipher } from '../../controlplane/gms/model.js';

export function tempDir(tag: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `gscip-gms-${tag}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export async function startGms(dataDir: string, extra: Partial<GmsServerOptions> = {}): Promise<{ server: GmsServer; admin: GmsAdminClient }> {
  const server = await GmsServer.start({ dataDir, host: '127.0.0.1', port: 0, heartbeatMs: 1000, ...extra });
  return { server, admin: GmsAdminClient.fromDataDir(dataDir) };
}

/** Token + enrollment of `userId` into `dataDir`. */
export async function enrollGe(server: GmsServer, admin: GmsAdminClient, userId: string, dataDir: string): Promise<void> {
  const t = await admin.issueToken(userId, 600);
  await enroll({ gmsUrl: server.url, token: t.token, caFingerprint: server.ca.fingerprint(), dataDir });
}

/** A KeySink that records what the fast path would hold. */
export class MemorySink implements KeySink {
  readonly keys = new Map<string, Buffer>();
  /** The cipher each held key was installed with. */
  readonly ciphers = new Map<string, Cipher>();
  readonly log: string[] = [];
  set(group: number, version: number, key: Buffer, cipher: Cipher): void {
    this.keys.set(`${group}/${version}`, Buffer.from(key));
    this.ciphers.set(`${group}/${version}`, cipher);
    this.log.push(`set ${group}/${version}`);
  }
  del(group: number, version: number): void {
    this.keys.delete(`${group}/${version}`);
    this.ciphers.delete(`${group}/${version}`);
    this.log.push(`del ${group}/${version}`);
  }
  ids(): string[] { return [...this.keys.keys()].sort(); }
  list(): Array<[number, number]> { return [...this.keys.keys()].map((id) => id.split('/').map(Number) as [number, number]); }
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

export async function startAgent(dataDir: string, sink: KeySink): Promise<GmsClientHandle> {
  return startGmsClient({ dataDir, backoff: { baseMs: 50, maxMs: 400 }, idleTimeoutMs: 5000 }, sink);
}

export const FIG6 = {
  apiVersion: 'gscip/v1', kind: 'Network',
  groups: [{ id: 1 }, { id: 2 }, { id: 3 }],
  ges: [
    { userId: 'gen-dept', type: 'GEN', mode: 'CL', groups: [1] },
    { userId: 'ges1-staff', type: 'GES', mode: 'OP', groups: [1] },
    { userId: 'ges2-manager', type: 'GES', mode: 'OP', groups: [1, 2] },
    { userId: 'ges3-manager', type: 'GES', mode: 'OP', groups: [3] },
    { userId: 'gea-server', type: 'GEA', mode: 'CL', groups: [2, 3] },
  ],
};
