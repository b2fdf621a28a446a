/**
 * The Mobile PPC part at run time (PuntHandler): thin wiring of the engine
 * (engine.ts) onto the agent. At start it reads the guarded interfaces'
 * addresses and starts the rtnetlink monitor (move-events.ts); a move goes to
 * the engine; a CU / CU-ACK (its ICMP codes, routed to it alone by the part
 * contract) goes to the engine with the packet's IP addresses. Maps through
 * the flow table's kernel adapters (kind cit), keys from gscip_keys, sends
 * through the agent's control socket, metrics in metrics/metrics.ts.
 */
import { guardedTimers, partClock } from '../parts/runtime.js';
import { puntPacket, type PuntRec } from '../maps/codecs.js';
import { flowKeyWriter, kernelFlowMaps, KernelPitMap, movedFlowKeys, toCid, whyName } from '../flows/kernel-flow-maps.js';
import { PIT_F_WIRE_CSUM } from '../maps/abi.js';
import { ACTIONS, DIRS, PIT_STATES, ROLES } from '../maps/vocabulary.js';
import type { PuntContext, PuntHandler } from '../parts/handler.js';
import type { Logger } from '../log/logger.js';
import { controlOfFrame, frameControl, type ControlPacket } from '../parts/control-framing.js';
import { networkInterfaces } from 'node:os';
import { decodeCu, CuWireError } from './cu-wire.js';
import { TransitLearner } from './transit.js';
import { NextHopDevices } from './next-hop.js';
import {
  mobilityCuAnsweredTotal, mobilityCuFailedTotal, mobilityCuRefusedTotal, mobilityCuSentTotal, mobilityFlowsMovedTotal,
  mobilityCuRedirectedTotal, mobilityDdnsUpdatesTotal, mobilityTransitTotal, mobilityFlowsRekeyedTotal, mobilityHandoverSeconds, mobilityMovesTotal, mobilityRendezvousLookupsTotal,
} from '../metrics/metrics.js';
import { queryA } from './dns-query.js';
import { DnsRendezvous } from './rendezvous.js';
import { SubnetNat } from './subnet-nat.js';
import { AddressAnnouncer } from './announce.js';
import { MobilityEngine, type MobilityObserver } from './engine.js';
import type { FlowProtectedBy } from '../parts/dprp-extension.js';
import { TableWriter } from '../parts/published-table.js';
import type { PublishedMoves } from './published-moves.js';
import { AddressKeeper, currentAddresses, OldAddressRoutes } from './host-addresses.js';
import { MonitorReader, MoveDetector, routeMayCarryCu, type Move } from './move-events.js';
import { readFileSync } from 'node:fs';
import { FlowKeyReadCache } from '../pccom/flow-keys.js';
import type { AgentConfig } from '../config/agent-config.js';
import { sendUpdate } from './ddns.js';
import type { PitTemplate } from './cit.js';

/** Whether `addr` is one of this host's addresses (kept old addresses on lo included). */
export function isLocalAddress(addr: string): boolean {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && a.address === addr) return true;
  return false;
}

/**
 * isLocalAddress, remembered: a burst of CUs asked os.networkInterfaces() once
 * per message (~1 ms each on this VM, the largest single cost per CU at the
 * stationary end). An address found local is remembered LOCAL_ADDR_MS; one not
 * found is asked again every time (a CU to an address this host just got is
 * never sent on as transit); every address event of the monitor forgets all
 * (an address removed is not taken for local after the event).
 */
export const LOCAL_ADDR_MS = 1000;

export class LocalAddresses {
  private readonly seen = new Map<string, number>();
  constructor(private readonly nowMs: () => number = () => performance.now(), private readonly lookup: (addr: string) => boolean = isLocalAddress) {}

  has(addr: string): boolean {
    const at = this.seen.get(addr);
    const now = this.nowMs();
    if (at !== undefined && now - at < LOCAL_ADDR_MS) return true;
    if (!this.lookup(addr)) { this.seen.delete(addr); return false; }
    if (this.seen.size >= 256) this.seen.clear();
    this.seen.set(addr, now);
    return true;
  }

  forget(): void {
    this.seen.clear();
  }
}

export const promMobilityObserver: MobilityObserver = {
  moved: () => mobilityMovesTotal.inc(),
  cuSent: (retry) => mobilityCuSentTotal.inc({ retry: String(retry) }),
  cuAnswered: (s) => { mobilityCuAnsweredTotal.inc(); mobilityHandoverSeconds.observe(s); },
  cuFailed: (reason) => mobilityCuFailedTotal.inc({ reason }),
  refused: (reason, n) => mobilityCuRefusedTotal.inc({ reason }, Math.max(1, n)),
  flowMoved: (end, n) => mobilityFlowsMovedTotal.inc({ end }, n ?? 1),
  redirected: (why) => mobilityCuRedirectedTotal.inc({ why }),
  rekeyed: (step, n) => mobilityFlowsRekeyedTotal.inc({ step }, n),
};

