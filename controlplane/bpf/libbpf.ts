/**
 * koffi bindings to the system libbpf (1.1.x: no tcx, no bpf_link for TC) and
 * the thin wrappers that turn its return conventions into exceptions
 * (BpfError carries op + errno). Nothing here knows about GSCIP maps.
 *
 * libbpf 1.x conventions: int functions return -errno; pointer functions
 * return NULL and set errno.
 */
import koffi from 'koffi';
import { BpfError, checkRc } from './errors.js';

const lib = koffi.load('libbpf.so.1');

/** Opaque handles. koffi 3 represents pointers as bigint. */
export type BpfObjectPtr = bigint;
export type BpfMapPtr = bigint;
export type BpfProgramPtr = bigint;
export type RingBufferPtr = bigint;

koffi.opaque('bpf_object');
koffi.opaque('bpf_map');
koffi.opaque('bpf_program');
koffi.opaque('ring_buffer');

export const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'const void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'const void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

export const MapBatchOpts = koffi.struct('bpf_map_batch_opts', {
  sz: 'size_t',
  elem_flags: 'uint64_t',
  flags: 'uint64_t',
});

export const TcHook = koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});

export const TcOpts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});

export const ProgLoadOpts = koffi.struct('bpf_prog_load_opts', {
  sz: 'size_t',
  attempts: 'int',
  expected_attach_type: 'int',
  prog_btf_fd: 'uint32_t',
  prog_flags: 'uint32_t',
  prog_ifindex: 'uint32_t',
  kern_version: 'uint32_t',
  attach_btf_id: 'uint32_t',
  attach_prog_fd: 'uint32_t',
  attach_btf_obj_fd: 'uint32_t',
  fd_array: 'const void *',
  func_info: 'const void *',
  func_info_cnt: 'uint32_t',
  func_info_rec_size: 'uint32_t',
  line_info: 'const void *',
  line_info_cnt: 'uint32_t',
  line_info_rec_size: 'uint32_t',
  log_level: 'uint32_t',
  log_size: 'uint32_t',
  log_buf: 'void *',
});

export const RingBufferSampleFn = koffi.proto('int ring_buffer_sample_fn(void *ctx, void *data, size_t size)');

