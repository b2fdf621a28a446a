/**
 * DPRP across a NAT (issue 11 item 1; docs/dprp.md "Across NATs and
 * firewalls"), two real DprpNodes and a modelled masquerade between them:
 * what A (private) sends leaves with the NAT's address and a mapped source
 * port; what B sends to that address and port goes back to A, anything else
 * to the NAT is dropped (as a NAT does). Asserted: who answers whom (packet
 * source and port, never the body's address), the NAT_SEEN option, the PIT
 * entries each side installs (A its private view, B the NAT's), the policy for
 * flows a checksum-verifying NAT would not translate, and the ICMP copies of
 * retransmitted DDEs.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CONTROL_UDP_PORT } from '../../controlplane/maps/abi.js';
import { DprpNode, type ControlVia, type DprpConfig, type RejectReason } from '../../controlplane/dprp/node.js';
import type { GroupKey } from '../../controlplane/dprp/auth.js';
import type { PitEntry } from '../../controlplane/dprp/pit-entries.js';
import { decode, MsgType, type Flow } from '../../controlplane/dprp/wire.js';
import { reverseFlow } from '../../controlplane/dprp/pit-entries.js';
import { natSeenOf, OWN_PCCOM_CAPS, PCCOM_CAP_FLOW_KEYS, PCCOM_CAP_UDP_WIRE, PCCOM_CAP_WIRE_CSUM } from '../../controlplane/dprp/spec-options.js';
import { udpWireAcrossNat } from '../../controlplane/dprp/nat-traversal.js';
import { udpWireFirstMark } from '../../controlplane/pccom/udp-wire.js';
import { VirtualTime } from './dprp-sim.js';

const A = '100.64.1.10';
const N = '203.0.113.254';
const B = '203.0.113.2';
const MAPPED_PORT = 40001;
const key: GroupKey = { group: 1, version: 1, key: randomBytes(32) };
const stranger: GroupKey = { group: 9, version: 1, key: randomBytes(32) };

interface Wire { src: string; dst: string; sport: number; dport: number; icmp: boolean; msg: Buffer }

class NatNet {
  readonly time = new VirtualTime();
  readonly wire: Wire[] = [];
  readonly queue: Array<{ to: 'a' | 'b'; w: Wire }> = [];
  readonly pits = { a: new Map<string, PitEntry>(), b: new Map<string, PitEntry>() };
  readonly rejected = { a: [] as RejectReason[], b: [] as RejectReason[] };
  readonly done: string[] = [];
  readonly released: unknown[] = [];
  readonly releasedB: unknown[] = [];
  /** PIT key -> when the fast path last saw a packet on it (what touch() sets). */
  readonly seen = new Map<string, number>();
  touch(key: string): void { this.seen.set(key, this.time.now + 1); }
  readonly natFollow: string[] = [];
  /** Drop the first n messages A sends (to force retransmissions). */
  dropFromA = 0;
  readonly a: DprpNode;
  readonly b: DprpNode;

  constructor(o: { aKeys?: GroupKey[]; aCfg?: Partial<DprpConfig>; bCfg?: Partial<DprpConfig>; required?: boolean } = {}) {
    this.a = this.node('a', A, o.aKeys ?? [key], o.aCfg ?? {}, o.required ?? false);
    this.b = this.node('b', B, [key], o.bCfg ?? {}, false);
  }

  private node(name: 'a' | 'b', addr: string, keys: GroupKey[], config: Partial<DprpConfig>, required: boolean): DprpNode {
    const pit = this.pits[name];
    const k = (e: { flow: Flow; dir: string }) => `${e.dir} ${e.flow.saddr}:${e.flow.sport}>${e.flow.daddr}:${e.flow.dport}/${e.flow.proto}`;
    return new DprpNode({
      self: { addr, type: 'GES', mode: 'OP' },
      keys: { all: () => keys },
      clock: { nowMs: () => 1_700_000_000_000 + this.time.now, monoMs: () => this.time.now },
      timers: { after: (ms, fn) => this.time.after(ms, fn) },
      transport: { send: (dst, msg, src, via) => this.send(name, addr, dst, msg, src, via) },
      pit: {
        install: (es) => { for (const e of es) pit.set(k(e), e); },
        remove: (ks) => { for (const e of ks) pit.delete(k(e)); },
        activity: (e) => (pit.has(k(e)) ? { lastSeenMs: this.seen.get(k(e)) ?? 0, closed: false } : undefined),
      },
      stash: { release: (hs) => { (name === 'a' ? this.released : this.releasedB).push(...hs); }, drop() {} },
      locality: (x) => (x === addr ? 'self' : 'other'),
      encryptionRequired: () => required,
      observer: {
        started() {}, failed() {}, overridden() {},
        completed: (out) => { if (name === 'a') this.done.push(out); },
        rejected: (r) => this.rejected[name].push(r),
        natFollow: (w, d) => this.natFollow.push(`${name}:${w}${d ? ` ${d.wire.saddr}->${d.to.saddr}:${d.to.sport}` : ''}`),
      },
      config,
    });
  }

  private send(from: 'a' | 'b', self: string, dst: string, msg: Buffer, src?: string, via?: ControlVia): void {
    const w: Wire = { src: src ?? self, dst, sport: via?.sport ?? CONTROL_UDP_PORT, dport: via?.dport ?? CONTROL_UDP_PORT, icmp: !!via?.icmp, msg: Buffer.from(msg) };
    if (from === 'a') {
      if (this.dropFromA > 0) { this.dropFromA--; return; }
      if (w.icmp) { this.wire.push(w); return; }  // INVALID to the NAT: dropped there
      // masquerade: source address and port rewritten
      const out = { ...w, src: N, sport: MAPPED_PORT };
      this.wire.push(out);
      if (dst === B) this.queue.push({ to: 'b', w: out });
      return;
    }
    this.wire.push(w);
    // To the NAT: only the mapping's port goes back in, to A's control port.
    if (dst === N && !w.icmp && w.dport === MAPPED_PORT) this.queue.push({ to: 'a', w: { ...w, dst: A, dport: CONTROL_UDP_PORT } });
  }

  /** The flow's packet `seen` (as it arrives at B: from the NAT) misses at B's ingress, with first-packet mark `mark`. */
  arrive(seen: Flow, handle: string, mark: number | null = null): void {
    this.b.onPitMiss(reverseFlow(seen), handle, true, mark);
  }

  /** Delivers what is in flight, then lets virtual time run in 5 ms steps: 3 s of it, bounded. */
  run(): void {
    for (let i = 0; i < 600; i++) {
      for (let j = 0; j < 100 && this.queue.length; j++) {
        const { to, w } = this.queue.shift()!;
        (to === 'a' ? this.a : this.b).onControl(w.msg, { src: w.src, dst: w.dst, sport: w.sport });
      }
      this.time.advance(5);
    }
  }
}

