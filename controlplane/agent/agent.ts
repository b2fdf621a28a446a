/**
 * The agent: owns one instance. start(): lock, load with pinned maps (adopt),
 * configure and attach the interfaces, read punts on a worker thread, hand
 * them to the punt handlers, serve /metrics. stop(): the fast path stays
 * attached (TC filters hold the programs, maps stay pinned) unless asked to
 * detach.
 */
import { PacketSender } from './packet-sender.js';
import { PuntReader } from './punt-reader.js';
import { stageDumpFromEnv } from '../dprp/stage-dump.js';
import { stageProfile } from '../dprp/stage-profile.js';
import { logger, type Logger } from '../log/logger.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import { MAP_NAMES, NAT_MAP_NAMES } from '../maps/gscip-maps.js';
import { ConfigError, resolveIpv6Policy, type AgentConfig } from '../config/agent-config.js';
import { stageList } from '../maps/stages.js';
import { configureNat } from '../natf/nat-setup.js';
import { attachInterface, detachInterface, hasClsact, loadPinned, unpinAll, type Attached, type LoadedDatapath } from './datapath.js';
import type { AgentInterface, PuntHandler } from '../parts/handler.js';
import { partDescriptor } from './handlers/index.js';
import { planParts, startParts, type EmbeddedPart, type PartPlan } from '../parts/compose.js';
import { PartError } from '../parts/errors.js';
import { gmsDeliveryLoader, resolveGeIdentity } from './ge-identity.js';
import { requiredEncryptionSource } from './required-encryption-source.js';
import { MALLOC_MMAP_THRESHOLD, MemoryRelief, v8FullGc } from './memory-relief.js';
import {
  AgentConflictError, HeldLock, ifaceLockPath, instancePaths, netnsInode, readIfaceOwner, readState, removeIfaceOwner, removeState,
  writeIfaceOwner, writeState, type InstancePaths, type InstanceState,
} from './instance.js';
import { datapathSource, startMetricsServer } from './metrics-server.js';
import { PuntDispatcher } from './punt-dispatch.js';
import { ifNameToIndex, mallocMmapThreshold, mallocTrim } from '../bpf/libc.js';
import { agentMemoryReliefsTotal } from '../metrics/metrics.js';
import { routeLibbpfMessages, tcQuery } from '../bpf/libbpf.js';
import { TC_FILTER } from './instance.js';
import { migrateLegacyPins } from './migrate.js';
import { assertPrerequisites } from '../doctor/host-checks.js';

export interface AgentStartOptions {
  /**
   * Extra parts (tests, embedding), after the configured ones: a plain handler
   * (takes every punt, claims nothing) or a part with its declaration.
   */
  handlers?: Array<PuntHandler | EmbeddedPart>;
  log?: Logger;
  /** The agent can no longer do its job (e.g. the punt reader died); the caller should stop and exit non-zero. */
  onFatal?: (e: Error) => void;
}

export interface StopOptions {
  /** Remove the TC filters (and clsact qdiscs we created). Default: config.detachOnExit. */
  detach?: boolean;
  /** Also remove the pinned maps (all PIT/XLAT/keys state is lost). Implies detach. */
  unpin?: boolean;
}

export class Agent {
  private stopped = false;

  private constructor(
    readonly cfg: AgentConfig,
    readonly paths: InstancePaths,
    readonly log: Logger,
    private readonly locks: HeldLock[],
    private readonly dp: LoadedDatapath,
    readonly interfaces: Attached[],
    private readonly sender: PacketSender,
    readonly dispatcher: PuntDispatcher,
    private readonly reader: PuntReader,
    private readonly handlers: PuntHandler[],
    readonly metricsUrl: string | null,
    private readonly metricsClose: (() => Promise<void>) | null,
    private readonly gms: { stop(): Promise<void> } | null,
  ) {}

  get maps(): GscipMaps { return this.dp.maps; }
  get adopted(): string[] { return this.dp.adopted; }

