/**
 * Load the fast path with pinned maps (adopting what a previous agent left),
 * attach it to TC clsact ingress+egress of the protected interfaces, and
 * detach it again. Kernel-facing and thin; policy lives in agent.ts.
 */
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { BpfError } from '../bpf/errors.js';
import { GscipError } from '../errors/catalogue.js';
import { execFileSync } from 'node:child_process';
import { ifIndexToName, ifNameToIndex } from '../bpf/libc.js';
import { closeBpfFd, mapInfo, objectClose, objectMaps, objectOpenFile, objGet, progInfo, raw, tcAttach, tcDetach, tcHookCreate, tcHookDestroy, tcQuery } from '../bpf/libbpf.js';
import { BpfObject } from '../bpf/object.js';
import { IFACE_F_PROTECTED, IPV6_POLICY_BY_NAME } from '../maps/abi.js';
import { MISS_ACTIONS, type DirName, type MissActionName } from '../maps/vocabulary.js';
import { gscipMapsFromFds, LEGACY_MAP_NAMES, MAP_NAMES, PROG_NAMES, SCRATCH_MAP_NAMES, type GscipMaps } from '../maps/gscip-maps.js';
import type { Ipv6PolicyConfig } from '../config/agent-config.js';
import { TC_FILTER } from './instance.js';
import { bpffsAbsence, mkdirOnBpffs, type BpffsLog } from '../bpf/bpffs.js';
import { DEFAULT_STAGES, stageInitialValues, type StageSwitches } from '../maps/stages.js';

export interface LoadedDatapath {
  obj: BpfObject;
  maps: GscipMaps;
  /** Map names whose pins existed before this load (their state was adopted). */
  adopted: string[];
}

/**
 * Scratch maps (SCRATCH_MAP_NAMES: no state) whose pin no longer fits this
 * build's definition (type, key/value size, max entries) are unpinned before
 * load, so libbpf creates and pins this build's; a program of the previous
 * build keeps its own map until it is replaced. Everything else with a
 * changed layout still refuses the load (GSCIP_E_PINNED_LAYOUT_MISMATCH).
 */
function replaceScratchPins(objPath: string, pinDir: string, log?: BpffsLog): void {
  const stale = SCRATCH_MAP_NAMES.size ? [...SCRATCH_MAP_NAMES].filter((n) => existsSync(`${pinDir}/${n}`)) : [];
  if (!stale.length) return;
  const obj = objectOpenFile(objPath);
  try {
    for (const m of objectMaps(obj)) {
      const name = raw.bpf_map__name(m) as string;
      if (!stale.includes(name)) continue;
      const fd = objGet(`${pinDir}/${name}`);
      let same: boolean;
      try {
        const i = mapInfo(fd);
        same = i.type === (raw.bpf_map__type(m) as number) && i.keySize === (raw.bpf_map__key_size(m) as number)
          && i.valueSize === (raw.bpf_map__value_size(m) as number) && i.maxEntries === (raw.bpf_map__max_entries(m) as number);
      } finally { closeBpfFd(fd); }
      if (same) continue;
      unlinkSync(`${pinDir}/${name}`);
      log?.info?.({ pin: `${pinDir}/${name}` }, 'replaced a scratch map pin of another layout (it holds no state)');
    }
  } finally { objectClose(obj); }
}

/** Open + load with every map pinned in pinDir; existing pins are reused. stages: what the programs contain (default every stage). */
export function loadPinned(objPath: string, pinDir: string, maxEntries: Record<string, number>, log?: BpffsLog,
  stages: StageSwitches = DEFAULT_STAGES): LoadedDatapath {
  if (!existsSync(objPath)) throw new GscipError('GSCIP_E_BPF_OBJECT_MISSING', `BPF object ${objPath} not found (make bpf)`);
  mkdirOnBpffs(pinDir, 0o700, log);
  replaceScratchPins(objPath, pinDir, log);
  const adopted = Object.values(MAP_NAMES).filter((n) => existsSync(`${pinDir}/${n}`));
  let obj: BpfObject;
  try {
    obj = BpfObject.load(objPath, { pinDir, maxEntries, initialValues: stageInitialValues(stages) });
  } catch (e) {
    if (adopted.length && e instanceof BpfError && e.code === 'EINVAL') {
      throw new GscipError('GSCIP_E_PINNED_LAYOUT_MISMATCH', `${e.message}: the maps pinned in ${pinDir} do not match this BPF object (ABI or size changed). ` +
        'Start over with `gscip agent detach --unpin` (loses PIT/XLAT/keys), or run the matching build.', { cause: e });
    }
    throw e;
  }
  try {
    return { obj, maps: gscipMapsFromFds((n) => obj.mapFd(n), false), adopted };
  } catch (e) { obj.close(); throw e; }
}

