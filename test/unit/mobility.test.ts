/**
 * Mobile PPC (controlplane/mobility/) without a kernel: the CU codec and its
 * MAC, the per-flow move sequence (replay), the CIT of each end (the table of
 * SEEDS 1.3), compound moves (re-pointed, never chained; back home = no CIT),
 * the rtnetlink monitor parser and move detector, the bounded CU retry, and a
 * mover and a stationary engine wired through a fake network over fake maps:
 * a move re-keys both ends, forged, replayed, wrong-key, wrong-group and
 * wrong-source CUs change nothing and are counted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { slotKey, type MapSlot } from '../../controlplane/flows/cid.js';
import type { FlowMaps, XlatEntry } from '../../controlplane/flows/flow-maps.js';
import type { PitEntry } from '../../controlplane/flows/pit-entry.js';
import { CU_CODE, CU_FLAG, CU_STATUS, CuWireError, decodeCu, encodeCu, verifyCu, type CuMessage } from '../../controlplane/mobility/cu-wire.js';
import { judgeSeq } from '../../controlplane/mobility/move-seq.js';
import { citEntries, type PitTemplate } from '../../controlplane/mobility/cit.js';
import { MoveDetector, parseMonitorLine } from '../../controlplane/mobility/move-events.js';
import { CuExchanges } from '../../controlplane/mobility/cu-exchange.js';
import { LINGER_BUCKET_MS, MobilityEngine, REMOVE_GRACE_MS, type CuRefusal, type MobilityKey, type RedirectReason, type Rendezvous } from '../../controlplane/mobility/engine.js';
import { DnsRendezvous } from '../../controlplane/mobility/rendezvous.js';

const A = '192.0.2.1';
const B = '203.0.113.2';
const C = '198.51.100.2';
const D = '198.51.100.3';
const TCP = 6;

describe('CU codec', () => {
  const key = randomBytes(32);
  const m: CuMessage = {
    code: CU_CODE.CU, group: 1, version: 3, cuId: randomBytes(8), timestampMs: 1_700_000_000_123,
    entries: [{ proto: TCP, status: 0, peer: { addr: A, port: 5001 }, seq: 7, old: { addr: B, port: 40000 }, next: { addr: C, port: 40000 } }],
  };

  test('round-trips, carries MOBILE_OLD and MOBILE_NEW TLVs, and the MAC holds only for the same key, addresses and bytes', () => {
    const icmp = encodeCu(m, C, A, key);
    const d = decodeCu(icmp);
    assert.deepEqual({ ...d, signed: undefined, mac: undefined }, { ...m, flags: 0, signed: undefined, mac: undefined });
    assert.equal(decodeCu(encodeCu({ ...m, flags: CU_FLAG.REKEY }, C, A, key)).flags, CU_FLAG.REKEY, 'the REKEY flag round-trips');
    assert.equal(icmp[8 + 28 + 12], 1, 'MOBILE_OLD TLV type');
    assert.equal(icmp[8 + 28 + 20], 2, 'MOBILE_NEW TLV type');
    assert.ok(verifyCu(d, C, A, key));
    assert.ok(!verifyCu(d, C, A, randomBytes(32)), 'another key');
    assert.ok(!verifyCu(d, B, A, key), 'another IP source: a captured CU cannot be re-sent from elsewhere');
    const flipped = Buffer.from(icmp);
    flipped[8 + 28 + 22] ^= 1; // new address byte
    flipped.writeUInt16BE(0, 2);
    let sum = 0;
    for (let i = 0; i < flipped.length; i += 2) sum += (flipped[i] << 8) + (flipped[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    flipped.writeUInt16BE(~sum & 0xffff, 2);
    assert.ok(!verifyCu(decodeCu(flipped), C, A, key), 'a changed option byte fails the MAC');
  });

  test('malformed messages are refused with a reason', () => {
    const icmp = encodeCu(m, C, A, key);
    const reason = (b: Buffer) => { try { decodeCu(b); return 'ok'; } catch (e) { assert.ok(e instanceof CuWireError); return e.reason; } };
    assert.equal(reason(icmp.subarray(0, 40)), 'too_short');
    const bad = Buffer.from(icmp); bad[9]++;
    assert.equal(reason(bad), 'bad_checksum');
    assert.equal(reason(Buffer.concat([icmp, Buffer.alloc(2)])), 'bad_count');
    assert.throws(() => encodeCu({ ...m, entries: [] }, C, A, key), /entries/);
  });
});

test('move sequence: new numbers apply, the same one with the same address is a duplicate, anything else is a replay', () => {
  assert.equal(judgeSeq(undefined, 1, 'x'), 'apply');
  assert.equal(judgeSeq(undefined, 0, 'x'), 'replayed');
  assert.equal(judgeSeq({ seq: 2, next: 'c' }, 3, 'd'), 'apply');
  assert.equal(judgeSeq({ seq: 2, next: 'c' }, 2, 'c'), 'duplicate');
  assert.equal(judgeSeq({ seq: 2, next: 'c' }, 2, 'd'), 'replayed');
  assert.equal(judgeSeq({ seq: 2, next: 'c' }, 1, 'b'), 'replayed');
});

const ENC: PitTemplate = { action: 'encrypt', group: 1, version: 1, state: 'confirmed', role: 'start' };
const DEC: PitTemplate = { action: 'decrypt', group: 1, version: 1, state: 'confirmed', role: 'start' };

describe('CIT per end', () => {
  const xl = (e: XlatEntry) => `${e.dir} ${e.flow.saddr}:${e.flow.sport}>${e.flow.daddr}:${e.flow.dport} => ${e.to.saddr}:${e.to.sport}>${e.to.daddr}:${e.to.dport}`;
  const atA = { local: { addr: A, port: 5001 }, remote: { addr: B, port: 40000 }, proto: TCP };
  const atB = { local: { addr: B, port: 40000 }, remote: { addr: A, port: 5001 }, proto: TCP };

  test('stationary end: egress dst B->C, ingress src C->B; PIT on the wire CIDs with the flow\'s values', () => {
    const c = citEntries('stationary', atA, { addr: C, port: 40000 }, ENC, DEC);
    assert.deepEqual(c.xlat.map(xl), [`egress ${A}:5001>${B}:40000 => ${A}:5001>${C}:40000`, `ingress ${C}:40000>${A}:5001 => ${B}:40000>${A}:5001`]);
    assert.deepEqual(c.pit.map((p) => `${slotKey(p)} ${p.action}`), [`6/${A}:5001>${C}:40000@egress encrypt`, `6/${C}:40000>${A}:5001@ingress decrypt`]);
    assert.ok(c.xlat.every((x) => x.kind === 'cit'));
  });

  test('mover: egress src B->C, ingress dst C->B', () => {
    const c = citEntries('mover', atB, { addr: C, port: 40000 }, ENC, DEC);
    assert.deepEqual(c.xlat.map(xl), [`egress ${B}:40000>${A}:5001 => ${C}:40000>${A}:5001`, `ingress ${A}:5001>${C}:40000 => ${A}:5001>${B}:40000`]);
    assert.deepEqual(c.pit.map(slotKey), [`6/${C}:40000>${A}:5001@egress`, `6/${A}:5001>${C}:40000@ingress`]);
  });

  test('compound moves: B->C->D is one translation B<->D; back on B there is none', () => {
    const d = citEntries('mover', atB, { addr: D, port: 40000 }, ENC, DEC);
    assert.deepEqual(d.xlat.map(xl), [`egress ${B}:40000>${A}:5001 => ${D}:40000>${A}:5001`, `ingress ${A}:5001>${D}:40000 => ${A}:5001>${B}:40000`]);
    const home = citEntries('mover', atB, { addr: B, port: 40000 }, ENC, DEC);
    assert.deepEqual(home.xlat, []);
    assert.deepEqual(home.pit.map(slotKey), [`6/${B}:40000>${A}:5001@egress`, `6/${A}:5001>${B}:40000@ingress`]);
  });
});

describe('move detection from rtnetlink events', () => {
  test('parses the lines `ip -o -4 monitor address route` prints', () => {
    assert.deepEqual(parseMonitorLine('3: vb    inet 198.51.100.2/24 scope global vb\\       valid_lft forever preferred_lft forever'),
      { kind: 'addr', deleted: false, ifindex: 3, ifname: 'vb', addr: '198.51.100.2', prefixLen: 24 });
    assert.deepEqual(parseMonitorLine('Deleted 3: vb    inet 203.0.113.2/24 scope global vb\\       valid_lft forever preferred_lft forever'),
      { kind: 'addr', deleted: true, ifindex: 3, ifname: 'vb', addr: '203.0.113.2', prefixLen: 24 });
    assert.deepEqual(parseMonitorLine('default via 198.51.100.254 dev vb '), { kind: 'route', deleted: false, isDefault: true, dev: 'vb' });
    assert.deepEqual(parseMonitorLine('Deleted local 192.0.2.7 dev lo table local proto kernel scope host src 192.0.2.7 '), { kind: 'route', deleted: true, isDefault: false, dev: 'lo' });
    assert.equal(parseMonitorLine('2: vb    inet6 2001:db8::1/64 scope global'), null);
    assert.equal(parseMonitorLine(''), null);
  });

  test('DHCP replacing the address (new first, or old first) and a re-plug are moves; other interfaces are not', () => {
    const newFirst = new MoveDetector(['vb'], [{ dev: 'vb', addr: B }]);
    assert.deepEqual(newFirst.on({ kind: 'addr', deleted: false, ifindex: 3, ifname: 'vb', addr: C, prefixLen: 24 }), []);
    assert.deepEqual(newFirst.on({ kind: 'addr', deleted: true, ifindex: 3, ifname: 'vb', addr: B, prefixLen: 24 }), [{ ifname: 'vb', from: B, to: C }]);
    const oldFirst = new MoveDetector(['vb'], [{ dev: 'vb', addr: B }]);
    assert.deepEqual(oldFirst.on({ kind: 'addr', deleted: true, ifindex: 3, ifname: 'vb', addr: B, prefixLen: 24 }), []);
    assert.deepEqual(oldFirst.on({ kind: 'route', deleted: true, isDefault: true, dev: 'vb' }), []);
    assert.deepEqual(oldFirst.on({ kind: 'addr', deleted: false, ifindex: 3, ifname: 'vb', addr: C, prefixLen: 24 }), [{ ifname: 'vb', from: B, to: C }]);
    assert.deepEqual(oldFirst.on({ kind: 'addr', deleted: false, ifindex: 1, ifname: 'lo', addr: B, prefixLen: 32 }), [], 'not a guarded interface');
    assert.deepEqual(oldFirst.current('vb'), [C]);
  });
});

test('CU retry: bounded backoff, stops on the answer, fails after the schedule', () => {
  const timers: Array<{ at: number; fn: () => void; dead: boolean }> = [];
  let now = 0;
  const fake = { after: (ms: number, fn: () => void) => { const t = { at: now + ms, fn, dead: false }; timers.push(t); return { cancel: () => { t.dead = true; } }; } };
  const run = (until: number) => {
    for (let i = 0; i < 100; i++) {
      const t = timers.filter((x) => !x.dead && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!t) break;
      t.dead = true; now = t.at; t.fn();
    }
    now = until;
  };
  const x = new CuExchanges(fake, [100, 200, 400]);
  const sends: number[] = [];
  let failed = 0;
  x.start('a', { send: () => sends.push(now), answered: () => assert.fail('no answer came'), failed: () => failed++ });
  run(10_000);
  assert.deepEqual(sends, [0, 100, 300, 700]);
  assert.equal(failed, 1);
  let answered = 0;
  x.start('b', { send: () => sends.push(now), answered: () => answered++, failed: () => assert.fail('answered') });
  run(now + 150);
  assert.ok(x.ack('b'));
  run(now + 10_000);
  assert.equal(answered, 1);
  assert.equal(sends.length, 6);
  assert.ok(!x.ack('b'), 'a late second answer is not an open exchange');
  // A new route re-sends an open exchange at once, only once; the kick counts as one of its bounded sends.
  const before = sends.length;
  x.start('c', { send: () => sends.push(now), answered: () => assert.fail('no answer'), failed: () => failed++ });
  assert.equal(x.kick(), 1);
  assert.equal(x.kick(), 0);
  run(now + 10_000);
  assert.equal(sends.length - before, 4, 'first send, the kick, then the schedule\'s two other re-sends: a kick is one of the bounded sends');
  assert.equal(failed, 2);
});

/* ---------------- two engines through a fake network ---------------- */

