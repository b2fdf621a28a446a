/**
 * DprpHandler: the agent's punt handler for DPRP (controlplane/agent/handler.ts
 * extension point). Thin: it turns punt records into DprpNode calls and the
 * node's effects into BPF map writes, releases/drops of stashed packets, control
 * sends, and metrics. All protocol logic is in node.ts.
 *
 *   PIT miss (egress)  -> negotiate the flow as start GE
 *   PIT miss (ingress) -> negotiate the reverse flow from here (a non-GE or a
 *                         peer that did not negotiate: OP lets it in, CL refuses)
 *   control (ICMP 253; punted on ingress, or on egress when this agent did not
 *   send it: a GEN relaying for a GE inside it) -> node.onControl
 * Keys are read from the gscip_keys map (filled by the GMS client) once a second;
 * a new version of a group triggers re-negotiation of the flows using it.
 */
import { ifNameToIndex } from '../bpf/libc.js';
import { Action, Dir, PIT_F_FIN, PIT_F_RST, PitState, PuntReason, Role } from '../maps/abi.js';
import { puntPacket, type Cid, type PitVal, type PuntRec } from '../maps/codecs.js';
import type { HandlerFactoryContext, PuntContext, PuntHandler } from '../parts/handler.js';
import type { ClaimedOptionHooks } from '../parts/dprp-extension.js';
import type { PartExtensions } from '../parts/part.js';
import { OptionCodecs } from './option-codecs.js';
import type { Logger } from '../log/logger.js';
import {
  dprpMessagesRejectedTotal, dprpNegotiationSeconds, dprpNegotiationsCompletedTotal, dprpNegotiationsFailedTotal,
  dprpNegotiationsStartedTotal, dprpPolicyOverridesTotal,
} from '../metrics/metrics.js';
import type { GroupKey, KeyRing } from './auth.js';
import { buildIpv4Packet, IPPROTO_ICMP, parseIpv4 } from './ipv4.js';
import { DprpNode, type DprpConfig, type DprpObserver, type PitWriter, type SelfInfo } from './node.js';
import { pitEntryKey, reverseFlow, type PitDir, type PitEntry } from './pit-entries.js';
import { readKernelRoutes, readKernelRoutesAsync, RouteTable, type KernelView } from './routes.js';
import type { Flow, GeTypeName, ModeName } from './wire.js';
import { GE_TYPE_CODES, MODE_CODES } from './wire.js';

export interface DprpHandlerOptions {
  /** This GE's type and mode (from the GMS GE info). Address: the first IPv4 of the first guarded interface unless given. */
  self: { type: GeTypeName; mode: ModeName; addr?: string };
  config?: Partial<DprpConfig>;
  /** Housekeeping period (sweep, key refresh). */
  tickMs?: number;
  /** Routing snapshot refresh period. */
  routesRefreshMs?: number;
  /** Test hook: where the kernel view comes from. */
  readKernel?: () => KernelView;
  /** Option codecs this GE knows (default: the spec's); a composed agent passes its parts'. */
  options?: OptionCodecs;
  /** The option hooks of the other parts (read once, when the engine starts). */
  optionHooks?: () => readonly ClaimedOptionHooks[];
  log: Logger;
}

const ACTION_CODE = { pass: Action.PASS, drop: Action.DROP, encrypt: Action.ENCRYPT, decrypt: Action.DECRYPT } as const;
const ROLE_CODE = { start: Role.START, intermediate: Role.INTERMEDIATE, end: Role.END } as const;

function toCid(f: Flow, dir: PitDir): Cid {
  return { saddr: f.saddr, daddr: f.daddr, sport: f.sport, dport: f.dport, proto: f.proto, dir: dir === 'egress' ? Dir.EGRESS : Dir.INGRESS };
}

/** Prometheus side of the node's observer. */
export const promObserver: DprpObserver = {
  started: (reason) => dprpNegotiationsStartedTotal.inc({ reason }),
  completed: (outcome, seconds) => {
    dprpNegotiationsCompletedTotal.inc({ outcome });
    dprpNegotiationSeconds.observe(seconds);
  },
  failed: (reason) => dprpNegotiationsFailedTotal.inc({ reason }),
  rejected: (reason) => dprpMessagesRejectedTotal.inc({ reason }),
  overridden: () => dprpPolicyOverridesTotal.inc(),
};

