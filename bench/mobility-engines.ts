/**
 * bench/mobility-engines: the user-space work of a move of many flows, without
 * a kernel (no root): a mover and a stationary MobilityEngine wired as the
 * agent wires them (handler.ts: KernelPitMap / kernelFlowMaps, the per-flow
 * key writer and its read scope) over fake BPF maps that keep the encoded
 * bytes (the real codecs; a lookup is a Map lookup, not a syscall). `--flows`
 * UDP flows with per-flow keys to 100 peer addresses; b moves. Printed per
 * phase (b's move, a's CUs, b's answers): node's user CPU, per flow, and the
 * map lookups the phase made (each one a syscall in the agent). What the
 * agents spend beyond this in bench/mobility-flows.ts is the kernel, the FFI
 * and the machine. Then b moves again (its flows' second move: the first
 * wire's ingress entries linger) and the lingering entries' grace timers
 * fire at both ends.
 *
 *   node dist/bench/mobility-engines.js [--flows 10000] [--peers 100] [--both 1]
 *
 * --both 1: both ends move at once instead (the peer on one address unless
 * --peers); each takes the other's CUs (sent to its old address) while its
 * own wait for their answers.
 */
import { randomBytes } from 'node:crypto';
import { MobilityEngine, REMOVE_GRACE_MS, type MobilityKey } from '../controlplane/mobility/engine.js';
import { kernelFlowMaps, KernelPitMap, flowKeyWriter, movedFlowKeys, toCid, whyOf } from '../controlplane/flows/kernel-flow-maps.js';
import { FlowKeyReadCache } from '../controlplane/pccom/flow-keys.js';
import { cidCodec, flowKeyValCodec, pitValCodec, xlatValCodec, type Cid } from '../controlplane/maps/codecs.js';
import type { Codec } from '../controlplane/bpf/codec.js';
import { ACTIONS, PIT_STATES, ROLES } from '../controlplane/maps/vocabulary.js';
import { PIT_F_WIRE_CSUM } from '../controlplane/maps/abi.js';
import type { PitEntry } from '../controlplane/flows/pit-entry.js';
import type { PitTemplate } from '../controlplane/mobility/cit.js';
import { intArg } from './args.js';

/** A hash map as BpfMap offers it, holding encoded keys and values. */
class FakeBpfMap<V> {
  private readonly m = new Map<string, Buffer>();
  lookups = 0;
  constructor(private readonly kc: Codec<Cid>, private readonly vc: Codec<V>) {}
  private k(k: Cid): string { return this.kc.encode(k).toString('latin1'); }
  get(k: Cid): V | undefined { this.lookups++; const b = this.m.get(this.k(k)); return b ? this.vc.decode(b) : undefined; }
  set(k: Cid, v: V): void { this.m.set(this.k(k), this.vc.encode(v)); }
  delete(k: Cid): boolean { return this.m.delete(this.k(k)); }
  setBatch(es: ReadonlyArray<readonly [Cid, V]>): number { for (const [k, v] of es) this.set(k, v); return es.length; }
  deleteBatch(ks: readonly Cid[]): number { let n = 0; for (const k of ks) n += this.delete(k) ? 1 : 0; return n; }
  *entries(): Generator<[Cid, V]> { for (const [k, v] of this.m) yield [this.kc.decode(Buffer.from(k, 'latin1')), this.vc.decode(v)]; }
}

const groupKey = randomBytes(32);
const KEY: MobilityKey = { group: 1, version: 1, key: groupKey };
const B = '198.51.100.10';
const C = '192.0.2.10';
const D = '192.0.2.20';

/** Timers the bench fires itself: the lingering entries' grace (the CU retries are left alone: every CU is answered). */
interface HeldTimer { ms: number; fn: () => void; cancelled: boolean }