class FakeMaps implements FlowMaps<PitEntry> {
  pitRows = new Map<string, PitEntry>();
  xlatRows = new Map<string, XlatEntry>();
  /** An egress XLAT entry written while its translated CID had no egress PIT entry (a packet then would miss). */
  egressHoles: string[] = [];
  /** Every slot written, in order (PIT installs and XLAT sets). */
  written: string[] = [];
  pit = {
    install: (es: readonly PitEntry[]) => { for (const e of es) { this.pitRows.set(slotKey(e), e); this.written.push(`pit ${slotKey(e)}`); } },
    remove: (ks: readonly MapSlot[]) => { for (const k of ks) this.pitRows.delete(slotKey(k)); },
  };
  xlat = {
    set: (es: readonly XlatEntry[]) => {
      for (const e of es) {
        this.xlatRows.set(slotKey(e), e);
        this.written.push(`xlat ${slotKey(e)}`);
        if (e.dir === 'egress' && !this.pitRows.has(slotKey({ flow: { ...e.to, proto: e.flow.proto }, dir: 'egress' }))) this.egressHoles.push(slotKey(e));
      }
    },
    remove: (ks: readonly MapSlot[]) => { for (const k of ks) this.xlatRows.delete(slotKey(k)); },
  };
  snapshot(): string { return JSON.stringify([[...this.pitRows.keys()].sort(), [...this.xlatRows.keys()].sort()]); }
}