/** The key ring as the gscip_keys map holds it (refreshed by the handler). */
class MapKeyRing implements KeyRing {
  private keys: GroupKey[] = [];
  private sig = '';
  all(): readonly GroupKey[] {
    return this.keys;
  }
  /** Re-reads the map; returns true when a (group, version) appeared. */
  refresh(ctx: PuntContext): boolean {
    const next: GroupKey[] = [];
    for (const [k, v] of ctx.maps.keys.entries()) next.push({ group: k.group_id, version: k.version, key: Buffer.from(v.key) });
    next.sort((a, b) => a.group - b.group || a.version - b.version);
    const sig = next.map((k) => `${k.group}/${k.version}`).join(',');
    const before = new Set(this.sig.split(','));
    const appeared = sig !== this.sig && next.some((k) => !before.has(`${k.group}/${k.version}`));
    // Keep the same Buffer objects when nothing changed (derived-key cache in auth.ts).
    if (sig !== this.sig || next.some((k, i) => !k.key.equals(this.keys[i]?.key ?? Buffer.alloc(0)))) this.keys = next;
    this.sig = sig;
    return appeared;
  }
}

export class DprpHandler implements PuntHandler {
  readonly name = 'dprp';
  private node: DprpNode | null = null;
  private ctx: PuntContext | null = null;
  private readonly keys = new MapKeyRing();
  private readonly routes = new RouteTable();
  private guarded = new Set<string>();
  private selfInfo: SelfInfo | null = null;
  private tick: NodeJS.Timeout | null = null;
  private lastRoutes = 0;
  private routesPending = false;
  private readonly log: Logger;
  /** created_ns of entries we installed, so confirming keeps the entry's age. */
  private readonly created = new Map<string, bigint>();

  constructor(private readonly opts: DprpHandlerOptions) {
    this.log = opts.log;
    if (!(opts.self.type in GE_TYPE_CODES)) throw new RangeError(`dprp: self.type must be one of ${Object.keys(GE_TYPE_CODES).join(', ')} (got ${opts.self.type})`);
    if (!(opts.self.mode in MODE_CODES)) throw new RangeError(`dprp: self.mode must be OP or CL (got ${opts.self.mode})`);
  }

  /** The node (after the first punt); for tests and the CLI. */
  get engine(): DprpNode | null {
    return this.node;
  }

  /** Periodic refresh: never blocks the punt path (the `ip` runs are asynchronous); one at a time. */
  private refreshRoutes(): void {
    if (this.routesPending) return;
    this.routesPending = true;
    this.lastRoutes = Date.now();
    const read = this.opts.readKernel;
    (read ? Promise.resolve().then(read) : readKernelRoutesAsync())
      .then((view) => { if (this.tick) this.routes.update(view); })
      .catch((e: unknown) => this.log.warn({ err: e }, 'could not read routes; keeping the previous snapshot'))
      .finally(() => { this.routesPending = false; });
  }

