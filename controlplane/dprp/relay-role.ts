/**
 * The relay and end roles of one GE (every GE on the path that did not start
 * the negotiation):
 *
 *   intermediate: DDE relay -> RGI: append own record, relay -> MPIT: take own
 *                 action (tentative), relay -> CDN: confirm, relay
 *   end:          DDE for me (or for a Term behind me, after the end wait with
 *                 no GE answering from inside) -> RGI -> MPIT: install
 *                 confirmed -> CDN (sealed)
 * Contract: state per negotiation id (bounded, maxRelays); a message of an
 * unknown negotiation is refused unless it may open one (a DDE, an RGI from
 * inside). Encrypt/decrypt are installed only from an authenticated entry; an
 * unauthenticated word never lets a CL GE pass plaintext; the end GE refuses
 * an unauthenticated decision when the start proved a shared group
 * (downgrade). Entries go to the flow table (negotiated-flows.ts) after the
 * MPIT is passed on; unconfirmed ones are removed when the state expires
 * (sweep), except those of a re-keying (rekeying.ts).
 */
import { findSelected, sealMac, verifyAction, verifyRecord, type GroupKey } from './auth.js';
import type { Decision, GroupVersion, PathRole } from './decide.js';
import { NatFollow } from './nat-follow.js';
import { reverseFlow } from './pit-entries.js';
import type { PitWhyName } from '../maps/vocabulary.js';
import { hex, sameFlow, type DprpContext } from './node-context.js';
import { relayVia, replyVia, type ControlVia, type PacketAddrs, type TimerHandle } from './node-deps.js';
import { pitEntriesFor, pitEntryKey, withPrevVersions, type PitDir, type PitEntry } from './pit-entries.js';
import { deferredUntilCdn } from './rekeying.js';
import type { Hold } from './hold.js';
import { mpitFirstOf, mpitWhyOf, OptionType, PCCOM_CAP_FLOW_KEYS, PCCOM_CAP_WIRE_CSUM, pccomCapsOf } from './spec-options.js';
import { udpWireAcrossNat } from './nat-traversal.js';
import { udpWireFirstMark } from '../pccom/udp-wire.js';
import { writeIpv4 } from './ipv4.js';
import {
  ACT_F_NEW_SALT, ACT_F_TRANSIT, MAX_CAND_DEPTH, MAX_RECORDS, MsgType, REC_F_IS_DEST, REC_F_PROTECTS_DEST, Status, WIRE_ACTIONS, WIRE_ROLES, WireAction,
  abiRole, isZero, withCandDepth, type DprpMessage, type Flow, type TlvOption,
} from './wire.js';

const IPPROTO_UDP = 17;

interface RelayNeg {
  negId: Buffer;
  /** An unauthenticated pass/discard for this flow was refused: it is encrypted here (onMpit). */
  keptEncrypted?: boolean;
  /** The GE our prior entries for the flow were negotiated with (with `prior`; null: none or not known). */
  priorPeer?: string | null;
  /** Our RGI said this GE protects the flow with us (PROTECTED): no MPIT changes our entries. */
  protectedBy?: string;
  /** The flow as the messages name it: the start GE's view (pre-NAT). */
  flow: Flow;
  /** The flow as this GE's packets carry it: `flow`, or with the NAT's address for its source (natFrom). */
  local: Flow;
  startGe: string;
  /** Where RGIs and CDNs go: the DDE's packet source and port (the start GE, or the NAT in front of it). */
  reply: { addr: string; via?: ControlVia };
  /** The DDE came from this address, not the start GE's: a NAT between us (NAT_SEEN in our record). */
  natFrom: string | null;
  /** Past a NAT, port not learned yet: the entries wait for the flow's first packet (nat-follow.ts); `local` is a guess. */
  waitsFirst: boolean;
  role: Exclude<PathRole, 'start'> | 'end-candidate';
  createdMono: number;
  endTimer: TimerHandle | null;
  lastDdeAttempt: number;
  entries: readonly PitEntry[];
  confirmed: boolean;
  /** End GE: the key its MPIT entry was authenticated with (to seal the CDN). */
  sealKey: GroupKey | null;
  /** End GE: the last CDN attempt answered. */
  answeredMpit: boolean;
  /**
   * The DDEs carrying the start GE's own record, kept to check lazily (off the
   * DDE -> RGI critical path) whether it proved a group we hold: then its
   * decision must come authenticated. Bounded: one per accepted attempt (u8).
   */
  startDdes: DprpMessage[];
  /** The flow's entries before this negotiation's first MPIT (re-keying), null: none. */
  prior?: readonly PitEntry[] | null;
  /** Re-keying: what the MPIT actually wrote (r.entries minus the deferred encrypt toward the end, which keeps the prior entry). */
  installed?: readonly PitEntry[];
  /**
   * NAT-f at a GNAT whose private host is a GE (ACT `ge`): the host's address P1
   * the negotiation was relayed to, and the port Z mapped for this peer (its
   * RGI gets NATF_PORT Z appended; the MPIT goes on to P1). A Term behind a GEN
   * inside (ACT `via`): `addr` is that GEN's, the end GE; `host` the Term's P1.
   */
  inside?: { addr: string; port: number; host?: string };
  /**
   * NAT-f at a GNAT, the other way: an inside GE's negotiation toward a
   * global GE, relayed out from this GNAT's own address; `port` is the NAPT
   * port Z its flow was mapped to (NATF_PORT in our DDE record).
   */
  outward?: { port: number };
  /** At the global end: the NAT in front of the start is a GNAT that said so (its DDE record, NATF_PORT Z): no NAT_SEEN, no wait. */
  viaGnat?: boolean;
  /** A GE on the way to a GNAT whose private GE is the end GE: the MPIT goes to the GNAT (the end's address is private). */
  mpitVia?: string;
}