interface Node { eng: MobilityEngine; maps: FakeMaps; refused: Map<CuRefusal, number>; redirected: RedirectReason[]; kept: Set<string>; addr: { v: string }; here: Set<string>; scans: Array<{ keys?: boolean } | undefined> }

/**
 * Two engines with DPRP's entries for A:5001 <-> B:40000. `routed`: a message reaches its
 * receiver only if its destination is one of the receiver's addresses now (`here`); else lost.
 */
function pair(keysA: MobilityKey[], keysB: MobilityKey[], o: { routed?: boolean; rendezvous?: { a?: Rendezvous; b?: Rendezvous } } = {}) {
  const clock = { ms: 1_700_000_000_000, nowMs() { return this.ms; }, monoMs() { return this.ms; } };
  const wire: Array<{ to: 'a' | 'b'; icmp: Buffer; src: string; dst: string }> = [];
  const pending: Array<{ fn: () => void; dead: boolean; ms: number }> = [];
  const timers = { after: (ms: number, fn: () => void) => { const t = { fn, dead: false, ms }; pending.push(t); return { cancel() { t.dead = true; } }; } };
  /** Runs every timer due (the test's clock does not matter to the retry schedule), `rounds` times. */
  const fireTimers = (rounds: number) => { for (let i = 0; i < rounds; i++) for (const t of pending.splice(0)) if (!t.dead) t.fn(); };
  const make = (self: string, keys: MobilityKey[], to: 'a' | 'b'): Node => {
    const maps = new FakeMaps();
    const refused = new Map<CuRefusal, number>();
    const redirected: RedirectReason[] = [];
    const kept = new Set<string>();
    const scans: Array<{ keys?: boolean } | undefined> = [];
    const eng = new MobilityEngine({
      maps, pitGet: (s) => maps.pitRows.get(slotKey(s)), pitScan: (o) => { scans.push(o); return maps.pitRows.values(); }, keys: () => keys,
      send: (dst, icmp, src) => wire.push({ to, icmp, src, dst }),
      keeper: { keep: (a) => kept.add(a), release: (a) => kept.delete(a) }, clock, timers,
      observer: { refused: (r) => refused.set(r, (refused.get(r) ?? 0) + 1), redirected: (r) => redirected.push(r) },
      rendezvous: o.rendezvous?.[to === 'b' ? 'a' : 'b'],
    });
    return { eng, maps, refused, redirected, kept, addr: { v: self }, here: new Set([self]), scans };
  };
  const a = make(A, keysA, 'b'); // a's sends go to b
  const b = make(B, keysB, 'a');
  // DPRP's entries for A:5001 <-> B:40000 on both ends.
  a.maps.pit.install([{ ...ENC, flow: { saddr: A, sport: 5001, daddr: B, dport: 40000, proto: TCP }, dir: 'egress' }, { ...DEC, flow: { saddr: B, sport: 40000, daddr: A, dport: 5001, proto: TCP }, dir: 'ingress' }]);
  b.maps.pit.install([{ ...ENC, role: 'end', flow: { saddr: B, sport: 40000, daddr: A, dport: 5001, proto: TCP }, dir: 'egress' }, { ...DEC, role: 'end', flow: { saddr: A, sport: 5001, daddr: B, dport: 40000, proto: TCP }, dir: 'ingress' }]);
  let lost = 0;
  const deliver = (max = 10): number => {
    let n = 0;
    for (; n < max && wire.length; n++) {
      const m = wire.shift()!;
      const to = m.to === 'a' ? a : b;
      if (o.routed && !to.here.has(m.dst)) { lost++; continue; }
      to.eng.onControl(m.icmp, m.src, m.dst);
    }
    return n;
  };
  /** Timers armed and not yet fired or cancelled, by their delay. */
  const armed = (ms: number) => pending.filter((t) => !t.dead && t.ms === ms).length;
  return { a, b, wire, deliver, clock, fireTimers, armed, lost: () => lost };
}

