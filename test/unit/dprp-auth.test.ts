/**
 * DPRP authentication: membership tags, opaque groups, action MACs, CDN seal,
 * replay cache. Forged, altered, replayed and wrong-key inputs are rejected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionMac, findSelected, sealMac, selector, signActions, signRecord, verifyAction, verifyRecord, type GroupKey,
} from '../../controlplane/dprp/auth.js';
import { ReplayCache } from '../../controlplane/dprp/replay.js';
import { decode, encode, MsgType, Status, WireAction, WireRole, zero16, type DprpMessage } from '../../controlplane/dprp/wire.js';
import { testKey } from './dprp-sim.js';

const K1 = testKey(1);
const K2 = testKey(2);
const K1v2 = testKey(1, 2);
const K1forged = testKey(1, 1, 'attacker');

function rgi(): DprpMessage {
  return {
    type: MsgType.RGI, flags: 0, attempt: 1, negId: Buffer.from('a1a2a3a4a5a6a7a8', 'hex'), timestampMs: 1_700_000_000_000,
    flow: { saddr: '192.0.2.11', daddr: '192.0.2.12', sport: 1234, dport: 80, proto: 6 }, status: Status.OK,
    startGe: '192.0.2.11', endGe: '192.0.2.12', records: [], actions: [], seal: null, options: [],
  };
}

function withRecord(m: DprpMessage, keys: GroupKey[], addr = '192.0.2.12'): DprpMessage {
  m.records.push(signRecord(keys, m, { addr, geType: 'GES', mode: 'OP', flags: 1, options: [] }));
  return m;
}

const ids = (ks: GroupKey[]) => ks.map((k) => `${k.group}/${k.version}`);

test('tags prove exactly the shared groups, and only to members', () => {
  const m = withRecord(rgi(), [K1, K2]);
  assert.deepEqual(ids(verifyRecord([K1], m, 0)), ['1/1']);
  assert.deepEqual(ids(verifyRecord([K2, K1v2], m, 0)), ['2/1']);
  assert.deepEqual(verifyRecord([testKey(3)], m, 0), [], 'a non-member learns nothing matches');
  assert.deepEqual(verifyRecord([K1forged], m, 0), [], 'same group id, wrong key: not a member');
});

test('a record claiming a group without its key does not verify (forgery)', () => {
  const m = withRecord(rgi(), [K1forged]);
  assert.deepEqual(verifyRecord([K1], m, 0), []);
});

test('altering any field a tag covers breaks it', () => {
  const m = withRecord(rgi(), [K1]);
  const alter: Array<(x: DprpMessage) => void> = [
    (x) => { x.records[0].mode = 'CL'; },
    (x) => { x.records[0].geType = 'GEN'; },
    (x) => { x.records[0].flags = 2; },
    (x) => { x.records[0].addr = '192.0.2.99'; },
    (x) => { x.flow.dport = 81; },
    (x) => { x.negId = Buffer.alloc(8); },
    (x) => { x.attempt = 2; },
    (x) => { x.timestampMs += 1; },
    (x) => { x.startGe = '192.0.2.1'; },
  ];
  for (const [i, f] of alter.entries()) {
    const x = decode(encode(m));
    f(x);
    assert.deepEqual(verifyRecord([K1], x, 0), [], `alteration ${i} detected`);
  }
  assert.deepEqual(ids(verifyRecord([K1], decode(encode(m)), 0)), ['1/1'], 'unaltered verifies after a wire round trip');
});

test('RGI records are chained: removing an earlier record breaks later tags', () => {
  const m = withRecord(rgi(), [K2], '192.0.2.12');
  withRecord(m, [K1], '192.0.2.1');
  assert.deepEqual(ids(verifyRecord([K1], m, 1)), ['1/1']);
  const stripped = { ...m, records: [m.records[1]] };
  assert.deepEqual(verifyRecord([K1], stripped, 0), []);
});

test('tags are opaque and unlinkable: same GE, same group, new negotiation -> unrelated bytes', () => {
  const a = withRecord(rgi(), [K1]);
  const b2 = rgi();
  b2.negId = Buffer.from('b1b2b3b4b5b6b7b8', 'hex');
  const b = withRecord(b2, [K1]);
  assert.notDeepEqual(a.records[0].tags[0], b.records[0].tags[0]);
  assert.equal(a.records[0].tags[0].length, 16);
});

function mpit(): DprpMessage {
  const m: DprpMessage = {
    ...rgi(), type: MsgType.MPIT,
    actions: [
      { addr: '192.0.2.1', action: WireAction.PASS, role: WireRole.INTERMEDIATE, flags: 0, selector: zero16(), mac: zero16() },
      { addr: '192.0.2.12', action: WireAction.DECRYPT, role: WireRole.END, flags: 0, selector: zero16(), mac: zero16() },
    ],
  };
  signActions(m, (addr) => (addr === '192.0.2.12' ? K1 : null));
  return m;
}

test('MPIT: the addressee finds its key by selector and verifies its action', () => {
  const m = decode(encode(mpit()));
  const mine = m.actions[1];
  const k = findSelected([K2, K1v2, K1], m.negId, '192.0.2.12', mine.selector)!;
  assert.deepEqual(ids([k]), ['1/1']);
  assert.ok(verifyAction(k, m, mine));
  assert.equal(findSelected([K1], m.negId, '192.0.2.1', mine.selector), null, 'selector is bound to its addressee');
  assert.deepEqual(m.actions[0].selector, zero16(), 'a GE sharing no key gets no selector');
});

test('MPIT: altering any decision (even another GE\'s) breaks the MAC', () => {
  const alter: Array<(x: DprpMessage) => void> = [
    (x) => { x.actions[1].action = WireAction.PASS; },
    (x) => { x.actions[1].role = WireRole.INTERMEDIATE; },
    (x) => { x.actions[0].action = WireAction.DISCARD; },
    (x) => { x.flow.sport = 1; },
    (x) => { x.status = Status.REFUSED; },
  ];
  for (const [i, f] of alter.entries()) {
    const x = decode(encode(mpit()));
    f(x);
    assert.equal(verifyAction(K1, x, x.actions[1]), false, `alteration ${i} detected`);
  }
  const x = decode(encode(mpit()));
  assert.equal(verifyAction(K1forged, x, x.actions[1]), false, 'wrong key');
  assert.equal(actionMac(K1, x, x.actions[1]).length, 16);
});

test('CDN seal binds the end GE and the negotiation', () => {
  const cdn: DprpMessage = { ...rgi(), type: MsgType.CDN };
  cdn.seal = { selector: selector(K1, cdn.negId, cdn.endGe), mac: sealMac(K1, cdn) };
  const ok = decode(encode(cdn));
  assert.ok(ok.seal && sealMac(K1, ok).equals(ok.seal.mac));
  const other = decode(encode({ ...cdn, negId: Buffer.alloc(8, 1) }));
  assert.ok(!sealMac(K1, other).equals(other.seal!.mac));
});

test('replay cache: replay, stale, future, bounded with a rising floor', () => {
  const c = new ReplayCache({ windowMs: 1000, maxEntries: 3 });
  const now = 10_000;
  assert.equal(c.accept('a', now, now), 'ok');
  assert.equal(c.accept('a', now, now), 'replay');
  assert.equal(c.accept('b', now - 2000, now), 'stale');
  assert.equal(c.accept('c', now + 2000, now), 'future');
  assert.equal(c.accept('d', now + 1, now), 'ok');
  assert.equal(c.accept('e', now + 2, now), 'ok');
  assert.equal(c.accept('f', now + 3, now), 'ok');
  assert.equal(c.size, 3, 'bounded');
  // 'a' was evicted: it must not become acceptable again
  assert.equal(c.accept('a', now, now), 'stale');
  assert.throws(() => new ReplayCache({ windowMs: 0, maxEntries: 1 }), /windowMs/);
});
