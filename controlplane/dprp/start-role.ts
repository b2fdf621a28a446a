/**
 * The start role of one GE: a PIT miss starts a negotiation for the flow.
 *
 *   PIT miss -> stash, DDE (retried) -> RGI: verify tags, decide, MPIT
 *   (retried) -> CDN: check the seal, install confirmed, release the stash.
 *   No answer to the DDE: decide alone (OP plaintext, CL refused) and keep
 *   listening for a late RGI (lateRgiGraceMs), which upgrades the flow
 *   (MPIT -> CDN as above; an upgrade without its CDN removes the lone entries,
 *   so the next packet negotiates again rather than pass into a decrypt).
 *   Never for a re-key: that flow is live and encrypted, its peer a GE that
 *   answered before; a re-key without an answer fails, the flow keeps its
 *   entries, and `rekeyFailures` tells the re-keying to try again.
 *   A refused flow: discard installed at once, stash dropped.
 * Contract: the start GE writes its own entries once, confirmed, on CDN (only
 * then is the stash released), except a refused flow's discard (at once) and,
 * when re-keying, its decrypt entries moved to the new version before the
 * MPIT (rekeying.ts). Settled entries go to the flow table (negotiated-flows.ts).
 */
import { sealMac, signActions, same, verifyRecord, type GroupKey } from './auth.js';
import { commonKey, decide, type Outcome, type PathGe } from './decide.js';
import { withEncryptionRequired } from './encryption-required.js';
import { natOnPath, udpWireAcrossNat, withNatPolicy } from './nat-traversal.js';
import { firstOption, OptionType, PCCOM_CAP_FLOW_KEYS, PCCOM_CAP_WIRE_CSUM, pccomCapsOf, protectedOf, SPEC_OPTIONS, whyOption } from './spec-options.js';
import type { NatfStartFailure, VirtualTarget } from './natf-hooks.js';
import type { PitWhyName } from '../maps/vocabulary.js';
import { hex, sameFlow, type DprpContext } from './node-context.js';
import type { FailReason, TimerHandle } from './node-deps.js';
import { flowKey, pitEntriesFor, reverseFlow, withPrevVersions, type PitEntry } from './pit-entries.js';
import { decryptSwitchesBeforeMpit } from './rekeying.js';
import {
  ACT_F_NEW_SALT, ACT_F_TRANSIT, MsgType, REC_F_IS_DEST, REC_F_PROTECTS_DEST, Status, WIRE_ACTIONS, WIRE_ROLES, wireRoleOf, zero16,
  type ActionEntry, type DprpMessage, type Flow,
} from './wire.js';

const IPPROTO_TCP = 6;

interface StartNeg {
  negId: Buffer;
  flow: Flow;
  /** The mark of the flow's first packet (first-packet.ts), named in the MPIT for GEs past a NAT; null: none. */
  first: number | null;
  reason: 'miss' | 'rekey';
  /** Re-key PCCOM's per-flow keys over this negotiation's id (a re-key signal), not the flow's earlier salt. */
  newSalt?: boolean;
  /** 'alone': decided without an answer, still listening for a late RGI (lateRgiGraceMs). */
  phase: 'dde' | 'mpit' | 'alone';
  attempt: number;
  sends: number;
  timer: TimerHandle | null;
  stashes: unknown[];
  startedMono: number;
  outcome: Outcome | null;
  mpit: DprpMessage | null;
  endGe: string;
  /** Key the end GE must seal the CDN with, if it shares one with us. */
  endKey: GroupKey | null;
  /** Per on-path GE: the key its MPIT entry is authenticated with (null: none shared). */
  keyFor: Map<string, GroupKey | null>;
  entries: PitEntry[];
  /** Decided alone first, then a late RGI arrived. */
  upgraded?: boolean;
  /** Whether neg.entries are in the PIT (to remove them on failure). */
  installed?: boolean;
  /** Started by a packet from the remote end (ingress miss): its DDEs count against ddeLimit. */
  inbound?: boolean;
  /**
   * NAT-f (natf-hooks.ts): the application's flow to a virtual address
   * (`vflow`, G1:X -> V1:Y), negotiated with the GNAT as `flow` G1:X -> G2:Y;
   * `wire` (G1:X -> G2:Z) once the RGI named the mapped port Z.
   */
  virt?: { target: VirtualTarget; vflow: Flow; wire: Flow | null };
  /** Where the MPIT goes when not to the end GE: the GNAT in front of a private end GE. */
  mpitVia?: string | null;
}