describe('a mover and a stationary end', () => {
  const k1: MobilityKey = { group: 1, version: 1, key: randomBytes(32) };

  test('a move re-keys both ends and installs both CITs; the same CU again changes nothing', () => {
    const { a, b, wire, deliver } = pair([k1], [k1]);
    assert.equal(b.eng.onMove({ ifname: 'vb', from: B, to: C }), 1);
    assert.ok(b.kept.has(B), 'the mover keeps the sockets\' address local');
    assert.deepEqual([...b.maps.xlatRows.keys()], [`6/${A}:5001>${C}:40000@ingress`], 'before the answer only the ingress half');
    const cu = wire[0];
    deliver(2);
    assert.deepEqual([...a.maps.xlatRows.values()].map((x) => `${slotKey(x)}=>${x.to.daddr}|${x.to.saddr}`).sort(),
      [`6/${A}:5001>${B}:40000@egress=>${C}|${A}`, `6/${C}:40000>${A}:5001@ingress=>${A}|${B}`].sort());
    assert.equal(b.maps.xlatRows.size, 2);
    assert.equal(a.maps.pitRows.get(`6/${A}:5001>${C}:40000@egress`)?.action, 'encrypt');
    assert.equal(a.maps.pitRows.get(`6/${B}:40000>${A}:5001@ingress`)?.action, 'decrypt', 'the old ingress entry stays for packets in flight');
    assert.equal(b.maps.pitRows.get(`6/${C}:40000>${A}:5001@egress`)?.action, 'encrypt');
    assert.equal(a.eng.moved()[0].moves, 1);
    assert.deepEqual([a.maps.egressHoles, b.maps.egressHoles], [[], []], 'no egress translation ever pointed at a CID without its PIT entry');
    const before = a.maps.snapshot();
    a.eng.onControl(cu.icmp, cu.src, cu.dst);
    assert.equal(a.maps.snapshot(), before, 'a duplicate is answered, not applied again');
    assert.equal(a.eng.moved()[0].moves, 1);
  });

  test('at the answer the mover writes what its half before the answer did not hold (the half is not written again)', () => {
    const { b, deliver } = pair([k1], [k1]);
    b.maps.written.length = 0; // DPRP's entries of the pair
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    const atMove = [...b.maps.written];
    deliver(2);
    assert.equal(b.eng.moved().length, 1);
    const atAnswer = b.maps.written.slice(atMove.length);
    assert.deepEqual(atMove, [`xlat 6/${A}:5001>${C}:40000@ingress`, `pit 6/${A}:5001>${C}:40000@ingress`], 'the ingress half, translation before its PIT entry');
    assert.deepEqual(atAnswer, [`pit 6/${C}:40000>${A}:5001@egress`, `xlat 6/${B}:40000>${A}:5001@egress`], 'the egress half only, PIT entry before its translation');
    assert.equal(b.maps.xlatRows.size, 2);
    assert.equal(b.maps.pitRows.get(`6/${A}:5001>${C}:40000@ingress`)?.action, 'decrypt');
  });

  test('a key rotation re-keys a moved flow on its wire CIDs, in order: the starter\'s decrypt, the peer\'s both, the starter\'s encrypt', () => {
    const k2: MobilityKey = { group: 1, version: 2, key: randomBytes(32) };
    const keysA = [k1];
    const keysB = [k1];
    const { a, b, deliver } = pair(keysA, keysB);
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    deliver(2);
    const v = (n: Node, slot: string) => { const e = n.maps.pitRows.get(slot); return `${e?.action} v${e?.version} prev${e?.prevVersion ?? 0}`; };
    const bOut = `6/${C}:40000>${A}:5001@egress`; const bIn = `6/${A}:5001>${C}:40000@ingress`;
    const aOut = `6/${A}:5001>${C}:40000@egress`; const aIn = `6/${C}:40000>${A}:5001@ingress`;
    keysB.push(k2);
    keysA.push(k2);
    b.eng.sweep(); // b sees the rotation first
    assert.deepEqual([v(b, bIn), v(b, bOut)], ['decrypt v2 prev1', 'encrypt v1 prev0'], 'step 1: b decrypts both versions, still encrypts the old one');
    a.eng.sweep(); // a too, before b's CU arrived: both start (each decrypts both versions first)
    deliver(1); // b's REKEY CU at a
    assert.deepEqual([v(a, aIn), v(a, aOut)], ['decrypt v2 prev1', 'encrypt v2 prev0'], 'step 2: a switches both');
    deliver(10);
    assert.deepEqual([v(b, bIn), v(b, bOut)], ['decrypt v2 prev1', 'encrypt v2 prev0'], 'step 3: b encrypts the new version after the answer');
    assert.equal(a.eng.moved()[0].next.addr, C, 'the flow stays where it is on the wire');
    assert.equal(a.maps.xlatRows.size, 2);
    assert.equal(a.refused.size + b.refused.size, 0, `nothing refused: ${JSON.stringify([...a.refused, ...b.refused])}`);
    b.eng.sweep(); a.eng.sweep();
    assert.equal(a.eng.pendingExchanges + b.eng.pendingExchanges, 0, 'nothing more to re-key');
  });

  test('a REKEY CU under a key the peer lacks, or forged, switches nothing at the peer; the starter keeps encrypting the old version', () => {
    const k2: MobilityKey = { group: 1, version: 2, key: randomBytes(32) };
    const keysB = [k1];
    const { a, b, wire, deliver, fireTimers } = pair([k1], keysB);
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    deliver(2);
    const before = a.maps.snapshot();
    const aOut = a.maps.pitRows.get(`6/${A}:5001>${C}:40000@egress`);
    keysB.push(k2);
    b.eng.sweep();
    assert.equal(wire.length, 1, 'b sent its REKEY CU');
    deliver(1);
    assert.equal(a.refused.get('no_key'), 1);
    assert.equal(a.maps.pitRows.get(`6/${A}:5001>${C}:40000@egress`)?.version, aOut?.version);
    for (let i = 0; i < 10; i++) { deliver(5); fireTimers(1); }
    assert.equal(a.maps.snapshot(), before, 'a switched nothing');
    assert.equal(b.maps.pitRows.get(`6/${C}:40000>${A}:5001@egress`)?.version, 1, 'b still encrypts what a decrypts');
    assert.equal(b.maps.pitRows.get(`6/${A}:5001>${C}:40000@ingress`)?.prevVersion, 1, 'b decrypts both');
  });

  test('a new address next to one with live flows keeps those flows\' address local before the move (DHCP: new first)', () => {
    const { b } = pair([k1], [k1]);
    assert.deepEqual(b.eng.onAddressAdded([B, D]), [B], 'B has DPRP\'s flows, D none');
    assert.deepEqual(b.scans, [{ keys: false }], 'addresses only: the per-flow key of every entry is not read (a lookup each)');
    assert.ok(b.kept.has(B));
    assert.equal(b.eng.onMove({ ifname: 'vb', from: B, to: C }), 1, 'the move that follows moves the flow as before');
    assert.ok(b.kept.has(B));
  });

  test('forged, replayed, wrong-key, wrong-group, non-member and wrong-source CUs change nothing and are counted', () => {
    const k2: MobilityKey = { group: 2, version: 1, key: randomBytes(32) };
    const { a, b, wire, deliver, clock } = pair([k1, k2], [k1]);
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    const first = wire[0];
    deliver(2);
    b.eng.onMove({ ifname: 'vb', from: C, to: D });
    deliver(2);
    assert.equal(a.eng.moved()[0].next.addr, D);
    const before = a.maps.snapshot();
    const entry = { proto: TCP, status: 0, peer: { addr: A, port: 5001 }, seq: 9, old: { addr: B, port: 40000 }, next: { addr: C, port: 40000 } };
    const cu = (key: Buffer, group = 1, src = C, e = entry) => encodeCu({ code: CU_CODE.CU, group, version: 1, cuId: randomBytes(8), timestampMs: clock.ms, entries: [e] }, src, A, key);
    a.eng.onControl(first.icmp, first.src, first.dst); // the recorded first CU (seq 1)
    a.eng.onControl(cu(randomBytes(32)), C, A); // forged: a key nobody holds under group 1
    a.eng.onControl(cu(randomBytes(32), 7), C, A); // non-member: a group a does not hold
    a.eng.onControl(cu(k2.key, 2), C, A); // a member of group 2 moving a group-1 flow
    a.eng.onControl(cu(k1.key, 1, C), B, A); // MAC'd for source C, arriving from B
    a.eng.onControl(cu(k1.key, 1, B, { ...entry, next: { addr: C, port: 40000 } }), B, A); // source is not the new address
    a.eng.onControl(randomBytes(80), C, A);
    assert.equal(a.maps.snapshot(), before, 'nothing moved');
    assert.equal(a.eng.moved()[0].next.addr, D);
    assert.deepEqual(Object.fromEntries(a.refused), { replayed: 1, bad_mac: 2, no_key: 1, wrong_group: 1, source_mismatch: 1, wire: 1 });
  });

  test('every answer lost: the mover switches anyway and offers the same move again from sweep; the peer answers the duplicate', () => {
    const { a, b, wire, deliver, clock, fireTimers } = pair([k1], [k1]);
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    for (let i = 0; i < 12; i++) {
      deliver(wire.filter((m) => m.to === 'a').length); // CUs reach a ...
      for (let j = wire.length - 1; j >= 0; j--) if (wire[j].to === 'b') wire.splice(j, 1); // ... every answer is lost
      fireTimers(1);
    }
    assert.equal(b.eng.pendingExchanges, 0, 'the exchange gave up (bounded)');
    assert.equal(b.maps.xlatRows.size, 2, 'and the mover switched both halves');
    assert.equal(a.eng.moved()[0].moves, 1);
    clock.ms += 1000;
    b.eng.sweep();
    assert.equal(wire.filter((m) => m.to === 'a').length, 1, 'the move is offered again');
    deliver(2);
    assert.equal(b.eng.pendingExchanges, 0, 'answered this time');
    assert.equal(a.eng.moved()[0].moves, 1, 'a duplicate for the peer: applied once');
    assert.equal(b.eng.moved()[0].moves, 1);
    clock.ms += 60_000;
    b.eng.sweep();
    assert.equal(wire.length, 0, 'nothing more to offer');
  });

  test('a move before the previous one was answered supersedes it: both ends end on the last address', () => {
    const { a, b, wire, deliver } = pair([k1], [k1]);
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    b.eng.onMove({ ifname: 'vb', from: C, to: D });
    assert.equal(b.eng.pendingExchanges, 1, 'the first exchange was cancelled');
    assert.deepEqual([...b.maps.xlatRows.keys()], [`6/${A}:5001>${D}:40000@ingress`], 'and its ingress half erased');
    deliver(wire.length + 2);
    assert.equal(a.eng.moved()[0].next.addr, D);
    assert.equal(b.eng.moved()[0].next.addr, D);
    assert.equal(b.maps.xlatRows.get(`6/${B}:40000>${A}:5001@egress`)?.to.saddr, D);
  });

  test('the lingering entries of a second move\'s many CUs share one grace timer (not one walk of every flow per CU); all of them go when it fires', () => {
    const p = pair([k1], [k1]);
    const { a, b, deliver, fireTimers } = p;
    // 39 more flows (A:5002.. <-> B:40000): 40 in all, two CUs (32 + 8).
    for (let port = 5002; port <= 5040; port++) {
      a.maps.pit.install([{ ...ENC, flow: { saddr: A, sport: port, daddr: B, dport: 40000, proto: TCP }, dir: 'egress' }, { ...DEC, flow: { saddr: B, sport: 40000, daddr: A, dport: port, proto: TCP }, dir: 'ingress' }]);
      b.maps.pit.install([{ ...ENC, role: 'end', flow: { saddr: B, sport: 40000, daddr: A, dport: port, proto: TCP }, dir: 'egress' }, { ...DEC, role: 'end', flow: { saddr: A, sport: port, daddr: B, dport: 40000, proto: TCP }, dir: 'ingress' }]);
    }
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    deliver(100);
    fireTimers(1);
    b.eng.onMove({ ifname: 'vb', from: C, to: D });
    deliver(100);
    assert.equal(a.eng.moved().length, 40);
    const fromC = () => [...a.maps.xlatRows.keys()].filter((k) => k.startsWith(`6/${C}:`)).length;
    assert.equal(fromC(), 40, 'C\'s ingress translations linger, every flow\'s');
    assert.equal(p.armed(LINGER_BUCKET_MS + REMOVE_GRACE_MS), 2, 'one grace timer at each end for both CUs\' lingering entries');
    assert.equal(p.armed(REMOVE_GRACE_MS), 0, 'none per CU');
    fireTimers(1);
    assert.equal(fromC(), 0, 'all gone when it fired');
  });

  test('a second move re-points the CIT (no chain); the previous wire\'s ingress lingers for a grace; moving back home removes it', () => {
    const { a, b, deliver, fireTimers } = pair([k1], [k1]);
    b.eng.onMove({ ifname: 'vb', from: B, to: C });
    deliver(2);
    b.eng.onMove({ ifname: 'vb', from: C, to: D });
    deliver(2);
    const eg = a.maps.xlatRows.get(`6/${A}:5001>${B}:40000@egress`)!;
    assert.equal(eg.to.daddr, D);
    assert.equal(a.maps.xlatRows.get(`6/${C}:40000>${A}:5001@ingress`)?.to.saddr, B, 'packets b sent from C before it switched are still translated ...');
    assert.equal(a.maps.pitRows.get(`6/${C}:40000>${A}:5001@ingress`)?.action, 'decrypt', '... and decrypted');
    assert.ok(!a.maps.xlatRows.has(`6/${A}:5001>${C}:40000@egress`), 'but nothing is sent to C any more');
    fireTimers(1);
    assert.deepEqual([...a.maps.xlatRows.keys()].sort(), [`6/${A}:5001>${B}:40000@egress`, `6/${D}:40000>${A}:5001@ingress`].sort(), 'C\'s entries are gone');
    assert.equal(a.eng.moved()[0].moves, 2);
    b.eng.onMove({ ifname: 'vb', from: D, to: B });
    deliver(2);
    fireTimers(1);
    assert.equal(a.maps.xlatRows.size, 0, 'home again (and the grace over): no CIT at the stationary end');
    assert.equal(b.maps.xlatRows.size, 0, 'nor at the mover');
    assert.ok(!b.kept.has(B), 'and the kept address is released');
    assert.equal(b.maps.pitRows.get(`6/${B}:40000>${A}:5001@egress`)?.action, 'encrypt');
    assert.equal(CU_STATUS.OK, 0);
  });
});

