/**
 * The GSCIP maps as typed BpfMaps: one bundle, built either from a loaded
 * object (fds owned by the object) or from the pins of an instance.
 */
import { BpfMap, PerCpuBpfMap } from '../bpf/bpf-map.js';
import { closeBpfFd } from '../bpf/libbpf.js';
import {
  cidCodec, flowKeyValCodec, ftpSeqValCodec, globalCfgCodec, ifaceCfgCodec, keyIdCodec, keyValCodec, natCfgCodec, natPortKeyCodec, natValCodec, pitValCodec, statValCodec, u32Codec, xlatValCodec,
  type Cid, type FlowKeyVal, type FtpSeqVal, type GlobalCfg, type IfaceCfg, type KeyId, type KeyVal, type NatCfg, type NatPortKey, type NatVal, type PitVal, type StatVal, type XlatVal,
} from './codecs.js';

export const MAP_NAMES = {
  pit: 'gscip_pit',
  xlat: 'gscip_xlat',
  keys: 'gscip_keys',
  /** PIT CID -> per-flow key (PCCOM); a build before per-flow keys has no such pin, and the loader creates it */
  flowKeys: 'gscip_flow_keys',
  /** GSRA's FTP sequence deltas (bpf/lib/ftp.h); added after the FTP stage */
  ftpSeq: 'gscip_ftp_seq',
  iface: 'gscip_iface',
  cfg: 'gscip_cfg',
  /** (reason, direction) counters; replaced gscip_stats (LEGACY_MAP_NAMES), which had no direction */
  stats: 'gscip_counters',
  punt: 'gscip_punt',
} as const;

/** The GNAT's NAT maps (bpf/lib/nat.h): in every object, used only by a load with the NAT stage. */
export const NAT_MAP_NAMES = {
  sessions: 'gscip_nat',
  ports: 'gscip_nat_port',
  cfg: 'gscip_nat_cfg',
} as const;


export interface NatMaps {
  /** inside-view CID (dir egress) -> session */
  sessions: BpfMap<Cid, NatVal>;
  /** (proto, external port) -> the session's CID */
  ports: BpfMap<NatPortKey, Cid>;
  /** index 0 -> NAT config */
  cfg: BpfMap<number, NatCfg>;
}

/**
 * Pinned maps that hold no state worth keeping: per-CPU scratch space a
 * program fills and reads within one packet (PCCOM's working state, the punt
 * record being assembled) and the punt token buckets. When this build's
 * layout of one differs from its pin (an upgrade), the agent replaces the
 * pin rather than refuse to start (agent/datapath.ts): the old programs keep
 * their map until this build's replace them.
 */
export const SCRATCH_MAP_NAMES: ReadonlySet<string> = new Set(['gscip_pccom_scratch', 'gscip_punt_scratch', 'gscip_punt_bucket']);

/**
 * Maps this build added that an earlier build's pins lack: nothing to migrate,
 * libbpf creates and pins them (empty) when the agent of this build loads, and
 * the flows already pinned keep working (gscip_flow_keys: the old entries have
 * no FLOW_KEY flag and keep their group key; the GNAT's NAT maps are used only
 * by a load with the NAT stage), so `gscip doctor` warns instead of failing.
 */
export const ADDED_MAP_NAMES: ReadonlySet<string> = new Set([MAP_NAMES.flowKeys, MAP_NAMES.ftpSeq, ...Object.values(NAT_MAP_NAMES)]);

/** Maps of earlier layouts that an agent migrates away from when it finds their pins (agent/migrate.ts). */
export const LEGACY_MAP_NAMES = {
  /** enum gscip_stat -> per-CPU counters, no direction (until the (reason, direction) counters) */
  stats: 'gscip_stats',
} as const;

export const PROG_NAMES = { ingress: 'gscip_tc_ingress', egress: 'gscip_tc_egress' } as const;

