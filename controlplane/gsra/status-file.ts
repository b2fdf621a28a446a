/**
 * The router's state file (`gsra.statusFile`): no secret in it (no key), so
 * written 0644 by rename, and its directory is never created or re-moded
 * (it is the operator's: /run/gscip, or a test's /tmp). Not secure-fs's
 * writePrivateFileAtomic, which makes the parent 0700 (that would lock every
 * other user out of a shared directory such as /tmp).
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';

export function writeStatusAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const b = Buffer.from(text);
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
  } finally { closeSync(fd); }
  renameSync(tmp, path);
}
