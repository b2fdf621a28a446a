/** The punt stash (bounds, expiry), the release checksum fix-up and the punt dispatcher, without root. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Stash } from '../../controlplane/agent/stash.js';
import { completePartialChecksum } from '../../controlplane/agent/checksum-fixup.js';
import { reverseCid } from '../../controlplane/agent/handlers/install-pass.js';
import type { Cid, PuntRec } from '../../controlplane/maps/codecs.js';
import { inetChecksum, onesSum, tcpFrame, udpFrame } from '../lib/packets.js';
import { PuntDispatcher } from '../../controlplane/agent/punt-dispatch.js';
import type { PacketSender } from '../../controlplane/agent/packet-sender.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import type { PuntHandler } from '../../controlplane/parts/handler.js';
import { registry } from '../../controlplane/metrics/metrics.js';
import { logger } from '../../controlplane/log/logger.js';
import { PUNT_MAX_BYTES, PuntReason } from '../../controlplane/maps/abi.js';

const cid = (sport: number): Cid => ({ saddr: '192.0.2.1', daddr: '192.0.2.2', sport, dport: 80, proto: 6, dir: 1 });
const rec = (sport: number): PuntRec => ({ ts_ns: 0n, ifindex: 2, pkt_len: 60, cap_len: 60, dir: 1, reason: 1, cid: cid(sport), data: Buffer.alloc(60) });

test('stash: per-flow and total bounds refuse with a reason', () => {
  const s = new Stash({ perFlowPackets: 2, totalPackets: 3, ttlMs: 1000 });
  assert.equal(s.add(rec(1), 0), null);
  assert.equal(s.add(rec(1), 0), null);
  assert.equal(s.add(rec(1), 0), 'flow_full');
  assert.equal(s.add(rec(2), 0), null);
  assert.equal(s.add(rec(3), 0), 'stash_full');
  assert.equal(s.size, 3);
  assert.equal(s.takeFlow(cid(1)).length, 2);
  assert.equal(s.size, 1);
  assert.equal(s.add(rec(3), 0), null);
});

test('stash: take by identity, expiry by age, oldest first', () => {
  const s = new Stash({ perFlowPackets: 8, totalPackets: 100, ttlMs: 100 });
  const a = rec(1);
  const b = rec(1);
  s.add(a, 0);
  s.add(b, 50);
  assert.equal(s.take(rec(1)), false, 'a different record of the same flow is not taken');
  assert.deepEqual(s.expire(99), []);
  assert.deepEqual(s.expire(100), [a]);
  assert.equal(s.take(b), true);
  assert.equal(s.size, 0);
  assert.equal(s.flowCount, 0);
});

test('install-pass reverses a CID into the other direction', () => {
  assert.deepEqual(reverseCid(cid(1234)), { saddr: '192.0.2.2', daddr: '192.0.2.1', sport: 80, dport: 1234, proto: 6, dir: 0 });
});

/** Make a frame look like CHECKSUM_PARTIAL: the L4 checksum field holds the folded pseudo-header sum. */
function partial(frame: Buffer, csumOff: number): Buffer {
  const f = Buffer.from(frame);
  const ip = f.subarray(14);
  const ihl = (ip[0] & 0xf) * 4;
  const l4len = ip.readUInt16BE(2) - ihl;
  const ph = Buffer.alloc(12);
  ip.copy(ph, 0, 12, 20);
  ph[9] = ip[9];
  ph.writeUInt16BE(l4len, 10);
  f.writeUInt16BE(onesSum(ph), 14 + ihl + csumOff);
  return f;
}

function l4Valid(f: Buffer): boolean {
  const ip = f.subarray(14);
  const ihl = (ip[0] & 0xf) * 4;
  const l4 = ip.subarray(ihl, ip.readUInt16BE(2));
  const ph = Buffer.alloc(12);
  ip.copy(ph, 0, 12, 20);
  ph[9] = ip[9];
  ph.writeUInt16BE(l4.length, 10);
  return inetChecksum(l4, onesSum(ph)) === 0;
}

test('checksum fix-up completes partial TCP/UDP checksums and nothing else', () => {
  const tcp = tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 40000, dport: 80, payload: Buffer.from('hello world') });
  const udp = udpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 5353, dport: 53, payload: Buffer.from('odd') });
  assert.ok(l4Valid(tcp) && l4Valid(udp));
  const good = Buffer.from(tcp);
  assert.equal(completePartialChecksum(good), 'valid');
  assert.deepEqual(good, tcp);
  for (const [frame, off] of [[tcp, 16], [udp, 6]] as const) {
    const p = partial(frame, off);
    assert.ok(!l4Valid(p));
    assert.equal(completePartialChecksum(p), 'completed');
    assert.deepEqual(p, frame, 'completed checksum equals the independently computed one');
  }
  const corrupt = Buffer.from(tcp);
  corrupt[corrupt.length - 1] ^= 0xff;
  const before = Buffer.from(corrupt);
  assert.equal(completePartialChecksum(corrupt), 'invalid_left_alone');
  assert.deepEqual(corrupt, before, 'a corrupted packet is never given a valid checksum');
  assert.equal(completePartialChecksum(partial(tcp, 16).subarray(0, 50)), 'not_applicable', 'truncated capture');
});

// ---- PuntDispatcher with a fake sender (no kernel): what reaches handlers, what is released, what is counted.
function fakeSender(): { sender: PacketSender; sent: Array<{ ifindex: number; dir: number; frame: Buffer }> } {
  const sent: Array<{ ifindex: number; dir: number; frame: Buffer }> = [];
  const sender = { release: (ifindex: number, dir: number, frame: Buffer) => { sent.push({ ifindex, dir, frame: Buffer.from(frame) }); }, sendIpv4: () => undefined, close: () => undefined };
  return { sender: sender as unknown as PacketSender, sent };
}