/** What installing a flow past a NAT on the port its first packet came from needs (nat-follow.ts). */
interface NatRepoint {
  negId: string;
  role: PathRole;
  decision: Decision;
  gv: GroupVersion | null;
  fwdDir: PitDir;
  why: PitWhyName;
  wireCsum: boolean;
  /** A UDP flow past a NAT: its encrypt entry sends the UDP wire-valid form. */
  udpWire: boolean;
  /** Per-flow keys: the salt (docs/pccom.md); undefined: the group key. */
  flowKeySalt?: string;
  unauth: boolean;
}

export class RelayRole {
  private readonly relays = new Map<string, RelayNeg>();
  /** Flows past a NAT: the views learned, and the negotiations waiting for their first packet. */
  readonly nat = new NatFollow<NatRepoint>();

  constructor(private readonly c: DprpContext) {}

  /** A re-keying step rewrote the flow's entries: the negotiation that made them follows. */
  entriesRewritten(negId: string, entries: readonly PitEntry[]): void {
    const r = this.relays.get(negId);
    if (r) r.entries = entries;
  }

  /**
   * The relay state of m's negotiation; created when `create` says in which role.
   * 'full' when it would have to be created and the table is at maxRelays: the
   * caller counts that (relay_table_full), so one message is counted once.
   */
  private relayFor(m: DprpMessage, create: RelayNeg['role'] | null, ip?: PacketAddrs): RelayNeg | 'full' | null {
    const id = hex(m.negId);
    let r = this.relays.get(id);
    if (r) {
      if (!sameFlow(r.flow, m.flow) || r.startGe !== m.startGe) return null;
      return r;
    }
    if (!create) return null;
    if (this.relays.size >= this.c.cfg.maxRelays) return 'full';
    // Natted: the packets of the flow come with the NAT's address for their source, the port kept
    // (a NAT keeps it when it can; Linux masquerade does); docs/dprp.md "Across NATs and firewalls".
    const natFrom = ip && m.type === MsgType.DDE && ip.src !== m.startGe ? ip.src : null;
    // NAT-f: the NAT is a GNAT relaying for a GE behind it, and its record names the port it mapped the flow to.
    const gnatZ = natFrom ? this.gnatPortOf(m, natFrom) : null;
    const view = natFrom && gnatZ === null ? this.nat.learned(m.flow, natFrom, this.c.mono()) : null;
    const local = gnatZ !== null ? { ...m.flow, saddr: natFrom!, sport: gnatZ } : view ?? (natFrom ? { ...m.flow, saddr: natFrom } : m.flow);
    r = {
      negId: m.negId, flow: m.flow, local, waitsFirst: natFrom !== null && view === null && gnatZ === null, startGe: m.startGe, viaGnat: gnatZ !== null,
      reply: { addr: ip && m.type === MsgType.DDE ? ip.src : m.startGe, via: m.type === MsgType.DDE ? replyVia(ip) : undefined },
      natFrom, role: create, createdMono: this.c.mono(),
      endTimer: null, lastDdeAttempt: 0, entries: [], confirmed: false, sealKey: null, answeredMpit: false, startDdes: [],
    };
    this.relays.set(id, r);
    return r;
  }

  /**
   * NAT-f, at a private GE behind a GNAT: the address the DDE's last record
   * (the GNAT's, its membership tags verified with a key we hold) names in
   * NATF_LIP, when it is this GE's own, or (a GEN inside the GNAT's network,
   * ACT `via`) a Term behind this GE; null otherwise. This GE is then the
   * end GE of the trigger CID with that address for its destination (CID1 =
   * G1:X -> P1:Y). node.ts takes such a DDE although its packet went to this
   * GE (P1, or the GEN), not to the trigger CID's destination G2.
   */
  natfInside(m: DprpMessage): { addr: string; port: number } | null {
    if (m.type !== MsgType.DDE || m.records.length < 2) return null;
    const i = m.records.length - 1;
    const lip = m.records[i].options.find((o) => o.type === OptionType.NATF_LIP);
    if (!lip || lip.value.length !== 4) return null;
    const addr = `${lip.value[0]}.${lip.value[1]}.${lip.value[2]}.${lip.value[3]}`;
    if (addr !== this.c.d.self.addr && this.c.d.locality(addr) !== 'behind') return null;
    // NATF_PORT in the GNAT's DDE record: this GE's port Y (a re-keying's trigger CID carries Z).
    const y = m.records[i].options.find((o) => o.type === OptionType.NATF_PORT);
    const port = y && y.value.length === 2 ? y.value.readUInt16BE(0) : m.flow.dport;
    return verifyRecord(this.c.myKeys(), m, i).length > 0 ? { addr, port } : null;
  }

