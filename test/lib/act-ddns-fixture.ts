/**
 * The files and config of a GNAT's ActDdns in a unit test: a temporary
 * directory (removed after the test) with a TSIG key file and the path of
 * the published-names file, and the DDNS config naming that key.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from '../gms/helpers.js';

export function actDdnsFiles(t: TestContext, name: string) {
  const dir = tempDir(name);
  t.after(() => dir.remove());
  const keyFile = join(dir.path, 'k');
  writeFileSync(keyFile, Buffer.alloc(32, 7).toString('base64'), { mode: 0o600 });
  const cfg = { server: '198.51.100.53', port: 53, zone: 'example.net', ttl: 30, keyName: 'ge-gnat', keyFile };
  return { dir, keyFile, stateFile: join(dir.path, 'published.json'), cfg };
}