function frameRec(frame: Buffer, o: Partial<PuntRec> = {}): PuntRec {
  const data = Buffer.alloc(PUNT_MAX_BYTES);
  frame.copy(data);
  return { ts_ns: process.hrtime.bigint(), ifindex: 7, pkt_len: frame.length, cap_len: frame.length, dir: 1, reason: PuntReason.PIT_MISS,
    cid: { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 40000, dport: 80, proto: 6, dir: 1 }, data, ...o };
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const v = m.find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, unknown>)[k] === val));
  return v?.value ?? 0;
}

test('dispatcher: misses are stashed then released with a completed checksum; control and truncated are never stashed', async () => {
  const { sender, sent } = fakeSender();
  const seen: string[] = [];
  const h: PuntHandler = {
    name: 't',
    onMiss(rec, ctx) { seen.push(`miss:${rec.reason}`); if (rec.reason === PuntReason.PIT_MISS) ctx.releaseFlow(rec.cid); },
    onControl(rec) { seen.push(`control:${rec.ifindex}`); },
  };
  const d = new PuntDispatcher({ maps: {} as GscipMaps, sender, handlers: [h], interfaces: [], limits: { perFlowPackets: 4, totalPackets: 16, ttlMs: 1000 }, log: logger('test') });
  try {
    const tcp = tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 40000, dport: 80 });
    const p = partial(tcp, 16);
    d.onRecords([frameRec(p), frameRec(tcp, { reason: PuntReason.CONTROL }), frameRec(tcp, { reason: PuntReason.TRUNCATED })]);
    assert.deepEqual(seen, ['miss:1', 'control:7', 'miss:3']);
    assert.equal(sent.length, 1, 'only the stashed miss is released');
    assert.deepEqual(sent[0].frame, tcp, 'released bytes carry the completed checksum');
    assert.equal(sent[0].ifindex, 7);
    assert.equal(d.stash.size, 0);
  } finally { d.close(); }
});

test('dispatcher: stale records, throwing handlers and expiry are counted, never fatal', async () => {
  const { sender, sent } = fakeSender();
  const boom: PuntHandler = { name: 'boom', onMiss() { throw new Error('handler bug'); } };
  const d = new PuntDispatcher({ maps: {} as GscipMaps, sender, handlers: [boom], interfaces: [], limits: { perFlowPackets: 4, totalPackets: 16, ttlMs: 50 }, log: logger('test').child({}, { level: 'silent' }) });
  try {
    const tcp = tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 40001, dport: 80 });
    const stale0 = await metricValue('gscip_agent_stash_dropped_total', { reason: 'stale_on_start' });
    const err0 = await metricValue('gscip_agent_handler_errors_total', { handler: 'boom' });
    const exp0 = await metricValue('gscip_agent_stash_dropped_total', { reason: 'expired' });
    d.onRecords([frameRec(tcp, { ts_ns: process.hrtime.bigint() - 10_000_000_000n })]);
    assert.equal(await metricValue('gscip_agent_stash_dropped_total', { reason: 'stale_on_start' }), stale0 + 1);
    assert.equal(d.stash.size, 0, 'a record older than the TTL is not stashed');
    d.onRecords([frameRec(tcp)]);
    assert.equal(await metricValue('gscip_agent_handler_errors_total', { handler: 'boom' }), err0 + 1);
    assert.equal(d.stash.size, 1, 'the packet stays stashed after a handler error');
    await new Promise((r) => setTimeout(r, 120));
    d.expire();
    assert.equal(d.stash.size, 0);
    assert.equal(await metricValue('gscip_agent_stash_dropped_total', { reason: 'expired' }), exp0 + 1);
    assert.equal(sent.length, 0);
  } finally { d.close(); }
});

test('dispatcher: the kernel-to-dispatch delay of each punt is observed by reason from its ts_ns', async () => {
  const { sender } = fakeSender();
  const d = new PuntDispatcher({ maps: {} as GscipMaps, sender, handlers: [], interfaces: [], limits: { perFlowPackets: 4, totalPackets: 16, ttlMs: 1000 }, log: logger('test') });
  const series = async (suffix: string, reason: string): Promise<number> => {
    const m = (await registry.getSingleMetric('gscip_agent_punt_delay_seconds')?.get())?.values ?? [];
    return m.find((x) => (x as { metricName?: string }).metricName === `gscip_agent_punt_delay_seconds_${suffix}` && (x.labels as Record<string, unknown>).reason === reason)?.value ?? 0;
  };
  try {
    const tcp = tcpFrame({ src: '192.0.2.1', dst: '192.0.2.2', sport: 40002, dport: 80 });
    const n0 = await series('count', 'control');
    const s0 = await series('sum', 'control');
    const m0 = await series('count', 'pit_miss');
    // Punted 3 ms ago (same monotonic clock as bpf_ktime_get_ns).
    d.onRecords([frameRec(tcp, { reason: PuntReason.CONTROL, ts_ns: process.hrtime.bigint() - 3_000_000n })]);
    assert.equal(await series('count', 'control'), n0 + 1);
    const waited = (await series('sum', 'control')) - s0;
    assert.ok(waited >= 0.003 && waited < 1, `observed ${waited} s for a record punted 3 ms ago`);
    assert.equal(await series('count', 'pit_miss'), m0, 'counted under its own reason only');
  } finally { d.close(); }
});
