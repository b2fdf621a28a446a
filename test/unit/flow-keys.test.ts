/**
 * PCCOM per-flow keys in the control plane (no root): the derivation
 * (controlplane/pccom/flow-key.ts) against RFC 5869 written out with HMAC, and
 * the writer's contract (controlplane/pccom/flow-keys.ts) over a fake map: a
 * sender's counter is never rewound, a moved entry takes its key and counter
 * over (or fails closed), a decrypt entry keeps the old key as prev.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { deriveFlowKey, saltFromU64, saltToU64 } from '../../controlplane/pccom/flow-key.js';
import { FlowKeyReadCache, FlowKeyWriter, MOVE_SKIP } from '../../controlplane/pccom/flow-keys.js';
import type { Cid, FlowKeyVal } from '../../controlplane/maps/codecs.js';
import type { PitEntry } from '../../controlplane/flows/pit-entry.js';
import { FlowLeg } from '../../controlplane/maps/abi.js';
import { dumpFlowKeys } from '../../controlplane/cli/commands/maps.js';
import type { PitVal } from '../../controlplane/maps/codecs.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import { KernelPitMap, flowKeyWriter } from '../../controlplane/flows/kernel-flow-maps.js';

const G = randomBytes(32);
const SALT = '0123456789abcdef';

function hkdfRef(ikm: Buffer, salt: Buffer, info: Buffer): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  return createHmac('sha256', prk).update(Buffer.concat([info, Buffer.from([1])])).digest();
}

test('per-flow key = HKDF-SHA256(group key, negotiation id, "gscip pccom flow key v1" | group | version | leg) (RFC 5869 by hand)', () => {
  const info = (leg: number) => Buffer.concat([Buffer.from('gscip pccom flow key v1'), Buffer.from([0, 0, 0, 3, 0, 0, 0, 9, leg])]);
  assert.deepEqual(deriveFlowKey(G, 3, 9, SALT, 'fwd'), hkdfRef(G, Buffer.from(SALT, 'hex'), info(1)));
  assert.deepEqual(deriveFlowKey(G, 3, 9, SALT, 'rev'), hkdfRef(G, Buffer.from(SALT, 'hex'), info(2)));
  const keys = [deriveFlowKey(G, 3, 9, SALT, 'fwd'), deriveFlowKey(G, 3, 9, SALT, 'rev'), deriveFlowKey(G, 3, 10, SALT, 'fwd'),
    deriveFlowKey(G, 3, 9, 'fedcba9876543210', 'fwd'), G];
  assert.equal(new Set(keys.map((k) => k.toString('hex'))).size, keys.length, 'leg, version and salt each change the key; none is the group key');
  assert.equal(saltFromU64(saltToU64(SALT)), SALT);
  assert.throws(() => deriveFlowKey(G, 3, 9, 'abcd', 'fwd'), /want 8 bytes/);
});

class FakeMap {
  readonly m = new Map<string, FlowKeyVal>();
  readonly cids = new Map<string, Cid>();
  sets = 0;
  gets = 0;
  private k(c: Cid) { return `${c.saddr}:${c.sport}>${c.daddr}:${c.dport}/${c.proto}@${c.dir}`; }
  get(c: Cid) { this.gets++; return this.m.get(this.k(c)); }
  set(c: Cid, v: FlowKeyVal) { this.sets++; this.m.set(this.k(c), v); this.cids.set(this.k(c), c); }
  delete(c: Cid) { return this.m.delete(this.k(c)); }
  *entries(): Generator<[Cid, FlowKeyVal]> { for (const [k, v] of this.m) yield [this.cids.get(k)!, v]; }
}

/** FakeMap with bpf_map_update_batch: counts the calls. */
class FakeBatchMap extends FakeMap {
  batches = 0;
  setBatch(es: ReadonlyArray<readonly [Cid, FlowKeyVal]>) { this.batches++; for (const [k, v] of es) this.set(k, v); return es.length; }
}

