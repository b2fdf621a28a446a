/**
 * koffi bindings to the few libc calls the control plane needs and Node lacks:
 * raw sockets with SO_MARK, flock, if_nametoindex, mount, adjtimex, a
 * read-only mmap. Failures become BpfError
 * (op + errno) like every other kernel-facing failure.
 */
import koffi from 'koffi';
import { BpfError } from './errors.js';

const libc = koffi.load('libc.so.6');
const Mallinfo2 = koffi.struct('mallinfo2', {
  arena: 'size_t', ordblks: 'size_t', smblks: 'size_t', hblks: 'size_t', hblkhd: 'size_t',
  usmblks: 'size_t', fsmblks: 'size_t', uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t',
});

const fn = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)'),
  sendto: libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
  close: libc.func('int close(int fd)'),
  flock: libc.func('int flock(int fd, int operation)'),
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)'),
  if_indextoname: libc.func('char * if_indextoname(unsigned int ifindex, _Out_ char *buf)'),
  epoll_wait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  adjtimex: libc.func('int adjtimex(_Inout_ uint8_t *buf)'),
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, intptr_t offset)'),
  munmap: libc.func('int munmap(void *addr, size_t length)'),
  malloc_trim: libc.func('int malloc_trim(size_t pad)'),
  mallinfo2: libc.func('mallinfo2 mallinfo2(void)'),
  mallopt: libc.func('int mallopt(int param, int value)'),
};

export const AF_INET = 2;
export const AF_PACKET = 17;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_RAW = 255;
export const SOL_SOCKET = 1;
export const SO_MARK = 36;
export const SO_BINDTODEVICE = 25;
export const IPPROTO_IP = 0;
export const IP_HDRINCL = 3;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

function fail(op: string, detail?: string): never {
  throw new BpfError(op, koffi.errno() || 5 /* EIO */, detail);
}

export function socket(domain: number, type: number, protocol: number): number {
  const fd = fn.socket(domain, type | SOCK_CLOEXEC, protocol) as number;
  if (fd < 0) fail('socket', `domain ${domain} type ${type} proto ${protocol}`);
  return fd;
}

export function setsockoptU32(fd: number, level: number, opt: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  if ((fn.setsockopt(fd, level, opt, b, 4) as number) < 0) fail('setsockopt', `level ${level} opt ${opt}`);
}

export function setsockoptBytes(fd: number, level: number, opt: number, value: Buffer): void {
  if ((fn.setsockopt(fd, level, opt, value, value.length) as number) < 0) fail('setsockopt', `level ${level} opt ${opt}`);
}

/** Returns bytes sent; throws on error. */
export function sendto(fd: number, data: Buffer, addr: Buffer): number {
  const n = Number(fn.sendto(fd, data, data.length, 0, addr, addr.length));
  if (n < 0) fail('sendto', `${data.length} bytes`);
  return n;
}

export function closeFd(fd: number): void {
  if (fd >= 0) fn.close(fd);
}

/** Non-blocking exclusive flock; false if another process holds it. */
export function tryLockExclusive(fd: number): boolean {
  if ((fn.flock(fd, LOCK_EX | LOCK_NB) as number) === 0) return true;
  const e = koffi.errno();
  if (e === 11 /* EWOULDBLOCK */) return false;
  throw new BpfError('flock', e);
}

export function unlock(fd: number): void {
  fn.flock(fd, LOCK_UN);
}

/** ifindex of an interface name in the caller's network namespace; throws naming the interface. */
export function ifNameToIndex(name: string): number {
  const i = fn.if_nametoindex(name) as number;
  if (i === 0) throw new BpfError('if_nametoindex', koffi.errno() || 19 /* ENODEV */, `interface ${name}`);
  return i;
}

export function ifIndexToName(ifindex: number): string | null {
  const buf = Buffer.alloc(16);
  const r = fn.if_indextoname(ifindex, buf) as string | null;
  if (r === null) return null;
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? 16 : end).toString('latin1');
}

/** mount(2); throws BpfError('mount', errno) naming the target. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string | null): void {
  if ((fn.mount(source, target, fstype, flags, data) as number) !== 0) fail('mount', `${fstype} on ${target}`);
}

/** adjtimex(2) clock states (the return value). TIME_ERROR: the kernel considers the clock unsynchronised (STA_UNSYNC). */
export const TIME_STATE = { 0: 'TIME_OK', 1: 'TIME_INS', 2: 'TIME_DEL', 3: 'TIME_OOP', 4: 'TIME_WAIT', 5: 'TIME_ERROR' } as Record<number, string>;
export const TIME_ERROR = 5;
export const STA_UNSYNC = 0x0040;

