/**
 * GSRA's EN part (controlplane/gsra/en-handler.ts) against the real router
 * exchange in memory: a DNS answer naming the router (GGR) goes through
 * NAT-f's rewriter chain and comes back with a VIN of GSRA's own pool; the
 * first packet to VIN:d is taken from the miss chain and kept stashed while
 * AUTH -> MAP run; then the VAT (XLAT kind vat) and the wire flow's PIT
 * entries are written, in that order, before the stash is released; a
 * refused IN fails the flow at once (stash dropped, ICMP unreachable from the
 * VIN to the application); a flow to anything else is not taken; an
 * unanswered admission fails after the bounded retries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GsraAdmission, type AdmissibleUser, type InternalServer } from '../../controlplane/gsra/admission.js';
import { GsraRouterExchange } from '../../controlplane/gsra/router-exchange.js';
import { GsraEnHandler } from '../../controlplane/gsra/en-handler.js';
import { gsraEnConfigSchema, isPrivateIpv4 } from '../../controlplane/gsra/en-config.js';
import { DnsRewriters } from '../../controlplane/natf/dns-rewriters.js';
import { parseAnswer } from '../../controlplane/natf/dns-answer.js';
import { frameControl, unframeControl } from '../../controlplane/parts/control-framing.js';
import { parseIpv4 } from '../../controlplane/dprp/ipv4.js';
import { Action, Dir, PIT_F_FLOW_KEY, PIT_F_WIRE_CSUM, PuntReason, XlatKind } from '../../controlplane/maps/abi.js';
import type { Cid, FlowKeyVal, FtpSeqVal, PitVal, PuntRec, XlatVal } from '../../controlplane/maps/codecs.js';
import { deriveFlowKey } from '../../controlplane/pccom/flow-key.js';
import type { PuntContext } from '../../controlplane/parts/handler.js';
import { parseAgentConfig } from '../../controlplane/config/agent-config.js';
import { logger } from '../../controlplane/log/logger.js';
import { parseFrame, tcpFrame, udpFrame } from '../lib/packets.js';

const log = logger('gsra-en-test').child({}, { level: 'silent' });
const GGR = '192.0.2.1';
const GEN = '198.51.100.20';
const SERVERS: InternalServer[] = [
  { name: 'in1.corp.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1] },
  { name: 'in2.corp.example.net', address: '100.64.1.20', outsideAccess: 'allow', groups: [2] },
];
const userKey = randomBytes(32);
const alice: AdmissibleUser = { userId: 'alice', groups: [1], key: userKey };

function dnsAnswer(name: string, addr: string): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0); h.writeUInt16BE(0x8180, 2); h.writeUInt16BE(1, 4); h.writeUInt16BE(1, 6);
  const q = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(600, 6); rr.writeUInt16BE(4, 10);
  Buffer.from(addr.split('.').map(Number)).copy(rr, 12);
  return Buffer.concat([h, q, rr]);
}

const ck = (c: Cid): string => `${c.dir}:${c.proto}:${c.saddr}:${c.sport}>${c.daddr}:${c.dport}`;

const GROUP_KEY = Buffer.alloc(32, 0x37);

function setup(opts: { answer?: boolean; keys?: Array<{ group_id: number; version: number }>; ghr?: string; behindNat?: boolean | 'auto'; udpWireValid?: boolean; ftpSeqFull?: boolean } = {}) {
  const flowKeys = new Map<string, FlowKeyVal>();
  const ftpSeq = new Map<string, FtpSeqVal>();
  const ops: string[] = [];
  const xlat = new Map<string, XlatVal>();
  const pit = new Map<string, PitVal>();
  const sent: Buffer[] = [];
  const released: Cid[] = [];
  const dropped: Array<{ cid: Cid; reason: string }> = [];
  const reinjected: Buffer[] = [];
  const bindAnswers: unknown[] = [];
  const stashDrops: string[] = [];
  const adm = new GsraAdmission({ portLo: 40000, portHi: 40009, maxEntries: 8, leaseMs: 5000, idleMs: 60_000 });
  adm.setServers(SERVERS);
  adm.setUsers([alice]);
  const router = new GsraRouterExchange(adm);
  let en: GsraEnHandler;
  const ctx = {
    maps: {
      xlat: { set: (k: Cid, v: XlatVal) => { ops.push('xlat'); xlat.set(ck(k), v); }, delete: (k: Cid) => xlat.delete(ck(k)), entries: () => [] },
      keys: { keys: () => opts.keys ?? [{ group_id: 1, version: 1 }, { group_id: 1, version: 2 }, { group_id: 7, version: 9 }], get: () => ({ key: GROUP_KEY, flags: 0, installed_ns: 0n }) },
      ftpSeq: {
        set: (k: Cid, v: FtpSeqVal) => { if (opts.ftpSeqFull) throw new Error('E2BIG'); ftpSeq.set(ck(k), v); },
        get: (k: Cid) => ftpSeq.get(ck(k)), delete: (k: Cid) => ftpSeq.delete(ck(k)), keys: () => [],
      },
      flowKeys: { set: (k: Cid, v: FlowKeyVal) => { ops.push('flowkey'); flowKeys.set(ck(k), v); }, get: (k: Cid) => flowKeys.get(ck(k)), delete: (k: Cid) => flowKeys.delete(ck(k)) },
      pit: { set: (k: Cid, v: PitVal) => { ops.push('pit'); pit.set(ck(k), v); }, get: (k: Cid) => pit.get(ck(k)), delete: (k: Cid) => pit.delete(ck(k)) },
    },
    interfaces: [{ name: 'eth0', ifindex: 2 }],
    log,
    release: () => true,
    releaseFlow: (c: Cid) => { ops.push('release'); released.push(c); return 1; },
    drop: (_r: PuntRec, why: string) => { stashDrops.push(why); return true; },
    dropFlow: (c: Cid, reason: string) => { ops.push('drop'); dropped.push({ cid: c, reason }); return 1; },
    reinjectDns: (_i: number, f: Buffer) => { reinjected.push(f); },
    sendControl: (_i: number, ip: Buffer) => {
      sent.push(ip);
      if (opts.answer === false) return;
      const cp = unframeControl(parseIpv4(ip)!)!;
      // opts.ghr: a port-preserving home NAT between the EN and the router (the router sees GHR:same port)
      const o = router.onMessage(Buffer.from(cp.msg), { addr: opts.ghr ?? cp.src, port: cp.sport ?? 7253 }, Date.now());
      if (!o.reply) return;
      const reply = frameControl(cp.dst, cp.src, o.reply, { sport: 7253, dport: cp.sport ?? 7253 });
      const eth = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), reply]);
      // An answer to a port other than 7253 (BIND's, from s) is no control message to the fast path: an ingress PIT miss.
      if ((cp.sport ?? 7253) !== 7253) {
        queueMicrotask(() => { bindAnswers.push(en.onMiss({ ts_ns: 0n, ifindex: 2, pkt_len: eth.length, cap_len: eth.length, dir: Dir.INGRESS, reason: PuntReason.PIT_MISS, cid: { saddr: cp.dst, daddr: cp.src, sport: 7253, dport: cp.sport!, proto: 17, dir: Dir.INGRESS }, data: eth }, ctx)); });
        return;
      }
      queueMicrotask(() => en.onControl({ ts_ns: 0n, ifindex: 2, pkt_len: eth.length, cap_len: eth.length, dir: Dir.INGRESS, reason: PuntReason.CONTROL, cid: { saddr: cp.dst, daddr: cp.src, sport: 7253, dport: 7253, proto: 17, dir: Dir.INGRESS }, data: eth }));
    },
    nowNs: () => process.hrtime.bigint(),
  } as unknown as PuntContext;
  const routes: string[] = [];
  const chain = new DnsRewriters();
  chain.register({ name: 'nrt', rewrite: () => null });   // NAT-f's own NRT comes first; it does not know GGR
  en = new GsraEnHandler(log, gsraEnConfigSchema.parse({ routers: [GGR], group: 1, userId: 'alice', keyFile: '/dev/null', ...(opts.behindNat !== undefined ? { behindNat: opts.behindNat } : {}), ...(opts.udpWireValid !== undefined ? { udpWireValid: opts.udpWireValid } : {}) }), null, () => chain, {
    routes: { ensure: (v: string, r: string) => { routes.push(`${v} via ${r}`); return true; }, prune: () => 0 },
  });
  // the static key without a file: tests set it directly
  (en as unknown as { user: unknown }).user = { userId: 'alice', key: userKey };
  en.onStart(ctx);
  const resolve = (name: string): string => {
    const r = chain.rewrite(dnsAnswer(name, GGR), () => {});
    assert.ok(r, 'the answer naming GGR is rewritten');
    return parseAnswer(r.message).a[0].address;
  };
  const miss = (vin: string, dport: number, sport = 51000, proto = 6): PuntRec => {
    const f = proto === 6 ? tcpFrame({ src: GEN, dst: vin, sport, dport, flags: 0x02 } as never) : udpFrame({ src: GEN, dst: vin, sport, dport, payload: Buffer.from('x') });
    return { ts_ns: 0n, ifindex: 2, pkt_len: f.length, cap_len: f.length, dir: Dir.EGRESS, reason: PuntReason.PIT_MISS, cid: { saddr: GEN, daddr: vin, sport, dport, proto, dir: Dir.EGRESS }, data: f };
  };
  return { en, ctx, ops, xlat, pit, flowKeys, ftpSeq, sent, released, dropped, reinjected, routes, resolve, miss, chain, bindAnswers, stashDrops, adm };
}

const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));

test('the IN name gets a VIN of GSRA\'s pool through NAT-f\'s chain, routed toward GGR; other answers untouched', () => {
  const s = setup();
  const vin = s.resolve('in1.corp.example.net');
  assert.match(vin, /^198\.19\.(1[2-9][0-9]|2[0-5][0-9])\./, `VIN ${vin} in 198.19.128.0/17`);
  assert.deepEqual(s.routes, [`${vin} via ${GGR}`]);
  assert.equal(s.resolve('in1.corp.example.net'), vin, 'the same name keeps its VIN');
  assert.equal(s.chain.rewrite(dnsAnswer('www.example.net', '203.0.113.9'), () => {}), null);
  s.en.close();
});

test('first packet to VIN:d: taken, AUTH then MAP to GGR, VAT + PIT written before the stash is released', async () => {
  const s = setup();
  const vin = s.resolve('in1.corp.example.net');
  assert.equal(s.en.onMiss(s.miss(vin, 22), s.ctx), 'taken');
  assert.equal(s.en.onMiss(s.miss(vin, 22), s.ctx), 'taken', 'a retransmission during the admission stays with its flow');
  await settle();
  assert.equal(s.sent.length, 2, 'AUTH and MAP');
  for (const ip of s.sent) { const v = parseIpv4(ip)!; assert.equal(v.src, GEN); assert.equal(v.dst, GGR); }
  assert.deepEqual(s.ops, ['xlat', 'xlat', 'pit', 'pit', 'release']);
  const t = s.en.flows()[0].wire.dport;
  assert.ok(t >= 40000 && t <= 40009);
  const eg = s.xlat.get(ck({ saddr: GEN, daddr: vin, sport: 51000, dport: 22, proto: 6, dir: Dir.EGRESS }))!;
  assert.deepEqual({ d: eg.daddr, p: eg.dport, k: eg.kind }, { d: GGR, p: t, k: XlatKind.VAT });
  const ig = s.xlat.get(ck({ saddr: GGR, daddr: GEN, sport: t, dport: 51000, proto: 6, dir: Dir.INGRESS }))!;
  assert.deepEqual({ s: ig.saddr, p: ig.sport, k: ig.kind }, { s: vin, p: 22, k: XlatKind.VAT });
  const out = s.pit.get(ck({ saddr: GEN, daddr: GGR, sport: 51000, dport: t, proto: 6, dir: Dir.EGRESS }))!;
  const back = s.pit.get(ck({ saddr: GGR, daddr: GEN, sport: t, dport: 51000, proto: 6, dir: Dir.INGRESS }))!;
  assert.deepEqual([out.action, out.group_id, out.key_version], [Action.ENCRYPT, 1, 2], 'PCCOM under the group key, newest version');
  assert.deepEqual([back.action, back.group_id, back.key_version], [Action.DECRYPT, 1, 2]);
  assert.equal(s.released.length, 1);
  assert.equal(s.dropped.length, 0);
  s.en.close();
});

test('behind a home NAT: BIND from the flow\'s port s, its answer (to s, an ingress miss) taken as control; MAP names GHR:m; TCP in the wire-valid form', async () => {
  const GHR = '203.0.113.30';
  const s = setup({ ghr: GHR, behindNat: true });
  const vin = s.resolve('in1.corp.example.net');
  assert.equal(s.en.onMiss(s.miss(vin, 22, 53000), s.ctx), 'taken');
  await settle();
  assert.equal(s.sent.length, 3, 'AUTH, BIND, MAP');
  const udp = (ip: Buffer) => { const v = parseIpv4(ip)!; return { sport: v.payload.readUInt16BE(0), dport: v.payload.readUInt16BE(2) }; };
  assert.deepEqual(udp(s.sent[1]), { sport: 53000, dport: 7253 }, 'BIND leaves from s');
  assert.deepEqual(udp(s.sent[0]), { sport: 7253, dport: 7253 });
  assert.deepEqual(s.bindAnswers, ['taken'], 'the answer to s: taken from the miss chain');
  assert.deepEqual(s.stashDrops, ['gsra_bind_answer'], 'never passed to the stack');
  const m = s.adm.mappings()[0];
  assert.deepEqual(m.en, { addr: GHR, port: 53000 }, 'the router maps GHR:m');
  assert.equal(m.bound, true);
  const t = m.t;
  const out = s.pit.get(ck({ saddr: GEN, daddr: GGR, sport: 53000, dport: t, proto: 6, dir: Dir.EGRESS }))!;
  assert.equal(out.action, Action.ENCRYPT);
  assert.equal(out.flags & PIT_F_WIRE_CSUM, PIT_F_WIRE_CSUM, 'the wire-valid form across the NAT');
  assert.equal(s.released.length, 1);
  s.en.close();
});

test('behind a home NAT, UDP: MAP asks for the UDP wire-valid form, the router\'s MAP_OK salt keys both legs per flow (fwd/rev), written before the PIT entries', async () => {
  const GHR = '203.0.113.30';
  const s = setup({ ghr: GHR, behindNat: true });
  const vin = s.resolve('in1.corp.example.net');
  assert.equal(s.en.onMiss(s.miss(vin, 53, 53002, 17), s.ctx), 'taken');
  await settle();
  const m = s.adm.mappings()[0];
  assert.ok(m && m.bound && m.salt && /^[0-9a-f]{16}$/.test(m.salt), `the router made a salt for the bound UDP flow: ${JSON.stringify(m)}`);
  const t = m.t;
  const out = ck({ saddr: GEN, daddr: GGR, sport: 53002, dport: t, proto: 17, dir: Dir.EGRESS });
  const back = ck({ saddr: GGR, daddr: GEN, sport: t, dport: 53002, proto: 17, dir: Dir.INGRESS });
  const po = s.pit.get(out)!, pb = s.pit.get(back)!;
  assert.equal(po.flags, PIT_F_WIRE_CSUM | PIT_F_FLOW_KEY, 'ENCRYPT: the UDP wire-valid form under a per-flow key');
  assert.equal(pb.flags, PIT_F_FLOW_KEY, 'DECRYPT: per-flow key (the receiver takes both forms)');
  const fo = s.flowKeys.get(out)!, fb = s.flowKeys.get(back)!;
  assert.deepEqual(fo.cur.key, deriveFlowKey(GROUP_KEY, 1, po.key_version, m.salt!, 'fwd'), 'EN -> router: the fwd key of the router\'s salt');
  assert.deepEqual(fb.cur.key, deriveFlowKey(GROUP_KEY, 1, po.key_version, m.salt!, 'rev'));
  assert.notDeepEqual(fo.cur.key, fb.cur.key);
  assert.equal(fo.cur.ctr, 0n);
  assert.ok(s.ops.indexOf('flowkey') < s.ops.indexOf('pit'), 'keys before the entries that name them');
  assert.equal(s.released.length, 1);
  s.en.close();
  // udpWireValid false: MAP without the flag, no salt, the keyed form as before
  const k = setup({ ghr: GHR, behindNat: true, udpWireValid: false });
  k.en.onMiss(k.miss(k.resolve('in1.corp.example.net'), 53, 53003, 17), k.ctx);
  await settle();
  assert.equal(k.adm.mappings()[0]?.salt, undefined);
  assert.equal(k.flowKeys.size, 0);
  assert.ok([...k.pit.values()].every((v) => v.flags === 0));
  k.en.close();
});

test('FTP 227 with no room on a VAT flow: grown, the delta noted; its retransmission rewritten identically; later 227s moved by it; a full table passes it', async () => {
  const s = setup();
  const vin = s.resolve('in1.corp.example.net');
  s.en.onMiss(s.miss(vin, 21, 51500), s.ctx);
  await settle();
  assert.equal(s.released.length, 1, 'the control connection admitted');
  const rec = (seq: number, text: string): PuntRec => {
    const f = tcpFrame({ src: vin, dst: GEN, sport: 21, dport: 51500, seq, ack: 9, flags: 0x18, payload: Buffer.from(text) });
    return { ts_ns: 0n, ifindex: 2, pkt_len: f.length, cap_len: f.length, dir: Dir.INGRESS, reason: PuntReason.FTP_REPLY, cid: { saddr: vin, daddr: GEN, sport: 21, dport: 51500, proto: 6, dir: Dir.INGRESS }, data: f };
  };
  const key = ck({ saddr: vin, daddr: GEN, sport: 21, dport: 51500, proto: 6, dir: Dir.INGRESS });
  const tuple = `(${vin.split('.').join(',')},195,80)`;
  const grow = tuple.length - '(1,1,1,1,195,80)'.length;
  const seqOf = (f: Buffer) => f.readUInt32BE(38);
  const P = 4_000_000_000;   // near the wrap
  assert.equal(s.en.onFtpReply(rec(P, '227 (1,1,1,1,195,80)\r\n'), s.ctx), true);
  const first = s.reinjected.at(-1)!;
  assert.equal(parseFrame(first).l4?.payload.toString(), `227 ${tuple}\r\n`);
  assert.ok(parseFrame(first).l4?.checksumOk && parseFrame(first).ip?.checksumOk);
  assert.equal(seqOf(first), P, 'the rewritten segment itself keeps its seq');
  assert.deepEqual(s.ftpSeq.get(key), { pos: P, before: 0, after: grow });
  assert.equal(s.en.onFtpReply(rec(P, '227 (1,1,1,1,195,80)\r\n'), s.ctx), true, 'a retransmission');
  assert.deepEqual(s.reinjected.at(-1), first, 'rewritten identically');
  assert.deepEqual(s.ftpSeq.get(key), { pos: P, before: 0, after: grow }, 'not counted twice');
  // a second PASV later on the connection, past the wrap of the server's sequence space
  const Q = (P + 400_000_000) >>> 0;
  s.en.onFtpReply(rec(Q, '227 (1,1,1,1,195,80)\r\n'), s.ctx);
  assert.equal(seqOf(s.reinjected.at(-1)!), (Q + grow) >>> 0, 'moved by the first growth');
  assert.deepEqual(s.ftpSeq.get(key), { pos: Q, before: grow, after: 2 * grow });
  // a 227 with room (same length) later still: rewritten in place, moved by both
  const R = (Q + 1000) >>> 0;
  s.en.onFtpReply(rec(R, '227 Entering Passive Mode (1,1,1,1,195,80).\r\n'), s.ctx);
  const kept = s.reinjected.at(-1)!;
  assert.equal(seqOf(kept), (R + 2 * grow) >>> 0);
  assert.ok(parseFrame(kept).l4?.checksumOk);
  assert.equal(parseFrame(kept).l4?.payload.length, '227 Entering Passive Mode (1,1,1,1,195,80).\r\n'.length);
  s.en.close();
  // the table full: the reply passes as it came (the agent re-injects the original), no delta
  const f = setup({ ftpSeqFull: true });
  const v2 = f.resolve('in1.corp.example.net');
  f.en.onMiss(f.miss(v2, 21, 51501), f.ctx);
  await settle();
  const r2 = rec(P, '227 (1,1,1,1,195,80)\r\n');
  r2.data = tcpFrame({ src: v2, dst: GEN, sport: 21, dport: 51501, seq: P, flags: 0x18, payload: Buffer.from('227 (1,1,1,1,195,80)\r\n') });
  assert.equal(f.en.onFtpReply(r2, f.ctx), false);
  assert.equal(f.ftpSeq.size, 0);
  f.en.close();
});

test('behindNat auto: a private source binds, a global one does not; without BIND behind a NAT the router refuses (bad_session)', async () => {
  assert.equal(isPrivateIpv4('100.64.9.2'), true);
  assert.equal(isPrivateIpv4('192.168.1.2'), true);
  assert.equal(isPrivateIpv4('172.31.0.1'), true);
  assert.equal(isPrivateIpv4('198.51.100.20'), false);
  assert.equal(isPrivateIpv4('100.128.0.1'), false);
  const s = setup({ ghr: '203.0.113.30', behindNat: false });
  const vin = s.resolve('in1.corp.example.net');
  s.en.onMiss(s.miss(vin, 22, 53001), s.ctx);
  await settle();
  assert.equal(s.released.length, 0);
  assert.equal(s.dropped[0]?.reason, 'gsra_bad_session');
  s.en.close();
});

test('an IN of another group: refused at once, stash dropped, ICMP unreachable from the VIN to the application', async () => {
  const s = setup();
  const vin = s.resolve('in2.corp.example.net');
  assert.equal(s.en.onMiss(s.miss(vin, 80, 52000), s.ctx), 'taken');
  await settle();
  assert.equal(s.released.length, 0);
  assert.equal(s.xlat.size + s.pit.size, 0, 'nothing written');
  assert.equal(s.dropped.length, 1);
  assert.match(s.dropped[0].reason, /^gsra_/);
  assert.equal(s.reinjected.length, 1);
  const ip = parseIpv4(s.reinjected[0].subarray(14))!;
  assert.deepEqual({ src: ip.src, dst: ip.dst, type: ip.payload[0], code: ip.payload[1] }, { src: vin, dst: GEN, type: 3, code: 13 });
  s.en.close();
});

test('no key of the group held: the admitted flow is refused (no plaintext fallback), nothing written', async () => {
  const s = setup({ keys: [{ group_id: 7, version: 1 }] });
  const vin = s.resolve('in1.corp.example.net');
  s.en.onMiss(s.miss(vin, 22), s.ctx);
  await settle();
  assert.equal(s.released.length, 0);
  assert.equal(s.xlat.size + s.pit.size, 0);
  assert.equal(s.dropped[0]?.reason, 'gsra_no_group_key');
  assert.equal(s.reinjected.length, 1);
  s.en.close();
});

test('a miss to anything but a live VIN is left to the parts after this one', () => {
  const s = setup();
  const r = s.miss('203.0.113.9', 22);
  assert.equal(s.en.onMiss(r, s.ctx), undefined);
  assert.equal(s.sent.length, 0);
  s.en.close();
});

test('no answer from the router: failed after the bounded retries with an ICMP unreachable', { timeout: 10_000 }, async () => {
  const s = setup({ answer: false });
  const vin = s.resolve('in1.corp.example.net');
  s.en.onMiss(s.miss(vin, 22), s.ctx);
  const t0 = Date.now();
  while (!s.dropped.length && Date.now() - t0 < 5000) await settle(50);
  assert.equal(s.sent.length, 4, 'AUTH sent RETRY_MAX times');
  assert.equal(s.dropped[0]?.reason, 'gsra_timeout');
  assert.equal(s.reinjected.length, 1);
  s.en.close();
});

test('config: gsraEn needs its part, a pool inside 198.18.0.0/15 and apart from natf.pool', () => {
  const base = { interfaces: [{ name: 'eth0' }] };
  const en = { routers: [GGR], group: 1 };
  assert.throws(() => gsraEnConfigSchema.parse({ ...en, pool: '100.64.0.0/16' }), /inside 198.18.0.0\/15/);
  assert.throws(() => parseAgentConfig({ ...base, handlers: ['dprp', 'natf'], natf: {}, gsraEn: en }), /gsraEn: needs the gsra-en part/);
  assert.throws(() => parseAgentConfig({ ...base, handlers: ['dprp', 'natf', 'gsra-en'], natf: {}, gsraEn: en }), /gsraEn.pool: overlaps natf.pool/);
  const ok = parseAgentConfig({ ...base, handlers: ['dprp', 'natf', 'gsra-en'], natf: { pool: '198.18.0.0/16' }, gsraEn: en });
  assert.equal(ok.gsraEn?.pool, '198.19.128.0/17');
});