  static async start(cfg: AgentConfig, opts: AgentStartOptions = {}): Promise<Agent> {
    const log = opts.log ?? logger('agent').child({ instance: cfg.instance });
    const bpfLog = log.child({ component: 'libbpf' });
    routeLibbpfMessages((level, msg) => bpfLog[level](msg));
    const paths = instancePaths(cfg);
    const ino = netnsInode();
    const undo: Array<() => void | Promise<void>> = [];
    const rollback = async (): Promise<void> => { for (const f of undo.reverse()) { try { await f(); } catch (e) { log.warn({ err: e }, 'rollback step failed'); } } };
    // Resolve and check the parts before touching anything: a typo, a claim two
    // parts make or a missing dependency must not leave half an agent behind.
    let plan: PartPlan;
    try { plan = planParts(cfg.handlers, partDescriptor, opts.handlers ?? []); } catch (e) {
      if (e instanceof PartError) throw Object.assign(new ConfigError(e.message, [e.code]), { cause: e });
      throw e;
    }
    // This GE's identity for the handlers: from the GMS when it has a client, else the configuration.
    // (Only when a configured handler may need it: an agent without handlers must not depend on reaching the GMS.)
    const ge = plan.configured.length ? await resolveGeIdentity({ configured: cfg.ge, loadDelivery: cfg.gms ? gmsDeliveryLoader(cfg.gms.dataDir) : null }) : null;
    if (ge) log.info({ type: ge.type, mode: ge.mode, source: ge.source }, 'GE identity');
    try {
      // 0. The kernel features the object needs, each missing one named with its fix (instead of a verifier log at load).
      const prereqMs = assertPrerequisites({ bpfObject: cfg.bpfObject, pinRoot: cfg.pinRoot });
      log.debug({ ms: Math.round(prereqMs * 10) / 10 }, 'host prerequisites hold');
      // 1. One agent per instance.
      const lock = HeldLock.tryTake(paths.lockFile, String(process.pid));
      if (!(lock instanceof HeldLock)) {
        throw new AgentConflictError(`instance '${cfg.instance}' already has a running agent (pid ${lock.heldBy || '?'}); stop it first: gscip agent stop --instance ${cfg.instance}`);
      }
      const locks: HeldLock[] = [lock];
      undo.push(() => { for (const l of locks) l.release(); });
      // 2. One agent per interface, across instances.
      const prev = readState(paths);
      const ifaceIdx = cfg.interfaces.map((i, n) => {
        try { return { ...i, ifindex: ifNameToIndex(i.name) }; } catch {
          throw new ConfigError(`interfaces[${n}].name: no interface '${i.name}' in this network namespace`, []);
        }
      });
      for (const i of ifaceIdx) {
        const l = HeldLock.tryTake(ifaceLockPath(paths.runDir, ino, i.ifindex), `${cfg.instance} ${process.pid}`);
        if (!(l instanceof HeldLock)) {
          throw new AgentConflictError(`interface ${i.name} is protected by another running agent (${l.heldBy || 'unknown'}); one agent per interface`);
        }
        locks.push(l);
        const owner = readIfaceOwner(paths.runDir, ino, i.ifindex);
        if (owner && owner !== cfg.instance && hasClsact(i.ifindex) && tcQuery(i.ifindex, 'ingress', TC_FILTER) !== null) {
          throw new AgentConflictError(`interface ${i.name} carries the programs of instance '${owner}' (its agent is not running); ` +
            `detach them first: gscip agent detach --instance ${owner}`);
        }
      }
      // 3. Load, adopting pinned state.
      const maxEntries: Record<string, number> = {};
      if (cfg.maxEntries.pit) { maxEntries[MAP_NAMES.pit] = cfg.maxEntries.pit; maxEntries[MAP_NAMES.flowKeys] = cfg.maxEntries.pit; }
      if (cfg.maxEntries.xlat) maxEntries[MAP_NAMES.xlat] = cfg.maxEntries.xlat;
      if (cfg.nat) maxEntries[NAT_MAP_NAMES.sessions] = cfg.nat.maxSessions;
      const dp = loadPinned(cfg.bpfObject, paths.pinDir, maxEntries, log, cfg.stages);
      undo.push(() => { dp.maps.close(); dp.obj.close(); });
      log.info({ pinDir: paths.pinDir, adopted: dp.adopted, stages: stageList(cfg.stages) }, dp.adopted.length ? 'adopted pinned maps' : 'created pinned maps');
      dp.maps.cfg.set(0, { punt_rate_pps: BigInt(cfg.punt.ratePps), punt_burst: BigInt(cfg.punt.burst) });
      // The GNAT's NAT config before attach: no inside source ever leaves untranslated (natf/nat-setup.ts).
      configureNat(dp.maps, cfg.nat, log);
      // 4. Attach (configure first, replace our own filters).
      // IPv6 policy per interface: as configured, else closed (nd-only) on a CL element, pass otherwise (as before).
      const geMode = ge?.mode ?? cfg.ge?.mode ?? null;
      const attached: Attached[] = [];
      for (const c of cfg.interfaces) {
        const i = { ...c, ipv6: resolveIpv6Policy(c.ipv6, geMode) };
        const a = attachInterface(dp, i);
        const before = a.replaced ? 1 : null;
        const was = prev?.interfaces.find((x) => x.ifindex === a.ifindex && prev.netnsIno === ino);
        a.createdHook = a.createdHook || (was?.createdHook ?? false);
        attached.push(a);
        writeIfaceOwner(paths.runDir, ino, a.ifindex, cfg.instance);
        // A failed start removes what it attached, but never a fast path a previous agent left running.
        if (before === null) undo.push(() => { detachInterface(a.ifindex, a.createdHook); removeIfaceOwner(paths.runDir, ino, a.ifindex); });
        log.info({ iface: a.name, ifindex: a.ifindex, miss: i.miss, ipv6: i.ipv6, ipv6Source: c.ipv6 ? 'config' : `default for mode ${geMode ?? 'unknown'}`, progIds: a.progIds }, 'attached');
      }
      // Interfaces a previous agent of this instance protected but this configuration no longer lists:
      // detach them, or they would keep their filters with nobody accounting for them.
      if (prev && prev.netnsIno === ino) {
        for (const old of prev.interfaces.filter((x) => !attached.some((a) => a.ifindex === x.ifindex))) {
          try {
            detachInterface(old.ifindex, old.createdHook);
            dp.maps.iface.delete(old.ifindex);
            removeIfaceOwner(paths.runDir, ino, old.ifindex);
            log.info({ iface: old.name, ifindex: old.ifindex }, 'detached an interface no longer configured');
          } catch (e) { log.warn({ err: e, iface: old.name }, 'could not detach an interface no longer configured'); }
        }
      }
      // Pins of an earlier layout (an in-place upgrade): only now, with this build's programs attached
      // everywhere, is nothing counting into them (migrate.ts).
      try {
        migrateLegacyPins(paths.pinDir, new Set(dp.obj.mapNames()), log);
      } catch (e) { log.warn({ err: e, pinDir: paths.pinDir }, 'could not migrate the pins of an earlier layout (the fast path is unaffected; the next start retries)'); }
      // 5. Punt path.
      const sender = new PacketSender();
      undo.push(() => sender.close());
      const requireEncryption = requiredEncryptionSource(cfg.requireEncryption, cfg.gms?.dataDir ?? null);
      const parts = startParts(plan, (n) => ({ log: log.child({ handler: n }), ge, requireEncryption, config: cfg }));
      const handlers: PuntHandler[] = [...parts.handlers];
      const ifs: AgentInterface[] = attached.map((a) => ({ name: a.name, ifindex: a.ifindex }));
      const dispatcher = new PuntDispatcher({
        maps: dp.maps, sender, handlers, route: parts.route, interfaces: ifs, limits: cfg.stash, log: log.child({ component: 'punt' }),
      });
      undo.push(() => dispatcher.close());
      for (const h of handlers) if (h.onStart) await h.onStart(dispatcher);
      // After a burst of punts, hand the memory it took back (full GC + malloc_trim, once per burst);
      // big transient blocks in their own mappings, not kept in glibc's arenas after a burst.
      mallocMmapThreshold(MALLOC_MMAP_THRESHOLD);
      const relief = new MemoryRelief({
        gc: v8FullGc(), trim: () => { mallocTrim(); },
        // What the burst left behind: the relief waits for the flood's flows to age out first.
        held: () => handlers.reduce((n, h) => n + (h.heldUnauthenticated?.() ?? 0), dispatcher.stash.size),
        onRelief: ({ peakPerSec, held }) => {
          agentMemoryReliefsTotal.inc();
          const mu = process.memoryUsage();
          const mb = (x: number) => Math.round(x / 1048576);
          log.info({ peakPerSec, held, rssMb: mb(mu.rss), heapUsedMb: mb(mu.heapUsed), heapTotalMb: mb(mu.heapTotal), externalMb: mb(mu.external) }, 'punt burst over: memory handed back');
        },
      });
      const reliefTimer = setInterval(() => relief.tick(), 1000);
      reliefTimer.unref();
      undo.push(() => clearInterval(reliefTimer));
      const profiling = stageDumpFromEnv();
      const reader = new PuntReader(dp.maps.puntFd, (recs) => { relief.note(recs.length); dispatcher.onRecords(recs); }, {
        ...(profiling ? { onWake: (ns: bigint) => stageProfile.woke(ns) } : {}),
        onError: (e) => log.error({ err: e }, 'punt record skipped'),
        onFatal: (e) => {
          log.fatal({ err: e }, 'punt reader stopped: punted packets can no longer be handled');
          opts.onFatal?.(e);
        },
      });
      dispatcher.setPendingSource(() => reader.pollNow());
      undo.push(() => reader.close());
      log.info({ wait: reader.wait, detail: reader.waitDetail }, 'punt reader started');
      // 6. Metrics.
      let metricsUrl: string | null = null;
      let metricsClose: (() => Promise<void>) | null = null;
      if (cfg.metrics) {
        const m = await startMetricsServer(cfg.metrics, datapathSource(dp.maps, () => dispatcher.stash.size));
        metricsUrl = m.url;
        metricsClose = m.close;
        undo.push(() => m.close());
        log.info({ url: m.url }, 'metrics listening');
      }
      // 7. Group keys from the GMS, if enrolled.
      let gms: { stop(): Promise<void> } | null = null;
      if (cfg.gms) {
        const { startGmsClient } = await import('../gms/client.js');
        const { keyMapSink } = await import('../gms/key-map-sink.js');
        gms = await startGmsClient({ dataDir: cfg.gms.dataDir }, keyMapSink(dp.maps.keys));
        log.info({ dataDir: cfg.gms.dataDir }, 'GMS client started: group keys go to gscip_keys');
        undo.push(() => gms?.stop());
      }
      const state: InstanceState = {
        instance: cfg.instance, pid: process.pid, startedAt: new Date().toISOString(), netnsIno: ino, pinDir: paths.pinDir, metrics: metricsUrl,
        interfaces: attached.map((a) => ({ name: a.name, ifindex: a.ifindex, createdHook: a.createdHook, ipv6: a.ipv6 })),
        geMode,
      };
      writeState(paths, state);
      return new Agent(cfg, paths, log, locks, dp, attached, sender, dispatcher, reader, handlers, metricsUrl, metricsClose, gms);
    } catch (e) {
      await rollback();
      throw e;
    }
  }

