/**
 * GSRA's EN side at run time (part `gsra-en`, docs/gsra.md "The EN part"): a
 * remote user's laptop reaching an IN by name through a GSRA router, with an
 * unmodified application. NAT-f's pieces, reused rather than copied:
 *
 *   DNS answer naming a GGR (gsraEn.routers) -> an Nrt of our own (natf/nrt.ts,
 *     pool gsraEn.pool, apart from NAT-f's) gives the IN's name a VIN; the
 *     rewriter sits in NAT-f's chain (natf/dns-rewriters.ts), the route to the
 *     VIN goes toward GGR (natf/virtual-routes.ts)
 *   first packet to VIN:d -> a PIT miss this part takes (missOrder GATEWAY,
 *     before DPRP); it stays stashed while EnSession runs AUTH -> MAP with
 *     the router (UDP 7253, answers claimed by ICMP code)
 *   admitted -> the VAT (natf/vat.ts, XLAT kind vat) {GEN:s<->VIN:d} <=>
 *     {GEN:s<->GGR:t}, then the wire flow's PIT entries (leg-pit.ts: PCCOM
 *     under the group key when MAP_OK says ENCRYPT; a plaintext leg only
 *     with gsraEn.requireEncryption false), then the stash is released (the
 *     application's SYN goes out once, translated and encrypted)
 *   refused / no answer -> the stash dropped (counted) and the application
 *     gets an ICMP unreachable from VIN (natf/refusal.ts) at once
 *
 * Idle flows (PIT last-seen older than idleS) lose their PIT entries; the VAT
 * sweep then removes their translations.
 */
import type { Logger } from 'pino';
import { statSync } from 'node:fs';
import type { PuntContext, PuntHandler } from '../parts/handler.js';
import { puntPacket, type Cid, type PuntRec } from '../maps/codecs.js';
import { Action, CONTROL_UDP_PORT, Dir, PitState, Role } from '../maps/abi.js';
import { controlOfFrame, frameControl } from '../parts/control-framing.js';
import { agentFilePaths, loadCache } from '../gms/agent-files.js';
import { gsraEnFlowsTotal, gsraEnFtpRepliesTotal } from '../metrics/metrics.js';
import { parseFtpFrame, rewriteFtpFrame } from './ftp-reply.js';
import { moveField, noteRewrite, seqFwd, type SeqDelta } from './ftp-seq.js';
import type { DnsRewriters } from '../natf/dns-rewriters.js';
import { Nrt } from '../natf/nrt.js';
import { unreachableFor } from '../natf/refusal.js';
import { VatTable } from '../natf/vat.js';
import { VirtualRoutes } from '../natf/virtual-routes.js';
import type { Flow } from '../dprp/wire.js';
import { EnSession, type Send } from './en-session.js';
import { legFlowKeys, legPitEntries, legPitKeys, newestKeyVersion, writeFlowKeys } from './leg-pit.js';
import { readUserKey } from './router-config.js';
import { isPrivateIpv4, type GsraEnConfig } from './en-config.js';
import { decodeGsra } from './wire.js';

const PROTO_TCP = 6;
const PROTO_UDP = 17;

interface Pending { session: EnSession; rec: PuntRec; cid: Cid; ifindex: number; timer: NodeJS.Timeout | null; msgId: string }

export interface EnUser { userId: string; key: Buffer }

export interface GsraEnDeps {
  /** Route a VIN toward its GGR (default: natf/virtual-routes.ts, `ip route`). */
  routes?: { ensure(virtual: string, real: string): boolean; prune(live: ReadonlySet<string>): number };
  nowMs?: () => number;
}

export class GsraEnHandler implements PuntHandler {
  readonly name = 'gsra-en';
  readonly nrt: Nrt;
  /** GGRs: gsraEn.routers and the GMS delivery's gsraRouters (re-read when the cache changes). */
  private routers: Set<string>;
  private routersMtime = -1;
  private readonly pending = new Map<string, Pending>();   // msg id (hex) -> admission under way
  private readonly byFlow = new Map<string, Pending>();
  private vat: VatTable | null = null;
  private ctx: PuntContext | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly routes: NonNullable<GsraEnDeps['routes']>;
  private readonly nowMs: () => number;
  private userMtime = -1;
  private user: EnUser | null = null;