/** The PIT view of a negotiation: the wire flow of a NAT-f one, else its flow. */
function wireOf(neg: StartNeg): Flow {
  return neg.virt?.wire ?? neg.flow;
}

/** What the start's own entries say about why they are plaintext or a drop. */
function whyOf(out: Outcome): PitWhyName {
  return out.verdict === 'encrypted' ? 'none' : out.why;
}

export class StartRole {
  private readonly byNeg = new Map<string, StartNeg>();
  private readonly byFlow = new Map<string, StartNeg>();
  /** Start negotiations decided alone that still listen for a late RGI (not counted as pending). */
  private alone = 0;
  /** Re-key negotiations that failed since the re-keying last took this (it retries them). */
  private rekeyFailed = 0;

  constructor(private readonly c: DprpContext) {}

  /** Negotiations this GE has started and not finished. */
  get pending(): number {
    return this.byNeg.size - this.alone;
  }

  /** How many re-key negotiations failed since the last call (and resets it). */
  takeRekeyFailures(): number {
    const n = this.rekeyFailed;
    this.rekeyFailed = 0;
    return n;
  }

  /** Whether a negotiation this GE started for exactly this directed flow is running. */
  isRunning(flow: Flow): boolean {
    return this.byFlow.has(flowKey(flow));
  }

  /**
   * A packet of `flow` missed the PIT and was stashed (handle is the punt
   * handler's). Starts a negotiation, or joins the one already running for the
   * flow or its reverse.
   */
  onPitMiss(flow: Flow, handle: unknown, inbound = false, first: number | null = null): void {
    const running = this.byFlow.get(flowKey(flow)) ?? this.byFlow.get(flowKey(reverseFlow(flow)));
    if (running) {
      if (running.stashes.length >= this.c.cfg.maxStashPerFlow) {
        this.c.d.stash.drop([handle], 'stash_full');
        this.c.obs.failed('stash_full');
      } else {
        running.stashes.push(handle);
      }
      return;
    }
    const target = inbound ? null : this.c.d.natf?.virtualTarget?.(flow) ?? null;
    if (target) {
      const held = this.c.d.natf?.refusalHeld?.(flow) ?? 'not_held';
      if (held === 'not_held') return this.beginVirtual(flow, target, handle);
      this.c.d.stash.drop([handle], 'natf_refusal_held');
      if (held === 'icmp') this.c.d.natf?.failed?.(flow, [handle], 'refusal_held');
      return;
    }
    this.begin(flow, 'miss', [handle], inbound, false, first);
  }

  /** NAT-f: the flow to a virtual address is negotiated with its GNAT, by name (no decision alone: nothing is reachable without it). */
  private beginVirtual(vflow: Flow, target: VirtualTarget, handle: unknown): void {
    const c = this.c;
    if (this.pending >= c.cfg.maxNegotiations) {
      c.d.stash.drop([handle], 'too_many_negotiations');
      c.d.natf?.failed?.(vflow, [handle], 'other');
      c.obs.failed('too_many_negotiations');
      return;
    }
    const flow: Flow = { ...vflow, daddr: target.gnat };
    const neg: StartNeg = {
      negId: c.rnd(8), flow, first: null, reason: 'miss', phase: 'dde', attempt: 0, sends: 0, timer: null, stashes: [handle],
      startedMono: c.mono(), outcome: null, mpit: null, endGe: '0.0.0.0', endKey: null, keyFor: new Map(), entries: [],
      virt: { target, vflow, wire: null },
    };
    this.byNeg.set(hex(neg.negId), neg);
    this.byFlow.set(flowKey(vflow), neg);
    this.sendDde(neg);
    c.obs.started('miss');
  }

