import { isDeepStrictEqual } from 'node:util';
/**
 * DprpHandler glue without root: two handlers with fake agent contexts (fake
 * BPF maps, control packets carried as Ethernet frames between them) run a
 * real negotiation; the PIT rows, the release and the metrics are checked.
 * Also the route-table rules that decide "behind me".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DprpHandler, ipOfFrame } from '../../controlplane/dprp/handler.js';
import { parseIpAddrJson, parseIpRouteJson, RouteTable, type KernelView } from '../../controlplane/dprp/routes.js';
import { Action, Dir, FlowLeg, PIT_F_FIN, PIT_F_FLOW_KEY, PIT_F_RST, PitState, PuntReason, Role } from '../../controlplane/maps/abi.js';
import type { Cid, FlowKeyVal, KeyId, KeyVal, PitVal, PuntRec } from '../../controlplane/maps/codecs.js';
import type { PuntContext } from '../../controlplane/parts/handler.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import { registry } from '../../controlplane/metrics/metrics.js';
import { logger } from '../../controlplane/log/logger.js';
import { testKey } from './dprp-sim.js';
import { pitWhyOf } from '../../controlplane/maps/vocabulary.js';

const cidKey = (c: Cid) => `${c.dir}/${c.proto}/${c.saddr}:${c.sport}>${c.daddr}:${c.dport}`;

class FakeCtx implements PuntContext {
  pit = new Map<string, [Cid, PitVal]>();
  flowKeys = new Map<string, FlowKeyVal>();
  keyRows: Array<[KeyId, KeyVal]> = [];
  released: PuntRec[] = [];
  dropped: string[] = [];
  peer: FakeCtx | null = null;
  peerHandler: DprpHandler | null = null;
  readonly interfaces = [{ name: 'eth0', ifindex: 2 }];
  readonly log = logger('test');
  readonly maps: GscipMaps;
  constructor() {
    const self = this;
    this.maps = {
      pit: {
        setBatch(rows: Array<[Cid, PitVal]>) { for (const [k, v] of rows) self.pit.set(cidKey(k), [k, v]); return rows.length; },
        deleteBatch(ks: Cid[]) { for (const k of ks) self.pit.delete(cidKey(k)); return ks.length; },
        get(k: Cid) { return self.pit.get(cidKey(k))?.[1]; },
        *entries() { yield* [...self.pit.values()]; },
      },
      keys: {
        *entries() { yield* self.keyRows; },
        get(k: KeyId) { return self.keyRows.find(([i]) => i.group_id === k.group_id && i.version === k.version)?.[1]; },
      },
      flowKeys: {
        get(k: Cid) { return self.flowKeys.get(cidKey(k)); },
        set(k: Cid, v: FlowKeyVal) { self.flowKeys.set(cidKey(k), v); },
        delete(k: Cid) { return self.flowKeys.delete(cidKey(k)); },
      },
    } as unknown as GscipMaps;
  }
  release(rec: PuntRec) { this.released.push(rec); return true; }
  releaseFlow() { return 0; }
  drop(_rec: PuntRec, reason: string) { this.dropped.push(reason); return true; }
  dropFlow() { return 0; }
  sendControl(_ifindex: number, ip: Buffer) {
    const frame = Buffer.concat([Buffer.from('ffffffffffff020000000001' + '0800', 'hex'), ip]);
    const rec = puntRec(Dir.INGRESS, PuntReason.CONTROL, { saddr: '0.0.0.0', daddr: '0.0.0.0', sport: 0, dport: 0, proto: 0, dir: 0 }, frame);
    const peer = this.peer!;
    setImmediate(() => this.peerHandler!.onControl(rec, peer));
  }
  nowNs() { return process.hrtime.bigint(); }
}

function puntRec(dir: number, reason: number, cid: Cid, frame: Buffer): PuntRec {
  const data = Buffer.alloc(2048);
  frame.copy(data);
  return { ts_ns: process.hrtime.bigint(), ifindex: 2, pkt_len: frame.length, cap_len: frame.length, dir, reason, cid, data };
}

function view(addr: string): KernelView {
  return {
    addrs: [{ dev: 'eth0', addr, len: 24 }],
    routes: [{ net: 0xc0000200, len: 24, dev: 'eth0' }],
  };
}

test('two handlers negotiate over fake maps: PIT rows, release, metrics', async (t) => {
  const a = new FakeCtx();
  const b = new FakeCtx();
  for (const c of [a, b]) c.keyRows = [[{ group_id: 1, version: 1 }, { key: testKey(1).key, flags: 0, installed_ns: 0n }]];
  const ha = new DprpHandler({ self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.11'), log: logger('dprp-a') });
  const hb = new DprpHandler({ self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.12'), log: logger('dprp-b') });
  t.after(() => { ha.close(); hb.close(); });
  a.peer = b; a.peerHandler = hb;
  b.peer = a; b.peerHandler = ha;

  const cid: Cid = { saddr: '192.0.2.11', daddr: '192.0.2.12', sport: 40001, dport: 80, proto: 6, dir: Dir.EGRESS };
  const syn = puntRec(Dir.EGRESS, PuntReason.PIT_MISS, cid, Buffer.alloc(60));
  ha.onMiss(syn, a);
  const t0 = Date.now();
  while (a.released.length === 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(a.released, [syn], 'the stashed SYN is released');

  const row = (c: FakeCtx, k: Cid) => c.pit.get(cidKey(k))?.[1];
  const rev: Cid = { saddr: cid.daddr, daddr: cid.saddr, sport: cid.dport, dport: cid.sport, proto: 6, dir: Dir.INGRESS };
  const e = row(a, cid)!;
  assert.equal(e.action, Action.ENCRYPT);
  assert.equal(e.state, PitState.CONFIRMED);
  assert.equal(e.role, Role.START);
  assert.equal(e.group_id, 1);
  assert.equal(e.key_version, 1);
  assert.equal(row(a, rev)!.action, Action.DECRYPT);
  assert.equal(row(b, { ...cid, dir: Dir.INGRESS })!.action, Action.DECRYPT);
  assert.equal(row(b, { ...rev, dir: Dir.EGRESS })!.role, Role.END);
  assert.equal(row(b, { ...rev, dir: Dir.EGRESS })!.action, Action.ENCRYPT);

  // Per-flow keys (both ends announce PCCOM_CAP_FLOW_KEYS): every encrypt/decrypt entry says FLOW_KEY, each
  // direction's two ends hold the same key, the two directions different ones, and none is the group key.
  const fk = (c: FakeCtx, k: Cid) => c.flowKeys.get(cidKey(k));
  const fwdEnc = fk(a, cid)!; const fwdDec = fk(b, { ...cid, dir: Dir.INGRESS })!;
  const revEnc = fk(b, { ...rev, dir: Dir.EGRESS })!; const revDec = fk(a, rev)!;
  for (const [c, k] of [[a, cid], [a, rev], [b, { ...cid, dir: Dir.INGRESS }], [b, { ...rev, dir: Dir.EGRESS }]] as const) {
    assert.ok(row(c, k)!.flags & PIT_F_FLOW_KEY, 'the entry names its per-flow key');
  }
  assert.deepEqual(fwdEnc.cur.key, fwdDec.cur.key, 'forward: both ends derive the same key');
  assert.deepEqual(revEnc.cur.key, revDec.cur.key, 'reverse: both ends derive the same key');
  assert.notDeepEqual(fwdEnc.cur.key, revEnc.cur.key, 'the two directions have different keys');
  assert.notDeepEqual(fwdEnc.cur.key, testKey(1).key, 'the group key never encrypts a payload');
  assert.equal(fwdEnc.leg, FlowLeg.FWD);
  assert.equal(revEnc.leg, FlowLeg.REV);
  assert.equal(fwdEnc.salt, fwdDec.salt, 'one salt: the negotiation id');

  const metrics = await registry.metrics();
  assert.match(metrics, /gscip_dprp_negotiations_started_total\{reason="miss"\} 1/);
  assert.match(metrics, /gscip_dprp_negotiations_completed_total\{outcome="encrypted"\} 1/);
  assert.match(metrics, /gscip_dprp_negotiation_seconds_count 1/);
});

test('a control message punted on EGRESS of a GES (not sent by its agent, nothing inside it) is rejected and counted', async (t) => {
  const c = new FakeCtx();
  const h = new DprpHandler({ self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.11'), log: logger('dprp-ges') });
  t.after(() => h.close());
  const ip = Buffer.alloc(28);
  ip[0] = 0x45; ip.writeUInt16BE(28, 2); ip[9] = 1; ip[20] = 253; ip[21] = 1;
  const frame = Buffer.concat([Buffer.from('ffffffffffff020000000001' + '0800', 'hex'), ip]);
  const zero: Cid = { saddr: '0.0.0.0', daddr: '0.0.0.0', sport: 0, dport: 0, proto: 0, dir: 0 };
  const count = async (reason: string) => Number((await registry.metrics()).match(new RegExp(`gscip_dprp_messages_rejected_total\\{reason="${reason}"\\} (\\d+)`))?.[1] ?? 0);
  const egress0 = await count('egress_on_ges');
  const short0 = await count('wire_too_short');
  h.onControl(puntRec(Dir.EGRESS, PuntReason.CONTROL, zero, frame), c);
  assert.equal(await count('egress_on_ges') - egress0, 1);
  assert.equal(await count('wire_too_short') - short0, 0, 'not even decoded');
  h.onControl(puntRec(Dir.INGRESS, PuntReason.CONTROL, zero, frame), c);
  assert.equal(await count('egress_on_ges') - egress0, 1, 'the same message on ingress is decoded (and rejected as too short)');
  assert.equal(await count('wire_too_short') - short0, 1);
  assert.equal(c.pit.size, 0);
});

test('routes: longest prefix, own addresses, "behind" only via unguarded interfaces of a GEN', () => {
  const routes = parseIpRouteJson(JSON.stringify([
    { dst: 'default', gateway: '192.0.2.254', dev: 'out0' },
    { dst: '192.0.2.0/24', dev: 'out0' },
    { dst: '198.51.100.0/24', dev: 'in0' },
    { dst: '198.51.100.128/25', dev: 'out0' },
    { dst: 'fe80::/64', dev: 'in0' },
  ]));
  const addrs = parseIpAddrJson(JSON.stringify([
    { ifname: 'out0', addr_info: [{ family: 'inet', local: '192.0.2.1', prefixlen: 24 }, { family: 'inet6', local: 'fe80::1' }] },
    { ifname: 'in0', addr_info: [{ family: 'inet', local: '198.51.100.1', prefixlen: 24 }] },
  ]));
  const rt = new RouteTable({ routes, addrs });
  const guarded = new Set(['out0']);
  assert.equal(rt.devFor('198.51.100.10'), 'in0');
  assert.equal(rt.devFor('198.51.100.200'), 'out0', 'longest prefix wins');
  assert.equal(rt.devFor('203.0.113.9'), 'out0', 'default route');
  assert.equal(rt.locality('192.0.2.1', guarded, true), 'self');
  assert.equal(rt.locality('198.51.100.10', guarded, true), 'behind');
  assert.equal(rt.locality('198.51.100.10', guarded, false), 'other', 'a GES has nothing behind it');
  assert.equal(rt.locality('203.0.113.9', guarded, true), 'other');
});

test('RouteTable.ifindexOf: an interface index is looked up once per kernel snapshot, again after a new snapshot or a forget', () => {
  const rt = new RouteTable({ routes: parseIpRouteJson(JSON.stringify([{ dst: '100.64.1.0/24', dev: 'in0' }])), addrs: [] });
  const asked: string[] = [];
  const lookup = (d: string): number | undefined => { asked.push(d); return d === 'in0' ? 7 : undefined; };
  assert.equal(rt.ifindexOf('in0', lookup), 7);
  assert.equal(rt.ifindexOf('in0', lookup), 7);
  assert.equal(rt.ifindexOf('gone0', lookup), undefined);
  assert.equal(rt.ifindexOf('gone0', lookup), undefined);
  assert.deepEqual(asked, ['in0', 'gone0'], 'once each, a missing one too');
  rt.forget('in0');
  rt.ifindexOf('in0', lookup);
  rt.update({ routes: [], addrs: [] });
  rt.ifindexOf('in0', lookup);
  rt.ifindexOf('gone0', lookup);
  assert.deepEqual(asked, ['in0', 'gone0', 'in0', 'in0', 'gone0'], 'asked again after forget and after a new snapshot');
});

test('ipOfFrame: plain and VLAN-tagged frames, non-IP refused', () => {
  const ip = Buffer.from('4500001c0000400040010000c0000201c00002020000000000000000', 'hex');
  assert.equal(ipOfFrame(Buffer.concat([Buffer.alloc(12), Buffer.from('0800', 'hex'), ip]))?.dst, '192.0.2.2');
  assert.equal(ipOfFrame(Buffer.concat([Buffer.alloc(12), Buffer.from('81000005', 'hex'), Buffer.from('0800', 'hex'), ip]))?.src, '192.0.2.1');
  assert.equal(ipOfFrame(Buffer.concat([Buffer.alloc(12), Buffer.from('86dd', 'hex'), ip])), null);
});

test('the handler refuses a bad GE type or mode, naming it', () => {
  assert.throws(() => new DprpHandler({ self: { type: 'XYZ' as never, mode: 'OP' }, log: logger('t') }), /self\.type/);
  assert.throws(() => new DprpHandler({ self: { type: 'GES', mode: 'open' as never }, log: logger('t') }), /self\.mode/);
});

test('a restarted agent adopts the DPRP entries of the previous one: they expire when idle, static ones are left alone', async (t) => {
  const c = new FakeCtx();
  c.keyRows = [[{ group_id: 1, version: 1 }, { key: testKey(1).key, flags: 0, installed_ns: 0n }]];
  const old = c.nowNs() - 10_000_000_000n; // installed and last seen 10 s ago
  const val = (action: number, role: number): PitVal => ({ action, state: PitState.CONFIRMED, role, flags: 0, group_id: 1, key_version: 1, created_ns: old, last_seen_ns: old });
  const fwd: Cid = { saddr: '192.0.2.11', daddr: '192.0.2.12', sport: 40100, dport: 80, proto: 6, dir: Dir.EGRESS };
  const rev: Cid = { saddr: '192.0.2.12', daddr: '192.0.2.11', sport: 80, dport: 40100, proto: 6, dir: Dir.INGRESS };
  const stat: Cid = { saddr: '192.0.2.11', daddr: '198.18.0.1', sport: 1, dport: 2, proto: 17, dir: Dir.EGRESS };
  c.pit.set(cidKey(fwd), [fwd, val(Action.ENCRYPT, Role.START)]);
  c.pit.set(cidKey(rev), [rev, val(Action.DECRYPT, Role.START)]);
  c.pit.set(cidKey(stat), [stat, { ...val(Action.PASS, Role.NONE), state: PitState.STATIC }]);
  const h = new DprpHandler({
    self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.11'), log: logger('dprp-adopt'), tickMs: 20,
    config: { idleTimeoutMs: 5_000, closedTimeoutMs: 5_000 },
  });
  t.after(() => h.close());
  // any punt starts the engine; a garbage control message will do
  h.onControl(puntRec(Dir.INGRESS, PuntReason.CONTROL, stat, Buffer.concat([Buffer.alloc(12), Buffer.from('0800', 'hex'), Buffer.alloc(40)])), c);
  const recs = h.engine!.flowRecords();
  assert.equal(recs.length, 1, 'the DPRP flow was adopted, the static entry was not');
  assert.equal(recs[0].role, 'start');
  assert.equal(recs[0].decision, 'encrypt');
  const t0 = Date.now();
  while (c.pit.size > 1 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual([...c.pit.keys()], [cidKey(stat)], 'idle adopted entries expired; the static one stays');
});

test('the handler reads the fast path\'s FIN/RST flags: FIN each way or an RST expires a flow after closedTimeoutMs, a half-close does not', async (t) => {
  const c = new FakeCtx();
  c.keyRows = [[{ group_id: 1, version: 1 }, { key: testKey(1).key, flags: 0, installed_ns: 0n }]];
  const old = c.nowNs() - 10_000_000_000n; // last seen 10 s ago: past closedTimeoutMs, far from idleTimeoutMs
  const val = (action: number, flags: number): PitVal => ({ action, state: PitState.CONFIRMED, role: Role.START, flags, group_id: 1, key_version: 1, created_ns: old, last_seen_ns: old });
  const flow = (sport: number, fwdFlags: number, revFlags: number): [Cid, Cid] => {
    const fwd: Cid = { saddr: '192.0.2.11', daddr: '192.0.2.12', sport, dport: 80, proto: 6, dir: Dir.EGRESS };
    const rev: Cid = { saddr: '192.0.2.12', daddr: '192.0.2.11', sport: 80, dport: sport, proto: 6, dir: Dir.INGRESS };
    c.pit.set(cidKey(fwd), [fwd, val(Action.ENCRYPT, fwdFlags)]);
    c.pit.set(cidKey(rev), [rev, val(Action.DECRYPT, revFlags)]);
    return [fwd, rev];
  };
  flow(40201, PIT_F_FIN, PIT_F_FIN);      // closed both ways
  flow(40202, 0, PIT_F_RST);              // reset by the peer
  const half = flow(40203, PIT_F_FIN, 0); // half-closed: keeps the idle timeout
  const open = flow(40204, 0, 0);
  const stat: Cid = { saddr: '192.0.2.11', daddr: '198.18.0.1', sport: 1, dport: 2, proto: 17, dir: Dir.EGRESS };
  c.pit.set(cidKey(stat), [stat, { ...val(Action.PASS, 0), state: PitState.STATIC, role: Role.NONE }]);
  const h = new DprpHandler({
    self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.11'), log: logger('dprp-closed'), tickMs: 20,
    config: { idleTimeoutMs: 60_000, closedTimeoutMs: 5_000 },
  });
  t.after(() => h.close());
  h.onControl(puntRec(Dir.INGRESS, PuntReason.CONTROL, stat, Buffer.concat([Buffer.alloc(12), Buffer.from('0800', 'hex'), Buffer.alloc(40)])), c);
  assert.equal(h.engine!.flowRecords().length, 4);
  const want = [...half, ...open, stat].map(cidKey).sort();
  const t0 = Date.now();
  while (c.pit.size > 5 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100)); // a few more sweeps: nothing else may go
  assert.deepEqual([...c.pit.keys()].sort(), want, 'closed and reset flows expired; half-closed and open ones stay');
});

test('the periodic route refresh reads the kernel without blocking the event loop and gives the same snapshot', async () => {
  const { readKernelRoutes, readKernelRoutesAsync } = await import('../../controlplane/dprp/routes.js');
  const before = readKernelRoutes();
  let loopTurned = false;
  setImmediate(() => { loopTurned = true; });
  const view = await readKernelRoutesAsync();
  const after = readKernelRoutes();
  // A blocking read resolves in a microtask, before the check phase runs the immediate;
  // waiting on a child process takes at least one turn of the loop, so the immediate runs first.
  assert.ok(loopTurned, 'the event loop turned while `ip` was running');
  // The host's routes may change between reads (other tests add and move veths):
  // the async snapshot must equal the sync one taken just before or just after it.
  assert.ok(isDeepStrictEqual(view, before) || isDeepStrictEqual(view, after),
    `async snapshot matches neither sync snapshot:\n${JSON.stringify(view)}\nvs\n${JSON.stringify(after)}`);
  assert.ok(view.addrs.some((a) => a.addr === '127.0.0.1'), 'loopback address seen');
});

test('a CL GE passes its own TLS connection to its GMS endpoint (why own_gms, counted); another port, UDP, a forwarded source or an ingress packet from the GMS address is not passed', async (t) => {
  const a = new FakeCtx();
  a.peer = new FakeCtx(); a.peerHandler = null;
  const h = new DprpHandler({ self: { type: 'GEN', mode: 'CL' }, readKernel: () => view('192.0.2.20'), log: logger('dprp-own-gms'), gmsEndpoints: () => [{ addr: '192.0.2.1', port: 7443 }] });
  t.after(() => h.close());
  a.sendControl = () => undefined;  // nobody answers (the GMS side runs no DPRP)
  const before = Number(/^gscip_dprp_own_gms_flows_total (\d+)/m.exec(await registry.metrics())?.[1] ?? 0);
  const own: Cid = { saddr: '192.0.2.20', daddr: '192.0.2.1', sport: 45001, dport: 7443, proto: 6, dir: Dir.EGRESS };
  const syn = puntRec(Dir.EGRESS, PuntReason.PIT_MISS, own, Buffer.alloc(60));
  h.onMiss(syn, a);
  assert.deepEqual(a.released, [syn], 'released at once, no negotiation');
  const rev: Cid = { saddr: own.daddr, daddr: own.saddr, sport: own.dport, dport: own.sport, proto: 6, dir: Dir.INGRESS };
  for (const k of [own, { ...own, dir: Dir.INGRESS }, rev, { ...rev, dir: Dir.EGRESS }]) {
    const v = a.pit.get(cidKey(k))?.[1];
    assert.equal(v?.action, Action.PASS, cidKey(k));
    assert.equal(pitWhyOf(v!.flags), 'own_gms');
  }
  assert.equal(a.pit.size, 4, 'exactly that 5-tuple');
  const after = Number(/^gscip_dprp_own_gms_flows_total (\d+)/m.exec(await registry.metrics())?.[1] ?? 0);
  assert.equal(after - before, 1, 'counted');
  // Not the GMS endpoint: the normal CL path (nothing passed, nothing released at once).
  for (const c of [{ ...own, sport: 45002, dport: 22 }, { ...own, sport: 45003, proto: 17 }, { ...own, saddr: '198.51.100.9', sport: 45004 }]) {
    h.onMiss(puntRec(Dir.EGRESS, PuntReason.PIT_MISS, c, Buffer.alloc(60)), a);
  }
  // A packet arriving from GMS:7443 to a port of ours opens nothing (only this host's own egress SYN does).
  h.onMiss(puntRec(Dir.INGRESS, PuntReason.PIT_MISS, { ...rev, dport: 45005 }, Buffer.alloc(60)), a);
  assert.equal(a.released.length, 1, 'only the GMS flow released at once');
  assert.ok([...a.pit.values()].every(([, v]) => pitWhyOf(v.flags) === 'own_gms' ? true : v.action !== Action.PASS), 'no other flow passed');
  assert.equal([...a.pit.values()].filter(([, v]) => pitWhyOf(v.flags) === 'own_gms').length, 4);
});

test('a retransmission timer first takes in the punts already waiting (takePending): an answer sitting in the ring is never answered by a duplicate (issue 15)', async (t) => {
  // a's punts wait 150 ms "in the ring" (its loop busy elsewhere) unless a timer takes them in first.
  class SlowRingCtx extends FakeCtx {
    pending: Array<() => void> = [];
    sent = 0;
    taken = 0;
    override sendControl(ifindex: number, ip: Buffer) { this.sent++; super.sendControl(ifindex, ip); }
    takePending() { this.taken++; for (const f of this.pending.splice(0)) f(); }
  }
  const a = new SlowRingCtx();
  const b = new FakeCtx();
  for (const c of [a, b]) c.keyRows = [[{ group_id: 1, version: 1 }, { key: testKey(1).key, flags: 0, installed_ns: 0n }]];
  const ha = new DprpHandler({ self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.21'), log: logger('dprp-a') });
  const hb = new DprpHandler({ self: { type: 'GES', mode: 'OP' }, readKernel: () => view('192.0.2.22'), log: logger('dprp-b') });
  t.after(() => { ha.close(); hb.close(); });
  a.peer = b; a.peerHandler = hb;
  b.peer = a; b.peerHandler = ha;
  // b's sends to a: queued at a, delivered by a.takePending() or after 150 ms.
  b.sendControl = (_ifindex: number, ip: Buffer) => {
    const frame = Buffer.concat([Buffer.from('ffffffffffff020000000001' + '0800', 'hex'), ip]);
    const rec = puntRec(Dir.INGRESS, PuntReason.CONTROL, { saddr: '0.0.0.0', daddr: '0.0.0.0', sport: 0, dport: 0, proto: 0, dir: 0 }, frame);
    let done = false;
    const deliver = () => { if (!done) { done = true; ha.onControl(rec, a); } };
    a.pending.push(deliver);
    setTimeout(deliver, 150);
  };
  const cid: Cid = { saddr: '192.0.2.21', daddr: '192.0.2.22', sport: 40002, dport: 80, proto: 6, dir: Dir.EGRESS };
  const syn = puntRec(Dir.EGRESS, PuntReason.PIT_MISS, cid, Buffer.alloc(60));
  ha.onMiss(syn, a);
  const t0 = Date.now();
  while (a.released.length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(a.released, [syn], 'negotiated and released');
  assert.equal(a.sent, 2, 'one DDE and one MPIT: the timers took the RGI and the CDN in instead of sending again (was 4+ with the answers left in the ring)');
  assert.ok(a.taken >= 2, `takePending called by the timers (${a.taken})`);
});
