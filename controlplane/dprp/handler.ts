/**
 * DprpHandler: the agent's punt handler for DPRP (controlplane/parts/handler.ts
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
import { guardedTimers, partClock, type PartTimers } from '../parts/runtime.js';
import { ifNameToIndex } from '../bpf/libc.js';
import { loadIdentity } from '../gms/agent-files.js';
import { Action, Dir, PuntReason, UDP_CTR_LIMIT } from '../maps/abi.js';
import { puntPacket, type PuntRec } from '../maps/codecs.js';
import { flowKeyWriter, KernelPitMap } from '../flows/kernel-flow-maps.js';
import type { HandlerFactoryContext, PuntContext, PuntHandler } from '../parts/handler.js';
import type { ClaimedOptionHooks, FlowProtectedBy } from '../parts/dprp-extension.js';
import type { PartExtensions } from '../parts/part.js';
import type { NatfDprpHooks } from './natf-hooks.js';
import { OptionCodecs } from './option-codecs.js';
import type { Logger } from '../log/logger.js';
import {
  dprpMessagesRejectedTotal, dprpNegotiationSeconds, dprpOwnGmsFlowsTotal, dprpRekeySignalsTotal, dprpNegotiationsCompletedTotal, dprpNegotiationsFailedTotal,
  dprpNegotiationsStartedTotal, dprpPlaintextFlowsTotal, dprpNatFollowTotal, dprpPolicyOverridesTotal, dprpSendsSuppressedTotal, dprpDowngradesRefusedTotal, dprpTransitReinstatedTotal, dprpForeignControlTotal,
} from '../metrics/metrics.js';
import { lookup as dnsLookup } from 'node:dns/promises';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import { EncryptionRequired, parseRequiredEntry, type Resolve4 } from './encryption-required.js';
import type { GroupKey, KeyRing } from './auth.js';
import { controlOfFrame, frameControl, ipBytesOfFrame } from '../parts/control-framing.js';
import { ForeignControlRelay, isDprpCode } from './foreign-control.js';
import { firstPacketMark } from './first-packet.js';
import type { ControlVia } from './node-deps.js';
import { DprpNode, type DprpConfig, type DprpObserver, type SelfInfo } from './node.js';
import { pitEntriesFor, reverseFlow, type PitEntry } from './pit-entries.js';
import type { PitWriter } from './node-deps.js';
import { Stage, stageProfile } from './stage-profile.js';
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
  /** NAT-f's hooks (natf-hooks.ts), read when the engine starts. */
  natf?: () => NatfDprpHooks | null;
  /** Who else protects a flow another part's entries encrypt (parts' FlowProtectedBy; dprp-extension.ts). */
  protectedBy?: () => FlowProtectedBy | null;
  /** UDP per-flow keys: the datagram counter at which the fast path asks for a re-key (default 2^47; GSCIP_PCCOM_UDP_REKEY_AT). */
  udpRekeyAt?: bigint;
  /** Destinations encryption is required to (entries), read on each housekeeping tick. */
  requireEncryption?: () => readonly string[];
  /** Test hook: the resolver for requireEncryption names (default: the system resolver, IPv4). */
  resolve4?: Resolve4;
  /**
   * This agent's own GMS endpoints (IPv4 address + TCP port, from its GMS
   * identity's URLs), read on each miss: a TCP flow from this host to one of
   * them is passed at once (PIT why own_gms) instead of negotiated. A CL GE
   * whose GMS is reached through its guarded interface would otherwise cut
   * itself off from its own GMS (docs/gms.md "The agent's own GMS connection").
   */
  gmsEndpoints?: () => readonly GmsEndpoint[];
  log: Logger;
}

export interface GmsEndpoint { addr: string; port: number }