/** Raw libbpf functions (signatures as in bpf/libbpf.h 1.1). */
export const raw = {
  libbpf_major_version: lib.func('uint32_t libbpf_major_version(void)'),
  libbpf_minor_version: lib.func('uint32_t libbpf_minor_version(void)'),
  libbpf_num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),

  bpf_object__open_file: lib.func('bpf_object * bpf_object__open_file(const char *path, const void *opts)'),
  bpf_object__load: lib.func('int bpf_object__load(bpf_object *obj)'),
  bpf_object__close: lib.func('void bpf_object__close(bpf_object *obj)'),
  bpf_object__find_map_by_name: lib.func('bpf_map * bpf_object__find_map_by_name(const bpf_object *obj, const char *name)'),
  bpf_object__find_program_by_name: lib.func('bpf_program * bpf_object__find_program_by_name(const bpf_object *obj, const char *name)'),
  bpf_object__next_map: lib.func('bpf_map * bpf_object__next_map(const bpf_object *obj, const bpf_map *map)'),
  bpf_object__next_program: lib.func('bpf_program * bpf_object__next_program(const bpf_object *obj, bpf_program *prog)'),
  bpf_object__pin_maps: lib.func('int bpf_object__pin_maps(bpf_object *obj, const char *path)'),
  bpf_object__unpin_maps: lib.func('int bpf_object__unpin_maps(bpf_object *obj, const char *path)'),

  bpf_map__name: lib.func('const char * bpf_map__name(const bpf_map *map)'),
  bpf_map__fd: lib.func('int bpf_map__fd(const bpf_map *map)'),
  bpf_map__type: lib.func('int bpf_map__type(const bpf_map *map)'),
  bpf_map__key_size: lib.func('uint32_t bpf_map__key_size(const bpf_map *map)'),
  bpf_map__value_size: lib.func('uint32_t bpf_map__value_size(const bpf_map *map)'),
  bpf_map__max_entries: lib.func('uint32_t bpf_map__max_entries(const bpf_map *map)'),
  bpf_map__map_flags: lib.func('uint32_t bpf_map__map_flags(const bpf_map *map)'),
  bpf_map__set_max_entries: lib.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
  bpf_map__set_pin_path: lib.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
  bpf_map__pin_path: lib.func('const char * bpf_map__pin_path(const bpf_map *map)'),
  bpf_map__is_pinned: lib.func('bool bpf_map__is_pinned(const bpf_map *map)'),
  bpf_map__pin: lib.func('int bpf_map__pin(bpf_map *map, const char *path)'),
  bpf_map__unpin: lib.func('int bpf_map__unpin(bpf_map *map, const char *path)'),
  bpf_map__reuse_fd: lib.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
  bpf_map__initial_value: lib.func('void * bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),
  bpf_map__set_initial_value: lib.func('int bpf_map__set_initial_value(bpf_map *map, const void *data, size_t size)'),

  bpf_program__name: lib.func('const char * bpf_program__name(const bpf_program *prog)'),
  bpf_program__fd: lib.func('int bpf_program__fd(const bpf_program *prog)'),
  bpf_program__set_autoload: lib.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),

  bpf_map_update_elem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
  bpf_map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
  bpf_map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
  bpf_map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
  bpf_map_update_batch: lib.func('int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)'),
  bpf_map_delete_batch: lib.func('int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)'),
  bpf_map_lookup_batch: lib.func('int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)'),

  bpf_obj_pin: lib.func('int bpf_obj_pin(int fd, const char *pathname)'),
  bpf_obj_get: lib.func('int bpf_obj_get(const char *pathname)'),
  bpf_obj_get_info_by_fd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *info_len)'),
  bpf_prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),

  bpf_prog_load: lib.func('int bpf_prog_load(int prog_type, const char *prog_name, const char *license, const void *insns, size_t insn_cnt, const bpf_prog_load_opts *opts)'),

  bpf_prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),

  bpf_tc_hook_create: lib.func('int bpf_tc_hook_create(bpf_tc_hook *hook)'),
  bpf_tc_hook_destroy: lib.func('int bpf_tc_hook_destroy(bpf_tc_hook *hook)'),
  bpf_tc_attach: lib.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
  bpf_tc_detach: lib.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)'),
  bpf_tc_query: lib.func('int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),

  ring_buffer__new: lib.func('ring_buffer * ring_buffer__new(int map_fd, ring_buffer_sample_fn *sample_cb, void *ctx, const void *opts)'),
  ring_buffer__poll: lib.func('int ring_buffer__poll(ring_buffer *rb, int timeout_ms)'),
  ring_buffer__consume: lib.func('int ring_buffer__consume(ring_buffer *rb)'),
  ring_buffer__free: lib.func('void ring_buffer__free(ring_buffer *rb)'),
  ring_buffer__epoll_fd: lib.func('int ring_buffer__epoll_fd(const ring_buffer *rb)'),
};

const libc = koffi.load('libc.so.6');
const closeFd = libc.func('int close(int fd)');

/** Close a file descriptor obtained from libbpf (bpf_obj_get, ...). Ignores -1. */
export function closeBpfFd(fd: number): void {
  if (fd >= 0) closeFd(fd);
}

// ---------------------------------------------------------------- constants

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;

export const BPF_TC_INGRESS = 1 << 0;
export const BPF_TC_EGRESS = 1 << 1;
export const BPF_TC_F_REPLACE = 1 << 0;

/** enum bpf_map_type values used here. */
export const MapType = {
  HASH: 1, ARRAY: 2, PROG_ARRAY: 3, PERF_EVENT_ARRAY: 4, PERCPU_HASH: 5, PERCPU_ARRAY: 6,
  LRU_HASH: 9, LRU_PERCPU_HASH: 10, RINGBUF: 27,
} as const;

export function isPerCpuMapType(t: number): boolean {
  return t === MapType.PERCPU_HASH || t === MapType.PERCPU_ARRAY || t === MapType.LRU_PERCPU_HASH;
}

let cpus = -1;
/** Possible CPUs (what per-CPU map values are sized by). */
export function numPossibleCpus(): number {
  if (cpus < 0) cpus = checkRc('libbpf_num_possible_cpus', raw.libbpf_num_possible_cpus());
  return cpus;
}