  /**
   * The port Z a GNAT at `from` mapped the start's flow to: the DDE's second
   * record is that GNAT's (membership tags verified with a key we hold) with
   * NATF_PORT. Null otherwise (a foreign NAT: NAT_SEEN and nat-follow.ts).
   */
  private gnatPortOf(m: DprpMessage, from: string): number | null {
    if (m.records.length !== 2 || m.records[1].addr !== from) return null;
    const z = m.records[1].options.find((o) => o.type === OptionType.NATF_PORT);
    if (!z || z.value.length !== 2) return null;
    return verifyRecord(this.c.myKeys(), m, 1).length > 0 ? z.value.readUInt16BE(0) : null;
  }

  /**
   * An MPIT sent to `dst`, not to the end GE it names, that is on its way
   * (node.ts): to this GNAT for the private GE it relays to, or, at a GE on
   * the way, to the GNAT in front of a private end GE.
   */
  mpitOnItsWay(m: DprpMessage, dst: string): boolean {
    const r = this.relays.get(hex(m.negId));
    if (!r || !sameFlow(r.flow, m.flow) || r.startGe !== m.startGe) return false;
    if (r.inside) return r.inside.addr === m.endGe && dst === this.c.d.self.addr;
    return r.mpitVia !== undefined && r.mpitVia === dst;
  }

  onDde(m: DprpMessage, raw: Buffer, ip?: PacketAddrs): void {
    const c = this.c;
    const inward = this.natfInside(m);
    const loc = inward ? 'self' : c.d.locality(m.flow.daddr);
    const existing = this.relays.get(hex(m.negId));
    const role: RelayNeg['role'] = loc === 'self' ? 'end' : loc === 'behind' ? 'end-candidate' : 'intermediate';
    const now = c.mono();
    const known = c.termCache.get(m.flow.daddr);
    const termKnown = !!known && known.untilMono > now && known.kind === 'term';
    // Answered now (an RGI to the start GE): within the per-source answer limit, or refused before any
    // state. Only beyond the limit is the start's record checked: a member's DDE (its tag verifies with a
    // key we hold) is always answered, so the limit never slows negotiations between members.
    const answersNow = existing ? existing.role === 'end' || (existing.role === 'end-candidate' && termKnown) : role === 'end' || (role === 'end-candidate' && termKnown);
    if (answersNow && (!existing || (sameFlow(existing.flow, m.flow) && existing.startGe === m.startGe && m.attempt > existing.lastDdeAttempt))
      && !this.mayAnswer(m, now)) {
      return c.reject('answer_rate_limited');
    }
    const r = this.relayFor(m, role, ip);
    if (r === 'full') return c.reject('relay_table_full');
    if (!r) return existing ? c.reject('unknown_negotiation') : undefined;
    if (m.attempt <= r.lastDdeAttempt) return c.reject('replay');
    r.lastDdeAttempt = m.attempt;
    c.replayAccept(m);
    if (m.records[0].addr === m.startGe) r.startDdes.push(m);

    // NAT-f at the private GE: the end GE of CID1 (the trigger CID with this GE's address for G2); its entries go there.
    if (inward) {
      r.local = { ...r.flow, daddr: inward.addr, dport: inward.port };
      r.role = 'end';
      // A GEN answers for the Term behind it (the GNAT addressed it: ACT `via`), with no end wait.
      return this.answerRgi(r, m, inward.addr === c.d.self.addr ? REC_F_IS_DEST : REC_F_PROTECTS_DEST);
    }
    // NAT-f: no name, but to a port Z a GNAT maps for this peer to a private GE (a re-keying from the start):
    // relayed inward again, never answered here (we would decrypt a flow the private GE expects ciphertext on).
    if (loc === 'self' && !m.options.some((o) => o.type === OptionType.NATF_NAME)) {
      const mi = c.d.natf?.mappedInside?.({ flow: m.flow });
      if (mi) {
        r.local = m.flow;
        return this.relayInward(r, m, { addr: mi.inside, port: m.flow.dport, ...(mi.host ? { host: mi.host } : {}) }, ip, mi.port);
      }
    }
    // NAT-f: a DDE naming a host behind this GE's own address (a GE on the way relays it as any other).
    if (loc === 'self' && m.options.some((o) => o.type === OptionType.NATF_NAME)) return this.answerNatf(r, m, loc, ip);
    if (r.role === 'end') return this.answerRgi(r, m, loc === 'self' ? REC_F_IS_DEST : REC_F_PROTECTS_DEST);
    // NAT-f at a GNAT: an inside GE's DDE toward a global GE leaves translated, from this GNAT. The inside GE
    // is the flow's source (a GES) or a GEN inside in front of it (its Term's flow, the source behind us too).
    if (r.outward || (r.role === 'intermediate' && m.records.length === 1 && ip?.src === m.startGe
      && (m.flow.saddr === m.startGe || c.d.locality(m.flow.saddr) === 'behind')
      && c.d.locality(m.startGe) === 'behind' && c.d.natf?.outbound)) {
      if (this.relayOutward(r, m)) return;
    }
    // Relayed transparently: the next GE sees the start GE's source, as it checks (node.ts onControl).
    const fwd = relayVia(ip);
    if (r.role === 'intermediate') {
      c.send(m.flow.daddr, raw, r.reply.addr, fwd);
      return;
    }
    // end candidate: is there a GE behind us for this address?
    if (termKnown) {
      r.role = 'end';
      return this.answerRgi(r, m, REC_F_PROTECTS_DEST);
    }
    const depth = Math.min(m.candDepth ?? 0, MAX_CAND_DEPTH);
    c.send(m.flow.daddr, withCandDepth(raw, Math.min(depth + 1, MAX_CAND_DEPTH)), r.reply.addr, fwd);
    r.endTimer?.cancel();
    const wait = c.cfg.endWaitMs + (MAX_CAND_DEPTH - depth) * c.cfg.endWaitStepMs;
    r.endTimer = c.d.timers.after(wait, () => {
      // Not at once: a HOLD already waiting in the punt ring (this process was busy) is read first,
      // since a timer of 0 runs after the event loop's next I/O poll.
      r.endTimer = c.d.timers.after(0, () => this.endWaitOver(r, m));
    });
  }

