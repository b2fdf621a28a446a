/**
 * Typed access to one BPF map: keys and values go through codecs (which
 * mirror gscip_abi.h), errors carry op + errno + map name. A codec whose size
 * differs from the kernel's key/value size is refused at construction, so a
 * layout drift fails loudly instead of corrupting entries.
 */
import type { Codec } from './codec.js';
import { BpfError } from './errors.js';
import {
  BPF_ANY, BPF_EXIST, BPF_NOEXIST, MapType, closeBpfFd, isPerCpuMapType, mapDelete, mapDeleteBatch, mapInfo, mapLookup,
  mapLookupBatch, mapNextKey, mapUpdate, mapUpdateBatch, numPossibleCpus, objGet, type MapInfo,
} from './libbpf.js';

export type UpdateMode = 'any' | 'noexist' | 'exist';
const MODE: Record<UpdateMode, bigint> = { any: BPF_ANY, noexist: BPF_NOEXIST, exist: BPF_EXIST };

/** Batch size for *_batch calls: big enough to amortise the syscall, small enough to keep buffers modest. */
export const BATCH_CHUNK = 8192;

abstract class MapBase<K> {
  readonly info: MapInfo;
  private closed = false;

  constructor(readonly name: string, readonly fd: number, readonly keyCodec: Codec<K>, protected readonly ownsFd: boolean) {
    this.info = mapInfo(fd);
    if (this.info.keySize !== keyCodec.size) {
      throw new Error(`map ${name}: key codec is ${keyCodec.size} bytes but the kernel map key is ${this.info.keySize} (ABI drift: rebuild and run test/bpf/btf-layout.test.ts)`);
    }
  }

  get maxEntries(): number { return this.info.maxEntries; }
  get type(): number { return this.info.type; }

  protected encKey(k: K): Buffer {
    try { return this.keyCodec.encode(k); } catch (e) { throw new RangeError(`map ${this.name} key: ${(e as Error).message}`); }
  }

  delete(k: K): boolean { return mapDelete(this.fd, this.encKey(k), this.name); }

  /** Delete many keys with bpf_map_delete_batch; returns how many were deleted. Stops at the first absent key of a chunk. */
  deleteBatch(keys: readonly K[]): number {
    let done = 0;
    for (let i = 0; i < keys.length; i += BATCH_CHUNK) {
      const chunk = keys.slice(i, i + BATCH_CHUNK);
      const kb = Buffer.alloc(chunk.length * this.keyCodec.size);
      chunk.forEach((k, j) => this.keyCodec.encode(k, kb, j * this.keyCodec.size));
      done += mapDeleteBatch(this.fd, kb, chunk.length, this.name);
    }
    return done;
  }

  /** Every key, via get_next_key (bounded by max_entries + 1 steps). */
  *keys(): Generator<K> {
    if (this.info.type === MapType.ARRAY || this.info.type === MapType.PERCPU_ARRAY) {
      for (let i = 0; i < this.info.maxEntries; i++) {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(i);
        yield this.keyCodec.decode(b);
      }
      return;
    }
    let cur: Buffer | null = null;
    for (let i = 0; i <= this.info.maxEntries; i++) {
      const next = Buffer.alloc(this.keyCodec.size);
      if (!mapNextKey(this.fd, cur, next, this.name)) return;
      yield this.keyCodec.decode(next);
      cur = next;
    }
  }

  /** Number of entries: O(n), via bpf_map_lookup_batch (4096 per syscall) when the map supports it. */
  count(): number {
    if (this.info.type === MapType.ARRAY || this.info.type === MapType.PERCPU_ARRAY) return this.info.maxEntries;
    if (this.info.type === MapType.HASH || this.info.type === MapType.LRU_HASH) {
      const n = this.countBatched();
      if (n !== null) return n;
    }
    let n = 0;
    let cur: Buffer | null = null;
    const next = Buffer.alloc(this.keyCodec.size);
    const spare = Buffer.alloc(this.keyCodec.size);
    for (let i = 0; i <= this.info.maxEntries; i++) {
      const dst: Buffer = cur === next ? spare : next;
      if (!mapNextKey(this.fd, cur, dst, this.name)) break;
      cur = dst;
      n++;
    }
    return n;
  }

  private countBatched(): number | null {
    let total = 0;
    return this.lookupBatched((_k, _v, count) => { total += count; }) ? total : null;
  }