/** The IPv4-literal endpoints of GMS URLs (https, default port 443); a name is skipped (not resolved on the punt path). */
export function gmsEndpointsOf(urls: readonly string[]): GmsEndpoint[] {
  const out: GmsEndpoint[] = [];
  for (const u of urls) {
    try {
      const x = new URL(u);
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(x.hostname)) continue;
      out.push({ addr: x.hostname, port: x.port ? Number(x.port) : (x.protocol === 'http:' ? 80 : 443) });
    } catch { /* not a URL: nothing */ }
  }
  return out;
}

/** Prometheus side of the node's observer. */
/** An egress miss from an unknown source re-reads the kernel view at most this often (a move just happened). */
export const ROUTES_STALE_MS = 500;

export const promObserver: DprpObserver = {
  started: (reason) => dprpNegotiationsStartedTotal.inc({ reason }),
  completed: (outcome, seconds) => {
    dprpNegotiationsCompletedTotal.inc({ outcome });
    dprpNegotiationSeconds.observe(seconds);
  },
  failed: (reason) => dprpNegotiationsFailedTotal.inc({ reason }),
  rejected: (reason) => dprpMessagesRejectedTotal.inc({ reason }),
  overridden: () => dprpPolicyOverridesTotal.inc(),
  suppressed: (reason) => dprpSendsSuppressedTotal.inc({ reason }),
  natFollow: (what) => dprpNatFollowTotal.inc({ what }),
  downgradeRefused: () => dprpDowngradesRefusedTotal.inc(),
  reinstated: () => dprpTransitReinstatedTotal.inc(),
};

/** Whether any of the flow's four PIT slots (both directions, both hooks) encrypts or decrypts now. */
function encryptedInPit(ctx: PuntContext, f: Flow): boolean {
  for (const [saddr, daddr, sport, dport] of [[f.saddr, f.daddr, f.sport, f.dport], [f.daddr, f.saddr, f.dport, f.sport]] as const) {
    for (const dir of [Dir.INGRESS, Dir.EGRESS]) {
      const v = ctx.maps.pit.get({ saddr, daddr, sport, dport, proto: f.proto, dir });
      if (v && (v.action === Action.ENCRYPT || v.action === Action.DECRYPT)) return true;
    }
  }
  return false;
}

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

async function systemResolve4(name: string): Promise<string[]> {
  return (await dnsLookup(name, { all: true, family: 4 })).map((a) => a.address);
}

export class DprpHandler implements PuntHandler {
  readonly name = 'dprp';
  private readonly required: EncryptionRequired;
  private requiredSig = '';
  /** Plaintext and refused flows, logged at most once a minute per destination and why. */
  private readonly plainLog: RateLimitedLog;
  private readonly observer: DprpObserver;
  private node: DprpNode | null = null;
  private foreignRelay: ForeignControlRelay | null = null;
  private ctx: PuntContext | null = null;
  private readonly keys = new MapKeyRing();
  private readonly routes = new RouteTable();
  private guarded = new Set<string>();
  private selfInfo: SelfInfo | null = null;
  private tick: NodeJS.Timeout | null = null;
  private lastRoutes = 0;
  private routesPending = false;
  private readonly log: Logger;

  constructor(private readonly opts: DprpHandlerOptions) {
    this.log = opts.log;
    this.required = new EncryptionRequired({
      resolve4: opts.resolve4 ?? systemResolve4,
      onResolveError: (name, err) => this.log.warn({ name, err: (err as Error).message }, 'requireEncryption: name does not resolve; it matches nothing until it does'),
    });
    this.plainLog = new RateLimitedLog((f, msg) => this.log.warn(f, msg));
    this.observer = {
      ...promObserver,
      natFollow: (what, d) => {
        dprpNatFollowTotal.inc({ what });
        const f = (x: Flow | null | undefined) => (x ? `${x.saddr}:${x.sport} -> ${x.daddr}:${x.dport}/${x.proto}` : null);
        if (d) this.log.debug({ flow: f(d.wire), to: f(d.to) }, 'flow past a NAT: entries placed on the addresses its first packet came with');
        else this.log.warn({ what }, 'flow past a NAT not followed');
      },
      plaintext: (result, why, flow) => {
        dprpPlaintextFlowsTotal.inc({ result, why });
        this.plainLog.note(`${result}|${why}|${flow.daddr}`, {
          result, why, flow: `${flow.saddr}:${flow.sport} -> ${flow.daddr}:${flow.dport}/${flow.proto}`,
        }, result === 'pass' ? `flow carried in plaintext: ${why}` : `flow refused: ${why}`);
      },
    };
    if (!(opts.self.type in GE_TYPE_CODES)) throw new RangeError(`dprp: self.type must be one of ${Object.keys(GE_TYPE_CODES).join(', ')} (got ${opts.self.type})`);
    if (!(opts.self.mode in MODE_CODES)) throw new RangeError(`dprp: self.mode must be OP or CL (got ${opts.self.mode})`);
  }