  /** No GE behind us answered or held the DDE: the destination is a Term and we are its end GE. */
  private endWaitOver(r: RelayNeg, m: DprpMessage): void {
    const c = this.c;
    r.endTimer = null;
    if (this.relays.get(hex(r.negId)) !== r || r.role !== 'end-candidate') return;
    c.termCache.set(r.flow.daddr, { kind: 'term', untilMono: c.mono() + c.cfg.termCacheMs });
    r.role = 'end';
    // Answered later, still within the per-source limit (counted when refused).
    if (!this.mayAnswer(m, c.mono())) return c.reject('answer_rate_limited');
    this.answerRgi(r, m, REC_F_PROTECTS_DEST);
  }

  /**
   * A HOLD (hold.ts) for a DDE we relayed as an end candidate: a GE behind us
   * has it and will answer, so we are only on the way; we stop waiting and
   * never answer as the end GE for this negotiation. From anywhere but behind
   * us, or for a negotiation we are no candidate in, it changes nothing.
   */
  onHold(h: Hold, src: string | undefined): void {
    const c = this.c;
    const r = this.relays.get(hex(h.negId));
    if (!r) return c.reject('unknown_negotiation');
    if (!src || c.d.locality(src) !== 'behind') return c.reject('bad_path');
    if (r.role !== 'end-candidate') return;  // already intermediate (its RGI came first) or end
    r.endTimer?.cancel();
    r.endTimer = null;
    r.role = 'intermediate';
    c.termCache.set(r.flow.daddr, { kind: 'ge', untilMono: c.mono() + c.cfg.termCacheMs });
    c.obs.held?.();
  }

  /** Within the per-source answer limit (answerLimit), or a DDE from a member (its start record verifies with a key we hold). */
  private mayAnswer(dde: DprpMessage, now: number): boolean {
    if (this.c.answerLimiter.take(dde.startGe, now) === 'ok') return true;
    return dde.records[0]?.addr === dde.startGe && verifyRecord(this.c.myKeys(), dde, 0).length > 0;
  }

  /** Whether the start GE's record (in its DDE) says its receiver takes PCCOM's TCP wire-valid form. */
  private startTakesWireCsum(r: RelayNeg): boolean {
    const rec = r.startDdes[0]?.records[0];
    return rec?.addr === r.startGe && (pccomCapsOf(rec) & PCCOM_CAP_WIRE_CSUM) !== 0;
  }

  /** Whether this GE, past a NAT, sends the flow in the UDP wire-valid form (the start GE's record takes it; nat-traversal.ts). */
  private udpWireToStart(r: RelayNeg): boolean {
    const rec = r.startDdes[0]?.records[0];
    return rec?.addr === r.startGe && udpWireAcrossNat(r.flow, r.natFrom !== null && !r.viaGnat, pccomCapsOf(rec));
  }

  /** A UDP flow in the wire-valid form: its first datagram's IP ID (pccom/udp-wire.ts), or null. */
  private udpFirstMark(udpWire: boolean, gv: { group: number; version: number } | null, salt: string | undefined): number | null {
    const k = udpWire && salt ? this.c.keyOf(gv) : null;
    return k ? udpWireFirstMark(k.key, k.group, k.version, salt!) : null;
  }

  /** Whether the start GE's record (in its DDE) says it takes PCCOM per-flow keys. */
  private startTakesFlowKeys(r: RelayNeg): boolean {
    const rec = r.startDdes[0]?.records[0];
    return rec?.addr === r.startGe && (pccomCapsOf(rec) & PCCOM_CAP_FLOW_KEYS) !== 0;
  }

  /** Whether any DDE of the start GE proved (tagged) a group this GE holds. */
  private sharesWithStart(r: RelayNeg): boolean {
    const keys = this.c.myKeys();
    return r.startDdes.some((d) => verifyRecord(keys, d, 0).length > 0);
  }

  /**
   * NAT-f at the GNAT (natf-hooks.ts): a DDE to this GE's own address naming
   * a host behind it. The ACT and the NAT decide (the natf part); allowed,
   * this GE answers as the host's end GE (the host is a Term behind it) with
   * the mapped port Z in its record, and the flow's entries go on the wire
   * flow G1:X -> G2:Z; refused, a refused RGI (no port) tells the start at once.
   */
  private answerNatf(r: RelayNeg, dde: DprpMessage, loc: string, ip?: PacketAddrs): void {
    const c = this.c;
    const name = dde.options.find((o) => o.type === OptionType.NATF_NAME)!.value.toString('latin1');
    const groups = dde.records[0]?.addr === dde.startGe ? verifyRecord(c.myKeys(), dde, 0).map((k) => k.group) : [];
    const ans = loc === 'self' && c.d.natf?.inbound ? c.d.natf.inbound({ flow: dde.flow, name, peerGroups: groups })
      : { ok: false as const, reason: 'not_a_gnat' as const };
    if (!ans.ok) {
      r.role = 'end';
      c.reject('natf_refused');
      return this.answerRgi(r, dde, REC_F_PROTECTS_DEST, [], Status.REFUSED);
    }
    r.local = { ...r.flow, dport: ans.port };
    if (ans.inside) return this.relayInward(r, dde, { addr: ans.inside, port: ans.port, ...(ans.host ? { host: ans.host } : {}) }, ip, dde.flow.dport);
    r.role = 'end';
    const z = Buffer.alloc(2);
    z.writeUInt16BE(ans.port, 0);
    this.answerRgi(r, dde, REC_F_PROTECTS_DEST, [{ type: OptionType.NATF_PORT, value: z }]);
  }