  begin(flow: Flow, reason: 'miss' | 'rekey', stashes: unknown[], inbound = false, newSalt = false, first: number | null = null): void {
    const c = this.c;
    if (c.cfg.requireKeys && c.myKeys().length === 0) {
      c.d.stash.drop(stashes, 'keys_missing');
      c.obs.failed('keys_missing');
      return;
    }
    if (this.pending >= c.cfg.maxNegotiations) {
      c.d.stash.drop(stashes, 'too_many_negotiations');
      c.obs.failed('too_many_negotiations');
      return;
    }
    const neg: StartNeg = {
      negId: c.rnd(8), flow, first, reason, phase: 'dde', attempt: 0, sends: 0, timer: null, stashes,
      startedMono: c.mono(), outcome: null, mpit: null, endGe: '0.0.0.0', endKey: null, keyFor: new Map(), entries: [], inbound,
      ...(newSalt ? { newSalt } : {}),
    };
    const noEndUntil = c.noEnd.get(flow.daddr);
    // No GE answers for a multicast/broadcast/loopback destination, and none is asked (never a DDE there).
    // A remote host's new flows beyond the per-destination DDE limit: decided as if no GE answered, without the DDE.
    const limited = inbound && !c.forbidden(flow.daddr) && c.ddeLimiter.take(flow.daddr, neg.startedMono) !== 'ok';
    if (limited) c.obs.suppressed?.('dde_rate_limited');
    // A re-key is never decided alone: "no GE there" (a cached no-answer) cannot hold for a flow a GE encrypts.
    const noEnd = reason !== 'rekey' && noEndUntil !== undefined && noEndUntil > neg.startedMono;
    if (noEnd || c.forbidden(flow.daddr) || limited) {
      c.obs.started(reason);
      if (!this.concludeAlone(neg)) {
        c.d.stash.drop(stashes, 'unauth_flows_full');
        c.obs.failed('unauth_flows_full');
      }
      return;
    }
    this.byNeg.set(hex(neg.negId), neg);
    this.byFlow.set(flowKey(flow), neg);
    this.sendDde(neg);
    c.obs.started(reason);
  }

  private sendDde(neg: StartNeg): void {
    const c = this.c;
    // Per destination, retransmissions included (the first DDE's token was taken in begin()): a flood
    // of new flows from one source is never answered by a flood of DDEs.
    if (neg.inbound && neg.sends > 0 && c.ddeLimiter.take(neg.flow.daddr, c.mono()) !== 'ok') {
      neg.sends++;
      c.obs.suppressed?.('dde_rate_limited');
      neg.timer = c.d.timers.after(c.rto(neg.sends), () => this.onTimeout(neg));
      return;
    }
    neg.attempt++;
    neg.sends++;
    const m: DprpMessage = {
      type: MsgType.DDE, flags: 0, attempt: neg.attempt, negId: neg.negId, timestampMs: c.wallMs(),
      flow: neg.flow, status: Status.OK, startGe: c.d.self.addr, endGe: '0.0.0.0',
      records: [], actions: [], seal: null,
      options: neg.virt ? [{ type: OptionType.NATF_NAME, value: SPEC_OPTIONS.get(OptionType.NATF_NAME)!.encode(neg.virt.target.name) }] : [],
    };
    m.records = [c.ownRecord(m, 0)];
    const bytes = c.enc(m);
    c.d.transport.send(neg.flow.daddr, bytes);
    // A retransmission also goes as ICMP type 253, for a peer whose agent predates the UDP transport
    // (it answers in kind); not for flows a remote started (never two DDEs for one of its packets).
    if (neg.sends > 1 && c.cfg.icmpFallback && !neg.inbound) c.d.transport.send(neg.flow.daddr, bytes, undefined, { icmp: true });
    neg.timer = c.d.timers.after(c.rto(neg.sends), () => this.onTimeout(neg));
  }

