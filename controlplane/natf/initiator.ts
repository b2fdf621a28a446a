/**
 * NAT-f's initiator side at run time (part `natf`, docs/natf.md): a GE whose
 * hosts reach private hosts behind GNATs by name.
 *
 *   DNS answer punted (bpf/lib/dns.h) -> the NRT rewrites A records naming a
 *     GNAT to a virtual address (nrt.ts) -> re-injected, checksums right
 *     (dns-frame.ts); unmodified applications get the virtual address
 *   first packet to a virtual address V1 -> DPRP's start role (natf-hooks.ts
 *     virtualTarget) negotiates with the GNAT by name
 *   settled -> the VAT (vat.ts) before the PIT entries; the stash is released
 *   failed -> the application gets an ICMP unreachable (refusal.ts) at once
 *
 * The GNAT addresses come from the config (`natf.gnats`) and from the GMS
 * delivery (`gnats`, the network's GNATs' global addresses), re-read each tick.
 */
import type { Logger } from 'pino';
import { readFileSync, statSync } from 'node:fs';
import type { PuntContext, PuntHandler } from '../parts/handler.js';
import type { NatfDprpHooks, NatfStartFailure, VirtualTarget } from '../dprp/natf-hooks.js';
import type { Flow } from '../dprp/wire.js';
import { puntPacket, type PuntRec } from '../maps/codecs.js';
import { agentFilePaths, loadCache } from '../gms/agent-files.js';
import { natfDnsAnswersTotal, natfDnsTcpConnections, natfDnsTcpHeldSegments, natfFlowsTotal, natfVatExpiredTotal, natfVatFlows, natfVirtualAddresses, natfVirtualCapacity } from '../metrics/metrics.js';
import { rewriteDnsFrame } from './dns-frame.js';
import { DnsRewriters } from './dns-rewriters.js';
import { TCP_DNS_DEFAULTS, TcpDnsStreams } from './dns-tcp-stream.js';
import { Nrt } from './nrt.js';
import { poolOf, type NatfConfig } from './natf-config.js';
import { unreachableFor } from './refusal.js';
import { REFUSAL_HOLD_DEFAULTS, RefusalHold } from './refusal-hold.js';
import { VatTable } from './vat.js';
import { VirtualRoutes } from './virtual-routes.js';
import { TableWriter } from './tables-file.js';

/** How soon after an answer changed the NRT its file is written again. */
const NRT_WRITE_SOON_MS = 50;

export class NatfInitiator implements PuntHandler {
  readonly name = 'natf';
  readonly nrt: Nrt;
  /** Where other parts (GSRA) register their own answer rewriting. */
  readonly dnsRewriters = new DnsRewriters();
  private vat: VatTable | null = null;
  private ctx: PuntContext | null = null;
  private timer: NodeJS.Timeout | null = null;
  private gnatSet: Set<string>;
  private gmsMtime = -1;
  private readonly routes = new VirtualRoutes();
  /** Flows the GNAT refused a moment ago: answered at once, not negotiated again (refusal-hold.ts). */
  readonly refusals: RefusalHold;

  /** DNS answers over TCP, put back together across segments (dns-tcp-stream.ts). */
  private readonly tcpDns: TcpDnsStreams;
  private tcpDnsTimer: NodeJS.Timeout | null = null;

  private readonly nrtFile: TableWriter;
  private readonly nrtPath: string | null;

  /** `nrtFile`: where `gscip maps dump nrt` reads the NRT (tables-file.ts); null: nowhere. */
  constructor(private readonly log: Logger, private readonly cfg: NatfConfig, private readonly gmsDataDir: string | null, nrtFile: string | null = null) {
    this.nrtFile = new TableWriter(nrtFile);
    this.nrtPath = nrtFile;
    this.nrt = new Nrt({ pool: poolOf(cfg), lifetimeS: cfg.lifetimeS, maxEntries: cfg.maxVirtual, inUse: (v) => this.vat?.uses(v) ?? false }, Date.now);
    this.gnatSet = new Set(cfg.gnats);
    this.refusals = new RefusalHold({ ...REFUSAL_HOLD_DEFAULTS, holdMs: cfg.refusalHoldMs ?? REFUSAL_HOLD_DEFAULTS.holdMs }, () => performance.now());
    this.tcpDns = new TcpDnsStreams(TCP_DNS_DEFAULTS, (m) => this.rewriteMessage(m), {
      release: (ifindex, frame) => this.ctx?.reinjectDns?.(ifindex, frame),
      count: (label) => natfDnsAnswersTotal.inc({ result: label }),
    }, () => performance.now());
    this.dnsRewriters.register({
      name: 'nrt',
      rewrite: (m) => {
        const out = this.nrt.rewrite(m, this.gnats());
        if (out.kind === 'untouched') return null;
        natfVirtualAddresses.set(this.nrt.count());
        this.writeNrtSoon();
        if (out.kind === 'refused') this.log.warn({ reason: out.reason }, 'NAT-f: virtual pool exhausted: answered SERVFAIL');
        // Before the answer reaches the application: it connects at once.
        else for (const e of out.entries) {
          try { if (!this.routes.ensure(e.virtual, e.real)) this.log.warn({ gnat: e.real }, 'NAT-f: no route to the GNAT: its virtual address is unroutable'); } catch (err) {
            this.log.warn({ err, virtual: e.virtual }, 'NAT-f: cannot route a virtual address');
          }
        }
        return { message: out.message, label: out.kind === 'refused' ? `servfail_${out.reason}` : 'rewritten' };
      },
    });
  }