  /**
   * Walks the map with BPF_MAP_LOOKUP_BATCH, 4096 entries per call, handing every chunk
   * (fresh key and value buffers: decoded values may keep views into them) to onChunk.
   * False when the kernel refuses batch lookups for this map (the first call fails with
   * EINVAL/ENOTSUP/EOPNOTSUPP): the caller falls back to get_next_key.
   */
  protected lookupBatched(onChunk: (keys: Buffer, values: Buffer, count: number) => void): boolean {
    const chunk = 4096;
    const ks = this.keyCodec.size;
    const vs = this.info.valueSize;
    let inBatch: Buffer | null = null;
    for (let guard = 0; guard <= Math.ceil(this.info.maxEntries / chunk) + 1; guard++) {
      const outBatch = Buffer.alloc(Math.max(8, ks));
      const kb = Buffer.alloc(chunk * ks);
      const vb = Buffer.alloc(chunk * vs);
      let r: { count: number; done: boolean };
      try {
        r = mapLookupBatch(this.fd, inBatch, outBatch, kb, vb, chunk, this.name);
      } catch (e) {
        if (e instanceof BpfError && (e.code === 'EINVAL' || e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP') && guard === 0) return false;
        throw e;
      }
      onChunk(kb, vb, r.count);
      if (r.done) return true;
      inBatch = outBatch;
    }
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsFd) closeBpfFd(this.fd);
  }
}

/** A map with one value per key (hash, array, LRU hash). */
export class BpfMap<K, V> extends MapBase<K> {
  constructor(name: string, fd: number, keyCodec: Codec<K>, readonly valueCodec: Codec<V>, ownsFd = false) {
    super(name, fd, keyCodec, ownsFd);
    if (isPerCpuMapType(this.info.type)) throw new Error(`map ${name} is per-CPU: use PerCpuBpfMap`);
    if (this.info.valueSize !== valueCodec.size) {
      throw new Error(`map ${name}: value codec is ${valueCodec.size} bytes but the kernel map value is ${this.info.valueSize} (ABI drift)`);
    }
  }

  /** Open a pinned map (e.g. /sys/fs/bpf/gscip/<instance>/gscip_pit); the map owns its fd. */
  static fromPin<K, V>(path: string, keyCodec: Codec<K>, valueCodec: Codec<V>): BpfMap<K, V> {
    const fd = objGet(path);
    try {
      return new BpfMap(path.split('/').pop() ?? path, fd, keyCodec, valueCodec, true);
    } catch (e) { closeBpfFd(fd); throw e; }
  }

  get(k: K): V | undefined {
    const v = Buffer.alloc(this.valueCodec.size);
    return mapLookup(this.fd, this.encKey(k), v, this.name) ? this.valueCodec.decode(v) : undefined;
  }

  has(k: K): boolean { return mapLookup(this.fd, this.encKey(k), Buffer.alloc(this.valueCodec.size), this.name); }

  set(k: K, v: V, mode: UpdateMode = 'any'): void {
    const kb = this.encKey(k);
    let vb: Buffer;
    try { vb = this.valueCodec.encode(v); } catch (e) { throw new RangeError(`map ${this.name} value: ${(e as Error).message}`); }
    mapUpdate(this.fd, kb, vb, MODE[mode], this.name);
  }

  /** Insert/update many entries with bpf_map_update_batch, in chunks. Returns the count applied. */
  setBatch(entries: ReadonlyArray<readonly [K, V]>, mode: UpdateMode = 'any'): number {
    const ks = this.keyCodec.size;
    const vs = this.valueCodec.size;
    let done = 0;
    for (let i = 0; i < entries.length; i += BATCH_CHUNK) {
      const n = Math.min(BATCH_CHUNK, entries.length - i);
      const kb = Buffer.alloc(n * ks);
      const vb = Buffer.alloc(n * vs);
      for (let j = 0; j < n; j++) {
        const [k, v] = entries[i + j];
        try {
          this.keyCodec.encode(k, kb, j * ks);
          this.valueCodec.encode(v, vb, j * vs);
        } catch (e) { throw new RangeError(`map ${this.name} entry ${i + j}: ${(e as Error).message}`); }
      }
      done += this.updatePacked(kb, vb, n, mode);
    }
    return done;
  }

