/**
 * In-memory multi-GE simulation for DPRP unit tests: a tree of hosts and GEs,
 * virtual time, a fake transport that delivers a control message to the first
 * GE on its route (as the fast path's punt would), loss and tampering hooks,
 * fake PIT and stash. No sockets, no root.
 */
import type { FlowProtectedBy } from '../../controlplane/parts/dprp-extension.js';
import { DPRP_CAND_DEPTH_OFF, DPRP_CODE_DDE, ICMP_TYPE } from '../../controlplane/maps/abi.js';
import { holdFor } from '../../controlplane/dprp/hold.js';
import { EncryptionRequired, parseRequiredEntry } from '../../controlplane/dprp/encryption-required.js';
import { DprpNode, type DprpConfig, type DprpObserver, type FailReason, type Locality, type OutcomeKind, type RejectReason } from '../../controlplane/dprp/node.js';
import { StaticKeyRing, type GroupKey } from '../../controlplane/dprp/auth.js';
import { pitEntryKey, type PitEntry } from '../../controlplane/dprp/pit-entries.js';
import type { Flow, GeTypeName, ModeName } from '../../controlplane/dprp/wire.js';
import { createHash } from 'node:crypto';
import type { NatfDprpHooks } from '../../controlplane/dprp/natf-hooks.js';

/** Deterministic test key for (group, version). */
export function testKey(group: number, version = 1, salt = ''): GroupKey {
  return { group, version, key: createHash('sha256').update(`gk-${group}-${version}${salt}`).digest() };
}

export class VirtualTime {
  now = 0;
  private q: { at: number; seq: number; fn: () => void; dead: boolean }[] = [];
  private seq = 0;
  after(ms: number, fn: () => void) {
    const ev = { at: this.now + ms, seq: this.seq++, fn, dead: false };
    this.q.push(ev);
    return { cancel: () => { ev.dead = true; } };
  }
  /** Runs events in time order until none is left or `untilMs` is reached. Bounded. */
  run(untilMs = Infinity, maxEvents = 100_000): void {
    for (let i = 0; i < maxEvents; i++) {
      this.q = this.q.filter((e) => !e.dead);
      if (this.q.length === 0) return;
      this.q.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const ev = this.q[0];
      if (ev.at > untilMs) { this.now = untilMs; return; }
      this.q.shift();
      this.now = Math.max(this.now, ev.at);
      ev.fn();
    }
    throw new Error('VirtualTime.run: event bound reached (livelock?)');
  }
  advance(ms: number): void {
    const t = this.now + ms;
    this.run(t);
    this.now = Math.max(this.now, t);
  }
}

export class CountingObserver implements DprpObserver {
  starts: string[] = [];
  completions: { outcome: OutcomeKind; seconds: number }[] = [];
  failures: FailReason[] = [];
  rejections: RejectReason[] = [];
  overrides = 0;
  suppressions: string[] = [];
  plaintexts: { result: 'pass' | 'refused'; why: string; daddr: string }[] = [];
  started(r: 'miss' | 'rekey') { this.starts.push(r); }
  plaintext(result: 'pass' | 'refused', why: string, flow: Flow) { this.plaintexts.push({ result, why, daddr: flow.daddr }); }
  suppressed(r: string) { this.suppressions.push(r); }
  completed(outcome: OutcomeKind, seconds: number) { this.completions.push({ outcome, seconds }); }
  failed(r: FailReason) { this.failures.push(r); }
  rejected(r: RejectReason) { this.rejections.push(r); }
  overridden() { this.overrides++; }
  downgradesRefused = 0;
  downgradeRefused() { this.downgradesRefused++; }
}

export interface SimNodeSpec {
  name: string;
  addr: string;
  parent?: string;
  ge?: { type: GeTypeName; mode: ModeName; keys: GroupKey[]; requireEncryption?: string[]; natf?: NatfDprpHooks; protectedBy?: FlowProtectedBy };
}

export interface Wire {
  at: number;
  from: string;
  to: string;
  dst: string;
  icmp: Buffer;
}

export interface SimGe {
  name: string;
  node: DprpNode;
  keys: StaticKeyRing;
  pit: Map<string, PitEntry>;
  released: unknown[];
  dropped: { handle: unknown; reason: string }[];
  obs: CountingObserver;
  activity: Map<string, { lastSeenMs: number; closed: boolean; finSeen?: boolean }>;
}

const HOP_MS = 0.05;