  /**
   * NAT-f, the host is a GE (docs/natf.md "A private GE behind the GNAT"): the
   * DDE goes on to P1 with the trigger CID and alice's record untouched (her
   * tags cover them) and this GNAT's record appended, NATF_LIP P1 and
   * NATF_PORT Y (the private GE's port: a re-keying's trigger CID names Z) in it (its
   * tags tell P1's GE it may act on a DDE sent to it for G2). Sent with the
   * start's source, as every relay forwards a DDE, so the private GE's RGI and
   * CDN leave toward the start through this GNAT's outside interface, where
   * the fast path punts them to us (control.h): we append NATF_PORT Z to the
   * RGI and forward both from our own address. This GNAT stays on the way
   * (intermediate): its entries on G1:X <-> G2:Z are the MPIT's transit pass.
   * A Term behind a GEN inside (ACT `via`): the same, sent to the GEN
   * (`inside.addr`, the end GE to be), NATF_LIP naming the Term (`inside.host`).
   */
  private relayInward(r: RelayNeg, dde: DprpMessage, inside: { addr: string; port: number; host?: string }, ip: PacketAddrs | undefined, insidePort: number): void {
    const c = this.c;
    r.role = 'intermediate';
    r.inside = inside;
    const lip = Buffer.alloc(4);
    writeIpv4(lip, 0, inside.host ?? inside.addr, 'NATF_LIP');
    const y = Buffer.alloc(2);
    y.writeUInt16BE(insidePort, 0);
    const out: DprpMessage = { ...dde, records: [...dde.records] };
    out.records.push(c.ownRecord(dde, 0, [{ type: OptionType.NATF_LIP, value: lip }, { type: OptionType.NATF_PORT, value: y }]));
    c.send(inside.addr, c.enc(out), dde.startGe, relayVia(ip));
  }

  /**
   * NAT-f, a GE inside negotiating outward (private -> global, docs/natf.md):
   * relayed transparently, its DDE would leave with its private source (the
   * fast path drops that: nat_proto). Instead the flow is mapped in this
   * GNAT's NAPT now (its first packet will find the session, port Z), and the
   * DDE goes on from this GNAT's own address with its record appended, NATF_PORT
   * Z in it: the global GE takes it as from a NAT (the start's record is
   * verified) and keys its entries on G2:Z at once. The answers come back to
   * us and go on to the inside GE; our entries (the MPIT's transit pass) are
   * on G2:Z <-> G1:Y, the view past our NAT stage. False: not a source this
   * GNAT translates (relayed as before).
   */
  private relayOutward(r: RelayNeg, dde: DprpMessage): boolean {
    const c = this.c;
    if (!r.outward) {
      const ans = c.d.natf!.outbound!({ flow: dde.flow });
      if (!ans) return false;
      if (!ans.ok) { c.reject('natf_no_mapping'); return true; }
      r.outward = { port: ans.port };
      r.local = { ...r.flow, saddr: c.d.self.addr, sport: ans.port };
    }
    const z = Buffer.alloc(2);
    z.writeUInt16BE(r.outward.port, 0);
    const out: DprpMessage = { ...dde, records: [...dde.records] };
    out.records.push(c.ownRecord(dde, 0, [{ type: OptionType.NATF_PORT, value: z }]));
    c.send(dde.flow.daddr, c.enc(out));
    return true;
  }

  private answerRgi(r: RelayNeg, dde: DprpMessage, flags: number, extra: readonly TlvOption[] = [], status: number = Status.OK): void {
    const c = this.c;
    const m: DprpMessage = {
      type: MsgType.RGI, flags: 0, attempt: dde.attempt, negId: r.negId, timestampMs: c.wallMs(),
      flow: r.flow, status, startGe: r.startGe, endGe: c.d.self.addr,
      records: [], actions: [], seal: null, options: [],
    };
    m.records = [c.ownRecord(m, flags, [...this.natSeen(r), ...this.protectedElsewhere(r, dde, status), ...extra])];
    c.send(r.reply.addr, c.enc(m), undefined, r.reply.via);
  }

  /**
   * Our record's PROTECTED option: another part's entries already encrypt this
   * flow between us and a GE that is neither this DDE's start nor on its path
   * (a moved flow's peer; a GE new on the flow's path started it). The start
   * then passes the ciphertext; an MPIT for the flow is refused here after
   * (protected_elsewhere), so our entries stay whatever the start does.
   */
  private protectedElsewhere(r: RelayNeg, dde: DprpMessage, status: number): TlvOption[] {
    const by = status === Status.OK ? this.c.d.protectedBy?.(r.local) ?? this.endpointPeer(r.local) : null;
    if (!by || by === r.startGe || dde.records.some((x) => x.addr === by)) return [];
    r.protectedBy = by;
    const v = Buffer.alloc(4);
    writeIpv4(v, 0, by, 'PROTECTED');
    return [{ type: OptionType.PROTECTED, value: v }];
  }

