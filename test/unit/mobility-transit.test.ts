/**
 * A GE on the new path learns the moved flows from the CU crossing it
 * (controlplane/mobility/transit.ts): pass entries on the mover's new wire CID
 * and its old-source CID, from a CU it can check; nothing from a forged, stale,
 * unknown-key CU or from a CU-ACK; DPRP's own entries on the old-source CID
 * left alone; the learnt entries expire idle; the next-hop device parser.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { slotKey, type MapSlot } from '../../controlplane/flows/cid.js';
import type { FlowMaps } from '../../controlplane/flows/flow-maps.js';
import type { PitEntry } from '../../controlplane/flows/pit-entry.js';
import { CU_CODE, decodeCu, encodeCu, type CuMessage } from '../../controlplane/mobility/cu-wire.js';
import { TransitLearner } from '../../controlplane/mobility/transit.js';
import { deviceOfRouteGet, NextHopDevices } from '../../controlplane/mobility/next-hop.js';

const A = '203.0.113.1';
const B = '198.51.100.10';
const C = '192.0.2.10';
const key = randomBytes(32);

class FakePit implements FlowMaps<PitEntry> {
  rows = new Map<string, PitEntry>();
  pit = {
    install: (es: readonly PitEntry[]) => { for (const e of es) this.rows.set(slotKey(e), e); },
    remove: (ks: readonly MapSlot[]) => { for (const k of ks) this.rows.delete(slotKey(k)); },
  };
}

function setup(nowMs = 1_000_000) {
  const maps = new FakePit();
  const clock = { t: nowMs, nowMs: () => clock.t, monoMs: () => clock.t };
  const learner = new TransitLearner({ maps, keys: () => [{ group: 1, version: 1, key }], has: (s) => maps.rows.has(slotKey(s)), clock, expiry: { idleMs: 10_000, closedMs: 1000 } });
  return { maps, clock, learner };
}

function cu(o: Partial<CuMessage> = {}, k = key, src = C, dst = A) {
  const m: CuMessage = { code: CU_CODE.CU, group: 1, version: 1, cuId: randomBytes(8), timestampMs: 1_000_000, entries: [{ proto: 6, status: 0, peer: { addr: A, port: 7300 }, seq: 1, old: { addr: B, port: 40100 }, next: { addr: C, port: 40100 } }], ...o };
  return decodeCu(encodeCu(m, src, dst, k));
}

const rows = (m: FakePit) => [...m.rows.values()].map((e) => `${e.flow.saddr}:${e.flow.sport}>${e.flow.daddr}:${e.flow.dport} ${e.dir} ${e.action} ${e.role}`).sort();

describe('Mobile PPC on the path: a GE the CU crosses', () => {
  test('a checked CU gives pass entries on the new wire CID and the old-source CID, every slot', () => {
    const { maps, learner } = setup();
    assert.equal(learner.onCrossing(cu(), C, A), 'learned');
    const want: string[] = [];
    for (const m of [C, B]) {
      for (const d of ['egress', 'ingress']) want.push(`${m}:40100>${A}:7300 ${d} pass intermediate`, `${A}:7300>${m}:40100 ${d} pass intermediate`);
    }
    assert.deepEqual(rows(maps), want.sort());
  });

  test('a forged, wrong-source, stale or unknown-key CU and a CU-ACK write nothing', () => {
    const { maps, learner } = setup();
    assert.equal(learner.onCrossing(cu({}, randomBytes(32)), C, A), 'bad_mac');
    assert.equal(learner.onCrossing(cu(), '192.0.2.99', A), 'bad_mac', 'the MAC covers the IP source');
    assert.equal(learner.onCrossing(cu({ timestampMs: 1_000_000 - 31_000 }), C, A), 'stale');
    assert.equal(learner.onCrossing(cu({ group: 2 }), C, A), 'no_key');
    assert.equal(learner.onCrossing(cu({ code: CU_CODE.CU_ACK }, key, A, C), A, C), 'ack');
    assert.equal(maps.rows.size, 0);
  });

  test('DPRP\'s own entries on the old-source CID are left as they are', () => {
    const { maps, learner } = setup();
    const own: PitEntry = { flow: { saddr: B, sport: 40100, daddr: A, dport: 7300, proto: 6 }, dir: 'egress', action: 'encrypt', group: 1, version: 1, state: 'confirmed', role: 'start' };
    maps.pit.install([own]);
    learner.onCrossing(cu(), C, A);
    assert.equal(maps.rows.get(slotKey(own))?.action, 'encrypt');
    assert.equal(maps.rows.get(slotKey({ flow: { saddr: C, sport: 40100, daddr: A, dport: 7300, proto: 6 }, dir: 'egress' }))?.action, 'pass');
  });

  test('the learnt entries expire when nothing crossed them for the idle timeout', () => {
    const { maps, clock, learner } = setup();
    learner.onCrossing(cu(), C, A);
    clock.t += 9000;
    assert.equal(learner.sweep(), 0);
    clock.t += 2000;
    assert.equal(learner.sweep(), 2);
    assert.equal(maps.rows.size, 0);
  });

  test('the next hop: the device of `ip route get`, remembered per destination', () => {
    assert.equal(deviceOfRouteGet('192.0.2.10 dev lan src 192.0.2.1 uid 0 \\    cache '), 'lan');
    assert.equal(deviceOfRouteGet('RTNETLINK answers: Network is unreachable'), undefined);
    let asked = 0;
    const t = { ms: 0 };
    const hops = new NextHopDevices(() => { asked++; return 'lo'; }, () => t.ms);
    const i = hops.ifindexFor('192.0.2.10');
    assert.equal(i, 1, 'lo is ifindex 1');
    hops.ifindexFor('192.0.2.10');
    assert.equal(asked, 1);
    t.ms += 2500;
    hops.ifindexFor('192.0.2.10');
    assert.equal(asked, 2);
  });
});

describe('the kept address by rtnetlink (netlink-addr.ts)', () => {
  test('RTM_NEWADDR for 198.51.100.10/32 on ifindex 1: nlmsghdr, ifaddrmsg, IFA_LOCAL and IFA_ADDRESS as rtnetlink(7) lays them out', async () => {
    const { newAddrMessage, RTM_NEWADDR } = await import('../../controlplane/mobility/netlink-addr.js');
    const m = newAddrMessage(7, 1, '198.51.100.10', 32);
    assert.equal(m.toString('hex'), [
      '28000000', '1400', '0106', '07000000', '00000000', // len 40, RTM_NEWADDR, REQUEST|EXCL|CREATE, seq 7, pid 0
      '02', '20', '00', '00', '01000000', // AF_INET, /32, flags 0, scope universe, ifindex 1
      '0800', '0200', 'c633640a', // IFA_LOCAL
      '0800', '0100', 'c633640a', // IFA_ADDRESS
    ].join(''));
    assert.equal(m.readUInt16LE(4), RTM_NEWADDR);
    assert.throws(() => newAddrMessage(1, 1, '198.51.100.300', 32), /not an IPv4 address/);
  });
});

describe('one CU\'s writes batched (batched-maps.ts)', () => {
  test('held until the batch ends, last write per slot wins, one call per phase in the flow table\'s order', async () => {
    const { BatchedFlowMaps } = await import('../../controlplane/mobility/batched-maps.js');
    const calls: string[] = [];
    const inner: FlowMaps<PitEntry> = {
      pit: { install: (es) => calls.push(`pit+ ${es.map((e) => `${e.dir}:${e.flow.sport}`).join(',')}`), remove: (ks) => calls.push(`pit- ${ks.map((k) => `${k.dir}:${k.flow.sport}`).join(',')}`) },
      xlat: { set: (es) => calls.push(`xlat+ ${es.map((e) => `${e.dir}:${e.flow.sport}`).join(',')}`), remove: (ks) => calls.push(`xlat- ${ks.map((k) => `${k.dir}:${k.flow.sport}`).join(',')}`) },
    };
    const b = new BatchedFlowMaps(inner);
    const f = (sport: number) => ({ saddr: A, sport, daddr: C, dport: 7300, proto: 6 });
    const pe = (sport: number, dir: 'egress' | 'ingress'): PitEntry => ({ flow: f(sport), dir, action: 'encrypt', group: 1, version: 1, state: 'confirmed', role: 'start' });
    const xe = (sport: number, dir: 'egress' | 'ingress') => ({ flow: f(sport), dir, to: { saddr: A, daddr: B, sport, dport: 7300 }, kind: 'cit' as const });
    b.batch(() => {
      for (const s of [1, 2]) {
        b.pit.install([pe(s, 'egress')]);
        b.xlat!.set([xe(s, 'egress'), xe(s, 'ingress')]);
        b.pit.install([pe(s, 'ingress')]);
      }
      b.pit.remove([pe(3, 'egress'), pe(3, 'ingress')]);
      b.xlat!.remove([xe(3, 'egress'), xe(3, 'ingress')]);
      b.xlat!.remove([xe(2, 'ingress')]);
      b.xlat!.set([xe(2, 'ingress')]); // removed, then written again: written
      assert.deepEqual(calls, [], 'nothing before the batch ends');
    });
    assert.deepEqual(calls, [
      'pit+ egress:1,egress:2', 'xlat+ egress:1,ingress:1,egress:2,ingress:2', 'pit+ ingress:1,ingress:2',
      'xlat- egress:3', 'pit- egress:3,ingress:3', 'xlat- ingress:3',
    ]);
    b.pit.install([pe(9, 'egress')]);
    assert.equal(calls.at(-1), 'pit+ egress:9', 'outside a batch: straight through');
  });
});