  /** TCP from this host (its own address) to one of its own GMS endpoints. */
  private ownGmsFlow(flow: Flow): boolean {
    if (flow.proto !== 6 || !this.opts.gmsEndpoints) return false;
    if (!this.routes.isOwnOrBroadcast(flow.saddr) && flow.saddr !== this.selfInfo!.addr) return false;
    let eps: readonly GmsEndpoint[];
    try { eps = this.opts.gmsEndpoints(); } catch { return false; }
    return eps.some((e) => e.addr === flow.daddr && e.port === flow.dport);
  }

  /** The node (after the first punt); for tests and the CLI. */
  get engine(): DprpNode | null {
    return this.node;
  }

  heldUnauthenticated(): number {
    return this.node?.heldUnauthenticated ?? 0;
  }

  /** Periodic refresh: never blocks the punt path (the `ip` runs are asynchronous); one at a time. */
  private refreshRoutes(): void {
    if (this.routesPending) return;
    this.routesPending = true;
    this.lastRoutes = Date.now();
    const read = this.opts.readKernel;
    (read ? Promise.resolve().then(read) : readKernelRoutesAsync())
      .then((view) => { if (this.tick) { this.routes.update(view); this.takeSelfAddr(view); } })
      .catch((e: unknown) => this.log.warn({ err: e }, 'could not read routes; keeping the previous snapshot'))
      .finally(() => { this.routesPending = false; });
  }

  /**
   * This GE's address follows its first guarded interface (unless configured:
   * self.addr): after a move (Mobile PPC, docs/mobility.md) negotiations start
   * from the new address, not the one the agent started with.
   */
  private takeSelfAddr(view: KernelView): void {
    if (this.opts.self.addr || !this.selfInfo) return;
    const first = this.ctx?.interfaces[0]?.name;
    const now = view.addrs.filter((a) => a.dev === first).map((a) => a.addr);
    if (!now.length || now.includes(this.selfInfo.addr)) return;
    this.log.info({ from: this.selfInfo.addr, to: now[0] }, 'DPRP: this GE\'s address changed');
    this.selfInfo.addr = now[0];
    stageProfile.self = now[0];
  }

  /**
   * An egress miss from a source that is neither this host's nor behind it in
   * the kernel view: the view is stale (this GE's address just changed). Read
   * it again now, at most every ROUTES_STALE_MS, before negotiating.
   */
  private refreshIfStale(saddr: string): void {
    if (Date.now() - this.lastStaleRead < ROUTES_STALE_MS) return;
    if (this.routes.locality(saddr, this.guarded, this.opts.self.type !== 'GES') !== 'other') return;
    this.readRoutesNow();
  }

  /** The kernel's routes and addresses read now (synchronously), this GE's address taken from them. */
  private readRoutesNow(): void {
    this.lastStaleRead = Date.now();
    try {
      const view = (this.opts.readKernel ?? readKernelRoutes)();
      this.routes.update(view);
      this.takeSelfAddr(view);
      this.lastRoutes = Date.now();
    } catch (e) {
      this.log.warn({ err: e }, 'could not read routes; keeping the previous snapshot');
    }
  }

