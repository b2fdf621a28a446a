/**
 * The part contract, without root, with the test-only `probe` part
 * (test/lib/probe-part.ts):
 *  - composition refuses a duplicate claim and a missing dependency, naming
 *    both parts (also through Agent.start, before it touches anything);
 *  - punts are routed by claim: a control code reaches only its claimer, the
 *    miss chain runs in missOrder and stops at 'taken';
 *  - DPRP options: a skippable unknown option round-trips with its bytes (and
 *    its record's tag still verifies), a critical unknown one is refused and
 *    counted wire_unknown_critical_option, a flipped option byte breaks the
 *    authentication (record tag, CDN seal);
 *  - two DPRP nodes with the probe negotiate with the option in their records,
 *    each verifying the other's as authenticated; a refused option is counted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planParts, startParts } from '../../controlplane/parts/compose.js';
import { PART_ERROR_CODES, PartError } from '../../controlplane/parts/errors.js';
import type { PartDescriptor, PartRuntime } from '../../controlplane/parts/part.js';
import { MISS_ORDER } from '../../controlplane/parts/part.js';
import { dprpPart } from '../../controlplane/dprp/part.js';
import { installPassPart } from '../../controlplane/agent/handlers/install-pass.js';
import { registerPart } from '../../controlplane/agent/handlers/index.js';
import { PuntDispatcher } from '../../controlplane/agent/punt-dispatch.js';
import type { HandlerFactoryContext } from '../../controlplane/parts/handler.js';
import { Agent } from '../../controlplane/agent/agent.js';
import { ConfigError, parseAgentConfig } from '../../controlplane/config/agent-config.js';
import type { PacketSender } from '../../controlplane/agent/packet-sender.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import { PuntReason } from '../../controlplane/maps/abi.js';
import type { PuntRec } from '../../controlplane/maps/codecs.js';
import { buildIpv4Packet, inetChecksum, IPPROTO_ICMP } from '../../controlplane/dprp/ipv4.js';
import { sealMac, signRecord, verifyRecord } from '../../controlplane/dprp/auth.js';
import { OptionCodecs } from '../../controlplane/dprp/option-codecs.js';
import { SPEC_OPTION_CODECS, SPEC_OPTIONS } from '../../controlplane/dprp/spec-options.js';
import { decode, DprpWireError, encode, GSCIP_ICMP_TYPE, MsgType, Status, type DprpMessage } from '../../controlplane/dprp/wire.js';
import { DprpNode, type RejectReason } from '../../controlplane/dprp/node.js';
import { promObserver } from '../../controlplane/dprp/handler.js';
import { registry } from '../../controlplane/metrics/metrics.js';
import { logger } from '../../controlplane/log/logger.js';
import { PROBE_ICMP_CODE, PROBE_OPTION_TYPE, probeOptionCodec, probePart, type ProbeEvent } from '../lib/probe-part.js';
import { testKey, VirtualTime } from './dprp-sim.js';

const log = logger('parts-test').child({}, { level: 'silent' });
const A = '192.0.2.11';
const B = '198.51.100.12';
const flow = { saddr: A, daddr: B, sport: 40000, dport: 443, proto: 6 };

function catalogue(...parts: PartDescriptor[]): (n: string) => PartDescriptor {
  const m = new Map([dprpPart, installPassPart, ...parts].map((p) => [p.name, p]));
  return (n) => m.get(n) ?? assert.fail(`no part ${n}`);
}

function partError(code: string, ...names: string[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof PartError, `a PartError, got ${String(e)}`);
    assert.equal(e.code, code);
    for (const n of names) assert.match(e.message, new RegExp(`'${n}'`), `names ${n}: ${e.message}`);
    return true;
  };
}

describe('part composition', { timeout: 30_000 }, () => {
  test('a duplicate claim refuses, naming both parts', () => {
    const clash = probePart(() => {}, { claims: { ...probePart(() => {}).claims, icmpCodes: [MsgType.MPIT] } });
    assert.throws(() => planParts(['dprp', 'probe'], catalogue(clash)), partError(PART_ERROR_CODES.CLAIM_TAKEN, 'probe', 'dprp'));
    assert.throws(() => planParts(['dprp', 'probe'], catalogue(clash)), /claims ICMP control code 3, already claimed by part 'dprp'/);
    // An option type DPRP's spec codecs own, and an overlapping counter range.
    const optClash = probePart(() => {}, { claims: { dprpOptions: [{ ...probeOptionCodec, type: 3, name: 'X' } as never] } });
    assert.throws(() => planParts(['dprp', 'probe'], catalogue(optClash)), /part 'probe' claims DPRP option type 3 \(X\), already claimed by part 'dprp'/);
    const other: PartDescriptor = { ...probePart(() => {}), name: 'other', claims: { counterRange: { first: 1002, last: 1010 } }, dependsOn: [] };
    assert.throws(() => planParts(['dprp', 'probe', 'other'], catalogue(probePart(() => {}), other)),
      partError(PART_ERROR_CODES.CLAIM_TAKEN, 'other', 'probe'));
  });

  test('counter ranges are blocks of the datapath\'s reason space: DPRP holds its own, a range past it or across two blocks refuses', () => {
    const inDprp: PartDescriptor = { ...probePart(() => {}), name: 'other', claims: { counterRange: { first: 130, last: 140 } }, dependsOn: [] };
    assert.throws(() => planParts(['dprp', 'other'], catalogue(inDprp)), /part 'other' claims counters 130\.\.140, overlapping 128\.\.255 of part 'dprp'/);
    const past: PartDescriptor = { ...inDprp, claims: { counterRange: { first: 1020, last: 1030 } } };
    assert.throws(() => planParts(['other'], catalogue(past)), partError(PART_ERROR_CODES.BAD_DESCRIPTOR, 'other'));
    const straddle: PartDescriptor = { ...inDprp, claims: { counterRange: { first: 250, last: 260 } } };
    assert.throws(() => planParts(['other'], catalogue(straddle)), /straddles two blocks of 128 reasons/);
  });

  test('a missing dependency refuses, naming the part and what it needs', () => {
    assert.throws(() => planParts(['probe'], catalogue(probePart(() => {}))), partError(PART_ERROR_CODES.MISSING_DEPENDENCY, 'probe', 'dprp'));
    assert.doesNotThrow(() => planParts(['probe', 'dprp'], catalogue(probePart(() => {}))), 'order does not matter');
  });

  test('a descriptor that contradicts itself refuses (option skippable flag vs its type number)', () => {
    const bad = probePart(() => {}, { claims: { dprpOptions: [{ ...probeOptionCodec, skippable: true } as never] } });
    assert.throws(() => planParts(['dprp', 'probe'], catalogue(bad)), partError(PART_ERROR_CODES.BAD_DESCRIPTOR, 'probe'));
  });

  test('Agent.start refuses a duplicate claim before touching anything (ConfigError naming both parts)', async () => {
    registerPart({ ...probePart(() => {}, { claims: { icmpCodes: [MsgType.DDE] } }), name: 'probe-dup' });
    const cfg = parseAgentConfig({
      instance: 'parts-test', interfaces: [{ name: 'lo' }], handlers: ['dprp', 'probe-dup'], metrics: null,
      pinRoot: '/nonexistent/gscip-parts-test', runDir: '/nonexistent/gscip-parts-test',
    }, 'test');
    await assert.rejects(Agent.start(cfg, { log }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, /part 'probe-dup' claims ICMP control code 1, already claimed by part 'dprp'/);
      assert.deepEqual(e.problems, [PART_ERROR_CODES.CLAIM_TAKEN]);
      return true;
    });
  });
});

// ------------------------------------------------------------------ routing

function controlRec(code: number): PuntRec {
  const icmp = Buffer.concat([Buffer.from([GSCIP_ICMP_TYPE, code, 0, 0, 0, 0, 0, 0]), Buffer.alloc(24)]);
  const frame = Buffer.concat([Buffer.from('ffffffffffff020000000001' + '0800', 'hex'), buildIpv4Packet(A, B, IPPROTO_ICMP, icmp)]);
  const data = Buffer.alloc(2048);
  frame.copy(data);
  return { ts_ns: process.hrtime.bigint(), ifindex: 2, pkt_len: frame.length, cap_len: frame.length, dir: 2, reason: PuntReason.CONTROL,
    cid: { saddr: A, daddr: B, sport: 0, dport: 0, proto: 1, dir: 2 }, data };
}

function missRec(): PuntRec {
  const data = Buffer.alloc(2048);
  return { ts_ns: process.hrtime.bigint(), ifindex: 2, pkt_len: 60, cap_len: 60, dir: 1, reason: PuntReason.TRUNCATED,
    cid: { saddr: A, daddr: B, sport: 40000, dport: 80, proto: 6, dir: 1 }, data };
}

describe('punts routed by claim', { timeout: 30_000 }, () => {
  const seen: string[] = [];
  const spy = (name: string, miss?: 'taken'): PartRuntime => ({
    name,
    onMiss() { seen.push(`${name}:miss`); return miss; },
    onControl(rec) { seen.push(`${name}:control:${rec.data[14 + 20 + 1]}`); },
  });
  const ctx: HandlerFactoryContext = { log, ge: null };
  const sender = { release() {}, sendIpv4() {}, close() {} } as unknown as PacketSender;
  const dispatcher = (parts: Array<{ d: PartDescriptor; r: PartRuntime }>) => {
    const plan = planParts(parts.map((p) => p.d.name), catalogue(...parts.map(({ d, r }) => ({ ...d, create: () => r }))));
    const started = startParts(plan, () => ctx);
    return new PuntDispatcher({ maps: {} as GscipMaps, sender, handlers: [...started.handlers], route: started.route, interfaces: [], limits: { perFlowPackets: 4, totalPackets: 16, ttlMs: 1000 }, log });
  };

  test('a control code reaches only the part claiming it; unclaimed ones go to DPRP (otherControl)', () => {
    seen.length = 0;
    const events: ProbeEvent[] = [];
    const probe = probePart((e) => events.push(e));
    const d = dispatcher([{ d: dprpPart, r: spy('dprp') }, { d: probe, r: probe.create({ ...ctx, extensions: null as never }) }]);
    try {
      d.onRecords([controlRec(PROBE_ICMP_CODE), controlRec(MsgType.RGI), controlRec(99)]);
      assert.deepEqual(seen, ['dprp:control:2', 'dprp:control:99'], 'DPRP never sees the probe code');
      assert.deepEqual(events, [{ kind: 'control', code: PROBE_ICMP_CODE, bytes: 14 + 20 + 32 }], 'the probe sees only its code');
    } finally { d.close(); }
  });

  test('misses go through the chain in missOrder; a part that takes a miss ends it', () => {
    seen.length = 0;
    const natf: PartDescriptor = { name: 'natf', summary: 'test', claims: { puntReasons: ['truncated'] }, missOrder: MISS_ORDER.TRANSLATE, create: () => spy('natf') };
    const d = dispatcher([{ d: dprpPart, r: spy('dprp') }, { d: natf, r: spy('natf', 'taken') }]);
    const d2 = dispatcher([{ d: dprpPart, r: spy('dprp') }, { d: natf, r: spy('natf') }]);
    try {
      d.onRecords([missRec()]);
      assert.deepEqual(seen, ['natf:miss'], 'NAT-f (TRANSLATE) first, and it took the miss');
      seen.length = 0;
      d2.onRecords([missRec()]);
      assert.deepEqual(seen, ['natf:miss', 'dprp:miss'], 'not taken: DPRP sees it next');
    } finally { d.close(); d2.close(); }
  });
});

// ------------------------------------------------------------------ options

const key = testKey(1);

function dde(options: DprpMessage['options'] = [], recordOptions: DprpMessage['options'] = []): DprpMessage {
  const m: DprpMessage = {
    type: MsgType.DDE, flags: 0, attempt: 1, negId: Buffer.from('0102030405060708', 'hex'), timestampMs: Date.now(),
    flow, status: Status.OK, startGe: A, endGe: '0.0.0.0', records: [], actions: [], seal: null, options,
  };
  m.records = [signRecord([key], m, { addr: A, geType: 'GES', mode: 'OP', flags: 0, options: recordOptions })];
  return m;
}

/** Offset of the first record's option value in an encoded DDE with one record, one tag and no message options. */
const REC_OPT_VALUE = 8 + 24 + 28 + 12 + 16 + 2;