function end(to: 'a' | 'b', wire: Array<{ to: 'a' | 'b'; icmp: Buffer; src: string; dst: string }>) {
  const timers: HeldTimer[] = [];
  const pit = new FakeBpfMap(cidCodec, pitValCodec);
  const xlat = new FakeBpfMap(cidCodec, xlatValCodec);
  const raw = new FakeBpfMap(cidCodec, flowKeyValCodec);
  const keys = { get: () => ({ key: groupKey, flags: 0, installed_ns: 0n }) };
  const flowKeys = new FlowKeyReadCache(raw);
  const maps = { pit, xlat, keys, flowKeys } as unknown as Parameters<typeof kernelFlowMaps>[0];
  const nowNs = () => process.hrtime.bigint();
  const reader = new KernelPitMap(pit as unknown as ConstructorParameters<typeof KernelPitMap>[0], nowNs, flowKeyWriter(maps));
  const eng = new MobilityEngine({
    maps: kernelFlowMaps(maps, nowNs),
    pitGet: (s) => {
      const v = pit.get(toCid(s.flow, s.dir));
      const action = v && ACTIONS.name(v.action);
      const role = v && ROLES.name(v.role);
      if (!v || !action || action === 'none' || !role || role === 'none') return undefined;
      const t: PitTemplate = {
        action, role, group: v.group_id, version: v.key_version, state: PIT_STATES.name(v.state) === 'tentative' ? 'tentative' : 'confirmed',
        ...(v.prev_key_version ? { prevVersion: v.prev_key_version } : {}), ...whyOf(v.flags),
        ...(action === 'encrypt' && (v.flags & PIT_F_WIRE_CSUM) ? { wireCsum: true as const } : {}),
        ...movedFlowKeys(reader.flowKeysOf(toCid(s.flow, s.dir), v), s),
      };
      return t;
    },
    pitScan: (o) => reader.readOwned(o),
    keys: () => [KEY],
    send: (dst, icmp, src) => wire.push({ to, icmp, src, dst }),
    keeper: { keep: () => undefined, release: () => undefined },
    clock: { nowMs: () => Date.now(), monoMs: () => performance.now() },
    timers: { after: (ms: number, fn: () => void) => { const t = { ms, fn, cancelled: false }; timers.push(t); return { cancel: () => { t.cancelled = true; } }; } },
  });
  const lookups = () => pit.lookups + raw.lookups;
  /** The timers of at least REMOVE_GRACE_MS not cancelled: how many fired. */
  const fireGrace = (): number => {
    const due = timers.filter((t) => !t.cancelled && t.ms >= REMOVE_GRACE_MS);
    for (const t of due) { t.cancelled = true; t.fn(); }
    return due.length;
  };
  return { eng, flowKeys, fireGrace, seed: kernelFlowMaps({ pit, keys, flowKeys: raw } as unknown as Parameters<typeof kernelFlowMaps>[0], nowNs).pit, lookups };
}

