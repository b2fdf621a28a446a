/**
 * Turns punt records into handler calls and carries out their decisions:
 * stash (bounded), release through the packet sender, drop, expiry. Every
 * outcome is counted (controlplane/metrics/metrics.ts).
 */
import { performance } from 'node:perf_hooks';
import type { PacketSender } from './packet-sender.js';
import type { Logger } from '../log/logger.js';
import { PuntReason } from '../maps/abi.js';
import { DIRS } from '../maps/vocabulary.js';
import { puntPacket, type Cid, type PuntRec } from '../maps/codecs.js';
import { monotonicNs } from '../maps/accessors.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import {
  agentControlSentTotal, agentHandlerErrorsTotal, agentPuntDelaySeconds, agentPuntsTotal, agentReleaseErrorsTotal, agentReleasesTotal, agentStashDroppedTotal,
} from '../metrics/metrics.js';
import type { AgentInterface, PuntContext, PuntHandler } from '../parts/handler.js';
import { completePartialChecksum } from './checksum-fixup.js';
import { controlCodeOf } from './control-code.js';
import { plainRoute, type PuntRoute } from '../parts/route.js';
import { Stash, type StashLimits } from './stash.js';

export { monotonicNs } from '../maps/accessors.js';

type ReasonLabel = 'pit_miss' | 'control' | 'truncated' | 'rekey' | 'dns' | 'ftp_reply' | 'ftp_copy' | 'unknown';
function reasonLabel(r: number): ReasonLabel {
  return r === PuntReason.PIT_MISS ? 'pit_miss' : r === PuntReason.CONTROL ? 'control' : r === PuntReason.TRUNCATED ? 'truncated'
    : r === PuntReason.REKEY ? 'rekey' : r === PuntReason.DNS ? 'dns' : r === PuntReason.FTP_REPLY ? 'ftp_reply'
      : r === PuntReason.FTP_COPY ? 'ftp_copy' : 'unknown';
}

/** Label for a handler's drop reason; bounded to short snake_case words (label cardinality). */
function handlerReason(r: string): string {
  return /^[a-z][a-z0-9_]{0,31}$/.test(r) ? `handler_${r}` : 'handler_other';
}

export interface DispatcherOptions {
  maps: GscipMaps;
  sender: PacketSender;
  handlers: PuntHandler[];
  /** Which handler gets which punt (parts/compose.ts); default: every handler gets everything, in order. */
  route?: PuntRoute;
  interfaces: AgentInterface[];
  limits: StashLimits;
  log: Logger;
}

export class PuntDispatcher implements PuntContext {
  readonly maps: GscipMaps;
  readonly interfaces: readonly AgentInterface[];
  readonly log: Logger;
  readonly stash: Stash;
  private readonly sender: PacketSender;
  private readonly route: PuntRoute;
  private readonly ttlNs: bigint;
  private timer: NodeJS.Timeout | null = null;

  constructor(o: DispatcherOptions) {
    this.maps = o.maps;
    this.interfaces = o.interfaces;
    this.log = o.log;
    this.sender = o.sender;
    this.route = o.route ?? plainRoute(o.handlers);
    this.stash = new Stash(o.limits);
    this.ttlNs = BigInt(o.limits.ttlMs) * 1_000_000n;
    this.timer = setInterval(() => this.expire(), Math.max(20, Math.floor(o.limits.ttlMs / 4)));
    this.timer.unref();
  }

  nowNs(): bigint { return monotonicNs(); }

  /** Where takePending() reads from (the agent's punt reader, set once it runs). */
  private pending: (() => void) | null = null;
  setPendingSource(fn: () => void): void { this.pending = fn; }
  takePending(): void { this.pending?.(); }

  /** Handle a batch from the punt reader, in order. */
  onRecords(recs: PuntRec[]): void {
    const now = monotonicNs();
    for (const rec of recs) this.onRecord(rec, now);
  }

  private onRecord(rec: PuntRec, now: bigint): void {
    const reason = reasonLabel(rec.reason);
    agentPuntsTotal.inc({ reason });
    // Both clocks are CLOCK_MONOTONIC (bpf_ktime_get_ns, process.hrtime): the kernel-to-dispatch hop of this record.
    const waited = now - rec.ts_ns;
    if (waited >= 0n) agentPuntDelaySeconds.observe({ reason }, Number(waited) / 1e9);
    if (reason === 'unknown') { this.log.warn({ reason: rec.reason }, 'punt record with an unknown reason ignored'); return; }
    if (reason === 'control') { this.control(rec); return; }
    if (reason === 'rekey') { for (const h of this.route.rekey) this.call(h, 'onRekey', rec); return; }
    if (reason === 'dns') { this.dns(rec); return; }
    if (reason === 'ftp_reply') { this.ftpReply(rec); return; }
    if (reason === 'ftp_copy') { for (const h of this.route.ftpCopy) this.call(h, 'onFtpCopy', rec); return; }
    if (reason === 'truncated') { agentStashDroppedTotal.inc({ reason: 'truncated' }); this.missChain(this.route.truncated, rec); return; }
    // A record that waited in the ring longer than the TTL (e.g. while no agent ran) is stale: its sender has retransmitted.
    if (waited > this.ttlNs) { agentStashDroppedTotal.inc({ reason: 'stale_on_start' }); return; }
    const refused = this.stash.add(rec, performance.now());
    if (refused) { agentStashDroppedTotal.inc({ reason: refused }); return; }
    this.missChain(this.route.miss, rec);
  }