  /**
   * A negotiation names the GNAT's NAT address in use (natf-hooks.ts
   * `external`, which `nat.follow` moves) and the snapshot does not hold it:
   * the address just came to this host; read the view again now (at most
   * every ROUTES_STALE_MS) rather than forward a DDE to itself.
   */
  private refreshIfOwnExternal(addr: string, natf: NatfDprpHooks | null): void {
    if (!natf?.external || this.routes.isLocal(addr) || natf.external() !== addr) return;
    if (Date.now() - this.lastStaleRead < ROUTES_STALE_MS) return;
    this.readRoutesNow();
  }

  private lastStaleRead = 0;
  private pit: PitWriter | null = null;

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
    stageProfile.self = addr;
    this.keys.refresh(ctx);
    this.refreshRequired();
    this.required.start();
    const canHaveInside = this.opts.self.type !== 'GES';
    // The PIT through the flow table's kernel adapter (entry ages kept across rewrites).
    // Per-flow keys (gscip_flow_keys) are written with the entries (controlplane/pccom/flow-keys.ts).
    const natf = this.opts.natf?.() ?? null;
    const kernelPit = new KernelPitMap(ctx.maps.pit, () => ctx.nowNs(), flowKeyWriter(ctx.maps, { udpRekeyAt: this.opts.udpRekeyAt }));
    const pit = stageProfile.on ? timedPit(kernelPit) : kernelPit;
    this.pit = pit;
    this.node = new DprpNode({
      self: this.selfInfo,
      keys: this.keys,
      clock: partClock(ctx),
      timers: answerFirstTimers(guardedTimers((what, fn) => this.guard(what, fn)), () => ctx.takePending?.()),
      transport: { send: (dst, icmp, src, via) => this.send(dst, icmp, src, via) },
      pit,
      stash: {
        // A truncated miss has no stashed packet (handle null): nothing to release or drop.
        release: (hs) => {
          const t0 = stageProfile.on ? stageProfile.now() : 0;
          for (const h of hs) if (h) ctx.release(h as PuntRec);
          if (t0) stageProfile.sub(Stage.release, t0);
        },
        drop: (hs, reason) => { for (const h of hs) if (h) ctx.drop(h as PuntRec, reason); },
      },
      locality: (a) => { this.refreshIfOwnExternal(a, natf); return this.routes.locality(a, this.guarded, canHaveInside); },
      isOwnOrBroadcast: (a) => { this.refreshIfOwnExternal(a, natf); return this.routes.isOwnOrBroadcast(a); },
      encryptionRequired: (a) => this.required.matches(a),
      observer: this.observer,
      config: this.opts.config,
      options: this.opts.options,
      optionHooks: this.opts.optionHooks?.() ?? [],
      natf,
      protectedBy: this.opts.protectedBy?.() ?? null,
      encryptedNow: (f) => encryptedInPit(ctx, f),
    });
    this.foreignRelay = new ForeignControlRelay(this.node.cfg.foreignControlLimit, (a) => this.routes.isOwnOrBroadcast(a) || a === this.selfInfo!.addr);
    const adopted = this.node.adopt(kernelPit.readOwned());
    if (adopted) this.log.info({ flows: adopted }, 'adopted the DPRP entries of a previous agent');
    const tickMs = this.opts.tickMs ?? 1000;
    this.tick = setInterval(() => this.guard('tick', () => this.housekeeping()), tickMs);
    this.tick.unref();
    this.log.info({ self: this.selfInfo, guarded: [...this.guarded], keys: this.keys.all().length }, 'DPRP engine started');
    return this.node;
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e, what }, 'DPRP internal error');
    }
  }

  /** Takes up a changed requireEncryption list (config + GMS); names resolve in the background. */
  private refreshRequired(): void {
    const list = this.opts.requireEncryption?.() ?? [];
    const sig = list.join('\n');
    if (sig === this.requiredSig) return;
    this.requiredSig = sig;
    const entries = list.flatMap((v, i) => {
      try { return [parseRequiredEntry(v, `requireEncryption[${i}]`)]; } catch (e) {
        this.log.error({ err: (e as Error).message }, 'requireEncryption: entry ignored');
        return [];
      }
    });
    this.required.set(entries);
    this.log.info({ requireEncryption: list }, list.length ? 'encryption required to these destinations' : 'no destination requires encryption');
  }

  private housekeeping(): void {
    const ctx = this.ctx!;
    this.refreshRequired();
    if (this.keys.refresh(ctx)) {
      const n = this.node!.onKeysChanged();
      if (n) this.log.info({ renegotiating: n }, 'new key version: re-negotiating live flows');
    }
    if (Date.now() - this.lastRoutes >= (this.opts.routesRefreshMs ?? 10_000)) this.refreshRoutes();
    this.node!.sweep();
  }

  /** A local firewall refused an ICMP 253 send (EPERM): none is tried again (UDP is unaffected). */
  private icmpRefused = false;

  /** src: a relayed DDE keeps the start GE's source (node.ts onControl checks it); else this GE's address. */
  private send(dst: string, icmp: Buffer, src?: string, via?: ControlVia): void {
    const ctx = this.ctx!;
    const ifindex = this.ifindexToward(dst);
    if (ifindex === undefined) return;
    // ICMP 253 sends (copies for older agents, answers in kind) stop once a local firewall refused one.
    if (via?.icmp && this.icmpRefused) return;
    const t0 = stageProfile.on ? stageProfile.now() : 0;
    try {
      ctx.sendControl(ifindex, frameControl(src ?? this.selfInfo!.addr, dst, icmp, via));
    } catch (e) {
      if (via?.icmp && (e as { code?: string }).code === 'EPERM') {
        // A "drop invalid" host firewall: ICMP 253 is INVALID to conntrack. Said once; UDP is unaffected.
        if (!this.icmpRefused) this.log.info({ dst }, 'a local firewall refuses ICMP type 253: no more ICMP 253 sends (copies of retransmitted DDEs for agents older than the UDP transport)');
        this.icmpRefused = true;
        return;
      }
      // Counted by the agent; the negotiation's retry covers a lost send (on an interface looked up again).
      const dev = this.routes.devFor(dst);
      if (dev) this.routes.forget(dev);
      this.log.warn({ err: e, dst }, 'DPRP send failed');
    } finally {
      if (t0) stageProfile.sub(Stage.send, t0);
    }
  }

  /** The interface the route to dst leaves by (a guarded one, or a GEN's inside), else the first guarded one. */
  private ifindexToward(dst: string): number | undefined {
    const ctx = this.ctx!;
    const dev = this.routes.devFor(dst);
    return ctx.interfaces.find((i) => i.name === dev)?.ifindex ?? (dev ? this.routes.ifindexOf(dev, (d) => this.ifindexOf(d)) : undefined) ?? ctx.interfaces[0]?.ifindex;
  }

  /** A control message of a type DPRP does not speak, seen in transit: forwarded unchanged or refused, counted (foreign-control.ts). */
  private foreign(frame: Buffer, src: string, dst: string): void {
    const ip = ipBytesOfFrame(frame);
    const out = ip ? this.foreignRelay!.decide(ip, src, dst, Date.now()) : 'malformed';
    if (typeof out === 'string') {
      dprpForeignControlTotal.inc({ outcome: out });
      return;
    }
    const ifindex = this.ifindexToward(dst);
    if (ifindex === undefined) return;
    try {
      this.ctx!.sendControl(ifindex, out);
      dprpForeignControlTotal.inc({ outcome: 'forwarded' });
    } catch (e) {
      this.log.warn({ err: e, dst }, 'forwarding a control message of another part failed');
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
    if (!stageProfile.on) { this.miss(rec, ctx); return; }
    stageProfile.begin(rec.ts_ns);
    try { this.miss(rec, ctx); } finally { stageProfile.end(); }
  }

  private miss(rec: PuntRec, ctx: PuntContext): void {
    const node = this.init(ctx);
    const c = rec.cid;
    const seen: Flow = { saddr: c.saddr, daddr: c.daddr, sport: c.sport, dport: c.dport, proto: c.proto };
    // The negotiation always runs from this GE toward the remote end.
    const flow = c.dir === Dir.EGRESS ? seen : reverseFlow(seen);
    if (c.dir === Dir.EGRESS && flow.saddr !== this.selfInfo!.addr) this.refreshIfStale(flow.saddr);
    // Only an egress miss opens it (this host's SYN): a packet arriving from the GMS's address never does.
    if (c.dir === Dir.EGRESS && this.ownGmsFlow(flow)) {
      // Exactly this 5-tuple, all four hooks, plaintext (it is TLS): never a negotiation, never a CL refusal.
      this.pit!.install(pitEntriesFor(flow, 'pass', 'start', null, 'confirmed', { why: 'own_gms' }));
      dprpOwnGmsFlowsTotal.inc();
      this.log.info({ flow: `${flow.saddr}:${flow.sport} -> ${flow.daddr}:${flow.dport}/tcp` }, 'the agent\'s own GMS connection: passed (why own_gms)');
      if (rec.reason !== PuntReason.TRUNCATED) ctx.release(rec);
      return;
    }
    if (rec.reason === PuntReason.TRUNCATED) {
      node.onPitMiss(flow, null, c.dir !== Dir.EGRESS);
      return;
    }
    node.onPitMiss(flow, rec, c.dir !== Dir.EGRESS, firstPacketMark(puntPacket(rec)));
  }

  /** PCCOM's re-key signal (rec.cid: the PIT entry whose per-flow key wants a new one). */
  onRekey(rec: PuntRec, ctx: PuntContext): void {
    const node = this.init(ctx);
    const answer = node.onRekeyWanted(rec.cid);
    dprpRekeySignalsTotal.inc({ answer });
    if (answer === 'started') this.log.info({ cid: rec.cid }, 'PCCOM per-flow key asked for a re-key: negotiating the flow again');
  }

  onControl(rec: PuntRec, ctx: PuntContext): void {
    if (!stageProfile.on) { this.control(rec, ctx); return; }
    stageProfile.begin(rec.ts_ns);
    try { this.control(rec, ctx); } finally { stageProfile.end(); }
  }

  private control(rec: PuntRec, ctx: PuntContext): void {
    const node = this.init(ctx);
    // Punted on egress = leaving without our mark. A GEN relays such messages for
    // the GEs inside it; a GES has no inside: something local forged it.
    if (rec.dir === Dir.EGRESS && this.opts.self.type === 'GES') {
      dprpMessagesRejectedTotal.inc({ reason: 'egress_on_ges' });
      return;
    }
    const frame = puntPacket(rec);
    const cp = controlOfFrame(frame);
    if (!cp) {
      dprpMessagesRejectedTotal.inc({ reason: 'wire_too_short' });
      return;
    }
    // Not a DPRP message (another part's, which this GE does not run), to another host: forwarded, not swallowed.
    if (!isDprpCode(cp.msg[1])) { this.foreign(frame, cp.src, cp.dst); return; }
    node.onControl(Buffer.from(cp.msg), { src: cp.src, dst: cp.dst, ...(cp.sport === undefined ? { icmp: true } : { sport: cp.sport }) });
  }

  close(): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
    this.required.stop();
  }
}