  private init(ctx: PuntContext): DprpNode {
    if (this.node) return this.node;
    this.ctx = ctx;
    this.guarded = new Set(ctx.interfaces.map((i) => i.name));
    const view = (this.opts.readKernel ?? readKernelRoutes)();
    this.routes.update(view);
    this.lastRoutes = Date.now();
    const first = ctx.interfaces[0]?.name;
    const addr = this.opts.self.addr ?? view.addrs.find((a) => a.dev === first)?.addr;
    if (!addr) throw new Error(`dprp: no IPv4 address on guarded interface ${first ?? '(none)'}; set self.addr`);
    this.selfInfo = { addr, type: this.opts.self.type, mode: this.opts.self.mode };
    this.keys.refresh(ctx);
    const canHaveInside = this.opts.self.type !== 'GES';
    const pit: PitWriter = {
      install: (es) => this.install(es),
      remove: (ks) => {
        ctx.maps.pit.deleteBatch(ks.map((k) => toCid(k.flow, k.dir)));
        for (const k of ks) this.created.delete(pitEntryKey(k));
      },
      activity: (k) => {
        const v = ctx.maps.pit.get(toCid(k.flow, k.dir));
        if (!v) return undefined;
        return {
          lastSeenMs: Number(v.last_seen_ns / 1_000_000n),
          closed: (v.flags & PIT_F_RST) !== 0,
          finSeen: (v.flags & PIT_F_FIN) !== 0,
        };
      },
    };
    this.node = new DprpNode({
      self: this.selfInfo,
      keys: this.keys,
      clock: { nowMs: () => Date.now(), monoMs: () => Number(ctx.nowNs() / 1_000_000n) },
      timers: {
        after: (ms, fn) => {
          const t = setTimeout(() => this.guard('timer', fn), ms);
          t.unref();
          return { cancel: () => clearTimeout(t) };
        },
      },
      transport: { send: (dst, icmp) => this.send(dst, icmp) },
      pit,
      stash: {
        // A truncated miss has no stashed packet (handle null): nothing to release or drop.
        release: (hs) => { for (const h of hs) if (h) ctx.release(h as PuntRec); },
        drop: (hs, reason) => { for (const h of hs) if (h) ctx.drop(h as PuntRec, reason); },
      },
      locality: (a) => this.routes.locality(a, this.guarded, canHaveInside),
      observer: promObserver,
      config: this.opts.config,
      options: this.opts.options,
      optionHooks: this.opts.optionHooks?.() ?? [],
    });
    const adopted = this.node.adopt(this.readDprpEntries(ctx));
    if (adopted) this.log.info({ flows: adopted }, 'adopted the DPRP entries of a previous agent');
    const tickMs = this.opts.tickMs ?? 1000;
    this.tick = setInterval(() => this.guard('tick', () => this.housekeeping()), tickMs);
    this.tick.unref();
    this.log.info({ self: this.selfInfo, guarded: [...this.guarded], keys: this.keys.all().length }, 'DPRP engine started');
    return this.node;
  }

  /** PIT entries made by DPRP (role set), e.g. by the agent before a restart. */
  private readDprpEntries(ctx: PuntContext): PitEntry[] {
    const out: PitEntry[] = [];
    const action = { [Action.PASS]: 'pass', [Action.DROP]: 'drop', [Action.ENCRYPT]: 'encrypt', [Action.DECRYPT]: 'decrypt' } as const;
    const role = { [Role.START]: 'start', [Role.INTERMEDIATE]: 'intermediate', [Role.END]: 'end' } as const;
    for (const [k, v] of ctx.maps.pit.entries()) {
      const a = action[v.action as keyof typeof action];
      const r = role[v.role as keyof typeof role];
      if (!a || !r || v.state === PitState.STATIC) continue;
      this.created.set(pitEntryKey({ flow: k, dir: k.dir === Dir.EGRESS ? 'egress' : 'ingress' }), v.created_ns);
      out.push({
        flow: { saddr: k.saddr, daddr: k.daddr, sport: k.sport, dport: k.dport, proto: k.proto },
        dir: k.dir === Dir.EGRESS ? 'egress' : 'ingress', action: a, role: r, group: v.group_id, version: v.key_version,
        state: v.state === PitState.CONFIRMED ? 'confirmed' : 'tentative',
        ...(a === 'decrypt' && v.prev_key_version ? { prevVersion: v.prev_key_version } : {}),
      });
    }
    return out;
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e, what }, 'DPRP internal error');
    }
  }

  private housekeeping(): void {
    const ctx = this.ctx!;
    if (this.keys.refresh(ctx)) {
      const n = this.node!.onKeysChanged();
      if (n) this.log.info({ renegotiating: n }, 'new key version: re-negotiating live flows');
    }
    if (Date.now() - this.lastRoutes >= (this.opts.routesRefreshMs ?? 10_000)) this.refreshRoutes();
    this.node!.sweep();
  }

  private install(es: readonly PitEntry[]): void {
    const ctx = this.ctx!;
    const now = ctx.nowNs();
    const rows = es.map((e): [Cid, PitVal] => {
      const k = pitEntryKey(e);
      const created = this.created.get(k) ?? now;
      this.created.set(k, created);
      return [toCid(e.flow, e.dir), {
        action: ACTION_CODE[e.action], state: e.state === 'confirmed' ? PitState.CONFIRMED : PitState.TENTATIVE,
        role: ROLE_CODE[e.role], flags: 0, group_id: e.group, key_version: e.version,
        prev_key_version: e.action === 'decrypt' ? (e.prevVersion ?? 0) : 0, created_ns: created, last_seen_ns: now,
      }];
    });
    ctx.maps.pit.setBatch(rows);
  }

  private send(dst: string, icmp: Buffer): void {
    const ctx = this.ctx!;
    const dev = this.routes.devFor(dst);
    const ifindex = ctx.interfaces.find((i) => i.name === dev)?.ifindex ?? (dev ? this.ifindexOf(dev) : undefined) ?? ctx.interfaces[0]?.ifindex;
    if (ifindex === undefined) return;
    try {
      ctx.sendControl(ifindex, buildIpv4Packet(this.selfInfo!.addr, dst, IPPROTO_ICMP, icmp));
    } catch (e) {
      // Counted by the agent; the negotiation's retry covers a lost send.
      this.log.warn({ err: e, dst }, 'DPRP send failed');
    }
  }

  /** ifindex of an unguarded interface (a GEN's inside), in this network namespace. */
  private ifindexOf(dev: string): number | undefined {
    try {
      const n = ifNameToIndex(dev);
      return n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  onMiss(rec: PuntRec, ctx: PuntContext): void {
    const node = this.init(ctx);
    const c = rec.cid;
    const seen: Flow = { saddr: c.saddr, daddr: c.daddr, sport: c.sport, dport: c.dport, proto: c.proto };
    // The negotiation always runs from this GE toward the remote end.
    const flow = c.dir === Dir.EGRESS ? seen : reverseFlow(seen);
    if (rec.reason === PuntReason.TRUNCATED) {
      node.onPitMiss(flow, null);
      return;
    }
    node.onPitMiss(flow, rec);
  }

  onControl(rec: PuntRec, ctx: PuntContext): void {
    const node = this.init(ctx);
    // Punted on egress = leaving without our mark. A GEN relays such messages for
    // the GEs inside it; a GES has no inside: something local forged it.
    if (rec.dir === Dir.EGRESS && this.opts.self.type === 'GES') {
      dprpMessagesRejectedTotal.inc({ reason: 'egress_on_ges' });
      return;
    }
    const ip = ipOfFrame(puntPacket(rec));
    if (!ip || ip.proto !== IPPROTO_ICMP) {
      dprpMessagesRejectedTotal.inc({ reason: 'wire_too_short' });
      return;
    }
    node.onControl(Buffer.from(ip.payload));
  }

  close(): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
  }
}