export class Sim {
  readonly time = new VirtualTime();
  readonly specs = new Map<string, SimNodeSpec>();
  readonly byAddr = new Map<string, SimNodeSpec>();
  readonly ges = new Map<string, SimGe>();
  /** Every control message delivered to a GE or host. */
  readonly wire: Wire[] = [];
  /** Messages that reached a plain host (ignored by it). */
  readonly toHosts: Wire[] = [];
  dropIf: (w: Wire) => boolean = () => false;
  /** Extra one-way delay for a message (slow paths). */
  extraDelayMs: (w: Wire) => number = () => 0;
  tamper: (w: Wire) => Buffer = (w) => w.icmp;
  /** Whether GEs' fast paths answer relayed DDEs with a HOLD (the product's datapath does). */
  fastPathHold = true;
  private handles = 0;

  constructor(nodes: SimNodeSpec[], config: Partial<DprpConfig> = {}) {
    for (const n of nodes) {
      this.specs.set(n.name, n);
      this.byAddr.set(n.addr, n);
    }
    for (const n of nodes) {
      if (!n.ge) continue;
      const keys = new StaticKeyRing(n.ge.keys);
      const pit = new Map<string, PitEntry>();
      const activity = new Map<string, { lastSeenMs: number; closed: boolean; finSeen?: boolean }>();
      const sge: SimGe = { name: n.name, keys, pit, released: [], dropped: [], obs: new CountingObserver(), activity, node: null as unknown as DprpNode };
      sge.node = new DprpNode({
        self: { addr: n.addr, type: n.ge.type, mode: n.ge.mode },
        keys,
        clock: { nowMs: () => 1_700_000_000_000 + this.time.now, monoMs: () => this.time.now },
        timers: { after: (ms, fn) => this.time.after(ms, fn) },
        // Every simulated GE speaks the UDP transport: the ICMP copy of a retransmitted DDE (for agents
        // older than it, dprp/node-deps.ts icmpFallback) is counted, not delivered.
        transport: { send: (dst, icmp, src, via) => { if (via?.icmp) { this.icmpCopies++; return; } this.send(n.name, dst, icmp, src); } },
        pit: {
          install: (es) => { for (const e of es) pit.set(pitEntryKey(e), e); },
          remove: (ks) => { for (const k of ks) pit.delete(pitEntryKey(k)); },
          activity: (k) => activity.get(pitEntryKey(k)),
        },
        stash: {
          release: (hs) => { sge.released.push(...hs); },
          drop: (hs, reason) => { for (const h of hs) sge.dropped.push({ handle: h, reason }); },
        },
        locality: (addr) => this.locality(n.name, addr),
        encryptedNow: (f) => [f, { saddr: f.daddr, daddr: f.saddr, sport: f.dport, dport: f.sport, proto: f.proto }].some((flow) =>
          (['ingress', 'egress'] as const).some((dir) => ['encrypt', 'decrypt'].includes(pit.get(pitEntryKey({ flow, dir }))?.action ?? ''))),
        ...(n.ge.requireEncryption ? { encryptionRequired: requiredMatcher(n.ge.requireEncryption) } : {}),
        observer: sge.obs,
        ...(n.ge.natf ? { natf: n.ge.natf } : {}),
        ...(n.ge.protectedBy ? { protectedBy: n.ge.protectedBy } : {}),
        config,
      });
      this.ges.set(n.name, sge);
    }
  }

  ge(name: string): SimGe {
    const g = this.ges.get(name);
    if (!g) throw new Error(`no GE ${name}`);
    return g;
  }

  addr(name: string): string {
    return this.specs.get(name)!.addr;
  }

  private ancestors(name: string): string[] {
    const out: string[] = [];
    let cur: string | undefined = name;
    while (cur) {
      out.push(cur);
      cur = this.specs.get(cur)?.parent;
    }
    return out;
  }

  /** Nodes crossed from `from` to `to`, excluding `from`, including `to`. */
  route(from: string, to: string): string[] {
    const up = this.ancestors(from);
    const down = this.ancestors(to);
    const lca = up.find((x) => down.includes(x))!;
    const a = up.slice(1, up.indexOf(lca) + 1);
    const b = down.slice(0, down.indexOf(lca)).reverse();
    return [...a, ...b].filter((x, i, arr) => !(x === lca && arr.indexOf(x) !== i));
  }

  private locality(me: string, addr: string): Locality {
    const target = this.byAddr.get(addr);
    if (!target) return 'other';
    if (target.name === me) return 'self';
    return this.ancestors(target.name).includes(me) ? 'behind' : 'other';
  }