  private onTimeout(neg: StartNeg): void {
    const c = this.c;
    if (this.byNeg.get(hex(neg.negId)) !== neg) return;
    neg.timer = null;
    if (neg.sends < c.cfg.maxSends) {
      if (neg.phase === 'dde') this.sendDde(neg);
      else this.sendMpit(neg);
      return;
    }
    if (neg.phase === 'alone') {
      this.alone--;
      this.finish(neg);
      return;
    }
    // A re-key's peer is a GE (the flow is encrypted with it) that is slow or lost this exchange: deciding
    // alone would write pass entries over a live encrypted flow (plaintext out, ciphertext handed to the
    // host, a stall for good). It fails instead; the flow keeps its entries and is re-keyed again later.
    if (neg.phase === 'dde' && neg.reason !== 'rekey' && c.cfg.onNoAnswer === 'decide-alone' && !neg.virt) {
      // Decide now, but keep listening for a late answer for a while.
      if (this.byFlow.get(flowKey(neg.flow)) === neg) this.byFlow.delete(flowKey(neg.flow));
      c.noEnd.set(neg.flow.daddr, c.mono() + c.cfg.noEndCacheMs);
      if (!this.concludeAlone(neg)) return this.fail(neg, 'unauth_flows_full');
      neg.phase = 'alone';
      this.alone++;
      neg.timer = c.d.timers.after(c.cfg.lateRgiGraceMs, () => this.onTimeout(neg));
      return;
    }
    this.fail(neg, neg.phase === 'dde' ? 'dde_timeout' : 'cdn_timeout');
  }

  /**
   * No GE toward the destination: the start decides on its own (OP: plaintext,
   * CL: refuse). A flow the remote started counts against maxUnauthFlows and
   * expires after unauthIdleTimeoutMs (a local host's does not: it is not on
   * a peer's behalf). False, with nothing installed, at the cap (a flood of
   * new flows from a non-member).
   */
  private concludeAlone(neg: StartNeg): boolean {
    const c = this.c;
    if (neg.inbound && c.flows.unauthFull(neg.flow)) return false;
    const out = withEncryptionRequired(
      decide([{ addr: c.d.self.addr, type: c.d.self.type, mode: c.d.self.mode, keys: c.myGroupVersions() }]),
      c.encryptionRequired(neg.flow.daddr));
    const mine = out.actions[0];
    const entries = pitEntriesFor(neg.flow, mine.action, 'start', null, 'confirmed', { why: whyOf(out) });
    this.notePlaintext(out, neg.flow);
    c.flows.writes.write({ pit: entries });
    c.flows.remember(neg.flow, 'start', mine.action, null, entries, hex(neg.negId), neg.inbound);
    this.settleStash(neg, out);
    c.obs.completed(out.verdict === 'refused' ? 'refused' : 'no_end_ge', this.elapsed(neg));
    return true;
  }

  /** A plaintext or refused flow is counted and logged (the observer), never silent. */
  private notePlaintext(out: Outcome, flow: Flow): void {
    if (out.verdict === 'plaintext') this.c.obs.plaintext?.('pass', out.why, flow);
    else if (out.verdict === 'refused') this.c.obs.plaintext?.('refused', out.why, flow);
  }

  private elapsed(neg: StartNeg): number {
    return (this.c.mono() - neg.startedMono) / 1000;
  }

  private settleStash(neg: StartNeg, out: Outcome): void {
    if (neg.stashes.length === 0) return;
    if (out.verdict === 'refused') this.c.d.stash.drop(neg.stashes, 'refused');
    else this.c.d.stash.release(neg.stashes);
    neg.stashes = [];
  }

  private finish(neg: StartNeg): void {
    neg.timer?.cancel();
    neg.timer = null;
    this.byNeg.delete(hex(neg.negId));
    if (this.byFlow.get(flowKey(neg.flow)) === neg) this.byFlow.delete(flowKey(neg.flow));
    if (neg.virt && this.byFlow.get(flowKey(neg.virt.vflow)) === neg) this.byFlow.delete(flowKey(neg.virt.vflow));
  }

  private fail(neg: StartNeg, reason: FailReason): void {
    this.finish(neg);
    if (neg.reason === 'rekey') this.rekeyFailed++;
    if (neg.installed && neg.entries.length) this.c.flows.writes.erase({ pit: neg.entries });
    // An upgrade (a late RGI) that did not complete: the end GE installs the real decision, confirmed, on the
    // MPIT, so only its CDN may have been lost; the lone pass entries kept here would send plaintext into its
    // decrypt entry and hand its ciphertext to the host, for good. They go: the flow's next packet misses and
    // negotiates afresh (the RGI cleared the GE-less cache), and both ends write that negotiation's decision.
    if (neg.upgraded) {
      const rec = this.c.flows.find(neg.flow);
      if (rec && rec.meta.negId === hex(neg.negId)) this.c.flows.table.remove(rec.id);
    }
    const stashes = neg.stashes;
    if (neg.stashes.length) this.c.d.stash.drop(neg.stashes, reason);
    neg.stashes = [];
    // NAT-f: the application hears of it at once (an ICMP unreachable), never a hang.
    if (neg.virt) this.c.d.natf?.failed?.(neg.virt.vflow, stashes, natfFailure(reason));
    this.c.obs.failed(reason);
  }