  async stop(opts: StopOptions = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const detach = opts.unpin || (opts.detach ?? this.cfg.detachOnExit);
    await this.gms?.stop().catch((e: unknown) => this.log.warn({ err: e }, 'GMS client stop failed'));
    await this.reader.close();
    this.dispatcher.close();
    for (const h of this.handlers) {
      try { await h.close?.(); } catch (e) { this.log.warn({ err: e, handler: h.name }, 'handler close failed'); }
    }
    this.sender.close();
    await this.metricsClose?.();
    const ino = netnsInode();
    if (detach) {
      for (const a of this.interfaces) {
        try {
          detachInterface(a.ifindex, a.createdHook);
          this.dp.maps.iface.delete(a.ifindex);
          removeIfaceOwner(this.paths.runDir, ino, a.ifindex);
          this.log.info({ iface: a.name }, 'detached');
        } catch (e) { this.log.error({ err: e, iface: a.name }, 'detach failed'); }
      }
    }
    this.dp.maps.close();
    this.dp.obj.close();
    if (opts.unpin) this.log.info({ removed: unpinAll(this.paths.pinDir) }, 'unpinned');
    if (detach) removeState(this.paths);
    else {
      const s = readState(this.paths);
      if (s) writeState(this.paths, { ...s, pid: 0 });
    }
    for (const l of this.locks) l.release();
    this.log.info({ detached: detach }, detach ? 'agent stopped, fast path detached' : 'agent stopped, fast path stays attached');
  }
}

/**
 * Detach an instance whose agent is not running (from its state file).
 * Must run in the agent's network namespace.
 */
export function detachInstance(cfg: { instance: string; pinRoot: string; runDir: string }, unpin: boolean): { interfaces: string[]; unpinned: string[] } {
  const paths = instancePaths(cfg);
  const lock = HeldLock.tryTake(paths.lockFile, String(process.pid));
  if (!(lock instanceof HeldLock)) throw new AgentConflictError(`instance '${cfg.instance}' has a running agent (pid ${lock.heldBy || '?'}): use gscip agent stop --detach`);
  try {
    const s = readState(paths);
    const ino = netnsInode();
    const done: string[] = [];
    if (s) {
      if (s.netnsIno !== ino) throw new Error(`instance '${cfg.instance}' is attached in another network namespace (inode ${s.netnsIno}); run detach there`);
      for (const i of s.interfaces) {
        detachInterface(i.ifindex, i.createdHook);
        removeIfaceOwner(paths.runDir, ino, i.ifindex);
        done.push(i.name);
      }
    }
    const unpinned = unpin ? unpinAll(paths.pinDir) : [];
    removeState(paths);
    return { interfaces: done, unpinned };
  } finally {
    lock.release();
  }
}
