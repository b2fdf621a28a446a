/**
 * `gms serve` as a process owner: one server per data dir, a failed start
 * (port taken) releases everything, the Prometheus endpoint serves the GMS
 * metrics over plain HTTP on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GmsServer } from '../../controlplane/gms/server.js';
import { DataDirLockedError } from '../../controlplane/gms/data-dir-lock.js';
import { tempDir } from './helpers.js';

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test('one GMS per data dir; failed start releases the lock; metrics endpoint', async (t) => {
  const dir = tempDir('serve');
  const dir2 = tempDir('serve2');
  t.after(() => { dir.remove(); dir2.remove(); });
  const s1 = await GmsServer.start({ dataDir: dir.path, host: '127.0.0.1', port: 0, metricsListen: { host: '127.0.0.1', port: 0 } });
  t.after(() => s1.close());
  assert.ok(existsSync(join(dir.path, 'gms.lock')));

  await assert.rejects(GmsServer.start({ dataDir: dir.path, host: '127.0.0.1', port: 0 }),
    (e: DataDirLockedError) => e instanceof DataDirLockedError && e.pid === process.pid);

  // Port already taken by s1: the start fails and leaves dir2 unlocked.
  const port = Number(new URL(s1.url).port);
  await assert.rejects(GmsServer.start({ dataDir: dir2.path, host: '127.0.0.1', port }), /EADDRINUSE/);
  assert.equal(existsSync(join(dir2.path, 'gms.lock')), false);
  const s2 = await GmsServer.start({ dataDir: dir2.path, host: '127.0.0.1', port: 0 });
  await s2.close();
  assert.equal(existsSync(join(dir2.path, 'gms.lock')), false, 'close releases the lock');

  const m = await httpGet(s1.metricsUrl!);
  assert.equal(m.status, 200);
  assert.match(m.body, /^gscip_gms_ges_enrolled 0$/m);
  assert.match(m.body, /^gscip_gms_ges_connected 0$/m);
  assert.match(m.body, /^gscip_process_resident_memory_bytes \d+/m);
  assert.equal((await httpGet(s1.metricsUrl!.replace('/metrics', '/other'))).status, 404);
});
