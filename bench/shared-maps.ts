/**
 * A datapath object for the A/B benches, with only the maps whose layout
 * every build being compared shares (PIT, XLAT, iface, keys): an older object
 * (e.g. before the (reason, direction) counters) loads and is seeded the same
 * way as this tree's, where BpfHarness would insist on this tree's full map set.
 */
import { BpfMap } from '../controlplane/bpf/bpf-map.js';
import { BpfObject } from '../controlplane/bpf/object.js';
import type { TestRunOptions, TestRunResult } from '../controlplane/bpf/libbpf.js';
import type { Cid, FlowKeyVal, IfaceCfg, KeyId, KeyVal, PitVal, XlatVal } from '../controlplane/maps/codecs.js';
import { cidCodec, flowKeyValCodec, ifaceCfgCodec, keyIdCodec, keyValCodec, pitValCodec, u32Codec, xlatValCodec } from '../controlplane/maps/codecs.js';
import { stageInitialValues, type StageSwitches } from '../controlplane/maps/stages.js';

export interface SharedMaps {
  pit: BpfMap<Cid, PitVal>;
  xlat: BpfMap<Cid, XlatVal>;
  iface: BpfMap<number, IfaceCfg>;
  keys: BpfMap<KeyId, KeyVal>;
}

export class BenchObject {
  readonly maps: SharedMaps;

  private constructor(readonly path: string, private readonly obj: BpfObject) {
    this.maps = {
      pit: new BpfMap('gscip_pit', obj.mapFd('gscip_pit'), cidCodec, pitValCodec),
      xlat: new BpfMap('gscip_xlat', obj.mapFd('gscip_xlat'), cidCodec, xlatValCodec),
      iface: new BpfMap('gscip_iface', obj.mapFd('gscip_iface'), u32Codec, ifaceCfgCodec),
      keys: new BpfMap('gscip_keys', obj.mapFd('gscip_keys'), keyIdCodec, keyValCodec),
    };
  }

  /** Loads `path` with small PIT/XLAT maps; `stages` only for an object that has the load-time switches. */
  static load(path: string, stages?: StageSwitches): BenchObject {
    return new BenchObject(path, BpfObject.load(path, {
      maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 },
      initialValues: stages ? stageInitialValues(stages) : undefined,
    }));
  }

  /** gscip_flow_keys of an object that has it (per-flow keys, issue 16); a base object without it throws. */
  flowKeys(): BpfMap<Cid, FlowKeyVal> {
    this.fk ??= new BpfMap('gscip_flow_keys', this.obj.mapFd('gscip_flow_keys'), cidCodec, flowKeyValCodec);
    return this.fk;
  }
  private fk: BpfMap<Cid, FlowKeyVal> | undefined;

  testRun(prog: string, packet: Buffer, opts: TestRunOptions = {}): TestRunResult {
    return this.obj.testRun(prog, packet, opts);
  }

  close(): void {
    for (const m of Object.values(this.maps)) m.close();
    this.fk?.close();
    this.obj.close();
  }
}