/** The key ring is read from gscip_keys at most this often (ms). */
export const KEY_RING_MS = 200;

/** The second announcement of a new address, ms after the first. */
export const ANNOUNCE_AGAIN_MS = 200;

export class MobilePpcHandler implements PuntHandler {
  readonly name = 'mobile-ppc';
  private engine: MobilityEngine | null = null;
  private monitor: MonitorReader | null = null;
  private tick: NodeJS.Timeout | null = null;
  private keeper: AddressKeeper | null = null;
  private routes: OldAddressRoutes | null = null;
  private rendezvous: DnsRendezvous | null = null;
  private refresh: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly opts: {
    expiry?: { idleMs: number; closedMs: number };
    ddns?: AgentConfig['mobility']['ddns'];
    rendezvous?: AgentConfig['mobility']['rendezvous'];
    subnetNat?: AgentConfig['mobility']['subnetNat'];
    /** Where the moved flows' move counts are published for `gscip maps dump cit` (parts/published-table.ts); null: not published. */
    citFile?: string | null;
  } = {}) {
    this.citTable = new TableWriter(opts.citFile ?? null);
  }

  private readonly citTable: TableWriter;

  /** The moved flows' move counts, by stack flow (the map holds the translation, not the count). */
  private publishMoves(): void {
    this.citTable.write(this.engine!.moved().map((f) => ({
      proto: f.stack.proto, local: `${f.stack.local.addr}:${f.stack.local.port}`, peer: `${f.stack.remote.addr}:${f.stack.remote.port}`, moves: f.moves,
    } satisfies PublishedMoves)));
  }

  private nat: SubnetNat | null = null;
  private transit: TransitLearner | null = null;
  private sendOn: ((ifindex: number, frame: Buffer) => void) | null = null;
  private readonly hops = new NextHopDevices();
  private readonly local = new LocalAddresses();
  private announcer: AddressAnnouncer | null = null;

  /** A gratuitous ARP for the new address now and once more shortly after (announce.ts: the new router's neighbour entry). */
  private announce(m: Move): void {
    const a = this.announcer;
    if (!a) return;
    a.announce(m.ifname, m.to);
    setTimeout(() => a.announce(m.ifname, m.to), ANNOUNCE_AGAIN_MS).unref();
  }

  /** Both ends moving at once: the peers' names in DNS say where a peer is now (rendezvous.ts). */
  private startRendezvous(): DnsRendezvous | null {
    const r = this.opts.rendezvous;
    if (!r) return null;
    const rv = new DnsRendezvous({
      names: r.names,
      resolve: async (name) => {
        const a = await queryA(name, r.server, r.port);
        if (a.rcode !== 'NOERROR' && a.rcode !== 'NXDOMAIN') throw new Error(`rcode ${a.rcode}`);
        return a.addrs;
      },
      onError: (name, err) => this.log.warn({ name, err }, 'rendezvous: cannot resolve a peer name'),
    });
    void rv.refresh();
    this.refresh = setInterval(() => void rv.refresh(), r.refreshS * 1000);
    this.refresh.unref();
    return rv;
  }

  /** After a move: this GE's name now resolves to its new address (RFC 2136 + TSIG, ddns.ts). Never throws. */
  private updateDns(m: Move): void {
    const d = this.opts.ddns;
    if (!d) return;
    let secret: Buffer;
    try {
      secret = Buffer.from(readFileSync(d.keyFile, 'utf8').trim(), 'base64');
    } catch (e) {
      mobilityDdnsUpdatesTotal.inc({ result: 'error' });
      this.log.warn({ err: e, keyFile: d.keyFile }, 'DDNS: cannot read the TSIG key file');
      return;
    }
    sendUpdate({ zone: d.zone, name: d.name, addr: m.to, ttl: d.ttl, key: { name: d.keyName, secret } }, d.server, d.port)
      .then((a) => {
        const ok = a.rcode === 'NOERROR' && a.signed !== false;
        mobilityDdnsUpdatesTotal.inc({ result: ok ? 'noerror' : a.rcode.toLowerCase() });
        if (ok) this.log.info({ name: d.name, addr: m.to }, 'DDNS: name updated');
        else this.log.warn({ name: d.name, addr: m.to, ...a }, 'DDNS: update refused');
      })
      .catch((e: unknown) => {
        mobilityDdnsUpdatesTotal.inc({ result: 'no_answer' });
        this.log.warn({ err: e, name: d.name }, 'DDNS: update failed');
      });
  }

  private ring: { atMs: number; keys: Array<{ group: number; version: number; key: Buffer }> } | null = null;

  /** gscip_keys, newest version first per group; read at most every KEY_RING_MS (a CU burst asks per message). */
  private keyRing(ctx: PuntContext): Array<{ group: number; version: number; key: Buffer }> {
    const now = performance.now();
    if (!this.ring || now - this.ring.atMs >= KEY_RING_MS) {
      const keys = [...ctx.maps.keys.entries()].map(([k, v]) => ({ group: k.group_id, version: k.version, key: Buffer.from(v.key) })).sort((a, b) => a.group - b.group || b.version - a.version);
      this.ring = { atMs: now, keys };
    }
    return this.ring.keys;
  }

  /**
   * The peer a moved flow is encrypted with (its CU's sender), for DPRP's end
   * role: a GE the flow moved behind passes the ciphertext (PROTECTED,
   * docs/dprp.md) instead of encrypting it again. Null for a flow not moved
   * here or moved in the clear.
   */
  readonly flowProtectedBy: FlowProtectedBy = (flow) => {
    const r = this.engine?.table.find(flow);
    if (!r || !r.pit.some((e) => e.action === 'encrypt' || e.action === 'decrypt')) return null;
    return r.meta.remote.addr;
  };

  /** The engine (after start); for the flow view and tests. */
  get state(): MobilityEngine | null {
    return this.engine;
  }

  onStart(ctx: PuntContext): void {
    const onError = (what: string, err: string) => this.log.warn({ what, err }, 'Mobile PPC could not change the host');
    this.keeper = new AddressKeeper(onError);
    this.routes = new OldAddressRoutes(onError);
    this.announcer = new AddressAnnouncer(onError);
    // One flow-key view for the PIT reads and the engine's writes: inside a CU's scope a moved flow's
    // value is read once (FlowKeyReadCache).
    this.flowKeys = ctx.maps.flowKeys ? new FlowKeyReadCache(ctx.maps.flowKeys) : null;
    const keyMaps = { pit: ctx.maps.pit, xlat: ctx.maps.xlat, keys: ctx.maps.keys, ...(this.flowKeys ? { flowKeys: this.flowKeys } : {}) };
    const pitReader = new KernelPitMap(ctx.maps.pit, () => ctx.nowNs(), flowKeyWriter(keyMaps));
    const ifindex = ctx.interfaces[0]?.ifindex;
    this.rendezvous = this.startRendezvous();
    const rv = this.rendezvous;
    this.engine = new MobilityEngine({
      ...(rv ? {
        rendezvous: {
          locate: (peer: string) => rv.locate(peer).then((addr) => {
            mobilityRendezvousLookupsTotal.inc({ result: addr ? 'moved' : 'same' });
            if (addr) this.log.info({ peer, now: addr }, 'rendezvous: the peer moved');
            return addr;
          }, (e: unknown) => { mobilityRendezvousLookupsTotal.inc({ result: 'error' }); throw e; }),
        },
      } : {}),
      maps: kernelFlowMaps(keyMaps, () => ctx.nowNs()),
      pitGet: (s) => {
        const v = ctx.maps.pit.get(toCid(s.flow, s.dir));
        const action = v && ACTIONS.name(v.action);
        const role = v && ROLES.name(v.role);
        if (!v || !action || action === 'none' || !role || role === 'none') return undefined;
        // Fields assigned one by one, not spread (a CU's 32 flows read two entries each: issue 12).
        const t: PitTemplate = {
          action, role, group: v.group_id, version: v.key_version, state: PIT_STATES.name(v.state) === 'tentative' ? 'tentative' : 'confirmed',
        };
        if (v.prev_key_version) t.prevVersion = v.prev_key_version;
        // The flow's PCCOM form and reason travel with it to the new wire CIDs (both ends agreed on them).
        const why = whyName(v.flags);
        if (why) t.why = why;
        if (action === 'encrypt' && (v.flags & PIT_F_WIRE_CSUM)) t.wireCsum = true;
        // Its per-flow key too, counter and all: taken over from this slot (pccom/flow-keys.ts).
        const ks = movedFlowKeys(pitReader.flowKeysOf(toCid(s.flow, s.dir), v), s);
        if (ks.flowKey) t.flowKey = ks.flowKey;
        if (ks.prevFlowKey) t.prevFlowKey = ks.prevFlowKey;
        return t;
      },
      pitScan: (o) => pitReader.readOwned(o),
      keys: () => this.keyRing(ctx),
      send: (dst, icmp, src) => {
        if (ifindex === undefined) return;
        try {
          ctx.sendControl(ifindex, frameControl(src, dst, icmp));
        } catch (e) {
          this.log.warn({ err: e, dst }, 'CU send failed (the retry covers it)');
        }
      },
      keeper: this.keeper,
      router: this.routes,
      clock: partClock(ctx),
      timers: guardedTimers((what, fn) => this.guard(what, fn)),
      observer: promMobilityObserver,
      expiry: this.opts.expiry,
    });
    const kernelMaps = kernelFlowMaps(ctx.maps, () => ctx.nowNs());
    this.transit = new TransitLearner({
      maps: kernelMaps,
      keys: () => this.keyRing(ctx),
      has: (s) => ctx.maps.pit.get(toCid(s.flow, s.dir)) !== undefined,
      clock: partClock(ctx),
      expiry: this.opts.expiry,
    });
    this.sendOn = (i, f) => ctx.sendControl(i, f);
    const guarded = ctx.interfaces.map((i) => i.name);
    const detector = new MoveDetector(guarded, currentAddresses());
    if (this.opts.subnetNat && guarded[0]) {
      this.nat = new SubnetNat(guarded[0], this.opts.subnetNat.inside, onError);
      const addr = detector.current(guarded[0])[0];
      if (addr) this.nat.point(addr);
    }
    this.monitor = new MonitorReader({
      onEvent: (e) => this.guard('move', () => {
        if (e.kind === 'addr') this.local.forget();
        if (routeMayCarryCu(e, guarded)) this.engine!.onRoute();
        // A new address next to one with live flows: those flows' addresses kept local before the move (engine.ts).
        if (e.kind === 'addr' && !e.deleted && guarded.includes(e.ifname)) {
          const others = detector.current(e.ifname).filter((a) => a !== e.addr);
          if (others.length) this.engine!.onAddressAdded(others);
        }
        for (const m of detector.on(e)) {
          // New flows from the subnet take the new address; established ones keep their NAT (the CIT moves them).
          if (m.ifname === guarded[0]) this.nat?.point(m.to);
          this.announce(m);
          // A move reads every flow's value: one sweep of the flow-key map instead of a lookup per slot.
          const n = this.inScope(() => { this.flowKeys?.preload(); return this.engine!.onMove(m); });
          this.log.info({ ...m, flows: n }, 'address changed: moving live flows');
          this.updateDns(m);
        }
      }),
      onError: (e) => this.log.warn({ err: e }, 'rtnetlink monitor'),
    });
    this.tick = setInterval(() => this.guard('sweep', () => { this.engine!.sweep(); this.transit!.sweep(); this.publishMoves(); }), 1000);
    this.tick.unref();
    this.log.info({ guarded, addresses: guarded.map((g) => detector.current(g)) }, 'Mobile PPC started: watching address events');
  }

  onControl(rec: PuntRec): void {
    if (!this.engine) return;
    const cp = controlOfFrame(puntPacket(rec));
    if (!cp) {
      mobilityCuRefusedTotal.inc({ reason: 'wire' });
      return;
    }
    // A CU between two other GEs crossing this one (on the new path): learnt from, then sent on.
    if (!this.local.has(cp.dst)) return this.guard('transit', () => this.onTransit(cp, rec));
    this.guard('control', () => this.inScope(() => this.engine!.onControl(Buffer.from(cp.msg), cp.src, cp.dst)));
  }

  /** transit.ts: this GE's PIT entries for the flows a CU moves, written before the CU goes on (same bytes, same addresses). */
  private onTransit(cp: ControlPacket, rec: PuntRec): void {
    let result: string;
    try {
      result = this.transit!.onCrossing(decodeCu(Buffer.from(cp.msg)), cp.src, cp.dst);
    } catch (e) {
      if (!(e instanceof CuWireError)) throw e;
      result = 'wire';
    }
    mobilityTransitTotal.inc({ result });
    // Punted on egress: it leaves where it was going; on ingress: out of the interface the kernel routes it
    // to, never back out of the one it came in on (it would come back: a loop).
    const ifindex = rec.dir === DIRS.code('egress') ? rec.ifindex : this.hops.ifindexFor(cp.dst);
    if (ifindex === undefined || (rec.dir !== DIRS.code('egress') && ifindex === rec.ifindex)) {
      mobilityTransitTotal.inc({ result: 'no_route' });
      return;
    }
    const msg = Buffer.from(cp.msg);
    this.sendOn!(ifindex, frameControl(cp.src, cp.dst, msg, cp.sport === undefined ? { icmp: true } : { sport: cp.sport }));
  }

  private flowKeys: FlowKeyReadCache | null = null;

  /** One synchronous burst (a CU, a move): flow-key reads remembered within it (FlowKeyReadCache). */
  private inScope<T>(fn: () => T): T {
    return this.flowKeys ? this.flowKeys.scope(fn) : fn();
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e, what }, 'Mobile PPC internal error');
    }
  }

  close(): void {
    this.monitor?.close();
    if (this.tick) clearInterval(this.tick);
    if (this.refresh) clearInterval(this.refresh);
    this.engine?.close();
    this.routes?.removeAll();
    this.nat?.remove();
    this.keeper?.releaseAll();
  }
}
