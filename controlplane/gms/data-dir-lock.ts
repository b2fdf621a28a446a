/**
 * One GMS process per data dir: the database lives in memory (sql.js) and is
 * written whole, so two servers on one dir would overwrite each other.
 * `<data-dir>/gms.lock` holds the owner's pid; a lock whose pid is gone is stale
 * and taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GscipError } from '../errors/catalogue.js';

export class DataDirLockedError extends GscipError {
  constructor(readonly dir: string, readonly pid: number) {
    super('GSCIP_E_GMS_DATA_DIR_LOCKED', `data-dir ${dir} is in use by GMS process ${pid} (remove ${join(dir, 'gms.lock')} only if that process is gone)`);
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Take the lock or throw DataDirLockedError; returns the release function. */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, 'gms.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new DataDirLockedError(dir, pid);
      rmSync(path, { force: true }); // stale: its owner is gone
    }
  }
  throw new Error(`data-dir ${dir}: cannot take ${path}`);
}