  /** The GNATs' global addresses: config + GMS delivery (re-read when the cache file changes). */
  gnats(): ReadonlySet<string> {
    if (this.gmsDataDir) {
      let m = 0;
      try { m = statSync(agentFilePaths(this.gmsDataDir).cache).mtimeMs; } catch { m = 0; }
      if (m !== this.gmsMtime) {
        this.gmsMtime = m;
        const d = loadCache(this.gmsDataDir) as { gnats?: unknown } | null;
        const g = Array.isArray(d?.gnats) ? d!.gnats.filter((x): x is string => typeof x === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(x)) : [];
        this.gnatSet = new Set([...this.cfg.gnats, ...g]);
        this.log.info({ gnats: [...this.gnatSet] }, 'NAT-f: GNAT addresses');
      }
    }
    return this.gnatSet;
  }

  onStart(ctx: PuntContext): void {
    this.ctx = ctx;
    this.vat = new VatTable({ xlat: ctx.maps.xlat, pit: ctx.maps.pit }, () => ctx.nowNs());
    // A previous agent's flows to virtual addresses kept working in the fast path: they are ours to expire now.
    const adopted = this.vat.adopt(ctx.maps.xlat.entries());
    if (adopted) this.log.info({ flows: adopted }, 'NAT-f: adopted the VAT entries of a previous agent');
    this.restoreNrt();
    natfVirtualCapacity.set(this.cfg.maxVirtual ?? 2 ** (32 - poolOf(this.cfg).length));
    this.gnats();
    this.timer = setInterval(() => {
      try {
        const gone = this.vat!.sweep();
        if (gone) natfVatExpiredTotal.inc(gone);
        this.nrt.expire();
        this.refusals.expire();
        this.tcpDns.expire();
        natfDnsTcpConnections.set(this.tcpDns.size);
        natfDnsTcpHeldSegments.set(this.tcpDns.holding());
        const live = new Set(this.nrt.entries().map((e) => e.virtual));
        for (const f of this.vat!.entries()) live.add(f.stack.daddr);
        this.routes.prune(live);
        this.writeNrt();
        natfVatFlows.set(this.vat!.size);
        natfVirtualAddresses.set(this.nrt.count());
        this.gnats();
      } catch (e) { this.log.warn({ err: e }, 'NAT-f sweep failed (the next one retries)'); }
    }, this.cfg.sweepMs);
    this.timer.unref();
  }

  /** The NRT where `gscip maps dump nrt` reads it (each sweep, and soon after an answer changed it). */
  private writeNrt(): void {
    const now = Date.now();
    this.nrtFile.write(this.nrt.entries().map((e) => ({ name: e.name, real: e.real, virtual: e.virtual, lifeS: Math.max(0, Math.round((e.expiresMs - now) / 1000)) })));
  }

  /** An answer bound a name: the dump shows it within NRT_WRITE_SOON_MS, not only at the next sweep (a burst of answers: one write). */
  private nrtWriteTimer: NodeJS.Timeout | null = null;
  private writeNrtSoon(): void {
    if (this.nrtWriteTimer) return;
    this.nrtWriteTimer = setTimeout(() => {
      this.nrtWriteTimer = null;
      try { this.writeNrt(); } catch (e) { this.log.warn({ err: e }, 'NAT-f: writing the NRT file failed (the next sweep retries)'); }
    }, NRT_WRITE_SOON_MS);
    this.nrtWriteTimer.unref();
  }