/**
 * DPRP's timers (retransmissions, the end-candidate waits) first take in the
 * punts the ring already holds: libuv runs due timers before it polls, so on
 * a busy agent a DDE's timeout fired while its RGI sat in the ring, and both
 * agents then handled a duplicate (issue 15: 37-57 % of the negotiations of a
 * loaded rate run, 5-20 % with this). An answer taken in cancels its timer,
 * which then does nothing.
 */
export function answerFirstTimers(timers: PartTimers, takePending: () => void): PartTimers {
  return {
    after: (ms, fn) => {
      let cancelled = false;
      const t = timers.after(ms, () => {
        takePending();
        if (!cancelled) fn();
      });
      return { cancel: () => { cancelled = true; t.cancel(); } };
    },
  };
}

/** The PIT writer with each write timed as the map_writes stage (stage profile on). */
function timedPit(pit: PitWriter): PitWriter {
  return {
    install: (es: readonly PitEntry[]) => {
      const t0 = stageProfile.now();
      try { pit.install(es); } finally { stageProfile.sub(Stage.map_writes, t0); }
    },
    remove: (ks) => {
      const t0 = stageProfile.now();
      try { pit.remove(ks); } finally { stageProfile.sub(Stage.map_writes, t0); }
    },
    activity: pit.activity ? (k) => pit.activity!(k) : undefined,
  };
}