  constructor(private readonly log: Logger, private readonly cfg: GsraEnConfig, private readonly gmsDataDir: string | null,
    private readonly rewriters: () => DnsRewriters | null, deps: GsraEnDeps = {}) {
    this.nowMs = deps.nowMs ?? Date.now;
    this.routes = deps.routes ?? new VirtualRoutes();
    const [base, len] = cfg.pool.split('/');
    this.nrt = new Nrt({ pool: { base, length: Number(len) }, lifetimeS: cfg.lifetimeS, inUse: (v) => this.vat?.uses(v) ?? false }, this.nowMs);
    this.routers = new Set(cfg.routers);
  }

  /** The user ID and key: the static ones, else the GMS delivery (userId, gsraUserKey), re-read when it changes. */
  currentUser(): EnUser | null {
    if (this.cfg.userId && this.cfg.keyFile) {
      if (!this.user) this.user = { userId: this.cfg.userId, key: readUserKey(this.cfg.keyFile) };
      return this.user;
    }
    if (!this.gmsDataDir) return null;
    let m = 0;
    try { m = statSync(agentFilePaths(this.gmsDataDir).cache).mtimeMs; } catch { m = 0; }
    if (m !== this.userMtime) {
      this.userMtime = m;
      const d = loadCache(this.gmsDataDir);
      const k = d?.gsraUserKey ? Buffer.from(d.gsraUserKey, 'base64') : null;
      this.user = d && k && k.length === 32 ? { userId: d.userId, key: k } : null;
    }
    return this.user;
  }

  /**
   * The GSRA routers' addresses: the configured ones and those the GMS delivers (`gsraRouters`: each GSRA
   * GE's `external` in the network file), so an EN enrolled by the GMS needs no list of its own.
   */
  routerSet(): ReadonlySet<string> {
    if (!this.gmsDataDir) return this.routers;
    let m = 0;
    try { m = statSync(agentFilePaths(this.gmsDataDir).cache).mtimeMs; } catch { m = 0; }
    if (m !== this.routersMtime) {
      this.routersMtime = m;
      const d = loadCache(this.gmsDataDir) as { gsraRouters?: unknown } | null;
      const g = Array.isArray(d?.gsraRouters) ? d!.gsraRouters.filter((x): x is string => typeof x === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(x)) : [];
      const next = new Set([...this.cfg.routers, ...g]);
      if ([...next].join() !== [...this.routers].join()) this.log.info({ routers: [...next] }, 'GSRA: router addresses (config and GMS)');
      this.routers = next;
    }
    return this.routers;
  }

  /** The rewriter NAT-f's chain calls: A records naming a GGR get the IN name's VIN. */
  readonly rewriter = {
    name: 'gsra-en',
    rewrite: (m: Buffer): { message: Buffer; label: string } | null => {
      const out = this.nrt.rewrite(m, this.routerSet());
      if (out.kind === 'untouched') return null;
      if (out.kind === 'refused') { this.log.warn({ reason: out.reason }, 'GSRA: VIN pool exhausted: answered SERVFAIL'); return { message: out.message, label: `gsra_servfail_${out.reason}` }; }
      for (const e of out.entries) {
        try { if (!this.routes.ensure(e.virtual, e.real)) this.log.warn({ ggr: e.real }, 'GSRA: no route to the router: its VIN is unroutable'); } catch (err) {
          this.log.warn({ err, vin: e.virtual }, 'GSRA: cannot route a VIN');
        }
      }
      return { message: out.message, label: 'gsra_rewritten' };
    },
  };

  onStart(ctx: PuntContext): void {
    this.ctx = ctx;
    const chain = this.rewriters();
    if (!chain) throw new Error('part gsra-en: no DNS rewriter chain (it needs the natf part loaded)');
    chain.register(this.rewriter);
    this.vat = new VatTable({ xlat: ctx.maps.xlat, pit: ctx.maps.pit }, () => ctx.nowNs(), this.nowMs);
    this.timer = setInterval(() => this.sweep(), this.cfg.sweepMs);
    this.timer.unref();
  }

