/**
 * Owner-only files for secrets (private keys, group keys, the GMS database):
 * directories 0700, files 0600, written atomically (temp file, fsync, rename).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, writeSync, chmodSync } from 'node:fs';
import { dirname } from 'node:path';

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // mkdir's mode is masked by umask and ignored for existing dirs
}

export function writePrivateFileAtomic(path: string, data: Uint8Array | string): void {
  ensurePrivateDir(dirname(path));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try { fsyncSync(dfd); } finally { closeSync(dfd); }
}

/** Throws if a secret file is readable or writable by anyone but its owner. */
export function assertOwnerOnly(path: string): void {
  const m = statSync(path).mode & 0o077;
  if (m !== 0) throw new Error(`${path}: permissions ${(statSync(path).mode & 0o777).toString(8)} allow group/other access; expected 0600/0700`);
}