function refix(b: Buffer): Buffer {
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

const withProbe = new OptionCodecs([...SPEC_OPTION_CODECS, probeOptionCodec as never]);

describe('DPRP options through the codec registry', { timeout: 30_000 }, () => {
  test('an unknown skippable option round-trips with its bytes, and its record still authenticates', () => {
    const opt = { type: 0x9e, value: Buffer.from('opaque-to-this-GE') };
    const wire = encode(dde([], [opt]), withProbe);
    const seenHere = decode(wire, SPEC_OPTIONS); // a GE with no codec for 0x9e
    assert.deepEqual(seenHere.records[0].options, [opt], 'kept, raw');
    assert.deepEqual(encode(seenHere, SPEC_OPTIONS), wire, 'forwarded unchanged');
    assert.equal(verifyRecord([key], seenHere, 0).length, 1, 'the tag over the record, option included, still verifies');
  });

  test('an unknown critical option is refused with a reason and counted wire_unknown_critical_option', async () => {
    const wire = encode(dde([], [{ type: PROBE_OPTION_TYPE, value: probeOptionCodec.encode(A) }]), withProbe);
    assert.doesNotThrow(() => decode(wire, withProbe), 'a GE with the codec accepts it');
    assert.throws(() => decode(wire, SPEC_OPTIONS), (e: unknown) => e instanceof DprpWireError && e.countedAs === 'unknown_critical_option' && /unknown critical option type 126/.test(e.message));
    const label = 'wire_unknown_critical_option';
    const count = async () => (await registry.getSingleMetric('gscip_dprp_messages_rejected_total')!.get()).values.find((v) => v.labels.reason === label)?.value ?? 0;
    const before = await count();
    const rejected: RejectReason[] = [];
    const node = bareNode(B, { rejected: (r) => { rejected.push(r); promObserver.rejected(r); } });
    node.onControl(wire);
    assert.deepEqual(rejected, [label]);
    assert.equal(await count(), before + 1, 'gscip_dprp_messages_rejected_total{reason="wire_unknown_critical_option"}');
  });

  test('options are inside the authentication: one flipped option byte fails the record tag and the CDN seal', () => {
    const value = probeOptionCodec.encode(A);
    const wire = encode(dde([], [{ type: PROBE_OPTION_TYPE, value }]), withProbe);
    assert.equal(verifyRecord([key], decode(wire, withProbe), 0).length, 1, 'untouched: authenticated');
    const flipped = refix(Buffer.from(wire));
    assert.equal(flipped.subarray(REC_OPT_VALUE, REC_OPT_VALUE + value.length).toString('latin1'), value.toString('latin1'), 'offset is the option value');
    flipped[REC_OPT_VALUE + value.length - 1] ^= 0x01; // still a valid probe value: only the MAC can tell
    refix(flipped);
    assert.equal(verifyRecord([key], decode(flipped, withProbe), 0).length, 0, 'flipped option byte: the tag no longer verifies');

    const cdn: DprpMessage = { ...dde(), type: MsgType.CDN, endGe: B, records: [], options: [{ type: PROBE_OPTION_TYPE, value }] };
    const mac = sealMac(key, cdn);
    const tampered = { ...cdn, options: [{ type: PROBE_OPTION_TYPE, value: Buffer.from(value).fill(0x41, value.length - 1) }] };
    assert.ok(!sealMac(key, tampered).equals(mac), 'message options are in the context every MAC covers');
  });
});

// ------------------------------------------------------------------ two nodes

interface Net { queue: Array<{ to: string; icmp: Buffer }>; nodes: Map<string, DprpNode> }

function bareNode(addr: string, obs: { rejected?: (r: RejectReason) => void; completed?: (o: string) => void } = {}, extra: Partial<ConstructorParameters<typeof DprpNode>[0]> = {}, net?: Net, time = new VirtualTime()): DprpNode {
  return new DprpNode({
    self: { addr, type: 'GES', mode: 'OP' },
    keys: { all: () => [key] },
    clock: { nowMs: () => Date.now(), monoMs: () => time.now },
    timers: { after: (ms, fn) => time.after(ms, fn) },
    transport: { send: (dst, icmp) => { net?.queue.push({ to: dst === flow.daddr || dst === B ? B : A, icmp }); } },
    pit: { install() {}, remove() {} },
    stash: { release() {}, drop() {} },
    locality: (x) => (x === addr ? 'self' : 'other'),
    observer: { started() {}, completed: (o) => obs.completed?.(o), failed() {}, rejected: (r) => obs.rejected?.(r), overridden() {} },
    ...extra,
  });
}

function probeNodes(refuse = false): { net: Net; events: Record<string, ProbeEvent[]>; rejected: Record<string, RejectReason[]>; done: string[] } {
  const net: Net = { queue: [], nodes: new Map() };
  const events: Record<string, ProbeEvent[]> = { [A]: [], [B]: [] };
  const rejected: Record<string, RejectReason[]> = { [A]: [], [B]: [] };
  const done: string[] = [];
  for (const addr of [A, B]) {
    const part = probePart((e) => events[addr].push(e));
    const plan = planParts(['dprp', 'probe'], catalogue(part));
    const started = startParts(plan, () => ({ log, ge: { type: 'GES', mode: 'OP', source: 'config' } as never }));
    const hooks = started.extensions.dprpOptionHooks();
    const liar = refuse && addr === A
      ? hooks.map((h) => ({ ...h, recordOptions: () => [{ type: PROBE_OPTION_TYPE, value: probeOptionCodec.encode('203.0.113.66') }] }))
      : hooks;
    net.nodes.set(addr, bareNode(addr, { rejected: (r) => rejected[addr].push(r), completed: (o) => done.push(o) }, {
      options: new OptionCodecs(started.extensions.dprpOptionCodecs), optionHooks: liar,
    }, net));
    for (const h of started.handlers) void h.close?.();
  }
  return { net, events, rejected, done };
}

function run(net: Net): void {
  for (let i = 0; i < 100 && net.queue.length; i++) {
    const m = net.queue.shift()!;
    net.nodes.get(m.to)!.onControl(m.icmp);
  }
}

describe('two DPRP nodes with the probe part', { timeout: 30_000 }, () => {
  test('the probe option rides in both records and each side verifies the other\'s as authenticated', () => {
    const { net, events, rejected, done } = probeNodes();
    net.nodes.get(A)!.onPitMiss(flow, 'h1');
    run(net);
    assert.deepEqual(done, ['encrypted'], 'the negotiation completes as without the part');
    assert.deepEqual(rejected, { [A]: [], [B]: [] });
    assert.deepEqual(events[B], [{ kind: 'option', from: A, msgType: MsgType.DDE, authenticated: true, value: A }]);
    assert.deepEqual(events[A], [{ kind: 'option', from: B, msgType: MsgType.RGI, authenticated: true, value: B }]);
  });

  test('an option its part refuses rejects the message, counted option_refused', () => {
    const { net, events, rejected, done } = probeNodes(true);
    net.nodes.get(A)!.onPitMiss(flow, 'h1');
    run(net);
    assert.deepEqual(events[B].map((e) => e.kind === 'option' && e.value), ['203.0.113.66']);
    assert.deepEqual(rejected[B], ['option_refused']);
    assert.deepEqual(done, [], 'no RGI: the negotiation does not complete');
  });
});

test('the composition passes every NAT-f DPRP hook on from the part offering it (the GNAT\'s mappedInside was once left out)', async () => {
  const { NATF_DPRP_HOOK_NAMES } = await import('../../controlplane/dprp/natf-hooks.js');
  const hooks: Record<string, () => null> = {};
  for (const k of NATF_DPRP_HOOK_NAMES) hooks[k] = () => null;
  const gnat: PartDescriptor = { name: 'natf-hooks-probe', summary: 'test', claims: {}, create: () => ({ name: 'natf-hooks-probe', natfDprpHooks: hooks } as unknown as PartRuntime) };
  const plan = planParts(['dprp', 'natf-hooks-probe'], catalogue(gnat));
  const started = startParts(plan, () => ({ log, ge: { type: 'GEN', mode: 'OP', source: 'config' } as never }));
  const composed = started.extensions.natfDprpHooks!() as unknown as Record<string, unknown>;
  assert.deepEqual(Object.keys(composed).sort(), [...NATF_DPRP_HOOK_NAMES].sort());
  for (const k of NATF_DPRP_HOOK_NAMES) assert.equal(composed[k], hooks[k], `${k} is the part's own`);
  for (const h of started.handlers) void h.close?.();
});
