/**
 * The GSRA router part at run time (on the router's outside instance): GSRA
 * requests punted by the fast path (UDP 7253, codes 32/34/36/38) go through
 * the exchange (router-exchange.ts); an admitted flow's two NAT halves are
 * written (router-nat.ts: this instance's NAT maps and the inside
 * instance's, opened from their pins) before MAP_OK goes back to the port
 * the request came from. Every tick: the users and INs from their source
 * (the GMS delivery cached by the agent's GMS client, or the static config),
 * mappings of users the GMS no longer lists cut at once, idle mappings
 * (the NAT stage's last-seen time) and lapsed reservations expired.
 */
import type { Logger } from 'pino';
import { statSync } from 'node:fs';
import type { PuntContext, PuntHandler } from '../parts/handler.js';
import type { PuntRec } from '../maps/codecs.js';
import { puntPacket } from '../maps/codecs.js';
import { controlOfFrame, frameControl } from '../parts/control-framing.js';
import { Action, CONTROL_UDP_PORT } from '../maps/abi.js';
import { openPinnedMaps } from '../agent/datapath.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import { agentFilePaths, loadCache } from '../gms/agent-files.js';
import { gsraFtpAnnouncementsTotal, setGsraActiveSource } from '../metrics/metrics.js';
import { parseFtpFrame } from './ftp-reply.js';
import { GsraAdmission, type AdmissibleUser, type InternalServer, type Mapping } from './admission.js';
import { GsraRouterExchange } from './router-exchange.js';
import { GsraRouterNat, outsideSession } from './router-nat.js';
import { readUserKey, type GsraConfig } from './router-config.js';
import { routerStatus } from './router-status.js';
import { writeStatusAtomic } from './status-file.js';
import { legFlowKeys, legPitEntries, legPitKeys, newestKeyVersion, writeFlowKeys, type WireFlow } from './leg-pit.js';

export class GsraRouterHandler implements PuntHandler {
  readonly name = 'gsra-router';
  readonly admission: GsraAdmission;
  private exchange: GsraRouterExchange | null = null;
  private nat: GsraRouterNat | null = null;
  private inside: GscipMaps | null = null;
  private timer: NodeJS.Timeout | null = null;
  private cacheMtime = -1;
  private users: Array<{ userId: string; groups: readonly number[] }> = [];
  private servers: InternalServer[] = [];

  constructor(private readonly log: Logger, private readonly cfg: GsraConfig | null, private readonly gmsDataDir: string | null) {
    this.admission = new GsraAdmission({
      portLo: cfg?.ports.first ?? 40000, portHi: cfg?.ports.last ?? 40999, maxEntries: cfg?.maxEntries ?? 8192,
      leaseMs: (cfg?.leaseS ?? 10) * 1000, idleMs: (cfg?.idleS ?? 300) * 1000,
    }, (cfg?.ftpAnnounceS ?? 60) * 1000);
  }

  onStart(ctx: PuntContext): void {
    if (!this.cfg) { this.log.warn('part gsra-router loaded without a `gsra` config section: refusing every request'); return; }
    if (!ctx.maps.nat) throw new Error('part gsra-router: this instance has no NAT maps: it needs the nat part and a nat section (NAT external = gsra.ggr)');
    this.inside = openPinnedMaps(this.cfg.insidePinDir);
    if (!this.inside.nat) throw new Error(`part gsra-router: the inside instance (${this.cfg.insidePinDir}) has no NAT maps: run it with a nat section (external = gsra.pgr)`);
    this.nat = new GsraRouterNat(ctx.maps.nat, this.inside.nat, { ggr: this.cfg.ggr, pgr: this.cfg.pgr }, () => ctx.nowNs());
    const nat = this.nat;
    const pccom = this.cfg.legEncryption === 'pccom';
    this.exchange = new GsraRouterExchange(this.admission, undefined, pccom ? Action.ENCRYPT : Action.PASS, (m) => {
      // PCCOM on the Internet leg: the group key the flow was admitted with, or no flow (docs/gsra.md).
      const version = pccom ? newestKeyVersion(ctx.maps.keys.keys(), m.group) : 0;
      if (version === undefined) { this.log.warn({ user: m.userId, group: m.group }, 'GSRA: no key of the flow\'s group held: refused (no_group_key)'); return 'no_group_key'; }
      const w = nat.install(m);
      if (w.ok) {
        if (pccom) {
          // A bound UDP flow with a salt: per-flow keys first (its PIT entries say FLOW_KEY), UDP wire-valid form.
          const gk = m.salt ? ctx.maps.keys.get({ group_id: m.group, version }) : undefined;
          if (gk && m.salt) writeFlowKeys(ctx.maps.flowKeys, legFlowKeys('router', this.wireOf(m), m.group, version, gk, m.salt));
          for (const [k, v] of legPitEntries('router', this.wireOf(m), m.group, version, ctx.nowNs(), { acrossNat: m.bound, flowKey: !!gk })) ctx.maps.pit.set(k, v);
        }
        this.log.info({ user: m.userId, t: m.t, en: `${m.en.addr}:${m.en.port}`, inside: `${m.inside.addr}:${m.inside.port}` }, 'GSRA flow admitted'); return null;
      }
      return w.reason === 'table_full' ? 'table_full' : 'ports_exhausted';
    });
    setGsraActiveSource(() => this.admission.activeUsers().length);
    this.tick(ctx);
    this.timer = setInterval(() => this.tick(ctx), this.cfg.tickMs);
    this.timer.unref();
  }