export interface AttachRequest { name: string; miss: { ingress: MissActionName; egress: MissActionName }; ipv6: Ipv6PolicyConfig }
export interface Attached {
  name: string;
  ifindex: number;
  createdHook: boolean;
  /** Our filter was already there (a previous agent's) and was replaced. */
  replaced: boolean;
  progIds: { ingress: number; egress: number };
  /** The IPv6 policy written into gscip_iface. */
  ipv6: Ipv6PolicyConfig;
}

/** Does the interface have a clsact qdisc? (Asking tc about filters without one makes the kernel log an error.) */
export function hasClsact(ifindex: number): boolean {
  const name = ifIndexToName(ifindex);
  if (!name) return false;
  try {
    return execFileSync('tc', ['qdisc', 'show', 'dev', name], { encoding: 'utf8', timeout: 5000 }).includes('clsact');
  } catch { return false; }
}

/**
 * Configure then attach (configure first: an attached but unconfigured
 * interface drops its misses). Replaces our own filter if present.
 */
export function attachInterface(dp: LoadedDatapath, req: AttachRequest): Attached {
  const ifindex = ifNameToIndex(req.name);
  dp.maps.iface.set(ifindex, { miss_action: [MISS_ACTIONS.code(req.miss.ingress), MISS_ACTIONS.code(req.miss.egress)], flags: IFACE_F_PROTECTED, ipv6_policy: IPV6_POLICY_BY_NAME[req.ipv6] });
  // Create clsact only if absent (asking the kernel to create an existing one logs an error).
  const createdHook = hasClsact(ifindex) ? false : tcHookCreate(ifindex);
  const replaced = !createdHook && tcQuery(ifindex, 'ingress', TC_FILTER) !== null;
  const ingress = tcAttach(ifindex, 'ingress', dp.obj.progFd(PROG_NAMES.ingress), TC_FILTER, true);
  const egress = tcAttach(ifindex, 'egress', dp.obj.progFd(PROG_NAMES.egress), TC_FILTER, true);
  return { name: req.name, ifindex, createdHook, replaced, progIds: { ingress: ingress.progId, egress: egress.progId }, ipv6: req.ipv6 };
}

/** Remove our filters (and the clsact qdisc if we created it). Missing filters are not an error. */
export function detachInterface(ifindex: number, destroyHook: boolean): void {
  tcDetach(ifindex, 'ingress', TC_FILTER);
  tcDetach(ifindex, 'egress', TC_FILTER);
  if (destroyHook) tcHookDestroy(ifindex);
}

/** Program attached at our filter slot, by direction (null = none). Names come from the kernel. */
export function attachedPrograms(ifindex: number): { ingress: { id: number } | null; egress: { id: number } | null } {
  const q = (d: DirName): { id: number } | null => {
    const id = tcQuery(ifindex, d, TC_FILTER);
    return id === null ? null : { id };
  };
  return { ingress: q('ingress'), egress: q('egress') };
}

export { progInfo };

/** Remove every pin of an instance (the kernel frees the maps once nothing else holds them). */
export function unpinAll(pinDir: string): string[] {
  if (!existsSync(pinDir)) return [];
  const gone: string[] = [];
  for (const f of readdirSync(pinDir)) {
    unlinkSync(`${pinDir}/${f}`);
    gone.push(f);
  }
  rmdirSync(pinDir);
  return gone;
}

/** The instance's maps from their pins (CLI, status): fds owned by the bundle. */
export function openPinnedMaps(pinDir: string): GscipMaps {
  const absent = bpffsAbsence(pinDir);
  if (absent) throw new GscipError('GSCIP_E_NO_PINNED_MAPS', `no pinned maps in ${pinDir}: ${absent}`);
  if (!existsSync(`${pinDir}/${MAP_NAMES.pit}`)) {
    throw new GscipError('GSCIP_E_NO_PINNED_MAPS', `no pinned maps in ${pinDir}: is the instance name right, and has an agent run (gscip agent run)?`);
  }
  if (!existsSync(`${pinDir}/${MAP_NAMES.stats}`) && existsSync(`${pinDir}/${LEGACY_MAP_NAMES.stats}`)) {
    throw new Error(`the maps pinned in ${pinDir} are of the previous layout (${LEGACY_MAP_NAMES.stats}, no ${MAP_NAMES.stats}): ` +
      'start the agent of this build on the instance, it migrates them in place (flows kept), or use the previous build\'s gscip');
  }
  const fds: number[] = [];
  try {
    return gscipMapsFromFds((n) => { const fd = objGet(`${pinDir}/${n}`); fds.push(fd); return fd; }, true);
  } catch (e) {
    for (const fd of fds) closeBpfFd(fd);
    throw e;
  }
}