  onRgi(m: DprpMessage): void {
    const c = this.c;
    const neg = this.byNeg.get(hex(m.negId));
    if (!neg) return c.reject('unknown_negotiation');
    if ((neg.phase !== 'dde' && neg.phase !== 'alone') || m.attempt > neg.attempt) return c.reject('wrong_phase');
    if (!sameFlow(neg.flow, m.flow)) return c.reject('unknown_negotiation');
    if ((m.records[0].flags & (REC_F_IS_DEST | REC_F_PROTECTS_DEST)) === 0) return c.reject('no_end_flag');
    if (m.records[0].addr !== m.endGe) return c.reject('no_end_flag');
    // The end GE, a member, says another GE already encrypts this flow with it (a moved flow's peer): we are on its path.
    const by = neg.virt ? null : protectedOf(m.records[0]);
    if (by && by !== c.d.self.addr && verifyRecord(c.myKeys(), m, 0).length > 0) return this.passProtected(neg, m);
    if (neg.virt) {
      // NAT-f: the GNAT answers for the host it maps (its record holds NATF_PORT Z), or refuses; or the
      // host is a GE itself and answers as the end GE, the GNAT's record (NATF_PORT Z) appended last.
      const gnat = neg.virt.target.gnat;
      const gnatRec = m.endGe === gnat ? m.records[0] : m.records.slice(1).find((r) => r.addr === gnat) ?? null;
      if (!gnatRec) return c.reject('no_end_flag');
      if (m.status === Status.REFUSED) { c.replayAccept(m); return this.fail(neg, 'natf_refused'); }
      const z = gnatRec.options.find((o) => o.type === OptionType.NATF_PORT);
      if (!z) { c.replayAccept(m); return this.fail(neg, 'natf_no_port'); }
      neg.virt.wire = { ...neg.flow, dport: z.value.readUInt16BE(0) };
    }
    // NAT-f: the end GE is a private GE behind the flow's destination, a GNAT (its record, NATF_PORT, after the
    // end's): the MPIT goes to the GNAT, which relays it inward (alice has no route to P1). A re-keying too.
    neg.mpitVia = m.endGe !== neg.flow.daddr && m.records.slice(1).some((r) => r.addr === neg.flow.daddr && r.options.some((o) => o.type === OptionType.NATF_PORT))
      ? neg.flow.daddr : null;

    const keys = c.myKeys();
    // Path order: start, then the records from the start side to the end GE.
    const path: PathGe[] = [{ addr: c.d.self.addr, type: c.d.self.type, mode: c.d.self.mode, keys: c.myGroupVersions() }];
    for (let i = m.records.length - 1; i >= 0; i--) {
      const r = m.records[i];
      const shared = verifyRecord(keys, m, i).map((k) => ({ group: k.group, version: k.version }));
      path.push({ addr: r.addr, type: r.geType, mode: r.mode, keys: shared });
    }
    let out: Outcome;
    const required = c.encryptionRequired(neg.flow.daddr);
    try {
      out = withEncryptionRequired(decide(path), required);
    } catch {
      // A path that cannot be (a GE twice): ignore this RGI, keep waiting for a sound one.
      return c.reject('bad_path');
    }
    // A NAT between us and a GE of the path (its NAT_SEEN): only a PCCOM form a checksum-verifying NAT translates.
    if (natOnPath(m.records) !== null && out.verdict === 'encrypted') {
      const peerAddr = out.peer;
      const peer = m.records.find((r) => r.addr === peerAddr);
      out = withNatPolicy(out, path, neg.flow, peer, c.cfg, required);
    }
    c.replayAccept(m);
    // An RGI this negotiation acts on, answering its first DDE (sent when it began): a round trip for the timeout.
    if (neg.phase === 'dde' && m.attempt === 1) c.rtt.sample(c.mono() - neg.startedMono);
    neg.timer?.cancel();
    neg.timer = null;
    if (neg.phase === 'alone') {
      this.alone--;
      // A GE answered after all: this destination is not GE-less, and the flow gets the real decision.
      neg.upgraded = true;
      c.noEnd.delete(neg.flow.daddr);
      this.byFlow.set(flowKey(neg.flow), neg);
    }
    neg.outcome = out;
    neg.phase = 'mpit';
    neg.sends = 0;
    neg.endGe = m.endGe;

    const keyFor = neg.keyFor;
    keyFor.clear();
    path.forEach((g, i) => {
      if (i === 0) return;
      const a = out.actions[i];
      const gv = a.group !== undefined ? { group: a.group, version: a.version! } : commonKey(path[0].keys, g.keys);
      keyFor.set(g.addr, c.keyOf(gv));
    });
    neg.endKey = keyFor.get(m.endGe) ?? null;

    const mine = out.actions[0];
    const myKey = mine.group !== undefined ? { group: mine.group, version: mine.version! } : null;
    // Re-keying a live flow: the new decrypt entries keep accepting the old version.
    const prior = c.flows.prior(wireOf(neg));
    // The decrypting GE's record says whether its receiver takes PCCOM's TCP wire-valid form.
    const peerRec = out.verdict === 'encrypted' ? m.records.find((r) => r.addr === out.peer) : undefined;
    const wireCsum = (pccomCapsOf(peerRec) & PCCOM_CAP_WIRE_CSUM) !== 0;
    // Both ends take per-flow keys (this build does): salted with this negotiation's id.
    const flowKeySalt = (pccomCapsOf(peerRec) & PCCOM_CAP_FLOW_KEYS) !== 0 ? hex(neg.negId) : undefined;
    // A UDP flow across a NAT: the UDP wire-valid form when the peer takes it (nat-traversal.ts).
    const udpWire = flowKeySalt !== undefined && udpWireAcrossNat(neg.flow, natOnPath(m.records) !== null, pccomCapsOf(peerRec));
    // The old salt is the pair's: a flow now encrypted with another GE (a route change) takes this negotiation's.
    const priorPeer = c.flows.find(wireOf(neg))?.meta.peer;
    const newSalt = neg.newSalt || (out.verdict === 'encrypted' && priorPeer !== undefined && priorPeer !== out.peer);
    neg.entries = withPrevVersions(pitEntriesFor(wireOf(neg), mine.action, 'start', myKey, 'tentative', { why: whyOf(out), wireCsum, udpWire, flowKeySalt }), prior, newSalt);

    neg.mpit = {
      type: MsgType.MPIT, flags: 0, attempt: 0, negId: neg.negId, timestampMs: 0, flow: neg.flow,
      status: out.verdict === 'refused' ? Status.REFUSED : Status.OK, startGe: c.d.self.addr, endGe: m.endGe,
      records: [], seal: null, options: [...whyOption(whyOf(out)), ...firstOption(neg.flow.proto === IPPROTO_TCP ? neg.first : null)],
      actions: out.actions.slice(1).map((a): ActionEntry => ({
        addr: a.addr,
        action: WIRE_ACTIONS.code(a.action),
        // decide() names every GE after the start 'end' or 'intermediate'.
        role: WIRE_ROLES.code(wireRoleOf(a.role)),
        flags: (a.transit ? ACT_F_TRANSIT : 0) | (newSalt && flowKeySalt && out.verdict === 'encrypted' && a.addr === out.peer ? ACT_F_NEW_SALT : 0),
        selector: zero16(), mac: zero16(),
      })),
    };
    // A refused flow's stashed packet is dropped now; nothing will release it.
    if (out.verdict === 'refused') {
      const stashes = neg.stashes;
      this.settleStash(neg, out);
      if (neg.virt) c.d.natf?.failed?.(neg.virt.vflow, stashes, 'refused');
    }
    else {
      // Lossless re-keying, step 1 at the start GE (rekeying.ts).
      const early = decryptSwitchesBeforeMpit(neg.entries, prior);
      if (early.length) c.flows.writes.write({ pit: early });
    }
    this.sendMpit(neg);
    // The start GE writes its entries once, confirmed, on CDN: until then further
    // packets of the flow keep missing and join the stash, so none can overtake
    // the end GE's MPIT. A refused flow is cut at once (tentative discard).
    if (out.verdict === 'refused') {
      c.flows.writes.write({ pit: neg.entries });
      neg.installed = true;
      this.notePlaintext(out, neg.flow);
    }
  }