describe('both ends move at once', () => {
  const k1: MobilityKey = { group: 1, version: 1, key: randomBytes(32) };
  const E = '192.0.2.77';
  const xl = (m: FakeMaps, dir: 'egress' | 'ingress') => [...m.xlatRows.values()].filter((x) => x.dir === dir)
    .map((x) => `${x.flow.saddr}:${x.flow.sport}>${x.flow.daddr}:${x.flow.dport} => ${x.to.saddr}:${x.to.sport}>${x.to.daddr}:${x.to.dport}`);
  const settle = async (p: ReturnType<typeof pair>, rounds: number) => {
    for (let i = 0; i < rounds; i++) {
      p.deliver(p.wire.length);
      p.fireTimers(1);
      for (let j = 0; j < 5; j++) await new Promise((r) => setImmediate(r)); // the rendezvous answers (promises)
    }
  };
  /** A's DNS zone: each GE's DDNS writes its address here on a move. */
  const zone = () => {
    const names: Record<string, string> = { 'a.example.net': A, 'b.example.net': B };
    const asked: string[] = [];
    const rv = () => new DnsRendezvous({ names: Object.keys(names), resolve: async (n) => { asked.push(n); return names[n] ? [names[n]] : []; } });
    return { names, asked, rv };
  };

  test('each CU to the other\'s old address is lost; the rendezvous (DNS) says where the peer is; both ends end on E <-> C, consistent', async () => {
    const z = zone();
    const rva = z.rv(); const rvb = z.rv();
    await rva.refresh(); await rvb.refresh();
    const p = pair([k1], [k1], { routed: true, rendezvous: { a: rva, b: rvb } });
    p.a.here.clear(); p.a.here.add(E); z.names['a.example.net'] = E;
    p.b.here.clear(); p.b.here.add(C); z.names['b.example.net'] = C;
    assert.equal(p.a.eng.onMove({ ifname: 'va', from: A, to: E }), 1);
    assert.equal(p.b.eng.onMove({ ifname: 'vb', from: B, to: C }), 1);
    p.deliver(p.wire.length);
    assert.equal(p.lost(), 2, 'both CUs went to the old addresses and were lost');
    await settle(p, 12);
    assert.deepEqual([p.a.eng.pendingExchanges, p.b.eng.pendingExchanges], [0, 0], 'every exchange answered');
    assert.deepEqual(xl(p.a.maps, 'egress'), [`${A}:5001>${B}:40000 => ${E}:5001>${C}:40000`], 'a rewrites both addresses on egress');
    assert.deepEqual(xl(p.b.maps, 'egress'), [`${B}:40000>${A}:5001 => ${C}:40000>${E}:5001`]);
    assert.deepEqual(xl(p.b.maps, 'ingress'), [`${E}:5001>${C}:40000 => ${A}:5001>${B}:40000`], 'what a sends, b delivers with the addresses its socket knows');
    assert.deepEqual(xl(p.a.maps, 'ingress'), [`${C}:40000>${E}:5001 => ${B}:40000>${A}:5001`]);
    assert.equal(p.a.maps.pitRows.get(`6/${E}:5001>${C}:40000@egress`)?.action, 'encrypt', 'PIT entries on the wire CIDs');
    assert.equal(p.b.maps.pitRows.get(`6/${E}:5001>${C}:40000@ingress`)?.action, 'decrypt');
    assert.deepEqual(p.a.eng.moved().map((f) => f.end), ['both']);
    assert.ok(p.a.redirected.includes('rendezvous') || p.b.redirected.includes('rendezvous'));
    assert.deepEqual([p.a.maps.egressHoles, p.b.maps.egressHoles], [[], []]);
    assert.equal([...p.a.refused.values(), ...p.b.refused.values()].reduce((n, v) => n + v, 0), 0, 'nothing refused on the way');
  });

  test('only one end asks the rendezvous: its CU at the other\'s new address proves it knows it; the other end commits and sends its own CU there', async () => {
    const z = zone();
    const rva = z.rv();
    await rva.refresh();
    const p = pair([k1], [k1], { routed: true, rendezvous: { a: rva } });
    p.a.here.clear(); p.a.here.add(E); z.names['a.example.net'] = E;
    p.b.here.clear(); p.b.here.add(C); z.names['b.example.net'] = C;
    p.a.eng.onMove({ ifname: 'va', from: A, to: E });
    p.b.eng.onMove({ ifname: 'vb', from: B, to: C });
    await settle(p, 12);
    assert.deepEqual(p.a.redirected, ['rendezvous']);
    assert.deepEqual(p.b.redirected, ['peer_cu'], 'b re-addressed its CU to where a\'s came from');
    assert.deepEqual([p.a.eng.pendingExchanges, p.b.eng.pendingExchanges], [0, 0]);
    assert.deepEqual(xl(p.b.maps, 'egress'), [`${B}:40000>${A}:5001 => ${C}:40000>${E}:5001`]);
    assert.deepEqual(xl(p.a.maps, 'egress'), [`${A}:5001>${B}:40000 => ${E}:5001>${C}:40000`]);
    assert.equal(p.b.eng.moved()[0].remoteSeq, 1, 'b applied a\'s move sequence');
    assert.equal(p.a.eng.moved()[0].remoteSeq, 1, 'and a b\'s');
  });

  test('without a rendezvous the CUs are lost and the flow stays split (what the rendezvous fixes)', async () => {
    const p = pair([k1], [k1], { routed: true });
    p.a.here.clear(); p.a.here.add(E);
    p.b.here.clear(); p.b.here.add(C);
    p.a.eng.onMove({ ifname: 'va', from: A, to: E });
    p.b.eng.onMove({ ifname: 'vb', from: B, to: C });
    await settle(p, 12);
    assert.deepEqual(xl(p.a.maps, 'egress'), [`${A}:5001>${B}:40000 => ${E}:5001>${B}:40000`], 'a still sends to b\'s old address');
  });

  test('the rendezvous: an old address leads to its name, the zone\'s answer now to the new address; unchanged or unknown: nothing', async () => {
    const z = zone();
    const rv = z.rv();
    assert.equal(await rv.locate(B), undefined, 'first resolution: b is still at B');
    z.names['b.example.net'] = C;
    assert.equal(await rv.locate(B), C);
    assert.deepEqual(rv.namesOf(B), ['b.example.net'], 'B still leads to b\'s name');
    z.names['b.example.net'] = D;
    assert.equal(await rv.locate(B), D, 'a second move: still found from the first address');
    assert.equal(await rv.locate('198.51.100.250'), undefined, 'an address no name had');
  });
});