  /** The NRT a previous agent published: its virtual addresses keep naming the same hosts (and keep their routes). */
  private restoreNrt(): void {
    if (!this.nrtPath) return;
    let rows: unknown;
    try { rows = JSON.parse(readFileSync(this.nrtPath, 'utf8')); } catch { return; }
    if (!Array.isArray(rows)) return;
    let n = 0;
    const now = Date.now();
    for (const r of rows as Array<{ name?: unknown; real?: unknown; virtual?: unknown; lifeS?: unknown }>) {
      if (typeof r.name !== 'string' || typeof r.real !== 'string' || typeof r.virtual !== 'string' || typeof r.lifeS !== 'number') continue;
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(r.real) || !/^\d{1,3}(\.\d{1,3}){3}$/.test(r.virtual)) continue;
      if (!this.nrt.restore({ name: r.name, real: r.real, virtual: r.virtual, expiresMs: now + r.lifeS * 1000 })) continue;
      try { this.routes.ensure(r.virtual, r.real); } catch { /* routed again at its next answer */ }
      n++;
    }
    if (n) this.log.info({ entries: n }, 'NAT-f: took back the NRT of a previous agent');
  }

  private rewriteMessage(m: Buffer): { message: Buffer; label: string } | null {
    return this.dnsRewriters.rewrite(m, (name, e) => this.log.warn({ err: e, rewriter: name }, 'DNS rewriter failed: answer passed on'));
  }

  onDns(rec: PuntRec, ctx: PuntContext): boolean {
    const out = rewriteDnsFrame(puntPacket(rec), (m) => {
      const r = this.rewriteMessage(m);
      if (r) natfDnsAnswersTotal.inc({ result: r.label });
      return r?.message ?? null;
    });
    if (out.kind === 'tcp') {
      if (!ctx.reinjectDns) return false;
      this.ctx ??= ctx;
      this.tcpDns.segment(out.segment, rec.ifindex);
      this.armTcpDnsTimer();
      return true;
    }
    if (out.kind === 'untouched') natfDnsAnswersTotal.inc({ result: 'untouched' });
    if (out.kind === 'passed') natfDnsAnswersTotal.inc({ result: `passed_${out.why}` });
    if (out.kind !== 'rewritten' || !ctx.reinjectDns) return false;
    ctx.reinjectDns(rec.ifindex, out.frame);
    return true;
  }

  /** While TCP segments are held: wake when the oldest is due. */
  private armTcpDnsTimer(): void {
    if (this.tcpDnsTimer) return;
    const due = this.tcpDns.nextDeadline();
    if (due === null) return;
    this.tcpDnsTimer = setTimeout(() => {
      this.tcpDnsTimer = null;
      try { this.tcpDns.expire(); } catch (e) { this.log.warn({ err: e }, 'NAT-f: TCP DNS expiry failed (the next one retries)'); }
      this.armTcpDnsTimer();
    }, Math.max(1, Math.ceil(due - performance.now())));
    this.tcpDnsTimer.unref();
  }

  readonly natfDprpHooks: NatfDprpHooks = {
    virtualTarget: (flow: Flow): VirtualTarget | null => {
      const e = this.nrt.lookupVirtual(flow.daddr);
      return e ? { name: e.name, gnat: e.real } : null;
    },
    refusalHeld: (flow: Flow) => this.refusals.check(flow),
    settled: (flow: Flow, wire: Flow): void => {
      this.vat?.add(flow, wire);
      natfFlowsTotal.inc({ result: 'settled' });
      natfVatFlows.set(this.vat?.size ?? 0);
    },
    failed: (flow: Flow, stashes: readonly unknown[], why: NatfStartFailure): void => {
      natfFlowsTotal.inc({ result: why });
      if (why === 'refused_by_gnat' || why === 'refused') this.refusals.refused(flow);
      if (why !== 'refusal_held') this.log.info({ flow, why }, 'NAT-f: flow to a virtual address refused: the application is told (ICMP unreachable)');
      const first = stashes.find((h) => h) as PuntRec | undefined;
      const frame = first ? unreachableFor(puntPacket(first)) : null;
      if (frame && this.ctx?.reinjectDns) this.ctx.reinjectDns(first!.ifindex, frame);
    },
  };

  /** For `gscip maps dump vat|nrt` through the agent's status (and tests). */
  vatFlows(): ReturnType<VatTable['entries']> { return this.vat?.entries() ?? []; }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.nrtWriteTimer) clearTimeout(this.nrtWriteTimer);
    this.nrtWriteTimer = null;
    if (this.tcpDnsTimer) clearTimeout(this.tcpDnsTimer);
    this.tcpDnsTimer = null;
    this.tcpDns.close();
    // The virtual addresses' routes stay: established flows to them keep working while no agent runs
    // (the fast path's maps are pinned), and a restarted agent replaces them as it binds addresses again.
  }
}