  /** A PIT miss: ours when it goes to a live VIN (egress, TCP or UDP). */
  onMiss(rec: PuntRec, ctx: PuntContext): void | 'taken' {
    const c = rec.cid;
    if (c.dir === Dir.INGRESS && c.proto === PROTO_UDP && c.sport === CONTROL_UDP_PORT && this.routerSet().has(c.saddr)) return this.bindAnswer(rec, ctx);
    if (c.dir !== Dir.EGRESS || (c.proto !== PROTO_TCP && c.proto !== PROTO_UDP)) return;
    const e = this.nrt.lookupVirtual(c.daddr);
    if (!e) return;
    const fk = `${c.proto}:${c.saddr}:${c.sport}>${c.daddr}:${c.dport}`;
    if (this.byFlow.has(fk)) return 'taken';   // a retransmission while the admission runs: stays stashed with its flow
    // A TRUNCATED miss (too big to stash, already dropped) still starts the admission: the next datagram finds the entries.
    const user = this.currentUser();
    if (!user) { this.refuse(rec, ctx, 'no_key'); return 'taken'; }
    if (this.byFlow.size >= this.cfg.maxPending) { this.refuse(rec, ctx, 'busy'); return 'taken'; }
    const session = new EnSession({
      userId: user.userId, key: user.key, group: this.cfg.group, name: e.name, vin: c.daddr, ggr: e.real, proto: c.proto,
      local: { addr: c.saddr, port: c.sport }, dport: c.dport,
      behindNat: this.cfg.behindNat === 'auto' ? isPrivateIpv4(c.saddr) : this.cfg.behindNat,
      udpWire: this.cfg.udpWireValid,
    });
    const p: Pending = { session, rec, cid: { ...c }, ifindex: rec.ifindex, timer: null, msgId: '' };
    this.byFlow.set(fk, p);
    this.send(p, session.start(this.nowMs()));
    return 'taken';
  }

  /**
   * Behind a home NAT the BIND left from the flow's port s, so the router's answer comes back from GGR:7253 to
   * PEN:s: not the control port, so the fast path does not classify it as control; it is an ingress PIT miss
   * (the interface's miss action must punt, the default). Taken here, handled as the control message it is,
   * never passed to the stack.
   */
  private bindAnswer(rec: PuntRec, ctx: PuntContext): 'taken' | void {
    if (!controlOfFrame(puntPacket(rec))) return;
    ctx.drop(rec, 'gsra_bind_answer');
    this.onControl(rec);
    return 'taken';
  }

  /** The router's answers (AUTH_OK, BIND_OK, MAP_OK, REFUSE). */
  onControl(rec: PuntRec): void {
    const cp = controlOfFrame(puntPacket(rec));
    if (!cp) return;
    let id: string;
    try { id = decodeGsra(Buffer.from(cp.msg)).msgId.toString('hex'); } catch { return; }
    const p = this.pending.get(id);
    if (!p || cp.src !== p.session.flow.ggr) return;
    const next = p.session.onReply(Buffer.from(cp.msg), this.nowMs());
    this.step(p, next);
  }