const cidOf = (sport: number, dir: number, proto = 17): Cid => ({ saddr: '192.0.2.1', daddr: '203.0.113.2', sport, dport: 7000, proto, dir });
function entry(c: Cid, action: 'encrypt' | 'decrypt', salt: string, extra: Partial<PitEntry> = {}): PitEntry {
  return {
    flow: { saddr: c.saddr, daddr: c.daddr, sport: c.sport, dport: c.dport, proto: c.proto }, dir: c.dir ? 'egress' : 'ingress',
    action, group: 1, version: 1, state: 'confirmed', role: 'start', flowKey: { salt, leg: 'fwd' }, ...extra,
  };
}

test('writer: a sender\'s value is written once per key; re-installing it (confirm, adoption) leaves the counter alone', () => {
  const m = new FakeMap();
  const w = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }), { udpRekeyAt: 1000n });
  const eg = cidOf(40000, 1);
  w.install(entry(eg, 'encrypt', SALT), eg);
  assert.equal(m.sets, 1);
  const v = m.get(eg)!;
  assert.deepEqual(v.cur.key, deriveFlowKey(G, 1, 1, SALT, 'fwd'));
  assert.equal(v.leg, FlowLeg.FWD);
  assert.equal(v.rekey_at, 1000n);
  m.set(eg, { ...v, cur: { ...v.cur, ctr: 77n } }); // the fast path counted
  const before = m.sets;
  w.install(entry(eg, 'encrypt', SALT, { state: 'tentative' }), eg);
  assert.equal(m.sets, before, 'not rewritten');
  assert.equal(m.get(eg)!.cur.ctr, 77n);
  w.install(entry(eg, 'encrypt', 'aaaaaaaaaaaaaaaa'), eg);
  assert.equal(m.get(eg)!.cur.ctr, 0n, 'a new salt: a new key, a new counter');
  assert.deepEqual(w.specOf(eg), { flowKey: { salt: 'aaaaaaaaaaaaaaaa', leg: 'fwd' } });
});

test('writer: a moved entry takes the key and counter of the slot it moves from (sender skips ahead); a missing source fails closed', () => {
  const m = new FakeMap();
  const w = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }));
  const from = cidOf(40000, 1);
  const to = cidOf(40001, 1);
  w.install(entry(from, 'encrypt', SALT), from);
  m.set(from, { ...m.get(from)!, cur: { ...m.get(from)!.cur, ctr: 5000n } });
  const moved = entry(to, 'encrypt', SALT, { flowKey: { salt: SALT, leg: 'fwd', from: { flow: entry(from, 'encrypt', SALT).flow, dir: 'egress' } } });
  w.install(moved, to, from);
  assert.deepEqual(m.get(to)!.cur.key, m.get(from)!.cur.key, 'the same key');
  assert.equal(m.get(to)!.cur.ctr, 5000n + MOVE_SKIP, 'its counter goes on, past what the old slot may still send');
  const lost = cidOf(40002, 1);
  m.delete(from);
  w.install({ ...moved, flow: { ...moved.flow, sport: 40002 } }, lost, from);
  assert.equal(m.get(lost), undefined, 'the source is gone: no value (no_key drops), never a fresh counter under a used key');
});