export { ipOfFrame } from '../parts/control-framing.js';

/**
 * Factory for `handlers: [dprp]`. The GE's type and mode come from the agent
 * (the GMS GE info with --gms-data-dir, else --ge-type/--ge-mode, see
 * agent/ge-identity.ts); without them the handler refuses to start (it never
 * guesses OP for a CL router). GSCIP_GE_ADDR overrides the own address
 * (default: the first IPv4 of the first guarded interface).
 */
export const dprpHandlerFactory = ({ log, ge, extensions, requireEncryption, config }: HandlerFactoryContext & { extensions?: PartExtensions }): DprpHandler => {
  if (!ge) {
    throw new Error('dprp: this GE\'s type and mode are unknown: run the agent with --gms-data-dir (the GMS defines them) or give --ge-type GES|GEN|GEA|GNAT|GSRA and --ge-mode OP|CL');
  }
  return new DprpHandler({
    self: { type: ge.type, mode: ge.mode, addr: process.env.GSCIP_GE_ADDR }, log, requireEncryption, ...dprpExtensionOptions(extensions),
    ...(config?.gms ? { gmsEndpoints: ownGmsEndpoints(config.gms.dataDir) } : {}),
    ...udpRekeyAtFromEnv(process.env.GSCIP_PCCOM_UDP_REKEY_AT),
  });
};