function main(): void {
  const flows = intArg('flows', 10_000);
  // --both 1: the peer on one address (it moves as a whole), unless --peers says otherwise.
  const peers = intArg('peers', intArg('both', 0, 0) > 0 ? 1 : 100, 1);
  const wire: Array<{ to: 'a' | 'b'; icmp: Buffer; src: string; dst: string }> = [];
  const a = end('b', wire);
  const b = end('a', wire);
  const atA: PitEntry[] = [];
  const atB: PitEntry[] = [];
  for (let i = 0; i < flows; i++) {
    const peer = `203.0.113.${1 + (i % peers)}`;
    const salt = (0x1000000000000000n + BigInt(i)).toString(16);
    const t = { group: 1, version: 1, state: 'confirmed' as const };
    const out = { saddr: B, sport: 42000 + (i % 20000), daddr: peer, dport: 7302 + Math.floor(i / 20000), proto: 17 };
    const back = { saddr: out.daddr, sport: out.dport, daddr: out.saddr, dport: out.sport, proto: 17 };
    atB.push({ ...t, action: 'encrypt', role: 'end', flowKey: { salt, leg: 'fwd' }, flow: out, dir: 'egress' }, { ...t, action: 'decrypt', role: 'end', flowKey: { salt, leg: 'rev' }, flow: back, dir: 'ingress' });
    atA.push({ ...t, action: 'encrypt', role: 'start', flowKey: { salt, leg: 'rev' }, flow: back, dir: 'egress' }, { ...t, action: 'decrypt', role: 'start', flowKey: { salt, leg: 'fwd' }, flow: out, dir: 'ingress' });
  }
  a.seed.install(atA);
  b.seed.install(atB);
  const both = intArg('both', 0, 0) > 0;
  const phase = (what: string, lookups: () => number, fn: () => void): void => {
    const l0 = lookups();
    const c0 = process.cpuUsage();
    fn();
    const ms = process.cpuUsage(c0).user / 1000;
    console.log(`${what}: ${ms.toFixed(0)} ms user CPU, ${((ms * 1000) / flows).toFixed(1)} us per flow, ${lookups() - l0} map lookups`);
  };
  if (both) {
    // --both 1: both ends move at once, each taking the other's CUs while its own wait for their answers.
    phase('b moves (halves written, CUs sent)', b.lookups, () => b.flowKeys.scope(() => { b.flowKeys.preload(); b.eng.onMove({ ifname: 'vb', from: B, to: C }); }));
    const fromB = wire.splice(0);
    phase('a moves too (its CUs unanswered)', a.lookups, () => a.flowKeys.scope(() => { a.flowKeys.preload(); a.eng.onMove({ ifname: 'va', from: fromB[0].dst, to: D }); }));
    const fromA = wire.splice(0);
    phase(`a takes b's ${fromB.length} CUs (sent to its old address)`, a.lookups, () => { for (const m of fromB) a.flowKeys.scope(() => a.eng.onControl(m.icmp, m.src, m.dst)); });
    phase(`b takes a's ${fromA.length} CUs (sent to its old address)`, b.lookups, () => { for (const m of fromA) b.flowKeys.scope(() => b.eng.onControl(m.icmp, m.src, m.dst)); });
    return;
  }
  // As the handler calls them: each CU (and the move) in one flow-key read scope; the move sweeps the map first.
  phase('b moves (halves written, CUs sent)', b.lookups, () => b.flowKeys.scope(() => { b.flowKeys.preload(); b.eng.onMove({ ifname: 'vb', from: B, to: C }); }));
  const cus = wire.splice(0);
  phase(`a takes ${cus.length} CUs`, a.lookups, () => { for (const m of cus) a.flowKeys.scope(() => a.eng.onControl(m.icmp, m.src, m.dst)); });
  const acks = wire.splice(0);
  phase(`b takes ${acks.length} answers`, b.lookups, () => { for (const m of acks) b.flowKeys.scope(() => b.eng.onControl(m.icmp, m.src, m.dst)); });
  const moved = [a.eng.moved().length, b.eng.moved().length];
  if (moved[0] !== flows || moved[1] !== flows) throw new Error(`moved ${moved[0]} at a, ${moved[1]} at b, of ${flows}`);
  console.log(`${flows} flows moved at both ends`);
  // The second move: the first move's wire entries linger REMOVE_GRACE_MS, then their timers fire.
  phase('b moves again (halves written, CUs sent)', b.lookups, () => b.flowKeys.scope(() => { b.flowKeys.preload(); b.eng.onMove({ ifname: 'vb', from: C, to: D }); }));
  const cus2 = wire.splice(0);
  phase(`a takes ${cus2.length} CUs`, a.lookups, () => { for (const m of cus2) a.flowKeys.scope(() => a.eng.onControl(m.icmp, m.src, m.dst)); });
  const acks2 = wire.splice(0);
  phase(`b takes ${acks2.length} answers`, b.lookups, () => { for (const m of acks2) b.flowKeys.scope(() => b.eng.onControl(m.icmp, m.src, m.dst)); });
  let fired = 0;
  phase('the lingering entries\' grace timers fire at both ends', () => a.lookups() + b.lookups(), () => { fired = a.fireGrace() + b.fireGrace(); });
  console.log(`${fired} grace timers fired`);
}

main();