  onControl(rec: PuntRec, ctx: PuntContext): void {
    const cp = controlOfFrame(puntPacket(rec));
    if (!cp || !this.exchange) return;
    const from = { addr: cp.src, port: cp.sport ?? CONTROL_UDP_PORT };
    const o = this.exchange.onMessage(Buffer.from(cp.msg), from, Date.now());
    if (o.remove) this.unmap(o.remove, ctx);
    if (o.result !== 'ok') this.log.debug({ from: `${from.addr}:${from.port}`, result: o.result }, 'GSRA request refused');
    if (o.reply) ctx.sendControl(rec.ifindex, frameControl(cp.dst, cp.src, o.reply, { sport: CONTROL_UDP_PORT, dport: from.port }));
  }

  /**
   * A copy of an IN's FTP 227/229 reply leaving on a control connection (the FTP stage, before NAT: PIN:21 ->
   * GEN:s). Its data port becomes admissible for that mapping's user to that IN (admission.ts `announce`); an
   * IN with `ports` admits no other port. The copy is taken before the reply leaves, so it is here before the
   * EN's AUTH for the data connection (both come through the same punt ring).
   */
  onFtpCopy(rec: PuntRec): void {
    if (!this.cfg?.ftpPassive) return;
    const f = parseFtpFrame(puntPacket(rec));
    if (!f) return;
    if (f.port === null) { gsraFtpAnnouncementsTotal.inc({ result: 'no_port' }); return; }
    const m = this.admission.announce({ inside: { addr: f.src, port: f.sport }, en: { addr: f.dst, port: f.dport } }, f.port, Date.now());
    gsraFtpAnnouncementsTotal.inc({ result: m ? 'announced' : 'no_mapping' });
    if (m) this.log.debug({ user: m.userId, in: f.src, port: f.port, code: f.code }, 'GSRA: FTP data port announced');
  }

  /** Users and INs from their source; cut, expire. */
  private tick(ctx: PuntContext): void {
    try {
      this.refreshSources(ctx);
      const nowNs = ctx.nowNs();
      const now = Date.now();
      for (const m of this.admission.mappings()) {
        const v = ctx.maps.nat?.sessions.get(outsideSession(m));
        if (v) this.admission.touch(m.t, now - Number(nowNs - v.last_seen_ns) / 1e6);
      }
      for (const m of this.admission.expire(now)) { this.unmap(m, ctx); this.log.info({ user: m.userId, t: m.t }, 'GSRA mapping idle: removed'); }
      if (this.cfg?.statusFile) {
        const st = routerStatus(this.admission, { ggr: this.cfg.ggr, pgr: this.cfg.pgr }, this.users, this.servers, now);
        writeStatusAtomic(this.cfg.statusFile, JSON.stringify(st) + '\n');
      }
    } catch (e) { this.log.warn({ err: e }, 'GSRA tick failed (the next one retries)'); }
  }

  private refreshSources(ctx: PuntContext): void {
    const cfg = this.cfg!;
    let users: AdmissibleUser[] | null = null;
    let servers: InternalServer[] | null = null;
    if (cfg.users) users = cfg.users.map((u) => ({ userId: u.userId, groups: u.groups, key: readUserKey(u.keyFile) }));
    if (cfg.servers) servers = cfg.servers.map((s) => ({ ...s }));
    if ((!users || !servers) && this.gmsDataDir) {
      let mtime = 0;
      try { mtime = statSync(agentFilePaths(this.gmsDataDir).cache).mtimeMs; } catch { mtime = 0; }
      if (mtime !== this.cacheMtime) {
        this.cacheMtime = mtime;
        const d = loadCache(this.gmsDataDir);
        if (!users) users = (d?.remoteUsers ?? []).map((u) => ({ userId: u.userId, groups: u.groups, key: Buffer.from(u.key, 'base64') }));
        if (!servers) servers = (d?.act ?? []).map((e) => ({ name: e.name, address: e.address, groups: e.groups, outsideAccess: e.outsideAccess, ...(e.ports ? { ports: e.ports } : {}) }));
      }
    }
    if (servers) { this.admission.setServers(servers); this.servers = servers; }
    if (users) { this.cut(this.admission.setUsers(users), ctx); this.users = users.map((u) => ({ userId: u.userId, groups: u.groups })); }
  }

  /** The wire view of a mapping, EN -> router: GEN:s (or GHR:m) -> GGR:t. */
  private wireOf(m: Mapping): WireFlow {
    return { saddr: m.en.addr, sport: m.en.port, daddr: this.cfg!.ggr, dport: m.t, proto: m.proto };
  }

  /** A mapping's NAT halves and its Internet leg's PIT entries go together. */
  private unmap(m: Mapping, ctx: PuntContext): void {
    this.nat?.remove(m);
    for (const k of legPitKeys('router', this.wireOf(m))) { ctx.maps.pit.delete(k); ctx.maps.flowKeys.delete(k); }
  }

  private cut(ms: Mapping[], ctx: PuntContext): void {
    for (const m of ms) { this.unmap(m, ctx); this.log.info({ user: m.userId, t: m.t }, 'GSRA flow cut: the user may no longer reach this IN'); }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    setGsraActiveSource(null);
    this.inside?.close();
  }
}