/** The endpoints of the agent's GMS identity (gms.json urls), read again at most once a second. */
function ownGmsEndpoints(dataDir: string): () => readonly GmsEndpoint[] {
  let at = 0; let eps: GmsEndpoint[] = [];
  return () => {
    if (Date.now() - at < 1000) return eps;
    at = Date.now();
    try { eps = gmsEndpointsOf(loadIdentity(dataDir).urls); } catch { /* not enrolled (yet): none */ }
    return eps;
  };
}

/**
 * GSCIP_PCCOM_UDP_REKEY_AT: the UDP datagram counter at which a per-flow key
 * asks for a re-key (an integer 1 .. 2^48; default 2^47). Anything else is refused.
 */
export function udpRekeyAtFromEnv(v: string | undefined): Pick<DprpHandlerOptions, 'udpRekeyAt'> {
  if (v === undefined || v === '') return {};
  if (!/^[0-9]{1,15}$/.test(v) || BigInt(v) < 1n || BigInt(v) > UDP_CTR_LIMIT) {
    throw new Error(`GSCIP_PCCOM_UDP_REKEY_AT: '${v}' is not an integer from 1 to 2^48 (the UDP per-flow counter at which to re-key)`);
  }
  return { udpRekeyAt: BigInt(v) };
}

/** What the other parts add to DPRP: their option codecs (on top of the spec's) and hooks. */
export function dprpExtensionOptions(x: PartExtensions | undefined): Pick<DprpHandlerOptions, 'options' | 'optionHooks' | 'natf' | 'protectedBy'> {
  if (!x) return {};
  // Every loaded part's codecs, the spec's among them (DPRP's own claim, part.ts); claims.ts made the types unique.
  return { options: new OptionCodecs(x.dprpOptionCodecs), optionHooks: () => x.dprpOptionHooks(), natf: () => x.natfDprpHooks?.() ?? null,
    protectedBy: () => x.flowProtectedBy?.() ?? null };
}