export function libbpfVersion(): string {
  return `${raw.libbpf_major_version()}.${raw.libbpf_minor_version()}`;
}

// ---------------------------------------------------------------- wrappers

/** Pointer-returning libbpf call: NULL means failure with errno set. */
function checkPtr<T extends bigint>(op: string, p: T | null, detail?: string): T {
  if (p === null || p === 0n) throw new BpfError(op, koffi.errno() || 22 /* EINVAL */, detail);
  return p;
}

export function objectOpenFile(path: string): BpfObjectPtr {
  return checkPtr('bpf_object__open_file', raw.bpf_object__open_file(path, null), path);
}

export function objectLoad(obj: BpfObjectPtr, what: string): void {
  checkRc('bpf_object__load', raw.bpf_object__load(obj), `${what} (libbpf prints the verifier log on stderr)`);
}

export function objectClose(obj: BpfObjectPtr): void {
  raw.bpf_object__close(obj);
}

export function findMap(obj: BpfObjectPtr, name: string): BpfMapPtr {
  const p = raw.bpf_object__find_map_by_name(obj, name) as BpfMapPtr | null;
  if (p === null) throw new BpfError('bpf_object__find_map_by_name', 2 /* ENOENT */, `no map named ${name} in the object`);
  return p;
}

export function findProgram(obj: BpfObjectPtr, name: string): BpfProgramPtr {
  const p = raw.bpf_object__find_program_by_name(obj, name) as BpfProgramPtr | null;
  if (p === null) throw new BpfError('bpf_object__find_program_by_name', 2 /* ENOENT */, `no program named ${name} in the object`);
  return p;
}

/** Size of an internal (.rodata/.data) map's initial value as the object holds it. */
export function mapInitialValueSize(map: BpfMapPtr, what: string): number {
  const size = [0];
  checkPtr('bpf_map__initial_value', raw.bpf_map__initial_value(map, size) as bigint | null, what);
  return Number(size[0]);
}

/** Replace an internal map's initial value before load (its size must be the map's value size). */
export function mapSetInitialValue(map: BpfMapPtr, value: Buffer, what: string): void {
  checkRc('bpf_map__set_initial_value', raw.bpf_map__set_initial_value(map, value, value.length) as number, what);
}

export function objectMaps(obj: BpfObjectPtr): BpfMapPtr[] {
  const out: BpfMapPtr[] = [];
  let m: BpfMapPtr | null = null;
  for (let i = 0; i < 4096; i++) {
    m = raw.bpf_object__next_map(obj, m) as BpfMapPtr | null;
    if (m === null) break;
    out.push(m);
  }
  return out;
}

export function mapUpdate(fd: number, key: Buffer, value: Buffer, flags: bigint = BPF_ANY, what = 'map'): void {
  checkRc('bpf_map_update_elem', raw.bpf_map_update_elem(fd, key, value, flags), what);
}

/** Returns false if the key is absent (ENOENT); throws on any other error. */
export function mapLookup(fd: number, key: Buffer, value: Buffer, what = 'map'): boolean {
  const rc = raw.bpf_map_lookup_elem(fd, key, value) as number;
  if (rc === -2) return false;
  checkRc('bpf_map_lookup_elem', rc, what);
  return true;
}

/** Returns false if the key was absent. */
export function mapDelete(fd: number, key: Buffer, what = 'map'): boolean {
  const rc = raw.bpf_map_delete_elem(fd, key) as number;
  if (rc === -2) return false;
  checkRc('bpf_map_delete_elem', rc, what);
  return true;
}

/** Next key after `key` (null = first); false at the end. */
export function mapNextKey(fd: number, key: Buffer | null, next: Buffer, what = 'map'): boolean {
  const rc = raw.bpf_map_get_next_key(fd, key, next) as number;
  if (rc === -2) return false;
  checkRc('bpf_map_get_next_key', rc, what);
  return true;
}

/**
 * struct bpf_map_batch_opts, encoded once per elem_flags value: building it
 * from a JS object on every call cost ~2 µs (koffi struct conversion), as
 * much as the syscall for a 1-2 entry PIT install.
 */