  /**
   * The flow is already encrypted end to end between the end GE and the GE its
   * record names (PROTECTED, authenticated under a group we hold): this GE is
   * new on the flow's path (a GE the flow moved behind), not one of its ends.
   * It passes the ciphertext, as it would had that GE's own DDE crossed it,
   * and sends no MPIT (the end GE keeps its entries: relay-role.ts).
   */
  private passProtected(neg: StartNeg, m: DprpMessage): void {
    const c = this.c;
    c.replayAccept(m);
    if (neg.phase === 'alone') {
      this.alone--;
      c.noEnd.delete(neg.flow.daddr);
    }
    const entries = pitEntriesFor(wireOf(neg), 'pass', 'intermediate', null, 'confirmed');
    c.flows.writes.write({ pit: entries });
    neg.installed = true;
    this.finish(neg);
    if (neg.stashes.length) c.d.stash.release(neg.stashes);
    neg.stashes = [];
    c.flows.remember(wireOf(neg), 'intermediate', 'pass', null, entries, hex(neg.negId));
    c.obs.completed('protected_transit', this.elapsed(neg));
  }

  private sendMpit(neg: StartNeg): void {
    const c = this.c;
    const m = neg.mpit!;
    const keyFor = neg.keyFor;
    neg.attempt++;
    neg.sends++;
    m.attempt = neg.attempt;
    m.timestampMs = c.wallMs();
    signActions(m, (addr) => keyFor.get(addr) ?? null);
    c.d.transport.send(neg.mpitVia ?? m.endGe, c.enc(m));
    neg.timer = c.d.timers.after(c.rto(neg.sends), () => this.onTimeout(neg));
  }

