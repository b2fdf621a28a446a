/**
 * The flow table (controlplane/flows/) over fake maps and a fake clock, no
 * root: ids that survive a re-key, the secondary index by wire CID, the write
 * order (XLAT before PIT, erase in reverse, make before break), per-kind
 * expiry (idle, closed by RST or FIN both ways, XLAT kinds' own timeouts),
 * refusals by code, and the kernel adapter's values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowTable } from '../../controlplane/flows/flow-table.js';
import { FLOW_ERROR_CODES, FlowError } from '../../controlplane/flows/errors.js';
import { reverseFlow, slotKey, type FiveTuple, type MapSlot } from '../../controlplane/flows/cid.js';
import type { FlowMaps, SlotActivity, XlatEntry } from '../../controlplane/flows/flow-maps.js';
import type { PitEntry } from '../../controlplane/flows/pit-entry.js';
import type { ExpiryPolicies } from '../../controlplane/flows/expiry.js';
import { kernelFlowMaps } from '../../controlplane/flows/kernel-flow-maps.js';
import { Action, Dir, PitState, Role, XlatKind } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal, XlatVal } from '../../controlplane/maps/codecs.js';

class FakeMaps implements FlowMaps<PitEntry> {
  log: string[] = [];
  pitRows = new Map<string, PitEntry>();
  xlatRows = new Map<string, XlatEntry>();
  act = new Map<string, SlotActivity>();
  pit = {
    install: (es: readonly PitEntry[]) => { for (const e of es) { this.pitRows.set(slotKey(e), e); this.log.push(`pit+ ${slotKey(e)}`); } },
    remove: (ks: readonly MapSlot[]) => { for (const k of ks) { this.pitRows.delete(slotKey(k)); this.log.push(`pit- ${slotKey(k)}`); } },
    activity: (k: MapSlot) => this.act.get(slotKey(k)),
  };
  xlat = {
    set: (es: readonly XlatEntry[]) => { for (const e of es) { this.xlatRows.set(slotKey(e), e); this.log.push(`xlat+ ${slotKey(e)}`); } },
    remove: (ks: readonly MapSlot[]) => { for (const k of ks) { this.xlatRows.delete(slotKey(k)); this.log.push(`xlat- ${slotKey(k)}`); } },
  };
  kinds(): string[] { return this.log.map((l) => l.split(' ')[0]); }
}

const POLICIES: ExpiryPolicies = { pit: { idleMs: 300_000, closedMs: 10_000 }, xlat: { nat: { idleMs: 600_000, closedMs: 20_000 } } };

function setup(policies = POLICIES) {
  const clock = { now: 1_000, monoMs() { return this.now; } };
  const maps = new FakeMaps();
  const table = new FlowTable<PitEntry, { tag: string }>({ maps, clock, expiry: policies });
  return { clock, maps, table };
}

const A: FiveTuple = { saddr: '192.0.2.11', daddr: '192.0.2.12', sport: 40000, dport: 80, proto: 6 };
const MOVED: FiveTuple = { ...A, saddr: '198.51.100.7', sport: 41000 };

function pit(f: FiveTuple, version = 1): PitEntry[] {
  const e = (flow: FiveTuple, dir: 'ingress' | 'egress', action: 'encrypt' | 'decrypt'): PitEntry => ({ flow, dir, action, group: 1, version, state: 'confirmed', role: 'start' });
  return [e(f, 'egress', 'encrypt'), e(reverseFlow(f), 'ingress', 'decrypt')];
}
function nat(stack: FiveTuple, wire: FiveTuple): XlatEntry[] {
  return [
    { flow: stack, dir: 'egress', to: { saddr: wire.saddr, daddr: wire.daddr, sport: wire.sport, dport: wire.dport }, kind: 'nat' },
    { flow: reverseFlow(wire), dir: 'ingress', to: { saddr: stack.daddr, daddr: stack.saddr, sport: stack.dport, dport: stack.sport }, kind: 'nat' },
  ];
}
const STACK: FiveTuple = { ...A, saddr: '100.64.0.5', sport: 5000 };

test('a new flow gets an id, is found by either direction of its wire CID, and its XLAT entries are written before its PIT entries', () => {
  const { maps, table } = setup();
  const rec = table.commit(A, { tag: 'a' }, { pit: pit(A), xlat: nat(STACK, A) });
  assert.equal(typeof rec.id, 'number');
  assert.equal(table.find(A), rec);
  assert.equal(table.find(reverseFlow(A)), rec);
  assert.deepEqual(maps.kinds(), ['xlat+', 'xlat+', 'pit+', 'pit+']);
  const other = table.commit({ ...A, sport: 40001 }, { tag: 'b' }, { pit: pit({ ...A, sport: 40001 }) });
  assert.notEqual(other.id, rec.id, 'ids are not shared');
  assert.equal(table.size, 2);
});

test('committing a flow again keeps its id; entries it no longer holds are erased after the new ones are written (PIT before XLAT)', () => {
  const { maps, table } = setup();
  const first = table.commit(A, { tag: 'a' }, { pit: pit(A), xlat: nat(STACK, A) });
  maps.log = [];
  const pass: PitEntry[] = pit(A).map((e) => ({ ...e, action: 'pass', group: 0, version: 0 }));
  const again = table.commit(reverseFlow(A), { tag: 'b' }, { pit: [pass[1]] });
  assert.equal(again.id, first.id);
  assert.equal(again.meta.tag, 'b');
  assert.deepEqual(maps.log, [`pit+ ${slotKey(pass[1])}`, `pit- ${slotKey(pass[0])}`, ...nat(STACK, A).map((x) => `xlat- ${slotKey(x)}`)]);
  assert.deepEqual([...maps.pitRows.keys()], [slotKey(pass[1])]);
  assert.equal(maps.xlatRows.size, 0);
});

test('committing entries the caller already wrote erases only the stale ones', () => {
  const { maps, table } = setup();
  table.commit(A, { tag: 'a' }, { pit: pit(A) });
  maps.log = [];
  const v2 = pit(A, 2);
  table.commit(A, { tag: 'a2' }, { pit: v2 }, { written: true });
  assert.deepEqual(maps.log, [], 'same slots: nothing to erase, nothing written again');
});

test('removing a flow erases its PIT entries before its XLAT entries', () => {
  const { maps, table } = setup();
  const rec = table.commit(A, { tag: 'a' }, { pit: pit(A), xlat: nat(STACK, A) });
  maps.log = [];
  table.remove(rec.id);
  assert.deepEqual(maps.kinds(), ['pit-', 'pit-', 'xlat-', 'xlat-']);
  assert.equal(table.find(A), undefined);
  assert.throws(() => table.remove(rec.id), (e: unknown) => e instanceof FlowError && e.code === FLOW_ERROR_CODES.UNKNOWN_FLOW);
});

test('an address change re-keys the flow: same id, found under the new CIDs only, new entries written before the old are erased', () => {
  const { clock, maps, table } = setup();
  const rec = table.commit(A, { tag: 'a' }, { pit: pit(A), xlat: nat(STACK, A) });
  const created = rec.createdMono;
  clock.now += 5_000;
  maps.log = [];
  const moved = table.rekey(rec.id, MOVED, { pit: pit(MOVED), xlat: nat(STACK, MOVED) });
  assert.equal(moved.id, rec.id);
  assert.equal(moved.createdMono, created);
  assert.equal(table.find(A), undefined);
  assert.equal(table.find(reverseFlow(MOVED)), moved);
  // new XLAT, new PIT, then old PIT, old XLAT (the egress XLAT slot is the stack view: the same, so rewritten, not erased)
  assert.deepEqual(maps.kinds(), ['xlat+', 'xlat+', 'pit+', 'pit+', 'pit-', 'pit-', 'xlat-']);
  assert.deepEqual([...maps.pitRows.keys()].sort(), pit(MOVED).map(slotKey).sort());
  assert.equal(maps.xlatRows.size, 2);
});

test('a re-key onto CIDs another flow holds is refused and writes nothing', () => {
  const { maps, table } = setup();
  const a = table.commit(A, { tag: 'a' }, { pit: pit(A) });
  table.commit(MOVED, { tag: 'm' }, { pit: pit(MOVED) });
  maps.log = [];
  assert.throws(() => table.rekey(a.id, reverseFlow(MOVED), { pit: pit(MOVED) }),
    (e: unknown) => e instanceof FlowError && e.code === FLOW_ERROR_CODES.CID_TAKEN && /flow 2 is there/.test(e.message));
  assert.deepEqual(maps.log, []);
  assert.equal(table.find(A), a);
});

test('entries that do not belong are refused by code: a PIT entry of another CID, an XLAT kind with no policy, XLAT without an XLAT map', () => {
  const { table } = setup();
  assert.throws(() => table.commit(A, { tag: 'a' }, { pit: pit(MOVED) }), (e: unknown) => e instanceof FlowError && e.code === FLOW_ERROR_CODES.BAD_ENTRY);
  const cit = nat(STACK, A).map((x) => ({ ...x, kind: 'cit' as const }));
  assert.throws(() => table.commit(A, { tag: 'a' }, { pit: pit(A), xlat: cit }),
    (e: unknown) => e instanceof FlowError && e.code === FLOW_ERROR_CODES.NO_EXPIRY_POLICY && /'cit'/.test(e.message));
  const noXlat = new FlowTable<PitEntry, null>({ maps: { pit: new FakeMaps().pit }, clock: { monoMs: () => 0 }, expiry: POLICIES });
  assert.throws(() => noXlat.commit(A, null, { pit: pit(A), xlat: nat(STACK, A) }), (e: unknown) => e instanceof FlowError && e.code === FLOW_ERROR_CODES.NO_XLAT_MAP);
  assert.equal(table.size, 0);
});

test('idle expiry counts from the last packet on any entry; nothing is asked of the kernel before the soonest timeout', () => {
  const { clock, maps, table } = setup();
  const rec = table.commit(A, { tag: 'a' }, { pit: pit(A) });
  let asked = 0;
  const read = maps.pit.activity;
  maps.pit.activity = (k) => { asked++; return read(k); };
  clock.now += 9_999;
  assert.equal(table.sweep(), 0);
  assert.equal(asked, 0, 'quiet for less than the closed timeout: no lookup');
  maps.act.set(slotKey(rec.pit[1]), { lastSeenMs: clock.now, closed: false });
  clock.now += 299_999;
  assert.equal(table.sweep(), 0, 'a packet on the reverse entry keeps it');
  clock.now += 1;
  assert.equal(table.sweep(), 1);
  assert.equal(maps.pitRows.size, 0);
  assert.equal(table.size, 0);
});

test('closed: an RST on any entry or a FIN each way expires after closedMs; a half-close keeps the idle timeout; skip holds a flow', () => {
  const { clock, maps, table } = setup();
  const mk = (sport: number) => { const f = { ...A, sport }; return table.commit(f, { tag: String(sport) }, { pit: pit(f) }); };
  const fins = mk(40001);
  const rst = mk(40002);
  const half = mk(40003);
  const held = mk(40004);
  const t = clock.now;
  maps.act.set(slotKey(fins.pit[0]), { lastSeenMs: t, closed: false, finSeen: true });
  maps.act.set(slotKey(fins.pit[1]), { lastSeenMs: t, closed: false, finSeen: true });
  maps.act.set(slotKey(rst.pit[1]), { lastSeenMs: t, closed: true });
  maps.act.set(slotKey(half.pit[0]), { lastSeenMs: t, closed: false, finSeen: true });
  maps.act.set(slotKey(held.pit[0]), { lastSeenMs: t, closed: true });
  clock.now += 10_000;
  assert.equal(table.sweep((r) => r.id === held.id), 2);
  assert.deepEqual([...table.values()].map((r) => r.meta.tag).sort(), ['40003', '40004']);
});

test('a flow holding XLAT entries of a kind with a longer timeout lives that long, and all its entries go together', () => {
  const { clock, maps, table } = setup();
  table.commit(A, { tag: 'a' }, { pit: pit(A), xlat: nat(STACK, A) });
  clock.now += 300_000;
  assert.equal(table.sweep(), 0, 'PIT idle timeout reached, NAT (600 s) not yet');
  clock.now += 300_000;
  assert.equal(table.sweep(), 1);
  assert.deepEqual(maps.kinds().slice(-4), ['pit-', 'pit-', 'xlat-', 'xlat-']);
});

test('the kernel adapter writes the ABI numbers, keeps an entry\'s created_ns across rewrites, and reads back what a control plane made', () => {
  let now = 1_000_000_000n;
  const pitRows = new Map<string, [Cid, PitVal]>();
  const xlatRows = new Map<string, [Cid, XlatVal]>();
  const key = (c: Cid) => JSON.stringify(c);
  const fake = <V>(rows: Map<string, [Cid, V]>) => ({
    setBatch: (r: ReadonlyArray<readonly [Cid, V]>) => { for (const [k, v] of r) rows.set(key(k), [k, v]); return r.length; },
    deleteBatch: (ks: readonly Cid[]) => { for (const k of ks) rows.delete(key(k)); return ks.length; },
    get: (k: Cid) => rows.get(key(k))?.[1],
    *entries(): Generator<[Cid, V]> { yield* [...rows.values()]; },
  });
  const maps = kernelFlowMaps({ pit: fake(pitRows), xlat: fake(xlatRows) }, () => now);
  const es = pit(A);
  maps.pit.install(es);
  now += 5_000_000_000n;
  maps.pit.install(es.map((e) => ({ ...e, version: 2, prevVersion: 1 })));
  const [cid, val] = pitRows.get(key({ ...A, dir: Dir.INGRESS, saddr: A.daddr, daddr: A.saddr, sport: A.dport, dport: A.sport }))!;
  assert.equal(cid.dir, Dir.INGRESS);
  assert.deepEqual({ ...val }, { action: Action.DECRYPT, state: PitState.CONFIRMED, role: Role.START, flags: 0, group_id: 1, key_version: 2, prev_key_version: 1, created_ns: 1_000_000_000n, last_seen_ns: now });
  assert.equal(pitRows.get(key({ ...A, dir: Dir.EGRESS }))![1].prev_key_version, 0, 'prev only on decrypt entries');
  pitRows.set('static', [{ ...MOVED, dir: Dir.EGRESS }, { ...val, state: PitState.STATIC, role: Role.NONE }]);
  assert.deepEqual(maps.pit.readOwned().map(slotKey).sort(), es.map(slotKey).sort(), 'static entries are not read as owned');
  maps.xlat!.set(nat(STACK, A));
  assert.deepEqual([...xlatRows.values()].map(([, v]) => v.kind), [XlatKind.NAT, XlatKind.NAT]);
  maps.xlat!.remove(nat(STACK, A));
  assert.equal(xlatRows.size, 0);
});

test('sameEntry: equal fields in any order, undefined as absent, nested values compared, any difference found', async () => {
  const { sameEntry } = await import('../../controlplane/flows/same-entry.js');
  const flow: FiveTuple = { saddr: '192.0.2.10', daddr: '203.0.113.1', sport: 42000, dport: 7302, proto: 17 };
  const e: PitEntry = { flow, dir: 'ingress', action: 'decrypt', role: 'end', group: 1, version: 1, state: 'confirmed', flowKey: { salt: '0011223344556677', leg: 'rev', from: { flow, dir: 'ingress' } } };
  const reordered = { state: 'confirmed', version: 1, group: 1, role: 'end', action: 'decrypt', dir: 'ingress', flow: { proto: 17, dport: 7302, sport: 42000, daddr: '203.0.113.1', saddr: '192.0.2.10' }, flowKey: { leg: 'rev', salt: '0011223344556677', from: { dir: 'ingress', flow: { ...flow } } } };
  assert.ok(sameEntry(e, reordered));
  assert.ok(sameEntry(e, { ...e, prevVersion: undefined }));
  assert.ok(!sameEntry(e, { ...e, prevVersion: 1 }));
  assert.ok(!sameEntry(e, { ...e, flow: { ...flow, sport: 42001 } }));
  assert.ok(!sameEntry(e, { ...e, flowKey: { ...e.flowKey!, from: { flow, dir: 'egress' } } }));
  assert.ok(!sameEntry(e, { ...e, flowKey: undefined }));
  assert.ok(!sameEntry(e, undefined));
  assert.ok(!sameEntry({ a: 1 }, { a: '1' }));
});
