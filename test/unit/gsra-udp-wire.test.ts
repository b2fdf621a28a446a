/**
 * GSRA's UDP across a checksum-verifying home NAT (docs/gsra.md "Behind a home
 * NAT"): the MAP flag and MAP_OK's salt on the wire (round trip, MAC, the old
 * 6-byte MAP_OK still read, other lengths refused); the router making one salt
 * per bound UDP mapping that asked for it (a retried MAP gets the same one;
 * TCP, unbound or not asked: none); both ends deriving the same per-flow keys
 * for each direction (legFlowKeys); a re-install leaving a written key (and
 * its counter) alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeGsra, encodeGsra, GSRA_MAP_F_UDP_WIRE, GsraCode, GsraWireError, verifyGsra } from '../../controlplane/gsra/wire.js';
import { GsraAdmission, type AdmissibleUser } from '../../controlplane/gsra/admission.js';
import { legFlowKeys, legPitEntries, writeFlowKeys } from '../../controlplane/gsra/leg-pit.js';
import { Dir, PIT_F_FLOW_KEY, PIT_F_WIRE_CSUM } from '../../controlplane/maps/abi.js';
import type { Cid, FlowKeyVal } from '../../controlplane/maps/codecs.js';

const key = randomBytes(32);
const msg = (body: Parameters<typeof encodeGsra>[0]['body']) => encodeGsra({ userId: 'alice', msgId: randomBytes(8), timestampMs: Date.now(), body }, key);

test('MAP flags and MAP_OK salt on the wire: round trip, MAC\'d; the 6-byte MAP_OK still read; other lengths refused', () => {
  const salt = randomBytes(8);
  const ok = decodeGsra(msg({ code: GsraCode.MAP_OK, t: 40001, idleS: 300, action: 3, salt }));
  assert.ok(verifyGsra(ok, key));
  assert.deepEqual(ok.body, { code: GsraCode.MAP_OK, t: 40001, idleS: 300, action: 3, salt });
  assert.deepEqual(decodeGsra(msg({ code: GsraCode.MAP_OK, t: 1, idleS: 2, action: 3 })).body, { code: GsraCode.MAP_OK, t: 1, idleS: 2, action: 3 });
  const map = decodeGsra(msg({ code: GsraCode.MAP, proto: 17, t: 40001, en: { addr: '192.0.2.30', port: 53000 }, dport: 53, flags: GSRA_MAP_F_UDP_WIRE }));
  assert.equal((map.body as { flags?: number }).flags, GSRA_MAP_F_UDP_WIRE);
  assert.equal((decodeGsra(msg({ code: GsraCode.MAP, proto: 17, t: 1, en: { addr: '192.0.2.30', port: 1 }, dport: 53 })).body as { flags?: number }).flags, undefined, 'an older EN\'s 0');
  assert.throws(() => msg({ code: GsraCode.MAP_OK, t: 1, idleS: 2, action: 3, salt: Buffer.alloc(4) }), RangeError);
  // a 10-byte MAP_OK body: neither form
  const good = msg({ code: GsraCode.MAP_OK, t: 1, idleS: 2, action: 3, salt });
  const cut = Buffer.concat([good.subarray(0, good.length - 16 - 4), good.subarray(good.length - 16)]);
  assert.throws(() => decodeGsra(cut), (e: unknown) => e instanceof GsraWireError && (e.reason === 'bad_length' || e.reason === 'bad_checksum' || e.reason === 'too_short'));
});

test('the router: one salt per bound UDP mapping that asked; a retried MAP gets the same; TCP, unbound or not asked: none', () => {
  const alice: AdmissibleUser = { userId: 'alice', groups: [1], key };
  const adm = new GsraAdmission({ portLo: 40000, portHi: 40009, maxEntries: 8, leaseMs: 5000, idleMs: 60_000 });
  adm.setServers([{ name: 'in1.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1] }]);
  adm.setUsers([alice]);
  const ghr = { addr: '192.0.2.30', port: 53000 };
  const mapped = (proto: number, bind: boolean, udpWire: boolean, port: number) => {
    const a = adm.authenticate('alice', 1, 'in1.example.net', proto, 53, 0);
    assert.ok(a.ok);
    const t = a.value.t;
    const from = { addr: ghr.addr, port };
    if (bind) assert.ok(adm.bind('alice', t, from).ok);
    const m = adm.map('alice', t, proto, bind ? from : { addr: ghr.addr, port }, 53, from, 0, { udpWire });
    assert.ok(m.ok, JSON.stringify(m));
    return { t, m: m.value, again: () => adm.map('alice', t, proto, bind ? from : { addr: ghr.addr, port }, 53, from, 1, { udpWire }) };
  };
  const u = mapped(17, true, true, 53000);
  assert.match(u.m.salt ?? '', /^[0-9a-f]{16}$/);
  const r = u.again();
  assert.ok(r.ok && r.value.salt === u.m.salt, 'a retried MAP: the same mapping, the same salt');
  assert.notEqual(mapped(17, true, true, 53001).m.salt, u.m.salt, 'each mapping its own');
  assert.equal(mapped(6, true, true, 53002).m.salt, undefined, 'TCP: its own wire-valid form, no per-flow key');
  assert.equal(mapped(17, true, false, 53003).m.salt, undefined, 'not asked (an older EN)');
  assert.equal(mapped(17, false, true, 53004).m.salt, undefined, 'not bound: no NAT, the keyed form');
});

test('both ends derive the same per-flow key for each direction; flags; a re-install keeps a written key and its counter', () => {
  const wireEn = { saddr: '100.64.9.2', sport: 53000, daddr: '192.0.2.1', dport: 40001, proto: 17 };
  const wireRouter = { ...wireEn, saddr: '192.0.2.30' };   // the router sees GHR:m (port-preserving NAT)
  const gk = { key: randomBytes(32), flags: 0 };
  const salt = randomBytes(8).toString('hex');
  const en = legFlowKeys('en', wireEn, 1, 3, gk, salt);
  const ro = legFlowKeys('router', wireRouter, 1, 3, gk, salt);
  assert.equal(en[0][0].dir, Dir.EGRESS);
  assert.equal(ro[0][0].dir, Dir.INGRESS);
  assert.deepEqual(en[0][1].cur.key, ro[0][1].cur.key, 'EN -> router: the EN\'s ENCRYPT key is the router\'s DECRYPT key');
  assert.deepEqual(en[1][1].cur.key, ro[1][1].cur.key, 'router -> EN');
  assert.notDeepEqual(en[0][1].cur.key, en[1][1].cur.key, 'the two directions never share a key');
  assert.notDeepEqual(legFlowKeys('en', wireEn, 1, 3, gk, randomBytes(8).toString('hex'))[0][1].cur.key, en[0][1].cur.key, 'another salt, another key');
  const [[, enc], [, dec]] = legPitEntries('en', wireEn, 1, 3, 0n, { acrossNat: true, flowKey: true });
  assert.equal(enc.flags, PIT_F_WIRE_CSUM | PIT_F_FLOW_KEY);
  assert.equal(dec.flags, PIT_F_FLOW_KEY);
  assert.equal(legPitEntries('en', wireEn, 1, 3, 0n, { acrossNat: true })[0][1].flags, 0, 'UDP without a per-flow key: the keyed form');
  const store = new Map<string, FlowKeyVal>();
  const ck = (k: Cid) => JSON.stringify(k);
  const map = { get: (k: Cid) => store.get(ck(k)), set: (k: Cid, v: FlowKeyVal) => { store.set(ck(k), v); } };
  writeFlowKeys(map, en);
  store.set(ck(en[0][0]), { ...store.get(ck(en[0][0]))!, cur: { ...en[0][1].cur, ctr: 77n } });   // the fast path sent 77
  writeFlowKeys(map, legFlowKeys('en', wireEn, 1, 3, gk, salt));
  assert.equal(store.get(ck(en[0][0]))!.cur.ctr, 77n, 'a retried MAP does not reset the sender\'s counter');
  writeFlowKeys(map, legFlowKeys('en', wireEn, 1, 4, gk, salt));
  assert.equal(store.get(ck(en[0][0]))!.cur.key_version, 4, 'a new key is written');
});
