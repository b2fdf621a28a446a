/**
 * The one place where a failed libbpf/libc call becomes an Error that carries
 * the operation and the errno (number and symbolic name).
 */
import { constants } from 'node:os';
import { GscipError } from '../errors/catalogue.js';

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

const HINTS: Record<string, string> = {
  EPERM: 'needs root (CAP_BPF/CAP_NET_ADMIN)',
  EACCES: 'refused by the verifier or by permissions',
  ENOENT: 'not found',
  EEXIST: 'already exists',
  E2BIG: 'map is full (max_entries reached) or argument too big',
  ENOSPC: 'no space left (map full)',
  EBUSY: 'in use',
};

/** Its code is the errno name (catalogue family "errno": ENOENT exits 4, the rest 1). */
export class BpfError extends GscipError<string> {
  readonly errno: number;
  constructor(readonly op: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    const hint = HINTS[code];
    super(code, `${op} failed: ${code} (${errno})${hint ? `: ${hint}` : ''}${detail ? ` [${detail}]` : ''}`);
    this.errno = errno;
  }
}

/** libbpf >= 1.0 returns -errno from int functions. Returns rc when >= 0. */
export function checkRc(op: string, rc: number, detail?: string): number {
  if (rc < 0) throw new BpfError(op, -rc, detail);
  return rc;
}

export function isErrno(e: unknown, code: string): boolean {
  return e instanceof BpfError && e.code === code;
}