  /**
   * The kernel's generic batch update accepts no elem_flags but BPF_F_LOCK
   * (EINVAL otherwise), so 'noexist'/'exist' go element by element.
   */
  private updatePacked(kb: Buffer, vb: Buffer, n: number, mode: UpdateMode): number {
    if (mode === 'any') return mapUpdateBatch(this.fd, kb, vb, n, BPF_ANY, this.name);
    const ks = this.keyCodec.size;
    const vs = this.valueCodec.size;
    for (let j = 0; j < n; j++) mapUpdate(this.fd, kb.subarray(j * ks, (j + 1) * ks), vb.subarray(j * vs, (j + 1) * vs), MODE[mode], `${this.name}: entry ${j}`);
    return n;
  }

  /** Same as setBatch but from pre-encoded packed buffers (benchmarks, bulk loads). */
  setBatchRaw(keys: Buffer, values: Buffer, count: number, mode: UpdateMode = 'any'): number {
    if (keys.length < count * this.keyCodec.size || values.length < count * this.valueCodec.size) {
      throw new RangeError(`map ${this.name}: packed buffers too small for ${count} entries`);
    }
    return this.updatePacked(keys, values, count, mode);
  }

  /** Every entry. Uses bpf_map_lookup_batch when the map supports it, else get_next_key + lookup. */
  *entries(): Generator<[K, V]> {
    if (this.info.type === MapType.HASH || this.info.type === MapType.LRU_HASH) {
      const batched = this.entriesBatched();
      if (batched) { yield* batched; return; }
    }
    for (const k of this.keys()) {
      const v = this.get(k);
      if (v !== undefined) yield [k, v];
    }
  }

  private entriesBatched(): Array<[K, V]> | null {
    const ks = this.keyCodec.size;
    const vs = this.valueCodec.size;
    const out: Array<[K, V]> = [];
    const ok = this.lookupBatched((kb, vb, count) => {
      for (let j = 0; j < count; j++) out.push([this.keyCodec.decode(kb, j * ks), this.valueCodec.decode(vb, j * vs)]);
    });
    return ok ? out : null;
  }
}

/** A per-CPU map: one value per possible CPU for each key. */
export class PerCpuBpfMap<K, V> extends MapBase<K> {
  readonly cpus: number;
  private readonly stride: number;

  constructor(name: string, fd: number, keyCodec: Codec<K>, readonly valueCodec: Codec<V>, ownsFd = false) {
    super(name, fd, keyCodec, ownsFd);
    if (!isPerCpuMapType(this.info.type)) throw new Error(`map ${name} is not per-CPU: use BpfMap`);
    if (this.info.valueSize !== valueCodec.size) {
      throw new Error(`map ${name}: value codec is ${valueCodec.size} bytes but the kernel map value is ${this.info.valueSize} (ABI drift)`);
    }
    this.cpus = numPossibleCpus();
    this.stride = Math.ceil(valueCodec.size / 8) * 8;
  }

  static fromPin<K, V>(path: string, keyCodec: Codec<K>, valueCodec: Codec<V>): PerCpuBpfMap<K, V> {
    const fd = objGet(path);
    try {
      return new PerCpuBpfMap(path.split('/').pop() ?? path, fd, keyCodec, valueCodec, true);
    } catch (e) { closeBpfFd(fd); throw e; }
  }

  /** One value per possible CPU, or undefined if absent. */
  get(k: K): V[] | undefined {
    const b = Buffer.alloc(this.stride * this.cpus);
    if (!mapLookup(this.fd, this.encKey(k), b, this.name)) return undefined;
    return Array.from({ length: this.cpus }, (_, i) => this.valueCodec.decode(b, i * this.stride));
  }

  /** Set every CPU's value (one value for all, or one per CPU). */
  set(k: K, v: V | V[], mode: UpdateMode = 'any'): void {
    const b = Buffer.alloc(this.stride * this.cpus);
    for (let i = 0; i < this.cpus; i++) {
      const x = Array.isArray(v) ? v[i] : v;
      try { this.valueCodec.encode(x, b, i * this.stride); } catch (e) { throw new RangeError(`map ${this.name} value[cpu ${i}]: ${(e as Error).message}`); }
    }
    mapUpdate(this.fd, this.encKey(k), b, MODE[mode], this.name);
  }

  *entries(): Generator<[K, V[]]> {
    for (const k of this.keys()) {
      const v = this.get(k);
      if (v !== undefined) yield [k, v];
    }
  }
}