export interface GscipMaps {
  pit: BpfMap<Cid, PitVal>;
  xlat: BpfMap<Cid, XlatVal>;
  keys: BpfMap<KeyId, KeyVal>;
  /** PIT CID -> per-flow key of that entry (controlplane/pccom/flow-keys.ts) */
  flowKeys: BpfMap<Cid, FlowKeyVal>;
  /** FTP control connection (server -> client, EN stack view) -> its sequence delta (gsra/ftp-seq.ts) */
  ftpSeq: BpfMap<Cid, FtpSeqVal>;
  /** ifindex -> interface config */
  iface: BpfMap<number, IfaceCfg>;
  /** index 0 -> global config */
  cfg: BpfMap<number, GlobalCfg>;
  /** counterSlot(enum gscip_stat, dir) -> per-CPU counters */
  stats: PerCpuBpfMap<number, StatVal>;
  /** fd of the gscip_punt ring buffer */
  puntFd: number;
  /** The NAT maps; absent on the pins of a build before NAT (the CLI reads such instances too). */
  nat?: NatMaps;
  close(): void;
}

/**
 * A map of ADDED_MAP_NAMES: on an earlier build's pins (no such pin yet) it
 * reads as empty and refuses writes with a message, so the CLI still works on
 * pins the agent of this build has not started on yet.
 */
function addedMap<K, V>(open: () => BpfMap<K, V>): BpfMap<K, V> {
  let m: BpfMap<K, V>;
  try { m = open(); } catch (e) {
    const why = `not in these pins (an earlier build's; the agent of this build creates it): ${(e as Error).message}`;
    const refuse = (): never => { throw new Error(why); };
    return {
      get: () => undefined, delete: () => false, keys: function* () { /* empty */ }, entries: function* () { /* empty */ },
      count: () => 0, set: refuse, setBatch: refuse, deleteBatch: () => 0, close: () => undefined,
    } as unknown as BpfMap<K, V>;
  }
  return m;
}

function natMapsFromFds(fdOf: (name: string) => number, owns: boolean, track: <T extends { close(): void }>(m: T) => T): NatMaps | undefined {
  let fds: number[];
  try { fds = [fdOf(NAT_MAP_NAMES.sessions), fdOf(NAT_MAP_NAMES.ports), fdOf(NAT_MAP_NAMES.cfg)]; } catch { return undefined; }
  return {
    sessions: track(new BpfMap(NAT_MAP_NAMES.sessions, fds[0], cidCodec, natValCodec, owns)),
    ports: track(new BpfMap(NAT_MAP_NAMES.ports, fds[1], natPortKeyCodec, cidCodec, owns)),
    cfg: track(new BpfMap(NAT_MAP_NAMES.cfg, fds[2], u32Codec, natCfgCodec, owns)),
  };
}

/** Build from a map-name -> fd resolver. `owns` says whether closing the bundle closes the fds. */
export function gscipMapsFromFds(fdOf: (name: string) => number, owns: boolean): GscipMaps {
  const opened: Array<{ close(): void }> = [];
  const track = <T extends { close(): void }>(m: T): T => { opened.push(m); return m; };
  try {
    const maps: GscipMaps = {
      pit: track(new BpfMap(MAP_NAMES.pit, fdOf(MAP_NAMES.pit), cidCodec, pitValCodec, owns)),
      xlat: track(new BpfMap(MAP_NAMES.xlat, fdOf(MAP_NAMES.xlat), cidCodec, xlatValCodec, owns)),
      keys: track(new BpfMap(MAP_NAMES.keys, fdOf(MAP_NAMES.keys), keyIdCodec, keyValCodec, owns)),
      flowKeys: addedMap(() => track(new BpfMap(MAP_NAMES.flowKeys, fdOf(MAP_NAMES.flowKeys), cidCodec, flowKeyValCodec, owns))),
      ftpSeq: addedMap(() => track(new BpfMap(MAP_NAMES.ftpSeq, fdOf(MAP_NAMES.ftpSeq), cidCodec, ftpSeqValCodec, owns))),
      iface: track(new BpfMap(MAP_NAMES.iface, fdOf(MAP_NAMES.iface), u32Codec, ifaceCfgCodec, owns)),
      cfg: track(new BpfMap(MAP_NAMES.cfg, fdOf(MAP_NAMES.cfg), u32Codec, globalCfgCodec, owns)),
      stats: track(new PerCpuBpfMap(MAP_NAMES.stats, fdOf(MAP_NAMES.stats), u32Codec, statValCodec, owns)),
      puntFd: fdOf(MAP_NAMES.punt),
      nat: natMapsFromFds(fdOf, owns, track),
      close: () => {
        for (const m of opened.splice(0)) m.close();
        if (owns) closeBpfFd(maps.puntFd);
      },
    };
    return maps;
  } catch (e) {
    for (const m of opened) m.close();
    throw e;
  }
}