test('subnet NAT (a GEN whose subnet moves): one nft transaction re-defines the table with `snat to` the current address, never masquerade', async () => {
  const { natScript, natTableName } = await import('../../controlplane/mobility/subnet-nat.js');
  assert.equal(natTableName('eth0.5'), 'gscip_mobility_eth0_5');
  const s = natScript('vb', ['100.64.9.0/24', '100.64.10.0/24'], '192.0.2.10');
  assert.match(s, /^table ip gscip_mobility_vb \{\}\ndelete table ip gscip_mobility_vb\ntable ip gscip_mobility_vb \{/);
  assert.match(s, /type nat hook postrouting priority srcnat; policy accept;\n\s+oifname "vb" ip saddr \{ 100\.64\.9\.0\/24, 100\.64\.10\.0\/24 \} snat to 192\.0\.2\.10\n/);
  assert.doesNotMatch(s, /masquerade/);
});

test('the address announcement: a gratuitous ARP request (sender = target = the new address, broadcast)', async () => {
  const { arpAnnouncement } = await import('../../controlplane/mobility/announce.js');
  const f = arpAnnouncement(Buffer.from('020000000001', 'hex'), '192.0.2.10');
  assert.equal(f.toString('hex'), 'ffffffffffff' + '020000000001' + '0806' + '0001' + '0800' + '06' + '04' + '0001' + '020000000001' + 'c000020a' + '000000000000' + 'c000020a');
  assert.throws(() => arpAnnouncement(Buffer.alloc(5), '192.0.2.10'), /MAC/);
});

describe('the address keeper', () => {
  test('keeps and releases in call order, in the background; a failed keep is reported and forgotten', async () => {
    const { AddressKeeper } = await import('../../controlplane/mobility/host-addresses.js');
    const calls: string[] = [];
    const errors: string[] = [];
    let gate: () => void = () => {};
    const first = new Promise<void>((r) => { gate = r; });
    const k = new AddressKeeper((w) => errors.push(w), async (args) => {
      if (!calls.length) await first; // the first call is slow: the next ones must wait for it
      calls.push(args.join(' '));
      return args.join(' ').includes('203.0.113.9/') ? { ok: false, err: 'RTNETLINK answers: Operation not permitted' } : { ok: true, err: '' };
    });
    k.keep(B); k.release(B); k.keep(B); k.keep('203.0.113.9');
    assert.deepEqual(k.list().sort(), [B, '203.0.113.9'].sort(), 'the set says at once what is kept');
    gate();
    await k.settled();
    assert.deepEqual(calls, [`addr add ${B}/32 dev lo`, `addr del ${B}/32 dev lo`, `addr add ${B}/32 dev lo`, 'addr add 203.0.113.9/32 dev lo']);
    assert.deepEqual(errors, ['keep 203.0.113.9']);
    assert.deepEqual(k.list(), [B]);
  });
});


describe('CU re-sends with many exchanges open', () => {
  test('the delays stretch with the open exchanges (peers answer them in turn), bounded', async () => {
    const { CuExchanges, retryStretch, CU_RETRY_MS } = await import('../../controlplane/mobility/cu-exchange.js');
    assert.deepEqual([1, 8, 40, 400].map(retryStretch), [1, 1, 5, 8]);
    const delays: number[] = [];
    const x = new CuExchanges({ after: (ms) => { delays.push(ms); return { cancel() {} }; } });
    for (let i = 0; i < 40; i++) x.start(`c${i}`, { send: () => {}, answered: () => {}, failed: () => {} });
    assert.equal(delays[0], CU_RETRY_MS[0], 'the first of them: alone, the plain schedule');
    assert.equal(delays[39], CU_RETRY_MS[0] * 5, 'the 40th: 40 open, 5 times as long');
  });

  /** Timers on a clock the test moves itself: `fire()` runs what is due without moving it (a busy loop runs its timers late). */
  function lateTimers() {
    const c = { now: 0, timers: [] as Array<{ at: number; fn: () => void; dead: boolean }> };
    // As setTimeout: at least 1 ms (a timer set while timers run is never run in the same turn).
    const after = (ms: number, fn: () => void) => { const t = { at: c.now + Math.max(1, ms), fn, dead: false }; c.timers.push(t); return { cancel: () => { t.dead = true; } }; };
    const fire = () => {
      for (let i = 0; i < 100_000; i++) {
        const t = c.timers.filter((x) => !x.dead && x.at <= c.now).sort((a, b) => a.at - b.at)[0];
        if (!t) return;
        t.dead = true;
        t.fn();
      }
    };
    /** Moves the clock in 1 ms steps to `to`, running each timer when it is due (an idle loop). */
    const runTo = (to: number) => { while (c.now < to) { c.now++; fire(); } };
    return { c, after, fire, runTo };
  }

  test('a re-send waits while the peer answers the CUs sent before it (it has not reached this one); a CU it passed is re-sent on time', async () => {
    const { CuExchanges } = await import('../../controlplane/mobility/cu-exchange.js');
    const t = lateTimers();
    const x = new CuExchanges({ after: t.after }, [100, 200], () => t.c.now);
    const sends: Record<string, number[]> = { c1: [], c2: [], c3: [] };
    for (const id of ['c1', 'c2', 'c3']) x.start(id, { send: () => sends[id].push(t.c.now), answered: () => {}, failed: () => {} });
    t.runTo(60);
    assert.ok(x.ack('c2'), 'the peer answers the second CU: it passed the first (lost) and has not reached the third');
    t.runTo(150);
    assert.deepEqual(sends.c1, [0, 100], 'passed by the peer: re-sent when due');
    assert.deepEqual(sends.c3, [0], 'not reached, answers still coming: not re-sent at 100');
    assert.equal(x.postponed, 1);
    // No answer since 60: looked at again at 200, the peer looks stuck, the third is re-sent.
    t.runTo(399);
    assert.deepEqual(sends.c3, [0, 200]);
  });

  test('re-sends are put off at most POSTPONE_MAX times (bounded even while other answers keep coming)', async () => {
    const { CuExchanges, POSTPONE_MAX, RETRY_STRETCH_MAX } = await import('../../controlplane/mobility/cu-exchange.js');
    const t = lateTimers();
    const x = new CuExchanges({ after: t.after }, [10, 1_000_000], () => t.c.now);
    // 2,000 CUs sent before it, answered one per ms, in order: the peer never reaches it in this test.
    const early = Array.from({ length: 2000 }, (_, i) => `o${i}`);
    for (const id of early) x.start(id, { send: () => {}, answered: () => {}, failed: () => {} });
    const sends: number[] = [];
    x.start('late', { send: () => sends.push(t.c.now), answered: () => {}, failed: () => {} });
    const delay = 10 * RETRY_STRETCH_MAX;
    for (let i = 0; i < 1500 && sends.length < 2; i++) {
      t.runTo(t.c.now + 1);
      assert.ok(x.ack(early[i]));
    }
    assert.deepEqual(sends, [0, delay * (POSTPONE_MAX + 1)], `put off ${POSTPONE_MAX} times, then re-sent though answers still come`);
  });

  test('a re-send timer that fires late (the loop was busy) waits for the answers already there before it sends', async () => {
    const { CuExchanges } = await import('../../controlplane/mobility/cu-exchange.js');
    const t = lateTimers();
    const x = new CuExchanges({ after: t.after }, [25, 50], () => t.c.now);
    const sends: number[] = [];
    x.start('c', { send: () => sends.push(t.c.now), answered: () => {}, failed: () => {} });
    t.c.now = 1500; // a move of many flows kept the loop busy 1.5 s: the timer is 1,475 ms late
    t.fire();
    assert.deepEqual(sends, [0], 'not at once: after the I/O of this turn');
    assert.ok(x.ack('c'), 'the answer that waited in the ring is read');
    t.fire();
    t.runTo(3000);
    assert.deepEqual(sends, [0], 'answered: never sent again');
    // Without an answer the deferred check sends it.
    x.start('d', { send: () => sends.push(t.c.now), answered: () => {}, failed: () => {} });
    t.c.now += 500;
    t.fire();
    t.c.now += 1;
    t.fire();
    assert.equal(sends.length, 3, 'the late timer, looked at again, re-sends an unanswered CU');
  });

  test('a new route re-sends open CUs only when it may carry them: not the local route of an address kept on lo', async () => {
    const { routeMayCarryCu } = await import('../../controlplane/mobility/move-events.js');
    const ev = (l: string) => parseMonitorLine(l)!;
    assert.equal(routeMayCarryCu(ev('local 198.51.100.10 dev lo table local proto kernel scope host src 198.51.100.10'), ['vb']), false);
    assert.equal(routeMayCarryCu(ev('default via 192.0.2.1 dev vb'), ['vb']), true);
    assert.equal(routeMayCarryCu(ev('192.0.2.0/24 dev vb proto kernel scope link src 192.0.2.10'), ['vb']), true);
    assert.equal(routeMayCarryCu(ev('Deleted default via 198.51.100.1 dev vb'), ['vb']), false);
    assert.equal(routeMayCarryCu(ev('2: vb    inet 192.0.2.10/24 scope global vb'), ['vb']), false, 'an address event is no route');
  });

  test('the CU destination check remembers local addresses (one interface read per burst, not per CU), asks again for one not found', async () => {
    const { LocalAddresses, LOCAL_ADDR_MS } = await import('../../controlplane/mobility/handler.js');
    let now = 0;
    const local = new Set(['192.0.2.10']);
    let asked = 0;
    const l = new LocalAddresses(() => now, (a) => { asked++; return local.has(a); });
    for (let i = 0; i < 100; i++) assert.equal(l.has('192.0.2.10'), true);
    assert.equal(asked, 1);
    assert.equal(l.has('192.0.2.11'), false);
    local.add('192.0.2.11');
    assert.equal(l.has('192.0.2.11'), true, 'not found before: asked again, found now');
    local.delete('192.0.2.10');
    l.forget(); // an address event
    assert.equal(l.has('192.0.2.10'), false);
    local.add('192.0.2.10');
    assert.equal(l.has('192.0.2.10'), true);
    const n = asked;
    now += LOCAL_ADDR_MS;
    l.has('192.0.2.10');
    assert.equal(asked, n + 1, 'remembered for LOCAL_ADDR_MS only');
  });
});