  /**
   * The GE our own negotiated entries encrypt this flow with, when that GE is
   * the flow's other endpoint (a host that is its own GE: on every path the
   * flow takes, e.g. a moved host's packets still on its old address). A
   * router peer is not: a route change may have taken it off the path, and
   * the new GE must then negotiate the flow afresh.
   */
  private endpointPeer(flow: Flow): string | null {
    const peer = this.c.flows.find(flow)?.meta.peer;
    return peer && (peer === flow.saddr || peer === flow.daddr) ? peer : null;
  }

  /** Our record's NAT_SEEN option when the DDE crossed a NAT (the start GE decides with it). */
  private natSeen(r: RelayNeg): TlvOption[] {
    // A GNAT in front of the start translates PCCOM's packets itself (incremental updates): no NAT policy to apply.
    if (!r.natFrom || r.viaGnat) return [];
    const v = Buffer.alloc(4);
    writeIpv4(v, 0, r.natFrom, 'NAT_SEEN');
    return [{ type: OptionType.NAT_SEEN, value: v }];
  }

  onRgi(m: DprpMessage): void {
    const c = this.c;
    const r = this.relayFor(m, 'intermediate');
    if (r === 'full') return c.reject('relay_table_full');
    if (!r) return c.reject('unknown_negotiation');
    if (m.records.length >= MAX_RECORDS) return c.reject('path_too_long');
    if (m.records.some((x) => x.addr === c.d.self.addr)) return c.reject('own_message');
    c.replayAccept(m);
    if (r.role === 'end-candidate' || r.role === 'end') {
      // A GE behind us answered: we are only on the way.
      r.endTimer?.cancel();
      r.endTimer = null;
      r.role = 'intermediate';
      c.termCache.set(r.flow.daddr, { kind: 'ge', untilMono: c.mono() + c.cfg.termCacheMs });
    }
    // NAT-f: the GNAT that answered mapped the flow to its port Z (its record's NATF_PORT): a GE on the
    // way sees the flow's packets on that port, so its entries go there (as the start's and the GNAT's do).
    // The GNAT's record is the end GE's (it answered for a Term) or the last one (it relayed inward to a GE).
    const gnatRec = m.records[0]?.addr === m.endGe && m.endGe === r.flow.daddr ? m.records[0] : m.records.find((x) => x.addr === r.flow.daddr && x.addr !== m.endGe);
    const z = gnatRec?.options.find((o) => o.type === OptionType.NATF_PORT);
    if (z && r.role === 'intermediate' && !r.inside) {
      r.local = { ...r.local, dport: z.value.readUInt16BE(0) };
      // The end GE is a private GE behind that GNAT: the start's MPIT goes to the GNAT, and so do we.
      if (gnatRec !== m.records[0]) r.mpitVia = r.flow.daddr;
    }
    const out: DprpMessage = { ...m, records: [...m.records] };
    if (r.inside) {
      // NAT-f: the RGI of the private GE we relayed the DDE to: only from it, and it answers as the end GE.
      if (m.endGe !== r.inside.addr || m.records[0]?.addr !== r.inside.addr) return c.reject('bad_path');
      const zv = Buffer.alloc(2);
      zv.writeUInt16BE(r.inside.port, 0);
      out.records.push(c.ownRecord(m, 0, [{ type: OptionType.NATF_PORT, value: zv }]));
    } else {
      out.records.push(c.ownRecord(m, 0, this.natSeen(r)));
    }
    c.send(r.reply.addr, c.enc(out), undefined, r.reply.via);
  }