const batchOptsCache = new Map<bigint, Buffer>();
function batchOpts(elemFlags: bigint): Buffer {
  let b = batchOptsCache.get(elemFlags);
  if (b === undefined) {
    b = Buffer.alloc(koffi.sizeof(MapBatchOpts));
    b.writeBigUInt64LE(BigInt(b.length), koffi.offsetof(MapBatchOpts, 'sz'));
    b.writeBigUInt64LE(elemFlags, koffi.offsetof(MapBatchOpts, 'elem_flags'));
    batchOptsCache.set(elemFlags, b);
  }
  return b;
}
/** In/out element count of the *_batch calls (the kernel writes back how many it processed); one thread, no reentry. */
const batchCount = new Uint32Array(1);

/** Update `count` packed keys/values; returns how many the kernel applied (all, or throws). */
export function mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags: bigint = BPF_ANY, what = 'map'): number {
  batchCount[0] = count;
  const rc = raw.bpf_map_update_batch(fd, keys, values, batchCount, batchOpts(elemFlags)) as number;
  checkRc('bpf_map_update_batch', rc, `${what}: ${batchCount[0]} of ${count} applied`);
  return batchCount[0];
}

export function mapDeleteBatch(fd: number, keys: Buffer, count: number, what = 'map'): number {
  const n = batchCount;
  n[0] = count;
  const rc = raw.bpf_map_delete_batch(fd, keys, n, batchOpts(0n)) as number;
  if (rc === -2) return n[0]; // some keys absent: n[0] were deleted before the first miss
  checkRc('bpf_map_delete_batch', rc, `${what}: ${n[0]} of ${count} deleted`);
  return n[0];
}

/**
 * One step of bpf_map_lookup_batch. `inBatch` null starts; `outBatch`
 * receives the cursor to pass as the next `inBatch` (a u32 bucket index for
 * hash maps; give it max(8, key size) bytes). `done` = the map is exhausted.
 */
export function mapLookupBatch(fd: number, inBatch: Buffer | null, outBatch: Buffer, keys: Buffer, values: Buffer, max: number, what = 'map'): { count: number; done: boolean } {
  const n = batchCount;
  n[0] = max;
  const rc = raw.bpf_map_lookup_batch(fd, inBatch, outBatch, keys, values, n, batchOpts(0n)) as number;
  if (rc === -2) return { count: n[0], done: true };
  checkRc('bpf_map_lookup_batch', rc, what);
  return { count: n[0], done: false };
}

export function objPin(fd: number, path: string): void {
  checkRc('bpf_obj_pin', raw.bpf_obj_pin(fd, path), path);
}

