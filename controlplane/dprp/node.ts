/**
 * The DPRP negotiation state machine of ONE GE, in every role: a thin
 * composition of one module per job, all sharing a DprpContext
 * (node-context.ts). Pure: clock, timers, transport, PIT writer, stash and key
 * ring are injected (node-deps.ts), so test/unit/dprp-negotiation.test.ts
 * wires several nodes through a fake network (with loss) and docs/dprp.md
 * describes the sequence.
 *
 *   start-role.ts        PIT miss -> DDE out, RGI in, decide, MPIT out, CDN in
 *   relay-role.ts        DDE in/forward, RGI build/append, MPIT apply, CDN
 *   rekeying.ts          a new key version: negotiate again without loss
 *   adoption.ts          a restarted agent adopting the pinned PIT's entries
 *   negotiated-flows.ts  the flows in the flow table (controlplane/flows/)
 *
 * This file routes a control message to the role it is for (after the wire
 * codec, the replay window and the parts' option checks) and runs the
 * housekeeping sweep.
 */
import { verifyRecord } from './auth.js';
import { decodeHold, HOLD_CODE } from './hold.js';
import { adoptPitEntries } from './adoption.js';
import { DprpContext, replayKey } from './node-context.js';
import type { DprpConfig, DprpNodeDeps, PacketAddrs, SelfInfo } from './node-deps.js';
import { specialAddress } from './addr-guard.js';
import type { FlowRecord } from './negotiated-flows.js';
import { reverseFlow, type PitEntry } from './pit-entries.js';
import { Rekeying, type RekeyAnswer } from './rekeying.js';
import type { FiveTuple } from '../flows/cid.js';
import { RelayRole } from './relay-role.js';
import { StartRole } from './start-role.js';
import { decode, DprpWireError, MsgType, type DprpMessage, type Flow } from './wire.js';
import { Stage, stageProfile } from './stage-profile.js';

export * from './node-deps.js';
export type { FlowRecord } from './negotiated-flows.js';

export class DprpNode {
  readonly cfg: DprpConfig;
  private readonly c: DprpContext;
  private readonly start: StartRole;
  private readonly relay: RelayRole;
  private readonly rekeying: Rekeying;

  constructor(deps: DprpNodeDeps) {
    this.c = new DprpContext(deps);
    this.cfg = this.c.cfg;
    this.start = new StartRole(this.c);
    this.relay = new RelayRole(this.c);
    this.rekeying = new Rekeying(this.c, this.start, this.relay);
  }

  get self(): SelfInfo {
    return this.c.d.self;
  }

  /** Negotiations this GE has started and not finished. */
  get pending(): number {
    return this.start.pending;
  }

  /** Flows decided for peers no key authenticated (capped, short idle) plus negotiations in flight. */
  get heldUnauthenticated(): number {
    return this.c.flows.unauthCount + this.start.pending;
  }

  /** The flows this GE holds PIT entries for, each with its flow-table id. */
  flowRecords(): FlowRecord[] {
    return this.c.flows.records();
  }

  /**
   * A packet of `flow` missed the PIT and was stashed (handle is the punt
   * handler's). Starts a negotiation, or joins the one already running for the
   * flow or its reverse. `inbound`: the packet came from the remote end
   * (ingress miss: the remote started the flow), so the DDE this sends is
   * one a remote host made us send: limited per destination (ddeLimit).
   */
  onPitMiss(flow: Flow, handle: unknown, inbound = false, first: number | null = null): void {
    // A flow past a NAT: its first packet places the entries that waited for it (nat-follow.ts).
    if (inbound && handle !== null && this.relay.natMiss(reverseFlow(flow), handle, first)) return;
    // A transit pass that idled out here while the ends still hold the flow: back as it was (negotiated-flows.ts).
    if (this.c.flows.reinstate(flow)) {
      if (handle !== null) this.c.d.stash.release([handle]);
      this.c.obs.reinstated?.();
      return;
    }
    this.start.onPitMiss(flow, handle, inbound, first);
  }

