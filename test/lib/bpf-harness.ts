/**
 * BPF_PROG_TEST_RUN harness: loads build/bpf/gscip_tc.bpf.o WITHOUT pins
 * (private maps per harness), exposes the typed maps, runs a program on a
 * crafted packet, and drains punt records from the ring buffer.
 *
 *   const h = BpfHarness.open();            // t.after(() => h.close())
 *   h.maps.iface.set(1, { miss_action: [MissAction.PUNT, MissAction.PUNT], flags: IFACE_F_PROTECTED });
 *   const r = h.progTestRun('gscip_tc_ingress', pkt);  // { retval, dataOut, durationNs }
 *   assert.equal(r.retval, TC_ACT.STOLEN); assert.equal(h.punts()[0].reason, PuntReason.PIT_MISS);
 *
 * BPF_PROG_TEST_RUN runs the program with skb->ifindex = 1 (loopback) unless
 * `ifindex` is given (a device with that index must exist in this netns).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { RingBuffer, type TestRunOptions, type TestRunResult } from '../../controlplane/bpf/libbpf.js';
import { BpfObject } from '../../controlplane/bpf/object.js';
import { decodePuntRec, type NatCfg, type PuntRec, type StatVal } from '../../controlplane/maps/codecs.js';
import { gscipMapsFromFds, MAP_NAMES, type GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import { COUNTER_DIRS, counterSlot, Dir, MissAction, STAT_BY_ID, STATS } from '../../controlplane/maps/abi.js';
import { readStat } from '../../controlplane/maps/accessors.js';
import { stageInitialValues, type StageSwitches } from '../../controlplane/maps/stages.js';

/** TC verdicts (linux/pkt_cls.h), as the u32 retval BPF_PROG_TEST_RUN reports. */
export const TC_ACT = { UNSPEC: 0xffffffff, OK: 0, RECLASSIFY: 1, SHOT: 2, PIPE: 3, STOLEN: 4, QUEUED: 5, REPEAT: 6, REDIRECT: 7 } as const;

/** Loopback: the device BPF_PROG_TEST_RUN uses by default. */
export const TEST_RUN_IFINDEX = 1;

/** Repo root from dist/test/lib (compiled) or test/lib (sources). */
const ROOT = resolve(__dirname, __dirname.includes('/dist/') ? '../../..' : '../..');

export function defaultObjectPath(): string {
  return process.env.GSCIP_BPF_OBJ ?? resolve(ROOT, 'build/bpf/gscip_tc.bpf.o');
}

/** Why BPF tests cannot run here (for `t.skip(reason)`), or null if they can. Prefer failing in CI: see requireBpf. */
export function bpfUnavailable(objPath = defaultObjectPath()): string | null {
  if (process.getuid?.() !== 0) return 'needs root (BPF_PROG_TEST_RUN)';
  if (!existsSync(objPath)) return `BPF object ${objPath} missing: run make bpf`;
  return null;
}

export interface HarnessOptions {
  objPath?: string;
  /** Shrink maps for speed, e.g. { gscip_pit: 1024 }; or grow them for benchmarks. */
  maxEntries?: Record<string, number>;
  /** Datapath stages to load (default: the object's own, every stage). */
  stages?: StageSwitches;
}

/**
 * A NAT-stage harness back to a clean start before each test: no sessions,
 * no port claims, NAT config c, only the test-run interface (miss: pass both
 * ways), counters zero. h must be opened with the nat stage.
 */
export function resetNat(h: BpfHarness, c: NatCfg): void {
  const nat = h.maps.nat!;
  for (const k of [...nat.sessions.keys()]) nat.sessions.delete(k);
  for (const k of [...nat.ports.keys()]) nat.ports.delete(k);
  nat.cfg.set(0, c);
  for (const k of [...h.maps.iface.keys()]) h.maps.iface.delete(k);
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 0 });
  h.resetStats();
}

export class BpfHarness {
  readonly maps: GscipMaps;
  private ring: RingBuffer | null = null;
  private pending: Buffer[] = [];

  private constructor(readonly obj: BpfObject) {
    this.maps = gscipMapsFromFds((n) => obj.mapFd(n), false);
  }

  static open(opts: HarnessOptions = {}): BpfHarness {
    const obj = BpfObject.load(opts.objPath ?? defaultObjectPath(), {
      maxEntries: opts.maxEntries, initialValues: opts.stages ? stageInitialValues(opts.stages) : undefined,
    });
    try {
      return new BpfHarness(obj);
    } catch (e) { obj.close(); throw e; }
  }

  /** Run a program ('gscip_tc_ingress' | 'gscip_tc_egress') on a packet that starts at the Ethernet header. */
  progTestRun(progName: string, packet: Buffer, opts: TestRunOptions = {}): TestRunResult {
    return this.obj.testRun(progName, packet, opts);
  }

  /** Drain and decode every punt record submitted so far (oldest first). */
  punts(): PuntRec[] {
    if (this.ring === null) this.ring = new RingBuffer(this.obj.mapFd(MAP_NAMES.punt), (b) => { this.pending.push(b); });
    this.ring.consume();
    return this.pending.splice(0).map(decodePuntRec);
  }

  /** Counter for one enum gscip_stat id, summed over CPUs and both directions. */
  stat(id: number): StatVal {
    if (!STAT_BY_ID.has(id)) throw new Error(`gscip_counters has no reason ${id}`);
    return readStat(this.maps, id);
  }

  /** Counter for one enum gscip_stat id in one direction, summed over CPUs. */
  statDir(id: number, dir: Dir): StatVal {
    return (this.maps.stats.get(counterSlot(id, dir)) ?? []).reduce((a, v) => ({ packets: a.packets + v.packets, bytes: a.bytes + v.bytes }), { packets: 0n, bytes: 0n });
  }

  /** Non-zero counters by label (see abi.ts STATS), e.g. { pit_pass: 1n, malformed_ip: 2n }: handy for exact asserts. */
  nonZeroStats(): Record<string, bigint> {
    const out: Record<string, bigint> = {};
    for (const [slot, per] of this.maps.stats.entries()) {
      const packets = per.reduce((a, v) => a + v.packets, 0n);
      const id = Math.floor(slot / COUNTER_DIRS);
      const name = STAT_BY_ID.get(id)?.name ?? `stat_${id}`;
      if (packets !== 0n) out[name] = (out[name] ?? 0n) + packets;
    }
    return out;
  }

  /** Zero every counter (between cases). */
  resetStats(): void {
    for (const s of STATS) for (const d of [Dir.INGRESS, Dir.EGRESS]) this.maps.stats.set(counterSlot(s.id, d), { packets: 0n, bytes: 0n });
  }

  close(): void {
    this.ring?.close();
    this.ring = null;
    this.maps.close();
    this.obj.close();
  }
}