test('writer: a decrypt entry switching key keeps the old one (and its highest counter) as prev; a group key it lacks leaves no value', () => {
  const m = new FakeMap();
  const w = new FlowKeyWriter(m, (g, v) => (v <= 2 ? { key: G, flags: 0 } : undefined));
  const ing = cidOf(40000, 0);
  w.install(entry(ing, 'decrypt', SALT), ing);
  m.set(ing, { ...m.get(ing)!, cur: { ...m.get(ing)!.cur, ctr: 1234n } });
  const oldKey = m.get(ing)!.cur.key;
  w.install(entry(ing, 'decrypt', SALT, { version: 2, prevVersion: 1, prevFlowKey: { salt: SALT, leg: 'fwd' } }), ing);
  const v = m.get(ing)!;
  assert.deepEqual(v.prev.key, oldKey);
  assert.equal(v.prev.ctr, 1234n);
  assert.equal(v.prev.key_version, 1);
  assert.deepEqual(v.cur.key, deriveFlowKey(G, 1, 2, SALT, 'fwd'));
  assert.deepEqual(w.specOf(ing), { flowKey: { salt: SALT, leg: 'fwd' }, prevFlowKey: { salt: SALT, leg: 'fwd' } });
  w.install(entry(ing, 'decrypt', SALT, { version: 3 }), ing);
  assert.equal(m.get(ing), undefined, 'no group key v3: nothing to decrypt with (no_key), never the group key');
});

test('gscip maps dump flow-keys: which key and counter each entry has, never the key bytes', () => {
  const m = new FakeMap();
  const w = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }));
  const eg = cidOf(40000, 1);
  w.install(entry(eg, 'encrypt', SALT), eg);
  m.set(eg, { ...m.get(eg)!, cur: { ...m.get(eg)!.cur, ctr: 42n } });
  const maps = { flowKeys: { entries: () => [[eg, m.get(eg)!]] } } as unknown as GscipMaps;
  const text = dumpFlowKeys(maps, false);
  assert.match(text, /egress\s+udp\s+192\.0\.2\.1\s+40000\s+203\.0\.113\.2\s+7000\s+1\s+chacha20\s+0123456789abcdef\s+fwd\s+42\s/);
  assert.match(text, /1 per-flow keys/);
  const key = m.get(eg)!.cur.key;
  for (const s of [text, dumpFlowKeys(maps, true)]) {
    assert.ok(!s.includes(key.toString('hex')) && !s.includes(key.toString('base64')), 'no key material');
  }
});

test('one PIT install writes its per-flow keys together: each group key read once, every value in one batch, before the PIT entries (issue 15)', () => {
  const m = new FakeMap();
  const calls: string[] = [];
  const flowKeys = {
    get: (c: Cid) => m.get(c), delete: (c: Cid) => { calls.push('fk.delete'); return m.delete(c); },
    set: (c: Cid, v: FlowKeyVal) => { calls.push('fk.set'); m.set(c, v); },
    setBatch: (rows: ReadonlyArray<readonly [Cid, FlowKeyVal]>) => { calls.push(`fk.setBatch ${rows.length}`); for (const [c, v] of rows) m.set(c, v); return rows.length; },
  };
  const keys = { get: () => { calls.push('keys.get'); return { key: G, flags: 0, cipher: 0 }; } };
  const pit = { setBatch: (rows: unknown[]) => { calls.push(`pit.setBatch ${rows.length}`); return rows.length; }, deleteBatch: () => 0, get: () => undefined, entries: () => [] };
  const kp = new KernelPitMap(pit as never, () => 1n, flowKeyWriter({ flowKeys, keys } as never));
  const eg = cidOf(40000, 1);
  const ing: Cid = { ...cidOf(40000, 0), saddr: eg.daddr, daddr: eg.saddr, sport: eg.dport, dport: eg.sport };
  kp.install([entry(eg, 'encrypt', SALT), { ...entry(ing, 'decrypt', SALT), flowKey: { salt: SALT, leg: 'rev' } }]);
  assert.deepEqual(calls, ['keys.get', 'fk.setBatch 2', 'pit.setBatch 2'], 'was: keys.get, fk.set, keys.get, fk.set, pit.setBatch');
  assert.deepEqual(m.get(eg)!.cur.key, deriveFlowKey(G, 1, 1, SALT, 'fwd'));
  assert.deepEqual(m.get(ing)!.cur.key, deriveFlowKey(G, 1, 1, SALT, 'rev'));
});