export interface ClockState {
  /** adjtimex's return value (TIME_OK .. TIME_ERROR). */
  state: number;
  /** struct timex.status bits (STA_*). */
  status: number;
  /** Maximum error the NTP discipline reports, microseconds (grows by 500 ppm while nothing disciplines the clock). */
  maxErrorUs: number;
  /** Estimated error, microseconds. */
  estErrorUs: number;
}

/** Read the kernel clock discipline state (adjtimex with modes = 0: changes nothing; x86-64/aarch64 struct timex layout). */
export function clockState(): ClockState {
  const tx = Buffer.alloc(208); // sizeof(struct timex) on LP64
  const rc = fn.adjtimex(tx) as number;
  if (rc < 0) fail('adjtimex');
  return { state: rc, status: tx.readInt32LE(40), maxErrorUs: Number(tx.readBigInt64LE(24)), estErrorUs: Number(tx.readBigInt64LE(32)) };
}

const PROT_READ = 1;
const MAP_SHARED = 1;

/** mmap `length` bytes of `fd` at `offset` read-only, copy `take` bytes out, unmap. */
export function mmapRead(fd: number, offset: number, length: number, take: number): Buffer {
  const p = fn.mmap(null, length, PROT_READ, MAP_SHARED, fd, offset) as bigint | null;
  if (p === null || p === 0n || p === -1n || p === 0xffffffffffffffffn) fail('mmap', `fd ${fd} offset ${offset} length ${length}`);
  try { return Buffer.from(new Uint8Array(koffi.view(p, take)).slice()); } finally { fn.munmap(p, length); }
}

/** sizeof(struct epoll_event) on x86-64 (packed) and the larger aligned layout elsewhere: room for one either way. */
const EPOLL_EVENT_ROOM = 16;

/**
 * epoll_wait(epfd, one event, timeoutMs) on a libuv thread-pool thread; `done`
 * runs on the calling (main) thread with the count of ready fds, 0 on timeout,
 * or an error. Keeps one pool thread busy for at most timeoutMs.
 */
export function epollWaitAsync(epfd: number, timeoutMs: number, done: (err: Error | null, ready: number) => void): void {
  const events = Buffer.alloc(EPOLL_EVENT_ROOM);
  fn.epoll_wait.async(epfd, events, 1, timeoutMs, (err: unknown, rc: number) => {
    if (err) { done(err instanceof Error ? err : new Error(String(err)), -1); return; }
    void events; // referenced here so it stays alive until the call has returned
    // errno stays on the pool thread: the caller retries (EINTR) a bounded number of times.
    if (rc < 0) { done(new Error(`epoll_wait on epoll fd ${epfd} failed (errno is not visible across threads)`), rc); return; }
    done(null, rc);
  });
}

/** glibc's malloc_trim(0): returns free heap memory to the kernel; true when some was released. */
export function mallocTrim(): boolean {
  return (fn.malloc_trim(0) as number) === 1;
}

/** glibc's mallinfo2() (main arena and the others summed): bytes in use, free, mmapped; what a memory bench reports. */
export function mallocInfo(): { inUse: number; free: number; mmapped: number; arena: number } {
  const m = fn.mallinfo2() as { arena: number | bigint; hblkhd: number | bigint; uordblks: number | bigint; fordblks: number | bigint };
  return { inUse: Number(m.uordblks), free: Number(m.fordblks), mmapped: Number(m.hblkhd), arena: Number(m.arena) };
}

const M_MMAP_THRESHOLD = -3;

/**
 * glibc's mallopt(M_MMAP_THRESHOLD, bytes): allocations of at least `bytes`
 * get their own mapping, returned to the kernel when freed. Setting it also
 * stops glibc raising the threshold each time such a block is freed (up to
 * 32 MB), after which big transient blocks stay in the arenas for good.
 * True when glibc took it.
 */
export function mallocMmapThreshold(bytes: number): boolean {
  return (fn.mallopt(M_MMAP_THRESHOLD, bytes) as number) === 1;
}
