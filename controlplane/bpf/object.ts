/**
 * One loaded BPF object file: open, optional pinning / resizing, load, and
 * access to its maps and programs by name. Used by the agent's loader (with
 * pins) and by tests (without).
 */
import {
  findMap, findProgram, mapInitialValueSize, mapSetInitialValue, objectClose, objectLoad, objectMaps, objectOpenFile, progTestRun, raw,
  type BpfMapPtr, type BpfObjectPtr, type TestRunOptions, type TestRunResult,
} from './libbpf.js';
import { BpfError, checkRc } from './errors.js';

export interface OpenOptions {
  /** Pin every map at <pinDir>/<map name>; maps already pinned there are reused (state adopted). */
  pinDir?: string;
  /** Override max_entries per map name (before load). */
  maxEntries?: Record<string, number>;
  /**
   * Load-time settings: replace the initial value of internal maps
   * (`.rodata.<name>` sections of `const volatile` globals) by section name,
   * before load. Each buffer must be the map's value size; a missing section
   * fails. GSCIP's stage switches: controlplane/maps/stages.ts.
   */
  initialValues?: Record<string, Buffer>;
}

/** Replace the initial value of the opened (not yet loaded) object's internal map for section sec. */
function setInitialValue(obj: BpfObjectPtr, path: string, sec: string, value: Buffer): void {
  const m = raw.bpf_object__find_map_by_name(obj, sec) as BpfMapPtr | null;
  if (m === null) throw new BpfError('bpf_object__find_map_by_name', 2 /* ENOENT */, `${path} has no section ${sec} (an older build?)`);
  const size = mapInitialValueSize(m, sec);
  if (size !== value.length) throw new BpfError('bpf_map__set_initial_value', 22 /* EINVAL */, `${path}: ${sec} is ${size} bytes, the value given is ${value.length}`);
  mapSetInitialValue(m, value, sec);
}

export class BpfObject {
  private obj: BpfObjectPtr | null;

  private constructor(readonly path: string, obj: BpfObjectPtr) { this.obj = obj; }

  /** Open and load. With pinDir, libbpf reuses compatible pinned maps and pins new ones. */
  static load(path: string, opts: OpenOptions = {}): BpfObject {
    const obj = objectOpenFile(path);
    const self = new BpfObject(path, obj);
    try {
      for (const m of objectMaps(obj)) {
        const name = raw.bpf_map__name(m) as string;
        // .rodata/.bss and friends are internal: never pinned (they would collide across objects).
        if (name.startsWith('.') || name.includes('.')) continue;
        const want = opts.maxEntries?.[name];
        if (want !== undefined) checkRc('bpf_map__set_max_entries', raw.bpf_map__set_max_entries(m, want) as number, name);
        if (opts.pinDir) checkRc('bpf_map__set_pin_path', raw.bpf_map__set_pin_path(m, `${opts.pinDir}/${name}`) as number, name);
      }
      for (const [sec, value] of Object.entries(opts.initialValues ?? {})) setInitialValue(obj, path, sec, value);
      objectLoad(obj, path);
    } catch (e) {
      self.close();
      throw e;
    }
    return self;
  }

  private handle(): BpfObjectPtr {
    if (this.obj === null) throw new Error(`BPF object ${this.path} is closed`);
    return this.obj;
  }

  mapPtr(name: string): BpfMapPtr { return findMap(this.handle(), name); }

  /** fd of a map (owned by the object: valid until close()). */
  mapFd(name: string): number {
    return checkRc('bpf_map__fd', raw.bpf_map__fd(this.mapPtr(name)) as number, name);
  }

  mapNames(): string[] {
    return objectMaps(this.handle()).map((m) => raw.bpf_map__name(m) as string);
  }

  /** Was this map's pin reused (adopted) rather than created? Only meaningful with pinDir. */
  mapPinPath(name: string): string | null {
    return (raw.bpf_map__pin_path(this.mapPtr(name)) as string | null) ?? null;
  }

  /** fd of a program (owned by the object). */
  progFd(name: string): number {
    return checkRc('bpf_program__fd', raw.bpf_program__fd(findProgram(this.handle(), name)) as number, name);
  }

  testRun(progName: string, packet: Buffer, opts: TestRunOptions = {}): TestRunResult {
    return progTestRun(this.progFd(progName), packet, opts);
  }

  /** Unpin every pinned map of this object (maps in the kernel live on while fds/programs hold them). */
  unpinMaps(): void {
    for (const m of objectMaps(this.handle())) {
      const p = raw.bpf_map__pin_path(m) as string | null;
      if (p && raw.bpf_map__is_pinned(m)) checkRc('bpf_map__unpin', raw.bpf_map__unpin(m, null) as number, p);
    }
  }

  close(): void {
    if (this.obj === null) return;
    objectClose(this.obj);
    this.obj = null;
  }
}