  /**
   * A GSCIP control message arrived (punted). `icmp` is the ICMP message (IP
   * payload); `ip` the addresses of the IP header it came in (the handler
   * always gives them; a test may not). Never throws for bad input: every
   * rejection is counted.
   *
   * No reflection (issue 11 item 4, docs/dprp.md "Bounds"): a message naming
   * an address no GE sends to is refused (forbidden_address); and a DDE, the
   * one message that makes a GE send to an address it has not seen before,
   * must come from the start GE it names (relays forward DDEs with the
   * start's source, transparently) toward the flow's destination, so the RGI
   * answers the packet's source and a relay forwards where the packet was
   * going anyway (source_mismatch, destination_mismatch). An MPIT must be on
   * its way to the end GE it names. RGIs and CDNs go only to the start GE of
   * a negotiation the GE relayed (checked when that DDE came).
   */
  onControl(icmp: Buffer, ip?: PacketAddrs): void {
    const c = this.c;
    if (icmp[1] === HOLD_CODE) {
      // The fast path of a GE behind us answered a DDE we relayed as an end candidate (hold.ts).
      const h = decodeHold(icmp);
      if (typeof h === 'string') return c.reject(`wire_${h}`);
      return this.relay.onHold(h, ip?.src);
    }
    let m: DprpMessage;
    const t0 = stageProfile.on ? stageProfile.now() : 0;
    try {
      m = decode(icmp, c.codecs);
    } catch (e) {
      if (e instanceof DprpWireError) return c.reject(`wire_${e.countedAs}`);
      throw e;
    } finally {
      if (t0) stageProfile.sub(Stage.decode, t0);
    }
    const verdict = c.replay.check(replayKey(m), m.timestampMs, c.d.clock.nowMs());
    if (verdict !== 'ok') return c.reject(verdict);
    if (!c.partsAcceptRecordOptions(m)) return c.reject('option_refused');
    const self = c.d.self.addr;
    if (c.forbidden(m.startGe) || (m.type !== MsgType.DDE && c.forbidden(m.endGe)) || (m.type === MsgType.DDE && specialAddress(m.flow.daddr) !== null)) {
      return c.reject('forbidden_address');
    }
    if (ip && m.type === MsgType.DDE) {
      // Another source than the start GE it names: a NAT between us (NAT_SEEN), taken only from a
      // member (the start's own record verifies with a key we hold); the answers go to the packet's
      // source, never to the address in the body.
      if (ip.src !== m.startGe && !this.natted(m, ip.src)) return c.reject('source_mismatch');
      // NAT-f: a GNAT relays a DDE for G2 to the private GE P1 behind it, its record naming P1, or to the GEN
      // in front of a Term P1, its record naming P1 behind that GEN (relay-role natfInside).
      if (ip.dst !== m.flow.daddr && !(ip.dst === self && this.relay.natfInside(m) !== null)) return c.reject('destination_mismatch');
    }
    // NAT-f: the start sends the MPIT for a private GE behind a GNAT to the GNAT, which relays it inward.
    if (ip && m.type === MsgType.MPIT && ip.dst !== m.endGe && !this.relay.mpitOnItsWay(m, ip.dst)) return c.reject('destination_mismatch');
    switch (m.type) {
      case MsgType.DDE:
        if (m.startGe === self) return c.reject('own_message');
        return this.relay.onDde(m, icmp, ip);
      case MsgType.RGI:
        return m.startGe === self ? this.start.onRgi(m) : this.relay.onRgi(m);
      case MsgType.MPIT:
        if (m.startGe === self) return c.reject('own_message');
        return this.relay.onMpit(m, icmp);
      case MsgType.CDN:
        return m.startGe === self ? this.start.onCdn(m) : this.relay.onCdn(m, icmp);
    }
  }

  /** A DDE from `src`, not its start GE: acceptable as having crossed a NAT (docs/dprp.md "Across NATs and firewalls"). */
  private natted(m: DprpMessage, src: string): boolean {
    const c = this.c;
    if (c.forbidden(src) || src === c.d.self.addr) return false;
    return m.records[0]?.addr === m.startGe && verifyRecord(c.myKeys(), m, 0).length > 0;
  }

  /**
   * Housekeeping, called about once a second: expires relay state and its
   * unconfirmed entries, idle and closed flows, previous key versions, and
   * stale caches. Returns how many flows it expired.
   */
  sweep(): number {
    const c = this.c;
    const now = c.mono();
    this.relay.sweep(now);
    const expired = c.flows.sweep((f) => this.start.isRunning(f.wire));
    this.rekeying.clearPrevVersions(now);
    this.rekeying.retryFailed(now);
    for (const [a, t] of c.termCache) if (t.untilMono <= now) c.termCache.delete(a);
    for (const [a, t] of c.noEnd) if (t <= now) c.noEnd.delete(a);
    return expired;
  }

  /** Takes over PIT entries a previous agent made (adoption.ts). Returns how many flows were adopted. */
  adopt(entries: readonly PitEntry[]): number {
    return adoptPitEntries(this.c.flows, entries);
  }

  /** PCCOM's re-key signal for a PIT entry of `wire` (rekeying.ts). */
  onRekeyWanted(wire: FiveTuple): RekeyAnswer {
    return this.rekeying.onRekeyWanted(wire, this.c.mono());
  }

  /** The key ring changed (rekeying.ts). Returns how many negotiations were started. */
  onKeysChanged(): number {
    return this.rekeying.onKeysChanged();
  }
}