  /**
   * An FTP 227 reply from VIN:21 (the fast path's FTP stage punts it decrypted, in the stack view): its
   * address becomes the VIN, the segment's length kept when the reply's free text has room (ftp-reply.ts),
   * else (ftpResize) the segment grows and the connection's sequence delta is noted in gscip_ftp_seq
   * (ftp-seq.ts; the fast path moves every later segment by it). Every 227 of a connection with a delta is
   * re-injected here, its seq moved as the fast path moves the others. The data connection then goes to
   * VIN:p and is admitted as a flow of its own (AUTH for the same IN, d = p). Not a GSRA flow: passed on.
   */
  onFtpReply(rec: PuntRec, ctx: PuntContext): boolean {
    if (!this.cfg.ftpPassive || !ctx.reinjectDns) return false;
    const frame = puntPacket(rec);
    const f = parseFtpFrame(frame);
    if (!f || f.code !== 227) return false;
    const ours = this.nrt.lookupVirtual(f.src) && this.flows().some((x) => x.stack.proto === PROTO_TCP && x.stack.daddr === f.src
      && x.stack.dport === f.sport && x.stack.saddr === f.dst && x.stack.sport === f.dport);
    if (!ours) { gsraEnFtpRepliesTotal.inc({ result: 'not_gsra' }); return false; }
    const key: Cid = { saddr: f.src, daddr: f.dst, sport: f.sport, dport: f.dport, proto: PROTO_TCP, dir: Dir.INGRESS };
    const cur = ctx.maps.ftpSeq.get(key);
    const seq = frame.readUInt32BE(f.l4 + 4);
    const out = rewriteFtpFrame(frame, f.src, { resize: this.cfg.ftpResize });
    let result: string = out.kind === 'passed' ? out.why : out.kind;
    let send = out.kind === 'rewritten' ? out.frame : frame;
    let delta: SeqDelta | undefined = cur;
    if (out.kind === 'rewritten' && out.diff !== 0) {
      const next = noteRewrite(cur, seq, out.diff);
      if (next === null) { result = 'delta_too_large'; send = frame; } else if (next && next !== cur) {
        try { ctx.maps.ftpSeq.set(key, next); delta = next; result = 'resized'; } catch (e) {
          // gscip_ftp_seq full (GSCIP_FTP_SEQ_MAX_ENTRIES) or not writable: the reply passes as it came.
          this.log.warn({ err: e, vin: f.src }, 'GSRA: FTP sequence delta not stored (table full?): the 227 passes unmodified');
          result = 'table_full'; send = frame;
        }
      } else result = 'resized';   // a retransmission of the segment already counted in the delta
    }
    gsraEnFtpRepliesTotal.inc({ result });
    if (result !== 'rewritten' && result !== 'same' && result !== 'resized') {
      this.log.warn({ vin: f.src, why: result }, 'GSRA: FTP 227 reply passed unmodified (the data connection will go to the address the server named)');
    }
    if (!delta && send === frame) return false;   // nothing to change: the agent re-injects it as it came
    if (delta) {
      const d = delta;
      moveField(send, f.l4, f.l4 + 4, (v) => seqFwd(d, v));   // the same offsets: only the payload's length changed
    }
    this.log.debug({ vin: f.src, port: f.port, result }, 'GSRA: FTP 227 reply re-injected');
    ctx.reinjectDns(rec.ifindex, send);
    return true;
  }

  private send(p: Pending, s: Send): void {
    if (p.msgId) this.pending.delete(p.msgId);
    p.msgId = decodeGsra(s.msg).msgId.toString('hex');
    this.pending.set(p.msgId, p);
    // BIND from the flow's own port s (en-session.ts): the home router's mapping of s is what the router sees.
    this.ctx!.sendControl(p.ifindex, frameControl(p.cid.saddr, s.to.addr, s.msg, s.fromPort ? { sport: s.fromPort, dport: s.to.port } : undefined));
    if (p.timer) clearTimeout(p.timer);
    p.timer = setTimeout(() => this.step(p, p.session.onTimer(this.nowMs())), s.waitMs);
    p.timer.unref();
  }

  private step(p: Pending, next: Send | null): void {
    if (next) { this.send(p, next); return; }
    const st = p.session.state;
    if (st !== 'done' && st !== 'failed') return;   // an answer not for this step
    this.finish(p);
    if (st === 'failed') { this.refuse(p.rec, this.ctx!, p.session.failure ?? 'timeout', p.cid); return; }
    const v = p.session.vat!;
    const stack: Flow = { saddr: v.local.addr, sport: v.local.port, daddr: v.virtual.addr, dport: v.virtual.port, proto: v.proto };
    const wire: Flow = { saddr: v.local.addr, sport: v.local.port, daddr: v.router.addr, dport: v.router.port, proto: v.proto };
    const ctx = this.ctx!;
    // PCCOM on the Internet leg (leg-pit.ts): the router said ENCRYPT in MAP_OK (MAC'd); a plaintext leg only if allowed.
    let entries: ReturnType<typeof legPitEntries>;
    let flowKeys: ReturnType<typeof legFlowKeys> | undefined;
    if (v.action === Action.ENCRYPT) {
      const version = newestKeyVersion(ctx.maps.keys.keys(), this.cfg.group);
      if (version === undefined) { this.refuse(p.rec, ctx, 'no_group_key', p.cid); return; }
      // A bound UDP flow whose router sent a salt: per-flow keys, UDP in the wire-valid form across the home NAT.
      const gk = v.salt ? ctx.maps.keys.get({ group_id: this.cfg.group, version }) : undefined;
      if (gk && v.salt) flowKeys = legFlowKeys('en', wire, this.cfg.group, version, gk, v.salt);
      entries = legPitEntries('en', wire, this.cfg.group, version, ctx.nowNs(), { acrossNat: p.session.flow.behindNat, flowKey: !!flowKeys });
    } else if (v.action === Action.PASS && !this.cfg.requireEncryption) {
      const now = ctx.nowNs();
      const pass = { action: Action.PASS, state: PitState.CONFIRMED, role: Role.START, flags: 0, group_id: 0, key_version: 0, created_ns: now, last_seen_ns: now };
      entries = legPitKeys('en', wire).map((k) => [k, pass]);
    } else { this.refuse(p.rec, ctx, v.action === Action.PASS ? 'plaintext_leg' : 'bad_action', p.cid); return; }
    this.vat!.add(stack, wire);
    // After the VAT, so no packet sees the PIT entries without the translation; per-flow keys before them.
    if (flowKeys) writeFlowKeys(ctx.maps.flowKeys, flowKeys);
    for (const [k, val] of entries) ctx.maps.pit.set(k, val);
    gsraEnFlowsTotal.inc({ result: 'admitted' });
    this.log.info({ name: p.session.flow.name, vin: `${stack.daddr}:${stack.dport}`, router: `${wire.daddr}:${wire.dport}` }, 'GSRA flow admitted: stash released');
    ctx.releaseFlow(p.cid);
  }