/** The IPv4 packet inside an Ethernet frame (one optional 802.1Q tag), or null. */
export function ipOfFrame(frame: Buffer): ReturnType<typeof parseIpv4> {
  if (frame.length < 14) return null;
  let off = 12;
  let type = frame.readUInt16BE(off);
  if (type === 0x8100 && frame.length >= 18) {
    off += 4;
    type = frame.readUInt16BE(off);
  }
  if (type !== 0x0800) return null;
  return parseIpv4(frame.subarray(off + 2));
}

/**
 * Factory for `handlers: [dprp]`. The GE's type and mode come from the agent
 * (the GMS GE info with --gms-data-dir, else --ge-type/--ge-mode, see
 * agent/ge-identity.ts); without them the handler refuses to start (it never
 * guesses OP for a CL router). GSCIP_GE_ADDR overrides the own address
 * (default: the first IPv4 of the first guarded interface).
 */
export const dprpHandlerFactory = ({ log, ge, extensions }: HandlerFactoryContext & { extensions?: PartExtensions }): DprpHandler => {
  if (!ge) {
    throw new Error('dprp: this GE\'s type and mode are unknown: run the agent with --gms-data-dir (the GMS defines them) or give --ge-type GES|GEN|GEA|GNAT|GSRA and --ge-mode OP|CL');
  }
  return new DprpHandler({ self: { type: ge.type, mode: ge.mode, addr: process.env.GSCIP_GE_ADDR }, log, ...dprpExtensionOptions(extensions) });
};

/** What the other parts add to DPRP: their option codecs (on top of the spec's) and hooks. */
export function dprpExtensionOptions(x: PartExtensions | undefined): Pick<DprpHandlerOptions, 'options' | 'optionHooks'> {
  if (!x) return {};
  // Every loaded part's codecs, the spec's among them (DPRP's own claim, part.ts); claims.ts made the types unique.
  return { options: new OptionCodecs(x.dprpOptionCodecs), optionHooks: () => x.dprpOptionHooks() };
}