/** fd of a pinned object; throws BpfError ENOENT if absent. Caller closes. */
export function objGet(path: string): number {
  return checkRc('bpf_obj_get', raw.bpf_obj_get(path), path);
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** struct bpf_map_info (uapi), first fields. */
export function mapInfo(fd: number): MapInfo {
  const buf = Buffer.alloc(128);
  const len = [buf.length];
  checkRc('bpf_obj_get_info_by_fd', raw.bpf_obj_get_info_by_fd(fd, buf, len), `map fd ${fd}`);
  const nameRaw = buf.subarray(24, 40);
  const end = nameRaw.indexOf(0);
  return {
    type: buf.readUInt32LE(0), id: buf.readUInt32LE(4), keySize: buf.readUInt32LE(8), valueSize: buf.readUInt32LE(12),
    maxEntries: buf.readUInt32LE(16), flags: buf.readUInt32LE(20), name: nameRaw.subarray(0, end < 0 ? 16 : end).toString('latin1'),
  };
}

/** struct bpf_prog_info (uapi): type, id, tag (offset 8: a hash of the instructions with map references zeroed) and name (offset 64). */
export interface ProgInfo {
  id: number; name: string; type: number; tag: string;
  /** Bytes of the program after verification (dead code removed) and JIT; 0 when the kernel hides them. */
  xlatedLen: number; jitedLen: number;
  /** Instructions the verifier processed (bpf_prog_info.verified_insns, Linux >= 5.16; 0 before). */
  verifiedInsns: number;
}

export function progInfo(fd: number): ProgInfo {
  const buf = Buffer.alloc(256);
  const len = [buf.length];
  checkRc('bpf_obj_get_info_by_fd', raw.bpf_obj_get_info_by_fd(fd, buf, len), `prog fd ${fd}`);
  const nameRaw = buf.subarray(64, 80);
  const end = nameRaw.indexOf(0);
  const got = len[0];
  return {
    type: buf.readUInt32LE(0), id: buf.readUInt32LE(4), tag: buf.subarray(8, 16).toString('hex'), name: nameRaw.subarray(0, end < 0 ? 16 : end).toString('latin1'),
    jitedLen: buf.readUInt32LE(16), xlatedLen: buf.readUInt32LE(20), verifiedInsns: got >= 220 ? buf.readUInt32LE(216) : 0,
  };
}

/** enum bpf_prog_type: the one our programs are. */
export const BPF_PROG_TYPE_SCHED_CLS = 3;

/** What the verifier says when a helper is unknown, or known but not for this program type (old and new kernels). */
const HELPER_REFUSED = /invalid func |unknown func |program of this type cannot use helper /;

/**
 * Does the kernel let a program of `progType` call helper `helperId`? Loads
 * `call helperId; r0 = 0; exit` and reads the verifier log: refused by name
 * (see HELPER_REFUSED) = not offered; loaded, or refused for its (missing)
 * arguments = offered. libbpf's libbpf_probe_bpf_helper() does the same, but
 * 1.1 (Debian 12) knows only the first two messages: on Linux >= 6.3 it
 * reports every helper of another program type as offered (e.g.
 * bpf_override_return for sched_cls). Throws BpfError otherwise (EPERM: not root).
 */
export function probeHelper(progType: number, helperId: number): boolean {
  const insns = Buffer.alloc(24);
  insns.writeUInt8(0x85, 0); // call helperId
  insns.writeInt32LE(helperId, 4);
  insns.writeUInt8(0xb7, 8); // r0 = 0
  insns.writeUInt8(0x95, 16); // exit
  const log = Buffer.alloc(4096);
  const opts = { sz: koffi.sizeof(ProgLoadOpts), attempts: 0, expected_attach_type: 0, prog_btf_fd: 0, prog_flags: 0, prog_ifindex: 0, kern_version: 0,
    attach_btf_id: 0, attach_prog_fd: 0, attach_btf_obj_fd: 0, fd_array: null, func_info: null, func_info_cnt: 0, func_info_rec_size: 0,
    line_info: null, line_info_cnt: 0, line_info_rec_size: 0, log_level: 1, log_size: log.length, log_buf: log };
  const fd = raw.bpf_prog_load(progType, 'gscip_probe', 'GPL', insns, 3, opts) as number;
  if (fd >= 0) { closeBpfFd(fd); return true; }
  const text = log.toString('latin1', 0, Math.max(0, log.indexOf(0)));
  if (HELPER_REFUSED.test(text)) return false;
  if (fd === -1 /* EPERM: not privileged */) checkRc('bpf_prog_load', fd, `probe of helper ${helperId}`);
  return true; // the verifier got past the helper lookup: it exists, it only disliked our arguments
}

export interface TestRunResult {
  retval: number;
  dataOut: Buffer;
  /** Average per repetition, as measured by the kernel. */
  durationNs: number;
  /** skb->mark after the program ran (only when a ctx was passed: `mark` or `ifindex` given). */
  markOut?: number;
}

/** BPF_PROG_TEST_RUN on a TC program with a packet starting at the Ethernet header. */
export interface TestRunOptions {
  repeat?: number;
  dataOutSize?: number;
  /** skb->ifindex seen by the program (the kernel needs a device with that index in the caller's netns; default: loopback). */
  ifindex?: number;
  /** skb->mark seen by the program (e.g. a release mark). */
  mark?: number;
}

/** sizeof(struct __sk_buff) and the offsets BPF_PROG_TEST_RUN accepts as input (uapi, stable). */
const SKB_CTX_SIZE = 192;
const SKB_OFF_MARK = 8;
const SKB_OFF_IFINDEX = 40;

export function progTestRun(progFd: number, data: Buffer, opts: TestRunOptions = {}): TestRunResult {
  let ctx: Buffer | null = null;
  if (opts.ifindex !== undefined || opts.mark !== undefined) {
    ctx = Buffer.alloc(SKB_CTX_SIZE);
    ctx.writeUInt32LE(opts.mark ?? 0, SKB_OFF_MARK);
    ctx.writeUInt32LE(opts.ifindex ?? 0, SKB_OFF_IFINDEX);
  }
  const ctxOut = ctx ? Buffer.alloc(SKB_CTX_SIZE) : null;
  const out = Buffer.alloc(opts.dataOutSize ?? Math.max(data.length + 512, 256));
  const o: Record<string, unknown> = {
    sz: koffi.sizeof(TestRunOpts),
    data_in: data, data_out: out, data_size_in: data.length, data_size_out: out.length,
    ctx_in: ctx, ctx_out: ctxOut, ctx_size_in: ctx?.length ?? 0, ctx_size_out: ctxOut?.length ?? 0,
    retval: 0, repeat: opts.repeat ?? 1, duration: 0, flags: 0, cpu: 0, batch_size: 0,
  };
  checkRc('bpf_prog_test_run_opts', raw.bpf_prog_test_run_opts(progFd, o), `prog fd ${progFd}, ${data.length} bytes`);
  const r: TestRunResult = { retval: o.retval as number, dataOut: out.subarray(0, o.data_size_out as number), durationNs: o.duration as number };
  if (ctxOut) r.markOut = ctxOut.readUInt32LE(SKB_OFF_MARK);
  return r;
}

// ---------------------------------------------------------------- TC

export type TcDir = 'ingress' | 'egress';

function tcHook(ifindex: number, dir: TcDir): Record<string, unknown> {
  return { sz: koffi.sizeof(TcHook), ifindex, attach_point: dir === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS, parent: 0 };
}

function tcOpts(o: { progFd?: number; flags?: number; handle?: number; priority?: number }): Record<string, unknown> {
  return { sz: koffi.sizeof(TcOpts), prog_fd: o.progFd ?? 0, flags: o.flags ?? 0, prog_id: 0, handle: o.handle ?? 0, priority: o.priority ?? 0 };
}

/** Create the clsact qdisc on ifindex; true if created, false if it already existed. */
export function tcHookCreate(ifindex: number): boolean {
  const rc = raw.bpf_tc_hook_create(tcHook(ifindex, 'ingress')) as number;
  if (rc === -17 /* EEXIST */) return false;
  checkRc('bpf_tc_hook_create', rc, `ifindex ${ifindex}`);
  return true;
}

/** Remove the clsact qdisc (and every filter on it, ours or not). */
export function tcHookDestroy(ifindex: number): void {
  const h = tcHook(ifindex, 'ingress');
  h.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
  const rc = raw.bpf_tc_hook_destroy(h) as number;
  if (rc === -2 || rc === -22) return; // already gone / no clsact
  checkRc('bpf_tc_hook_destroy', rc, `ifindex ${ifindex}`);
}

export interface TcFilterId { handle: number; priority: number }

/** Attach (or with replace, replace our filter at handle/priority) a BPF classifier in direct-action mode. */
export function tcAttach(ifindex: number, dir: TcDir, progFd: number, id: TcFilterId, replace: boolean): { progId: number } {
  const o = tcOpts({ progFd, flags: replace ? BPF_TC_F_REPLACE : 0, handle: id.handle, priority: id.priority });
  checkRc('bpf_tc_attach', raw.bpf_tc_attach(tcHook(ifindex, dir), o), `ifindex ${ifindex} ${dir} handle ${id.handle} prio ${id.priority}`);
  return { progId: o.prog_id as number };
}

/** Returns false if no such filter. */
export function tcDetach(ifindex: number, dir: TcDir, id: TcFilterId): boolean {
  const rc = raw.bpf_tc_detach(tcHook(ifindex, dir), tcOpts({ handle: id.handle, priority: id.priority })) as number;
  if (rc === -2 || rc === -22) return false;
  checkRc('bpf_tc_detach', rc, `ifindex ${ifindex} ${dir}`);
  return true;
}

/** prog id of the filter at handle/priority, or null if none. */
export function tcQuery(ifindex: number, dir: TcDir, id: TcFilterId): number | null {
  const o = tcOpts({ handle: id.handle, priority: id.priority });
  const rc = raw.bpf_tc_query(tcHook(ifindex, dir), o) as number;
  if (rc === -2 || rc === -22) return null; // no filter / no clsact qdisc
  checkRc('bpf_tc_query', rc, `ifindex ${ifindex} ${dir}`);
  return o.prog_id as number;
}

// ---------------------------------------------------------------- ring buffer

/**
 * Synchronous ring-buffer consumer: `onRecord` is called from inside poll()
 * on the calling thread with a COPY of each record (or a borrowed view). Use for
 * blocking polls on a worker thread, or with timeout 0 / after the epoll fd
 * reported records (controlplane/bpf/ring-reader.ts).
 */
export class RingBuffer {
  private rb: RingBufferPtr | null;
  private readonly cb: bigint;

  /**
   * `borrow`: hand `onRecord` a view straight into the ring instead of a copy;
   * the view is valid only until onRecord returns (decode or copy it there).
   */
  constructor(mapFd: number, onRecord: (rec: Buffer) => void, opts: { borrow?: boolean } = {}) {
    const borrow = opts.borrow === true;
    this.cb = koffi.register((_ctx: unknown, data: bigint, size: number | bigint) => {
      try {
        const n = Number(size);
        if (borrow) { onRecord(Buffer.from(koffi.view(data, n), 0, n)); return 0; }
        // Copy out of the ring (the slot is reused once we return); an own
        // ArrayBuffer per record so it can be transferred to another thread.
        const copy = Buffer.allocUnsafeSlow(n);
        copy.set(new Uint8Array(koffi.view(data, n)));
        onRecord(copy);
      } catch {
        return 0; // one bad record must not stop the consumer; the handler logs
      }
      return 0;
    }, koffi.pointer(RingBufferSampleFn));
    const rb = raw.ring_buffer__new(mapFd, this.cb, null, null) as RingBufferPtr | null;
    if (rb === null) {
      koffi.unregister(this.cb);
      throw new BpfError('ring_buffer__new', koffi.errno() || 22, `map fd ${mapFd}`);
    }
    this.rb = rb;
  }

  /** Wait up to timeoutMs for records; returns how many were consumed (EINTR counts as 0). */
  poll(timeoutMs: number): number {
    if (this.rb === null) throw new Error('ring buffer closed');
    const rc = raw.ring_buffer__poll(this.rb, timeoutMs) as number;
    if (rc === -4 /* EINTR */) return 0;
    return checkRc('ring_buffer__poll', rc);
  }

  /** epoll fd that becomes readable when records are waiting (level-triggered). */
  epollFd(): number {
    if (this.rb === null) throw new Error('ring buffer closed');
    return checkRc('ring_buffer__epoll_fd', raw.ring_buffer__epoll_fd(this.rb) as number);
  }

  /** Consume whatever is there without waiting. */
  consume(): number {
    if (this.rb === null) throw new Error('ring buffer closed');
    return checkRc('ring_buffer__consume', raw.ring_buffer__consume(this.rb) as number);
  }

  close(): void {
    if (this.rb === null) return;
    raw.ring_buffer__free(this.rb);
    this.rb = null;
    koffi.unregister(this.cb);
  }
}

// ---------------------------------------------------------------- libbpf's own messages

const LibbpfPrintFn = koffi.proto('int libbpf_print_fn_t(int level, const char *fmt, void *args)');
const libbpfSetPrint = lib.func('void * libbpf_set_print(libbpf_print_fn_t *fn)');
const vsnprintf = koffi.load('libc.so.6').func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *ap)');
let printCb: bigint | null = null;

export type LibbpfLevel = 'warn' | 'info' | 'debug';

/**
 * Route libbpf's messages (verifier log, kernel netlink errors) to `sink`
 * instead of raw stderr. x86-64 only (va_list is a pointer there); elsewhere
 * libbpf keeps printing to stderr. Call once, from the main thread.
 */
export function routeLibbpfMessages(sink: (level: LibbpfLevel, msg: string) => void): boolean {
  if (process.arch !== 'x64' || printCb !== null) return false;
  const buf = Buffer.alloc(64 * 1024);
  printCb = koffi.register((level: number, fmt: string, args: bigint) => {
    try {
      const n = vsnprintf(buf, buf.length, fmt, args) as number;
      const msg = buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString('utf8').trimEnd();
      if (msg) sink(level === 0 ? 'warn' : level === 1 ? 'info' : 'debug', msg);
    } catch { /* never throw into C */ }
    return 0;
  }, koffi.pointer(LibbpfPrintFn));
  libbpfSetPrint(printCb);
  return true;
}
