/**
 * What an enrolled agent keeps on disk under its data dir (dirs 0700, files 0600):
 *   identity/agent.key  its private key (never leaves the machine)
 *   identity/agent.crt  certificate issued by the GMS CA
 *   identity/ca.crt     the GMS CA (pinned at enrollment by fingerprint)
 *   identity/gms.json   { url, urls, userId, caFingerprint }: urls = every GMS replica (one CA), url = the first
 *   cache/state.json    the last delivery (GE info + group keys) for restarts while the GMS is down
 *   status.json         the running client's status (no key material), for `gscip agent status`
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GeDelivery } from './model.js';
import { assertOwnerOnly, writePrivateFileAtomic } from './secure-fs.js';

export interface AgentIdentity {
  url: string;
  /** Every GMS replica the agent may use, in order of preference (all under one CA); [url] when enrolled with one. */
  urls: string[];
  userId: string; caFingerprint: string; keyPem: string; certPem: string; caPem: string;
}

const p = (dir: string) => ({
  key: join(dir, 'identity', 'agent.key'),
  crt: join(dir, 'identity', 'agent.crt'),
  ca: join(dir, 'identity', 'ca.crt'),
  meta: join(dir, 'identity', 'gms.json'),
  cache: join(dir, 'cache', 'state.json'),
  status: join(dir, 'status.json'),
});

/** The files of an agent data dir (for readers that watch one, e.g. the cached delivery). */
export const agentFilePaths = p;

export function saveIdentity(dir: string, id: AgentIdentity): void {
  const f = p(dir);
  writePrivateFileAtomic(f.key, id.keyPem);
  writePrivateFileAtomic(f.crt, id.certPem);
  writePrivateFileAtomic(f.ca, id.caPem);
  writePrivateFileAtomic(f.meta, JSON.stringify({ url: id.url, urls: id.urls, userId: id.userId, caFingerprint: id.caFingerprint }, null, 2) + '\n');
}

export function loadIdentity(dir: string): AgentIdentity {
  const f = p(dir);
  if (!existsSync(f.meta)) throw new Error(`data-dir ${dir}: not enrolled (run gscip agent enroll first)`);
  assertOwnerOnly(f.key);
  const meta = JSON.parse(readFileSync(f.meta, 'utf8')) as { url: string; urls?: string[]; userId: string; caFingerprint: string };
  // A gms.json from before replicas has no urls.
  const urls = Array.isArray(meta.urls) && meta.urls.length && meta.urls.every((u) => typeof u === 'string') ? meta.urls : [meta.url];
  return { ...meta, url: urls[0], urls, keyPem: readFileSync(f.key, 'utf8'), certPem: readFileSync(f.crt, 'utf8'), caPem: readFileSync(f.ca, 'utf8') };
}

export function isEnrolled(dir: string): boolean { return existsSync(p(dir).meta); }

export function saveCache(dir: string, d: GeDelivery): void { writePrivateFileAtomic(p(dir).cache, JSON.stringify(d)); }

export function loadCache(dir: string): GeDelivery | null {
  const f = p(dir).cache;
  if (!existsSync(f)) return null;
  assertOwnerOnly(f);
  try { return JSON.parse(readFileSync(f, 'utf8')) as GeDelivery; } catch { return null; }
}

export function dropCache(dir: string): void { rmSync(p(dir).cache, { force: true }); }

export interface StatusFile { pid: number; writtenAt: number; status: unknown }

/** Not a secret and rewritten often: atomic rename, no fsync. */
export function writeStatusFile(dir: string, st: StatusFile): void {
  const f = p(dir).status;
  const tmp = `${f}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(st), { mode: 0o600 });
  renameSync(tmp, f);
}

export function readStatusFile(dir: string): StatusFile | null {
  try { return JSON.parse(readFileSync(p(dir).status, 'utf8')) as StatusFile; } catch { return null; }
}