  private finish(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    this.pending.delete(p.msgId);
    const c = p.cid;
    this.byFlow.delete(`${c.proto}:${c.saddr}:${c.sport}>${c.daddr}:${c.dport}`);
  }

  /** The flow fails now: its stash dropped (counted) and the application told by an ICMP unreachable from the VIN. */
  private refuse(rec: PuntRec, ctx: PuntContext, why: string, cid: Cid = rec.cid): void {
    gsraEnFlowsTotal.inc({ result: why });
    this.log.info({ flow: cid, why }, 'GSRA flow refused: the application is told (ICMP unreachable)');
    const frame = rec.cap_len ? unreachableFor(puntPacket(rec)) : null;
    ctx.dropFlow(cid, `gsra_${why}`);
    if (frame && ctx.reinjectDns) ctx.reinjectDns(rec.ifindex, frame);
  }

  private sweep(): void {
    const ctx = this.ctx;
    if (!ctx || !this.vat) return;
    try {
      const now = ctx.nowNs();
      const idleNs = BigInt(this.cfg.idleS) * 1_000_000_000n;
      for (const f of this.vat.entries()) {
        const ks = legPitKeys('en', f.wire);
        const last = ks.map((k) => ctx.maps.pit.get(k)).reduce((m, v) => (v && v.last_seen_ns > m ? v.last_seen_ns : m), 0n);
        if (now - last > idleNs) for (const k of ks) { ctx.maps.pit.delete(k); ctx.maps.flowKeys.delete(k); }
      }
      this.vat.sweep();
      this.sweepFtpSeq();
      this.nrt.expire();
      const live = new Set(this.nrt.entries().map((e) => e.virtual));
      for (const f of this.vat.entries()) live.add(f.stack.daddr);
      this.routes.prune(live);
    } catch (e) { this.log.warn({ err: e }, 'GSRA EN sweep failed (the next one retries)'); }
  }

  /** A control connection's FTP sequence delta goes with its VAT flow (the fast path also drops it on a new SYN). */
  private sweepFtpSeq(): void {
    const ctx = this.ctx!;
    const live = new Set(this.vat!.entries().filter((x) => x.stack.proto === PROTO_TCP)
      .map((x) => `${x.stack.daddr}:${x.stack.dport}>${x.stack.saddr}:${x.stack.sport}`));
    const gone: Cid[] = [];
    for (const k of ctx.maps.ftpSeq.keys()) if (!live.has(`${k.saddr}:${k.sport}>${k.daddr}:${k.dport}`)) gone.push(k);
    for (const k of gone) ctx.maps.ftpSeq.delete(k);
  }

  /** For tests and status: the admitted flows. */
  flows(): ReturnType<VatTable['entries']> { return this.vat?.entries() ?? []; }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const p of this.byFlow.values()) if (p.timer) clearTimeout(p.timer);
  }
}