  onCdn(m: DprpMessage): void {
    const c = this.c;
    const neg = this.byNeg.get(hex(m.negId));
    if (!neg) return c.reject('unknown_negotiation');
    if (neg.phase !== 'mpit' || m.attempt > neg.attempt || m.endGe !== neg.endGe) return c.reject('wrong_phase');
    if (neg.endKey) {
      if (!m.seal) return c.reject('missing_seal');
      // The selector we sent the end GE in the MPIT (selector(endKey, negId, endGe)).
      const sent = neg.mpit?.actions.find((a) => a.addr === m.endGe)?.selector;
      if (!sent || !same(sent, m.seal.selector) || !same(sealMac(neg.endKey, m), m.seal.mac)) return c.reject('bad_seal');
    }
    c.replayAccept(m);
    this.finish(neg);
    const out = neg.outcome!;
    // NAT-f: the VAT first (egress translates before the PIT lookup), then the entries on the wire flow.
    if (neg.virt?.wire && out.verdict !== 'refused') c.d.natf?.settled?.(neg.virt.vflow, neg.virt.wire);
    // Entries first: the released packet must hit them (a released packet that misses is dropped).
    const confirmed = neg.entries.map((e) => ({ ...e, state: 'confirmed' as const }));
    c.flows.writes.write({ pit: confirmed });
    neg.installed = true;
    this.settleStash(neg, out);
    if (out.verdict === 'plaintext') this.notePlaintext(out, neg.flow);
    const mine = out.actions[0];
    c.flows.remember(wireOf(neg), 'start', mine.action, mine.group !== undefined ? { group: mine.group, version: mine.version! } : null, confirmed, hex(neg.negId), neg.inbound, out.verdict === 'encrypted' ? out.peer : undefined);
    c.obs.completed(neg.upgraded ? 'upgraded' : out.verdict, this.elapsed(neg));
  }
}

function natfFailure(r: FailReason): NatfStartFailure {
  return r === 'natf_refused' ? 'refused_by_gnat' : r === 'natf_no_port' ? 'no_port_in_rgi' : r === 'dde_timeout' ? 'no_answer' : 'other';
}