  onMpit(m: DprpMessage, raw: Buffer): void {
    const c = this.c;
    const r = this.relayFor(m, null);
    if (!r || r === 'full') return c.reject('unknown_negotiation');
    const self = c.d.self.addr;
    const entry = m.actions.find((a) => a.addr === self);
    if (!entry) {
      // Not named (we are past the end GE, or our record was stripped): relay only.
      c.replayAccept(m);
      if (m.endGe !== self) c.send(r.mpitVia ?? m.endGe, raw);
      return;
    }
    let key: GroupKey | null = null;
    if (!isZero(entry.selector)) {
      key = findSelected(c.myKeys(), m.negId, self, entry.selector);
      if (!key) return c.reject('bad_selector');
      if (!verifyAction(key, m, entry)) return c.reject('bad_mac');
      // Our RGI said another GE protects this flow with us (PROTECTED): a member start passes it and sends
      // no MPIT, so one that does ignored the option; our entries stay (an unauthenticated word: below).
      if (r.protectedBy && m.endGe === self) return c.reject('protected_elsewhere');
    } else if (entry.action === WireAction.ENCRYPT || entry.action === WireAction.DECRYPT) {
      return c.reject('unauthenticated_action');
    } else if (m.endGe === self && this.sharesWithStart(r)) {
      // The start proved (in its DDE) a group we share, yet its word for us is
      // unauthenticated: someone rewrote the RGI to downgrade the flow. Install nothing.
      return c.reject('downgrade');
    }
    // A flow on an unauthenticated word (a non-member's, perhaps forged): capped (maxUnauthFlows), short idle.
    if (!key && !r.entries.length && c.flows.unauthFull(r.local)) return c.reject('unauth_flows_full');
    c.replayAccept(m);

    let decision: Decision = WIRE_ACTIONS.of(entry.action);
    // Local policy wins: a CL GE never lets plaintext through on an unauthenticated word.
    if (decision === 'pass' && !key && c.d.self.mode === 'CL' && (entry.flags & ACT_F_TRANSIT) === 0) {
      decision = 'discard';
      c.obs.overridden();
    }
    const transit = (entry.flags & ACT_F_TRANSIT) !== 0;
    let why: PitWhyName = decision === 'discard' ? 'closed' : decision === 'pass' && !transit ? 'not_member' : 'none';
    // An authenticated plaintext or refusal: the start's why, when it says it (MPIT option WHY).
    const told = key && why !== 'none' ? mpitWhyOf(m) : null;
    if (told && told !== 'none' && told !== 'policy') why = told;
    // The network definition requires encryption to this destination: a plaintext word never installs a pass here either.
    if (decision === 'pass' && !transit && c.encryptionRequired(r.flow.daddr)) {
      decision = 'discard';
      why = 'encryption_required';
    }
    // A non-member's word (a GE of another group on the path, e.g. a moved flow's new path, or a forger) never
    // turns a flow this GE encrypts now into plaintext or a refusal: nothing installed, the MPIT still answered.
    if (!key && !transit && (decision === 'pass' || decision === 'discard') && (r.keptEncrypted || c.d.encryptedNow?.(r.local))) {
      if (!r.keptEncrypted) c.obs.downgradeRefused?.(r.local);
      r.keptEncrypted = true;
      return this.answerMpitKeepingEntries(r, m, raw);
    }
    // once per negotiation (a retransmitted MPIT re-installs the same entries)
    if (why !== 'none' && !r.entries.length) c.obs.plaintext?.(decision === 'pass' ? 'pass' : 'refused', why, r.flow);
    // A relay is the end GE or an intermediate one (a start role named for it counts as intermediate).
    const role: PathRole = abiRole(WIRE_ROLES.of(entry.role)) === 'end' ? 'end' : 'intermediate';
    const gv = decision === 'encrypt' || decision === 'decrypt' ? { group: key!.group, version: key!.version } : null;
    // The end GE sends the CDN itself, so it installs confirmed at once (one map write, not two).
    const isEnd = m.endGe === self;
    if (isEnd) r.confirmed = true;
    // A GEN whose inside holds the source sees the forward direction leave on egress.
    // A GNAT relaying outward keys on its own address (past its NAT) but the start is behind it.
    const fwdDir: PitDir = r.outward || c.d.locality(r.local.saddr) === 'behind' ? 'egress' : 'ingress';
    if (r.prior === undefined) {
      r.prior = c.flows.prior(r.local) ?? null;
      r.priorPeer = c.flows.find(r.local)?.meta.peer ?? null;
    }
    const prior = r.prior ?? undefined;
    // The old salt is the pair's: a flow now encrypted with another start (a route change) takes this negotiation's.
    const newSalt = (entry.flags & ACT_F_NEW_SALT) !== 0 || (decision === 'decrypt' && !!r.priorPeer && r.priorPeer !== r.startGe);
    const wireCsum = this.startTakesWireCsum(r);
    const flowKeySalt = this.startTakesFlowKeys(r) ? hex(r.negId) : undefined;
    const udpWire = flowKeySalt !== undefined && this.udpWireToStart(r);
    // Past a NAT with the port not learned yet: nothing is installed on a guess; the first packet places the entries (nat-follow.ts).
    const waits = r.waitsFirst;
    const entries = waits ? [] : withPrevVersions(pitEntriesFor(r.local, decision, role, gv, r.confirmed ? 'confirmed' : 'tentative', { fwdDir, why, wireCsum, udpWire, flowKeySalt }), prior, newSalt);
    r.entries = entries;
    // Lossless re-keying (rekeying.ts): an encrypt entry toward the end keeps the old version until the CDN.
    const deferred = deferredUntilCdn(isEnd, r.local, prior);
    // NAT-f, relaying inward to a private GE (r.inside): its CDN can only come back through this GNAT and is
    // handled here after this call returns, and the start sends nothing before that CDN; so the MPIT goes on
    // first and our entries are written right after it, off the negotiation's path. Elsewhere (a CDN may
    // take another way back) the entries are written before the MPIT leaves.
    const sendFirst = !isEnd && r.inside !== undefined;
    if (sendFirst) c.send(r.mpitVia ?? m.endGe, raw);
    c.flows.writes.write({ pit: entries.filter((e) => !deferred(e)) });
    if (prior) {
      const before = new Map(prior.map((e) => [pitEntryKey(e), e]));
      r.installed = entries.map((e) => (deferred(e) ? before.get(pitEntryKey(e))! : e));
    }

    if (isEnd) {
      r.role = 'end';
      r.sealKey = key;
      // entry.selector is selector(key, negId, self): findSelected just matched it.
      this.sendCdn(r, m, key ? { key, selector: entry.selector } : null);
    } else if (!sendFirst) {
      c.send(r.mpitVia ?? m.endGe, raw);
    }
    // Book-keeping after the send: the next GE starts its work sooner.
    if (!waits) c.flows.remember(r.local, role, decision, gv, r.entries, hex(r.negId), !key, decision === 'decrypt' ? r.startGe : undefined);
    else if (!this.nat.await({ wire: r.flow, natAddr: r.natFrom!, first: r.flow.proto === IPPROTO_UDP ? this.udpFirstMark(udpWire, gv, flowKeySalt) : mpitFirstOf(m), data: { negId: hex(r.negId), role, decision, gv, fwdDir, why, wireCsum, udpWire, flowKeySalt, unauth: !key } }, c.mono())) {
      c.obs.natFollow?.('wait_table_full');
    }
  }