  /** ICMP type 253 copies of retransmitted DDEs the GEs sent (not delivered: see the transport above). */
  icmpCopies = 0;

  /** src: the IP source the sender writes (a relayed DDE keeps the start's); default the sender's address. */
  private send(from: string, dst: string, icmp: Buffer, src?: string): void {
    const target = this.byAddr.get(dst);
    if (!target) return;
    const hops = this.route(from, target.name);
    const firstGe = hops.find((h) => this.ges.has(h));
    const to = firstGe ?? target.name;
    const n = (firstGe ? hops.indexOf(firstGe) : hops.length - 1) + 1;
    const w: Wire = { at: this.time.now, from, to, dst, icmp: Buffer.from(icmp) };
    if (this.dropIf(w)) return;
    const bytes = this.tamper(w);
    this.time.after(n * HOP_MS + this.extraDelayMs(w), () => {
      const seen = { ...w, icmp: Buffer.from(bytes) };
      this.wire.push(seen);
      if (firstGe) {
        // The GE's fast path answers a DDE relayed by an end candidate with a HOLD at once (bpf/lib/dprp_hold.h).
        if (this.fastPathHold && seen.icmp[0] === ICMP_TYPE && seen.icmp[1] === DPRP_CODE_DDE && seen.icmp[DPRP_CAND_DEPTH_OFF] >= 1) {
          this.send(firstGe, src ?? this.addr(from), holdFor(seen.icmp), dst);
        }
        this.ge(firstGe).node.onControl(seen.icmp, { src: src ?? this.addr(from), dst });
      } else this.toHosts.push(seen);
    });
  }

  /** Injects raw bytes at GE `to` as if punted from the wire (with the IP header's addresses when given). */
  inject(to: string, icmp: Buffer, ip?: { src: string; dst: string }): void {
    this.ge(to).node.onControl(icmp, ip);
  }

  /** The GE that protects host `name` (itself if it is a GE). */
  protector(name: string): string {
    return this.ancestors(name).find((x) => this.ges.has(x))!;
  }

  /** Simulates the first packet of a flow from host src to host dst; returns its stash handle. */
  connect(src: string, dst: string, proto = 6, sport = 40000 + this.handles, dport = 80): { flow: Flow; handle: string; start: string } {
    const flow: Flow = { saddr: this.addr(src), daddr: this.addr(dst), sport, dport, proto };
    const handle = `h${this.handles++}`;
    const start = this.protector(src);
    this.ge(start).node.onPitMiss(flow, handle);
    return { flow, handle, start };
  }

  /** GEs crossed by host src -> host dst, in order (start first). */
  gesOnPath(src: string, dst: string): string[] {
    const out = [src, ...this.route(src, dst)].filter((x) => this.ges.has(x));
    return out;
  }

  pitOf(name: string, flow: Flow, dir: 'ingress' | 'egress'): PitEntry | undefined {
    return this.ge(name).pit.get(pitEntryKey({ flow, dir }));
  }
}

/** A matcher for prefix entries (names need a resolver: encryption-required.ts). */
function requiredMatcher(entries: string[]): (addr: string) => boolean {
  const m = new EncryptionRequired();
  m.set(entries.map((e, i) => parseRequiredEntry(e, `requireEncryption[${i}]`)));
  return (a) => m.matches(a);
}

/** Seed 002 Fig. 6 network. */
export function fig6Nodes(): SimNodeSpec[] {
  return [
    { name: 'core', addr: '192.0.2.254' },
    { name: 'GES1', addr: '192.0.2.11', parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(1)] } },
    { name: 'GES2', addr: '192.0.2.12', parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(1), testKey(2)] } },
    { name: 'GES3', addr: '192.0.2.13', parent: 'core', ge: { type: 'GES', mode: 'OP', keys: [testKey(3)] } },
    { name: 'GEN', addr: '192.0.2.1', parent: 'core', ge: { type: 'GEN', mode: 'CL', keys: [testKey(1)] } },
    { name: 'Term', addr: '198.51.100.10', parent: 'GEN' },
    { name: 'GEA', addr: '192.0.2.20', parent: 'core', ge: { type: 'GEA', mode: 'CL', keys: [testKey(2), testKey(3)] } },
    { name: 'server', addr: '203.0.113.10', parent: 'GEA' },
    { name: 'internet', addr: '198.18.0.1', parent: 'core' },
  ];
}
