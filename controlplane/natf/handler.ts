/**
 * The `nat` part at run time: expires the GNAT's NAT sessions every
 * `nat.sweepMs` (nat-sweep.ts) and publishes occupancy. It handles no punts:
 * the fast path allocates (bpf/lib/nat.h). The NAT configuration itself is
 * written by the agent before it attaches (agent.ts), so no packet ever
 * leaves untranslated between attach and this part's start. With
 * `nat.follow` it rewrites that configuration when the outside interface's
 * address changes (external-follow.ts), flushes the old address's sessions,
 * republishes the ACT's names and reports the address to the GMS.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PuntContext, PuntHandler } from '../parts/handler.js';
import { natActEntries, natDdnsUpdatesTotal, natExternalChangesTotal, natExternalReportsTotal, natSessionsFlushedTotal, natOrphanClaimsRemovedTotal, natPortRangeSize, natPortsUsed, natSessions, natSessionsCapacity, natSessionsExpiredTotal } from '../metrics/metrics.js';
import { actSource, type ActSource } from './act-source.js';
import { ActDdns } from './act-ddns.js';
import { NAT_STATES } from './nat-expiry.js';
import { NatSweeper, type NatSweepResult } from './nat-sweep.js';
import { actDecide, parseDeliveredAct, relayTarget, type ActEntry } from './act.js';
import { InboundMapper } from './inbound.js';
import type { NatfDprpHooks, NatfInbound } from '../dprp/natf-hooks.js';
import { natInboundMappingsTotal, natOutboundMappingsTotal } from '../metrics/metrics.js';
import { TableWriter } from './tables-file.js';
import { natCfgOf, parseInsidePrefix, prefixContains, type NatConfig } from './nat-config.js';
import { ExternalFollower, type ExternalChange } from './external-follow.js';
import { flushExternal } from './nat-flush.js';
import { MonitorReader } from '../mobility/move-events.js';
import { currentAddresses } from '../mobility/host-addresses.js';
import { ExternalReporter } from './external-report.js';
import { reportExternal } from '../gms/client.js';
import { NatOrigin } from '../maps/abi.js';
import type { NatMaps } from '../maps/gscip-maps.js';

export class NatHandler implements PuntHandler {
  readonly name = 'nat';
  private timer: NodeJS.Timeout | null = null;
  private sweeper: NatSweeper | null = null;

  private readonly act: ActSource;
  private readonly ddns: ActDdns | null;
  private actKnown = false;
  private publishing = false;
  private currentAct: readonly ActEntry[] = [];
  private mapper: InboundMapper | null = null;
  private natMaps: NatMaps | null = null;
  /** The external address in use: `nat.external`, or where `nat.follow` took it since. */
  private external = '';
  private monitor: MonitorReader | null = null;
  /** nat.follow with a GMS: the address in use, reported to every replica (every GE's `gnats`). */
  private reporter: ExternalReporter | null = null;

  /**
   * The GNAT's half of NAT-f's extended DPRP (dprp/natf-hooks.ts): a DDE naming
   * a private host is checked against the ACT (actDecide, with the groups the
   * start proved); allowed, the host's port is mapped for this peer alone
   * (InboundMapper) and the mapped port Z goes into this GE's RGI record.
   */
  readonly natfDprpHooks: NatfDprpHooks = {
    inbound: ({ flow, name, peerGroups }): NatfInbound => {
      if (!this.mapper) { natInboundMappingsTotal.inc({ result: 'not_a_gnat' }); return { ok: false, reason: 'not_a_gnat' }; }
      const d = actDecide(this.currentAct, name, peerGroups);
      if (!d.allow) {
        natInboundMappingsTotal.inc({ result: d.reason });
        this.log.info({ name, peer: flow.saddr, reason: d.reason }, 'NAT-f: DDE naming a private host refused');
        return { ok: false, reason: d.reason };
      }
      const r = this.mapper.map({ proto: flow.proto, inside: { addr: d.address, port: flow.dport }, peer: { addr: flow.saddr, port: flow.sport } });
      if (!r.ok) {
        natInboundMappingsTotal.inc({ result: r.reason });
        this.log.warn({ name, peer: flow.saddr, reason: r.reason }, 'NAT-f: no inbound mapping (NAT table)');
        return { ok: false, reason: r.reason };
      }
      natInboundMappingsTotal.inc({ result: r.created ? 'created' : 'reused' });
      // A GE itself: relay inward to it; a Term behind a GEN inside (via): relay to that GEN, NATF_LIP the host.
      return { ok: true, port: r.extPort, ...relayTarget(d) };
    },
    mappedInside: ({ flow }) => {
      const maps = this.natMaps;
      if (!maps || !this.cfg || flow.daddr !== this.external) return null;
      const key = maps.ports.get({ port: flow.dport, proto: flow.proto });
      if (!key || key.daddr !== flow.saddr || key.dport !== flow.sport) return null;
      const s = maps.sessions.get(key);
      if (!s || s.origin !== NatOrigin.INBOUND) return null;
      const e = this.currentAct.find((x) => x.address === key.saddr && relayTarget(x) !== null);
      return e ? { ...relayTarget(e)!, port: key.sport } : null;
    },
    external: () => (this.cfg ? this.external : null),
    outbound: ({ flow }): NatfInbound | null => {
      if (!this.mapper || !this.cfg?.inside.some((p) => prefixContains(parseInsidePrefix(p), flow.saddr))) return null;
      const r = this.mapper.map({ proto: flow.proto, inside: { addr: flow.saddr, port: flow.sport }, peer: { addr: flow.daddr, port: flow.dport }, origin: NatOrigin.OUTBOUND });
      natOutboundMappingsTotal.inc({ result: r.ok ? (r.created ? 'created' : 'reused') : r.reason });
      if (!r.ok) {
        this.log.warn({ inside: flow.saddr, peer: flow.daddr, reason: r.reason }, 'NAT-f: no outbound mapping for an inside GE\'s negotiation (NAT table)');
        return { ok: false, reason: r.reason };
      }
      return { ok: true, port: r.extPort };
    },
  };

  /** `gmsDataDir`: where the GMS client keeps the delivery holding this GNAT's ACT (null: no ACT). */
  private readonly actFile: TableWriter;

  /** `actFile`: where `gscip maps dump act` reads the ACT in use (tables-file.ts). */
  constructor(private readonly log: Logger, private readonly cfg: NatConfig | null, private readonly gmsDataDir: string | null = null, actFile: string | null = null) {
    this.actFile = new TableWriter(actFile);
    this.external = cfg?.external ?? '';
    this.act = actSource(gmsDataDir);
    this.ddns = cfg?.ddns ? new ActDdns(cfg.ddns, cfg.external, {
      stateFile: gmsDataDir ? join(gmsDataDir, 'nat-ddns-published.json') : null,
      onStateError: (e) => this.log.warn({ err: e }, 'DDNS: the list of published names could not be kept (names removed while the agent is down will not be withdrawn)'),
    }) : null;
  }

  /** The ACT from the GMS: on a change, publish its allowed names (retried every tick until the server says NOERROR). */
  private actTick(): void {
    const r = this.act.read();
    // The GMS's ACT; without a GMS (or before its first delivery), the config's.
    this.currentAct = r.act.length || !this.cfg?.act.length ? r.act : parseDeliveredAct(this.cfg.act);
    this.actFile.write(this.currentAct.map((e) => ({ ...e, source: r.act.length ? 'gms' : 'config' })));
    if (r.error) this.log.warn({ error: r.error }, 'the delivered ACT is malformed: keeping the previous one');
    if (r.changed) {
      natActEntries.set(r.act.length);
      this.log.info({ names: r.act.map((e) => `${e.name}=${e.address}:${e.outsideAccess}`) }, 'ACT from the GMS');
    }
    if (!r.error) this.actKnown = true;
    // Never withdraw names on an ACT that was never read (a malformed first delivery: keep what DNS has).
    if (!this.ddns || this.publishing || !this.actKnown) return;
    this.publishing = true;
    this.ddns.publish(this.currentAct).then((outcomes) => {
      for (const o of outcomes) {
        natDdnsUpdatesTotal.inc({ action: o.action, result: o.result });
        if (o.result !== 'NOERROR') this.log.warn({ name: o.name, action: o.action, result: o.result }, 'DDNS update of an ACT name failed (retried next tick)');
        else if (o.action !== 'withdrawn') this.log.info({ name: o.name, address: this.external, action: o.action }, 'DDNS: name published');
        else this.log.info({ name: o.name }, 'DDNS: name withdrawn (no longer in the ACT with outside access)');
      }
    }).catch((e: unknown) => this.log.warn({ err: e }, 'DDNS publication failed (retried next tick)'))
      .finally(() => { this.publishing = false; });
  }

  onStart(ctx: PuntContext): void {
    if (!this.cfg) { this.log.warn('part nat loaded without a `nat` config section: nothing to expire'); return; }
    const maps = ctx.maps.nat;
    if (!maps) throw new Error('part nat: this instance has no NAT maps (gscip_nat): the loaded object predates NAT');
    this.sweeper = new NatSweeper(maps, this.cfg.timeouts);
    this.natMaps = maps;
    this.mapper = new InboundMapper(maps, { external: this.external, ports: this.cfg.ports }, () => ctx.nowNs());
    natSessionsCapacity.set(this.cfg.maxSessions);
    natPortRangeSize.set(this.cfg.ports.last - this.cfg.ports.first + 1);
    const tick = (): void => {
      try { this.publish(this.sweeper!.sweep(ctx.nowNs())); } catch (e) { this.log.warn({ err: e }, 'NAT expiry pass failed (the next one retries)'); }
      try { this.actTick(); } catch (e) { this.log.warn({ err: e }, 'ACT check failed (the next tick retries)'); }
      this.reporter?.tick();
    };
    if (this.cfg.follow) this.follow(ctx, maps);
    tick();
    this.timer = setInterval(tick, this.cfg.sweepMs);
    this.timer.unref();
  }

  /**
   * `nat.follow`: the outside interface's addresses from the kernel's
   * rtnetlink events (Mobile PPC's monitor); a change of the external address
   * is applied at once (an address the interface got while no agent ran, at start).
   */
  private follow(ctx: PuntContext, maps: NatMaps): void {
    const ifname = ctx.interfaces[0]?.name;
    if (!ifname) { this.log.warn('nat.follow: no outside interface to follow'); return; }
    if (this.gmsDataDir) {
      const dataDir = this.gmsDataDir;
      this.reporter = new ExternalReporter((a) => reportExternal(dataDir, a), Date.now, (r) => {
        natExternalReportsTotal.inc({ result: r.result });
        if (r.result !== 'ok') this.log.warn({ gms: r.url, external: r.addr, result: r.result, error: r.error }, 'nat.follow: the GMS was not told the external address (retried next tick)');
      });
    }
    const f = new ExternalFollower(ifname, this.external, this.cfg!.inside.map(parseInsidePrefix), currentAddresses());
    const apply = (c: ExternalChange | null): void => {
      if (!c) return;
      try { this.changeExternal(c, ctx, maps); } catch (e) { this.log.warn({ err: e, ...c }, 'nat.follow: the external address could not be changed'); }
    };
    apply(f.check());
    this.reporter?.set(this.external);
    this.monitor = new MonitorReader({
      onEvent: (e) => apply(f.on(e)),
      onError: (e) => this.log.warn({ err: e }, 'nat.follow: rtnetlink monitor'),
    });
    this.log.info({ interface: ifname, external: this.external }, 'nat.follow: following the outside interface\'s address');
  }

  /**
   * The external address moved: the fast path's config first (new sessions
   * take the new address at once), then the sessions on the old one go (their
   * packets could not come back), then the ACT's names are published again.
   */
  private changeExternal(c: ExternalChange, ctx: PuntContext, maps: NatMaps): void {
    this.external = c.to;
    maps.cfg.set(0, natCfgOf({ ...this.cfg!, external: c.to }));
    this.mapper = new InboundMapper(maps, { external: c.to, ports: this.cfg!.ports }, () => ctx.nowNs());
    const flushed = flushExternal(maps, c.from);
    for (const s of NAT_STATES) if (flushed[s]) natSessionsFlushedTotal.inc({ state: s }, flushed[s]);
    natExternalChangesTotal.inc();
    this.ddns?.setExternal(c.to);
    this.reporter?.set(c.to);
    this.log.info({ ...c, flushed }, 'NAT: the external address changed: sessions on the old one flushed, ACT names published again');
    this.actTick();
  }

  private publish(r: NatSweepResult): void {
    for (const s of NAT_STATES) {
      natSessions.set({ state: s }, r.sessions[s]);
      if (r.expired[s]) natSessionsExpiredTotal.inc({ state: s }, r.expired[s]);
    }
    natPortsUsed.set({ proto: 'tcp' }, r.ports.tcp);
    natPortsUsed.set({ proto: 'udp' }, r.ports.udp);
    natPortsUsed.set({ proto: 'icmp' }, r.ports.icmp);
    if (r.orphans) natOrphanClaimsRemovedTotal.inc(r.orphans);
    const expired = NAT_STATES.reduce((a, s) => a + r.expired[s], 0);
    if (expired) this.log.debug({ expired: r.expired, left: r.sessions }, 'NAT sessions expired');
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.monitor?.close();
    this.monitor = null;
  }
}