  /** The MPIT answered (CDN from the end GE, relayed otherwise) with this GE's entries left as they are. */
  private answerMpitKeepingEntries(r: RelayNeg, m: DprpMessage, raw: Buffer): void {
    const c = this.c;
    const self = c.d.self.addr;
    if (m.endGe !== self) {
      c.send(r.mpitVia ?? m.endGe, raw);
      return;
    }
    r.role = 'end';
    r.confirmed = true;
    this.sendCdn(r, m, null);
  }

  /** The end GE's CDN to the start for the MPIT `m`, sealed under `seal.key` when the start's word for us was. */
  private sendCdn(r: RelayNeg, m: DprpMessage, seal: { key: GroupKey; selector: Buffer } | null): void {
    const c = this.c;
    const cdn: DprpMessage = {
      type: MsgType.CDN, flags: 0, attempt: m.attempt, negId: m.negId, timestampMs: c.wallMs(),
      flow: m.flow, status: m.status, startGe: m.startGe, endGe: c.d.self.addr, records: [], actions: [], seal: null, options: [],
    };
    if (seal) cdn.seal = { selector: seal.selector, mac: sealMac(seal.key, cdn) };
    r.answeredMpit = true;
    c.send(r.reply.addr, c.enc(cdn), undefined, r.reply.via);
  }

  /**
   * A packet from past a NAT missed (`seen` as it arrived, `first` its mark:
   * first-packet.ts). If a negotiation past that NAT waits for it, its entries
   * are written on the packet's addresses and ports and the packet is
   * released: true.
   */
  natMiss(seen: Flow, handle: unknown, first: number | null): boolean {
    const c = this.c;
    const now = c.mono();
    // Punted before the entries of its (already followed) flow were written: it goes through them now.
    if (this.nat.isLearned(seen) && c.flows.find(seen)) {
      c.d.stash.release([handle]);
      return true;
    }
    const p = this.nat.take(seen, first, now);
    if (!p) return false;
    const d = p.data;
    const local: Flow = { ...p.wire, saddr: seen.saddr, sport: seen.sport };
    const r = this.relays.get(d.negId);
    const entries = pitEntriesFor(local, d.decision, d.role, d.gv, r && !r.confirmed ? 'tentative' : 'confirmed', { fwdDir: d.fwdDir, why: d.why, wireCsum: d.wireCsum, udpWire: d.udpWire, flowKeySalt: d.flowKeySalt });
    c.flows.writes.write({ pit: entries });
    c.flows.remember(local, d.role, d.decision, d.gv, entries, d.negId, d.unauth);
    this.nat.learn(local, p.wire, p.natAddr, now);
    if (r) { r.local = local; r.entries = entries; r.waitsFirst = false; }
    c.d.stash.release([handle]);
    c.obs.natFollow?.('placed', { wire: p.wire, to: local });
    return true;
  }

  onCdn(m: DprpMessage, raw: Buffer): void {
    const r = this.relayFor(m, null);
    if (!r || r === 'full') return this.c.reject('unknown_negotiation');
    this.c.replayAccept(m);
    // Sent on first: the start GE releases its stash on this CDN, and our confirm is book-keeping (the fast
    // path acts on a tentative entry as on a confirmed one; only the sweep reads the state), written before
    // this handler returns, so before any later message of the negotiation is handled here.
    this.c.send(r.reply.addr, raw, undefined, r.reply.via);
    this.confirm(r);
  }

  private confirm(r: RelayNeg): void {
    if (r.confirmed || r.entries.length === 0) {
      r.confirmed = r.confirmed || r.entries.length > 0;
      return;
    }
    r.confirmed = true;
    r.entries = r.entries.map((e) => ({ ...e, state: 'confirmed' as const }));
    const rec = this.c.flows.find(r.local);
    this.c.flows.writes.write({ pit: r.entries });
    if (rec) this.c.flows.table.rewrite(rec.id, { pit: r.entries }, { written: true });
  }

  /**
   * Expires relay state: unconfirmed after tentativeTtlMs (its entries
   * removed, unless a re-keying's), confirmed after relayLingerMs.
   */
  sweep(now: number): void {
    const c = this.c;
    this.nat.sweep(now);
    for (const [id, r] of this.relays) {
      if (now - r.createdMono < (r.confirmed ? c.cfg.relayLingerMs : c.cfg.tentativeTtlMs)) continue;
      r.endTimer?.cancel();
      this.relays.delete(id);
      if (!r.confirmed && r.entries.length) {
        const rec = c.flows.find(r.local);
        const ours = rec && rec.meta.negId === id;
        if (r.prior?.length && r.installed) {
          // A re-keying of a live flow whose CDN never came: what the MPIT
          // installed (decrypt both versions, encrypt toward the end still on
          // the old one) carries whatever either end sends. Keep it.
          if (ours) c.flows.table.rewrite(rec.id, { pit: r.installed }, { written: true });
          continue;
        }
        c.flows.writes.erase({ pit: r.entries });
        if (ours) c.flows.table.forget(rec.id);
      }
    }
  }
}