test('installMany: an entry moving from a slot written earlier in the same call takes that value (the writes are seen in order)', () => {
  const m = new FakeMap();
  const w = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }));
  const from = cidOf(40000, 1);
  const to = cidOf(40001, 1);
  const moved = entry(to, 'encrypt', SALT, { flowKey: { salt: SALT, leg: 'fwd', from: { flow: entry(from, 'encrypt', SALT).flow, dir: 'egress' } } });
  w.installMany([{ e: entry(from, 'encrypt', SALT), cid: from }, { e: moved, cid: to, fromCid: from }]);
  assert.deepEqual(m.get(to)!.cur.key, m.get(from)!.cur.key);
  assert.equal(m.get(to)!.cur.ctr, MOVE_SKIP);
});

test('writer: installMany writes what one install per entry writes (a later entry reads an earlier one), the values in one batch', () => {
  // Six entries: fresh ones, a moved sender and receiver, one moved from a slot written earlier in the same call.
  const items = (mk: (c: Cid) => Cid) => {
    const from = mk(cidOf(41000, 1));
    const e = (c: Cid, action: 'encrypt' | 'decrypt', extra: Partial<PitEntry> = {}) => ({ e: entry(c, action, SALT, extra), cid: c });
    const moved = (to: Cid, src: Cid, action: 'encrypt' | 'decrypt') => ({
      e: entry(to, action, SALT, { flowKey: { salt: SALT, leg: 'fwd', from: { flow: entry(src, action, SALT).flow, dir: src.dir ? 'egress' as const : 'ingress' as const } } }), cid: to, fromCid: src,
    });
    return [e(mk(cidOf(41001, 1)), 'encrypt'), e(mk(cidOf(41001, 0)), 'decrypt'), moved(mk(cidOf(41002, 1)), from, 'encrypt'), moved(mk(cidOf(41002, 0)), mk(cidOf(41000, 0)), 'decrypt'),
      e(mk(cidOf(41003, 1)), 'encrypt'), moved(mk(cidOf(41004, 1)), mk(cidOf(41003, 1)), 'encrypt')];
  };
  const seed = (m: FakeMap) => {
    const w = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }));
    for (const c of [cidOf(41000, 1), cidOf(41000, 0)]) w.install(entry(c, c.dir ? 'encrypt' : 'decrypt', SALT), c);
    m.set(cidOf(41000, 1), { ...m.get(cidOf(41000, 1))!, cur: { ...m.get(cidOf(41000, 1))!.cur, ctr: 777n } });
    return w;
  };
  const one = new FakeMap();
  const w1 = seed(one);
  for (const it of items((c) => c) as Array<{ e: PitEntry; cid: Cid; fromCid?: Cid }>) w1.install(it.e, it.cid, it.fromCid);
  const many = new FakeBatchMap();
  const w2 = seed(many);
  const setsBefore = many.sets;
  w2.installMany(items((c) => c));
  assert.deepEqual([...many.m.entries()].sort(), [...one.m.entries()].sort(), 'the same values on the same slots');
  assert.equal(many.batches, 1, 'one batch call');
  assert.equal(many.sets - setsBefore, 6);
  assert.equal(many.get(cidOf(41002, 1))!.cur.ctr, 777n + MOVE_SKIP);
  assert.equal(many.get(cidOf(41004, 1))!.cur.ctr, MOVE_SKIP, 'moved from a slot this call wrote: its value, not a missing one');
});