const tcp: Flow = { saddr: A, daddr: B, sport: 41000, dport: 5201, proto: 6 };
const udp: Flow = { ...tcp, sport: 41200, dport: 5202, proto: 17 };

describe('DPRP across a NAT (two nodes, a modelled masquerade)', { timeout: 30_000 }, () => {
  test('TCP: encrypted; B answers the packet\'s source and port, says NAT_SEEN, and places its entries where the first packet comes from; A keeps its own view', () => {
    const n = new NatNet();
    n.a.onPitMiss(tcp, 'h1', false, 777);
    n.run();
    assert.deepEqual(n.done, ['encrypted']);
    assert.deepEqual(n.released, ['h1']);
    assert.deepEqual(n.rejected, { a: [], b: [] });
    const fromB = n.wire.filter((w) => w.src === B);
    assert.ok(fromB.length >= 2, 'RGI and CDN');
    for (const w of fromB) assert.deepEqual([w.dst, w.dport, w.icmp], [N, MAPPED_PORT, false], 'answers go where the packet came from');
    const rgi = decode(fromB.find((w) => w.msg[1] === MsgType.RGI)!.msg);
    assert.equal(natSeenOf(rgi.records[0]), N, 'B\'s record names the address the DDE came from');
    assert.equal(n.pits.b.size, 0, 'nothing installed on a guess');
    const sent = n.wire.length;
    n.arrive({ ...tcp, saddr: N }, 'p1', 777);  // the NAT kept the port
    assert.deepEqual(n.releasedB, ['p1'], 'the first packet is released onto its entries');
    assert.equal(n.wire.length, sent, 'B sent nothing: no negotiation toward the NAT');
    const b = [...n.pits.b.values()];
    assert.ok(b.length >= 2 && b.every((e) => e.flow.saddr === N || e.flow.daddr === N), `B's entries on the NAT's address: ${[...n.pits.b.keys()].join(', ')}`);
    assert.ok(b.some((e) => e.action === 'decrypt' && e.flow.saddr === N && e.flow.sport === tcp.sport));
    const a = [...n.pits.a.values()];
    assert.ok(a.some((e) => e.action === 'encrypt' && e.flow.saddr === A && e.wireCsum), 'A encrypts its private view in the wire-valid form');
    // a packet of the flow punted before its entries were written goes through them
    n.arrive({ ...tcp, saddr: N }, 'p2', 778);
    assert.deepEqual(n.releasedB, ['p1', 'p2']);
    assert.equal(n.wire.length, sent);
  });

  test('UDP, both ends take the UDP wire-valid form: encrypted; each end\'s encrypt entry sends it (per-flow keys), B\'s on the NAT\'s address', () => {
    const n = new NatNet();
    n.a.onPitMiss(udp, 'h1');
    n.run();
    assert.deepEqual(n.done, ['encrypted']);
    assert.deepEqual(n.released, ['h1']);
    n.arrive({ ...udp, saddr: N }, 'p1');
    assert.deepEqual(n.releasedB, ['p1']);
    const a = [...n.pits.a.values()];
    const b = [...n.pits.b.values()];
    assert.deepEqual(a.map((e) => e.action).sort(), ['decrypt', 'encrypt']);
    assert.deepEqual(b.map((e) => e.action).sort(), ['decrypt', 'encrypt']);
    for (const e of [...a, ...b]) {
      assert.ok(e.flowKey, 'per-flow keys: the form\'s counter');
      assert.equal(e.wireCsum === true, e.action === 'encrypt', `${e.dir} ${e.action}: only encrypt entries say which form they send`);
    }
    assert.ok(a.some((e) => e.action === 'encrypt' && e.flow.saddr === A), 'A encrypts its private view');
    assert.ok(b.some((e) => e.action === 'encrypt' && e.flow.daddr === N), 'B encrypts toward the NAT\'s address');
  });

  test('UDP wire-valid form only across a NAT, only with per-flow keys and the peer\'s bit', () => {
    assert.equal(udpWireAcrossNat(udp, true, OWN_PCCOM_CAPS), true);
    assert.equal(udpWireAcrossNat(udp, false, OWN_PCCOM_CAPS), false, 'no NAT: the keyed form (its membership check is stronger)');
    assert.equal(udpWireAcrossNat(udp, true, PCCOM_CAP_WIRE_CSUM | PCCOM_CAP_FLOW_KEYS), false, 'a peer without the UDP form');
    assert.equal(udpWireAcrossNat(udp, true, PCCOM_CAP_UDP_WIRE), false, 'a peer without per-flow keys');
    assert.equal(udpWireAcrossNat(tcp, true, OWN_PCCOM_CAPS), false, 'TCP has its own form');
  });

  test('UDP to a peer without the UDP wire-valid form (an earlier release): a keyed checksum would be INVALID to a verifying NAT: plaintext on both ends, why nat_checksum', () => {
    const n = new NatNet({ bCfg: { pccomCaps: PCCOM_CAP_WIRE_CSUM | PCCOM_CAP_FLOW_KEYS } });
    n.a.onPitMiss(udp, 'h1');
    n.run();
    assert.deepEqual(n.done, ['plaintext']);
    assert.deepEqual(n.released, ['h1'], 'the stashed datagram goes out (OP)');
    n.arrive({ ...udp, saddr: N }, 'p1');  // no mark for UDP: the oldest wait
    assert.deepEqual(n.releasedB, ['p1']);
    for (const e of [...n.pits.a.values(), ...n.pits.b.values()]) {
      assert.equal(e.action, 'pass');
      assert.equal(e.why, 'nat_checksum');
    }
    assert.ok(n.pits.b.size >= 2);
  });

  test('UDP with pccomAcrossNat: any (NATs known not to verify): encrypted', () => {
    const n = new NatNet({ aCfg: { pccomAcrossNat: 'any' } });
    n.a.onPitMiss(udp, 'h1');
    n.run();
    assert.deepEqual(n.done, ['encrypted']);
  });

  test('UDP to a destination that requires encryption, peer without the UDP form: refused, why nat_checksum, nothing released', () => {
    const n = new NatNet({ required: true, bCfg: { pccomCaps: PCCOM_CAP_WIRE_CSUM | PCCOM_CAP_FLOW_KEYS } });
    n.a.onPitMiss(udp, 'h1');
    n.run();
    assert.deepEqual(n.done, ['refused']);
    assert.deepEqual(n.released, []);
    for (const e of n.pits.a.values()) assert.deepEqual([e.action, e.why], ['drop', 'nat_checksum']);
    // B's share of the refusal (placed by whatever packet comes) says the start's why too (the MPIT's WHY option), not just "closed".
    n.arrive({ ...udp, saddr: N }, 'p1');
    assert.ok(n.pits.b.size >= 2);
    for (const e of n.pits.b.values()) assert.deepEqual([e.action, e.why], ['drop', 'nat_checksum']);
  });

  test('a non-member\'s DDE from another source than the start GE it names: refused (source_mismatch), nothing sent', () => {
    const n = new NatNet({ aKeys: [stranger] });
    n.a.onPitMiss(tcp, 'h1');
    n.run();
    assert.ok(n.rejected.b.length >= 1 && n.rejected.b.every((r) => r === 'source_mismatch'), `b rejected: ${n.rejected.b.join(',')}`);
    assert.equal(n.wire.filter((w) => w.src === B).length, 0, 'b answered nobody');
    assert.deepEqual(n.done, ['no_end_ge']);
  });

  test('a retransmitted DDE also goes as ICMP type 253 (for older agents); the first does not; the NAT drops the copy and UDP still gets through', () => {
    const n = new NatNet();
    n.dropFromA = 1;
    n.a.onPitMiss(tcp, 'h1');
    n.run();
    assert.deepEqual(n.done, ['encrypted']);
    const ddes = n.wire.filter((w) => w.src !== B && w.msg[1] === MsgType.DDE);
    assert.deepEqual(ddes.map((w) => [decode(w.msg).attempt, w.icmp]), [[2, false], [2, true]]);
  });

  test('a flow the remote started never gets an ICMP copy of a retransmitted DDE', () => {
    const n = new NatNet();
    n.dropFromA = 1;
    n.a.onPitMiss(tcp, 'h1', true);
    n.run();
    assert.equal(n.wire.filter((w) => w.icmp).length, 0);
  });
  test('the NAT gave the flow another port: its first packet places B\'s entries there and is released; a packet with another mark does not take the wait', () => {
    const n = new NatNet();
    n.a.onPitMiss(tcp, 'h1', false, 777);
    n.run();
    const sentBefore = n.wire.length;
    n.arrive({ ...tcp, saddr: N, sport: 50001 }, 'x1', 999);  // not this flow's first packet
    assert.deepEqual(n.releasedB, [], 'a packet with another mark never takes the flow');
    assert.ok(n.wire.length > sentBefore, 'B negotiates the unknown flow itself');
    const sent = n.wire.length;
    n.arrive({ ...tcp, saddr: N, sport: 50000 }, 'p1', 777);
    assert.deepEqual(n.releasedB, ['p1']);
    assert.equal(n.wire.length, sent, 'no negotiation for it');
    const keys = [...n.pits.b.keys()];
    assert.ok(keys.includes(`ingress ${N}:50000>${B}:5201/6`) && keys.includes(`egress ${B}:5201>${N}:50000/6`), keys.join(', '));
    assert.equal(n.pits.b.get(`ingress ${N}:50000>${B}:5201/6`)?.action, 'decrypt');
  });

  test('two private hosts, one source port, first packets crossing at the NAT: each flow gets the port its own first packet came from', () => {
    const n = new NatNet();
    const other: Flow = { ...tcp, saddr: '100.64.1.11' };  // another host behind the same NAT (A relays for it)
    n.a.onPitMiss(tcp, 'h1', false, 111);
    n.a.onPitMiss(other, 'h2', false, 222);
    n.run();
    assert.deepEqual(n.done, ['encrypted', 'encrypted']);
    // the second flow's SYN reached the NAT first and kept the port; the first's got another
    n.arrive({ ...tcp, saddr: N, sport: 41000 }, 'p2', 222);
    n.arrive({ ...tcp, saddr: N, sport: 1024 }, 'p1', 111);
    assert.deepEqual(n.releasedB, ['p2', 'p1']);
    assert.deepEqual(n.natFollow, [`b:placed 100.64.1.11->${N}:41000`, `b:placed ${A}->${N}:1024`]);
  });

  test('two private hosts, one UDP source port, first datagrams crossing at the NAT: each flow is placed by its first datagram\'s IP ID (the wire-valid form\'s counter 0), not oldest first', () => {
    const n = new NatNet();
    const other: Flow = { ...udp, saddr: '100.64.1.11' };
    n.a.onPitMiss(udp, 'h1');
    n.a.onPitMiss(other, 'h2');
    n.run();
    assert.deepEqual(n.done, ['encrypted', 'encrypted']);
    const markOf = (f: Flow) => {
      const e = [...n.pits.a.values()].find((x) => x.action === 'encrypt' && x.flow.saddr === f.saddr && x.flow.sport === f.sport)!;
      return udpWireFirstMark(key.key, key.group, key.version, e.flowKey!.salt);
    };
    assert.notEqual(markOf(udp), markOf(other), 'two flows: two marks (equal with probability 2^-10)');
    // the second flow's first datagram reached the NAT first and kept the port; the first's got another
    n.arrive({ ...other, saddr: N, sport: 41200 }, 'p2', markOf(other));
    n.arrive({ ...udp, saddr: N, sport: 1024 }, 'p1', markOf(udp));
    assert.deepEqual(n.natFollow, [`b:placed 100.64.1.11->${N}:41200`, `b:placed ${A}->${N}:1024`]);
  });

  test('a UDP flow whose first datagram was lost: the next one (another IP ID) still takes its wait', () => {
    const n = new NatNet();
    n.a.onPitMiss(udp, 'h1');
    n.run();
    n.arrive({ ...udp, saddr: N }, 'p2', 0x1234);
    assert.deepEqual(n.releasedB, ['p2']);
    assert.deepEqual(n.natFollow, [`b:placed ${A}->${N}:41200`]);
  });
});

