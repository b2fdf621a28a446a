/**
 * The administrator's side: talks to a running GMS over mutual TLS with the
 * admin certificate the GMS wrote under `<data-dir>/admin/` (0600).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GscipError, readGmsErrorBody, type GmsWireCode } from '../errors/catalogue.js';
import { rawRequest } from './client.js';
import { ADMIN_DIR, type AdminEndpointFile, type GmsStatus } from './server.js';
import { assertOwnerOnly } from './secure-fs.js';

/** The GMS refused an admin request; code is the wire code it sent (catalogue GMS_WIRE). */
export class AdminError extends GscipError<string> {
  constructor(readonly status: number, code: string, message: string, readonly problems: string[] = []) { super(code, message); }
}

const nonJson = (status: number) => new AdminError(status, 'bad_response' satisfies GmsWireCode, `GMS answered HTTP ${status} with non-JSON`);

/** The AdminError for a GMS error answer (the body HttpError.body() built). */
export function adminRefusal(status: number, body: string): AdminError {
  const e = readGmsErrorBody(status, body);
  if (!e) return nonJson(status);
  return new AdminError(status, e.code, e.sent.message ?? `HTTP ${status}`, e.problems);
}

export class GmsAdminClient {
  private constructor(private readonly base: URL, private readonly tls: { ca: string; cert: string; key: string }) {}

  /** From the GMS data dir (same machine as the GMS); `gmsUrl` overrides the recorded URL. */
  static fromDataDir(dataDir: string, gmsUrl?: string): GmsAdminClient {
    const dir = join(dataDir, ADMIN_DIR);
    let ep: AdminEndpointFile;
    try { ep = JSON.parse(readFileSync(join(dir, 'endpoint.json'), 'utf8')) as AdminEndpointFile; } catch {
      throw new Error(`data-dir ${dataDir}: no ${ADMIN_DIR}/endpoint.json; has "gscip gms serve --data-dir ${dataDir}" run?`);
    }
    assertOwnerOnly(join(dir, 'admin.key'));
    return new GmsAdminClient(new URL(gmsUrl ?? ep.url), {
      ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), cert: readFileSync(join(dir, 'admin.crt'), 'utf8'), key: readFileSync(join(dir, 'admin.key'), 'utf8'),
    });
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const r = await rawRequest(this.base, path, { ...this.tls, method, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status !== 200) throw adminRefusal(r.status, r.body);
    try { return JSON.parse(r.body) as T; } catch { throw nonJson(r.status); }
  }

  apply(network: unknown, dryRun: boolean) {
    return this.call<{ applied: boolean; changed: boolean; plan: string; rotated?: Array<{ groupId: number; version: number }> }>('POST', '/v1/admin/apply', { network, dryRun });
  }
  issueToken(userId: string, ttlSeconds?: number) { return this.call<{ userId: string; token: string; expiresAt: number }>('POST', '/v1/admin/tokens', { userId, ttlSeconds }); }
  rotate(group: number) { return this.call<{ group: number; version: number }>('POST', '/v1/admin/rotate', { group }); }
  revoke(userId: string) { return this.call<{ userId: string; revoked: number }>('POST', '/v1/admin/revoke', { userId }); }
  list(kind: 'ges' | 'groups' | 'keys' | 'users') { return this.call<Array<Record<string, unknown>>>('GET', `/v1/admin/${kind}`); }
  network() { return this.call<unknown>('GET', '/v1/admin/network'); }
  status() { return this.call<GmsStatus>('GET', '/v1/admin/status'); }
}