test('read cache: inside a scope a slot is read once; a sender\'s source counter is read from the map at the write (never a remembered one)', () => {
  const m = new FakeMap();
  const seedW = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }));
  const from = cidOf(42000, 1);
  const rfrom = cidOf(42000, 0);
  seedW.install(entry(from, 'encrypt', SALT), from);
  seedW.install(entry(rfrom, 'decrypt', SALT), rfrom);
  m.set(from, { ...m.get(from)!, cur: { ...m.get(from)!.cur, ctr: 100n } });
  const cache = new FlowKeyReadCache(m);
  const w = new FlowKeyWriter(cache, () => ({ key: G, flags: 0 }));
  const to = cidOf(42001, 1);
  const rto = cidOf(42001, 0);
  cache.scope(() => {
    const gets = m.gets;
    assert.ok(w.specOf(from).flowKey && w.specOf(from).flowKey && w.specOf(rfrom).flowKey);
    assert.equal(m.gets - gets, 2, 'two slots, two reads (each slot read once)');
    // The fast path sends on the old slot meanwhile: its counter moves in the map, not in what was read.
    m.set(from, { ...m.get(from)!, cur: { ...m.get(from)!.cur, ctr: 60_000n } });
    w.install(entry(to, 'encrypt', SALT, { flowKey: { salt: SALT, leg: 'fwd', from: { flow: entry(from, 'encrypt', SALT).flow, dir: 'egress' } } }), to, from);
    w.install(entry(rto, 'decrypt', SALT, { flowKey: { salt: SALT, leg: 'fwd', from: { flow: entry(rfrom, 'decrypt', SALT).flow, dir: 'ingress' } } }), rto, rfrom);
  });
  assert.equal(m.get(to)!.cur.ctr, 60_000n + MOVE_SKIP, 'the counter the fast path reached, skipped ahead: no (key, counter) pair twice');
  assert.deepEqual(m.get(rto)!.cur.key, m.get(rfrom)!.cur.key);
  const gets = m.gets;
  cache.get(from);
  cache.get(from);
  assert.equal(m.gets - gets, 2, 'outside a scope every read goes to the map');
});

test('read cache: a preload answers the scope\'s reads, absent slots included, without a lookup each', () => {
  const m = new FakeMap();
  const seedW = new FlowKeyWriter(m, () => ({ key: G, flags: 0 }));
  for (let p = 43000; p < 43010; p++) seedW.install(entry(cidOf(p, 0), 'decrypt', SALT), cidOf(p, 0));
  const cache = new FlowKeyReadCache(m);
  assert.equal(cache.preload(), false, 'outside a scope: nothing to remember it in');
  cache.scope(() => {
    assert.equal(cache.preload(), true);
    const gets = m.gets;
    for (let p = 43000; p < 43010; p++) assert.ok(cache.get(cidOf(p, 0)));
    assert.equal(cache.get(cidOf(43010, 0)), undefined);
    assert.equal(m.gets - gets, 0);
    cache.delete(cidOf(43000, 0));
    assert.equal(cache.get(cidOf(43000, 0)), undefined, 'its own writes are what it remembers');
  });
});

test('reading the PIT back without the per-flow keys (a scan for addresses) does no flow-key lookup', () => {
  const m = new FakeMap();
  const rows = new Map<string, [Cid, PitVal]>();
  const fakePit = {
    setBatch: (r: ReadonlyArray<readonly [Cid, PitVal]>) => { for (const [k, v] of r) rows.set(JSON.stringify(k), [k, v]); return r.length; },
    deleteBatch: (ks: readonly Cid[]) => ks.length,
    get: (k: Cid) => rows.get(JSON.stringify(k))?.[1],
    *entries(): Generator<[Cid, PitVal]> { yield* [...rows.values()]; },
  };
  const pit = new KernelPitMap(fakePit, () => 1n, new FlowKeyWriter(m, () => ({ key: G, flags: 0 })));
  pit.install([entry(cidOf(44000, 1), 'encrypt', SALT), entry(cidOf(44000, 0), 'decrypt', SALT)]);
  let gets = m.gets;
  assert.deepEqual(pit.readOwned().map((e) => e.flowKey?.salt), [SALT, SALT]);
  assert.equal(m.gets - gets, 2, 'with the specs: one lookup per entry');
  gets = m.gets;
  assert.deepEqual(pit.readOwned({ keys: false }).map((e) => [e.dir, e.flowKey]), [['egress', undefined], ['ingress', undefined]]);
  assert.equal(m.gets - gets, 0);
});