  /** The miss chain in order, until a part takes the miss. */
  private missChain(chain: readonly PuntHandler[], rec: PuntRec): void {
    for (const h of chain) if (this.call(h, 'onMiss', rec) === 'taken') return;
  }

  /** The part claiming the message's ICMP code, else those taking unclaimed control messages. */
  private control(rec: PuntRec): void {
    const code = controlCodeOf(rec);
    const owner = code === null ? undefined : this.route.controlByCode.get(code);
    if (owner) { this.call(owner, 'onControl', rec); return; }
    for (const h of this.route.otherControl) this.call(h, 'onControl', rec);
  }

  /** A DNS answer (NAT-f, bpf/lib/dns.h): the part rewriting answers re-injects it; with none (or one that fails), it goes on as it came. */
  private dns(rec: PuntRec): void {
    const h = this.route.dns[0];
    if (h) {
      try { if (h.onDns!(rec, this)) return; } catch (e) {
        agentHandlerErrorsTotal.inc({ handler: h.name });
        this.log.error({ err: e, handler: h.name }, 'DNS answer handler failed: answer passed on unmodified');
      }
    }
    this.reinjectDns(rec.ifindex, puntPacket(rec));
  }

  /** An FTP 227 reply (GSRA, bpf/lib/ftp.h): like a DNS answer, the part rewriting it re-injects it; else it goes on as it came. */
  private ftpReply(rec: PuntRec): void {
    const h = this.route.ftpReply[0];
    if (h) {
      try { if (h.onFtpReply!(rec, this)) return; } catch (e) {
        agentHandlerErrorsTotal.inc({ handler: h.name });
        this.log.error({ err: e, handler: h.name }, 'FTP reply handler failed: reply passed on unmodified');
      }
    }
    this.reinjectDns(rec.ifindex, puntPacket(rec));
  }

  reinjectDns(ifindex: number, frame: Buffer): void {
    try {
      completePartialChecksum(frame);
      this.sender.reinjectDns(ifindex, frame);
    } catch (e) {
      agentReleaseErrorsTotal.inc();
      this.log.error({ err: e }, 'DNS re-injection failed');
    }
  }

  private call(h: PuntHandler, which: 'onMiss' | 'onControl' | 'onRekey' | 'onFtpCopy', rec: PuntRec): unknown {
    const fn = h[which];
    if (!fn) return undefined;
    const fail = (e: unknown): void => {
      agentHandlerErrorsTotal.inc({ handler: h.name });
      this.log.error({ err: e, handler: h.name, cid: rec.cid }, `punt handler ${which} failed`);
    };
    try {
      const r = fn.call(h, rec, this);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(fail);
      return r;
    } catch (e) { fail(e); return undefined; }
  }

  private send(rec: PuntRec): boolean {
    try {
      const frame = puntPacket(rec);
      completePartialChecksum(frame); // offloaded (partial) L4 checksums would be dropped by the receiver
      this.sender.release(rec.ifindex, rec.dir, frame);
      agentReleasesTotal.inc({ dir: DIRS.label(rec.dir) });
      return true;
    } catch (e) {
      agentReleaseErrorsTotal.inc();
      this.log.error({ err: e, cid: rec.cid }, 'release failed');
      return false;
    }
  }

  release(rec: PuntRec): boolean {
    if (!this.stash.take(rec)) return false;
    return this.send(rec);
  }

  releaseFlow(cid: Cid): number {
    let n = 0;
    for (const r of this.stash.takeFlow(cid)) if (this.send(r)) n++;
    return n;
  }

  drop(rec: PuntRec, reason: string): boolean {
    if (!this.stash.take(rec)) return false;
    agentStashDroppedTotal.inc({ reason: handlerReason(reason) });
    return true;
  }

  dropFlow(cid: Cid, reason: string): number {
    const l = this.stash.takeFlow(cid);
    if (l.length) agentStashDroppedTotal.inc({ reason: handlerReason(reason) }, l.length);
    return l.length;
  }

  sendControl(ifindex: number, ipPacket: Buffer): void {
    this.sender.sendIpv4(ifindex, ipPacket);
    agentControlSentTotal.inc();
  }

  expire(): void {
    const gone = this.stash.expire(performance.now());
    if (gone.length) agentStashDroppedTotal.inc({ reason: 'expired' }, gone.length);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const left = this.stash.clear();
    if (left.length) agentStashDroppedTotal.inc({ reason: 'expired' }, left.length);
  }
}
