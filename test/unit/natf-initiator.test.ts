/**
 * The initiator side's frame-level pieces (no root): a punted DNS answer
 * rebuilt around the NRT's message with every checksum right (UDP, a shorter
 * SERVFAIL; a TCP segment only read; a corrupt packet never made valid; a partial
 * checksum from a local sender completed first); the VAT's two XLAT entries
 * and their removal once the flow's PIT entries are gone; the ICMP
 * unreachable an application gets for a refused flow; the route a virtual
 * address gets; the rewriter chain another part registers into.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteDnsFrame } from '../../controlplane/natf/dns-frame.js';
import { DnsRewriters } from '../../controlplane/natf/dns-rewriters.js';
import { Nrt } from '../../controlplane/natf/nrt.js';
import { unreachableFor } from '../../controlplane/natf/refusal.js';
import { VatTable } from '../../controlplane/natf/vat.js';
import { routeOf, VirtualRoutes } from '../../controlplane/natf/virtual-routes.js';
import { inetChecksum } from '../../controlplane/dprp/ipv4.js';
import { Dir, XlatKind } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal, XlatVal } from '../../controlplane/maps/codecs.js';
import { parseFrame, tcpFrame, udpFrame } from '../lib/packets.js';

const GNAT = '192.0.2.2';
const ALICE = '192.0.2.1';
const DNS = '198.51.100.53';

/** A DNS response: bob.example.net A 192.0.2.2, TTL 600. */
function answer(addr = GNAT): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0); h.writeUInt16BE(0x8180, 2); h.writeUInt16BE(1, 4); h.writeUInt16BE(1, 6);
  const q = Buffer.concat([...'bob.example.net'.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(1, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(600, 6); rr.writeUInt16BE(4, 10);
  Buffer.from(addr.split('.').map(Number)).copy(rr, 12);
  return Buffer.concat([h, q, rr]);
}

/** L4 checksum over the pseudo-header verifies (sum = 0xffff). */
function l4Ok(frame: Buffer): boolean {
  const ihl = (frame[14] & 0xf) * 4;
  const tot = frame.readUInt16BE(16);
  const proto = frame[23];
  const l4 = frame.subarray(14 + ihl, 14 + tot);
  const ph = Buffer.alloc(12);
  frame.copy(ph, 0, 26, 34); ph[9] = proto; ph.writeUInt16BE(l4.length, 10);
  return inetChecksum(Buffer.concat([ph, l4])) === 0;
}

const nrtRewriter = (nrt: Nrt) => (m: Buffer): Buffer | null => {
  const r = nrt.rewrite(m, new Set([GNAT]));
  return r.kind === 'untouched' ? null : r.message;
};

test('UDP answer: A record virtualised, IPv4 and UDP checksums right, length unchanged', () => {
  const nrt = new Nrt({ lifetimeS: 60 }, () => 1000);
  const f = udpFrame({ src: DNS, dst: ALICE, sport: 53, dport: 40000, payload: answer() });
  const out = rewriteDnsFrame(f, nrtRewriter(nrt));
  assert.equal(out.kind, 'rewritten');
  const g = (out as { frame: Buffer }).frame;
  assert.equal(g.length, f.length);
  assert.ok(parseFrame(g).ip?.checksumOk);
  assert.ok(l4Ok(g), 'UDP checksum verifies');
  const v = nrt.entries()[0].virtual;
  assert.ok(g.includes(Buffer.from(v.split('.').map(Number))), 'the virtual address is in the frame');
  assert.ok(!g.includes(Buffer.from([192, 0, 2, 2, 0])), 'the GNAT address is gone from the answer');
  assert.deepEqual(rewriteDnsFrame(udpFrame({ src: DNS, dst: ALICE, sport: 53, dport: 40000, payload: answer('203.0.113.9') }), nrtRewriter(nrt)), { kind: 'untouched' });
});

test('an exhausted pool: the SERVFAIL is shorter; IPv4 total length, UDP length and both checksums follow', () => {
  const nrt = new Nrt({ lifetimeS: 60, pool: { base: '198.18.0.0', length: 31 }, maxEntries: 1 }, () => 1000);
  nrt.bind('other.example.net', GNAT);
  const f = udpFrame({ src: DNS, dst: ALICE, sport: 53, dport: 40000, payload: answer() });
  const out = rewriteDnsFrame(f, nrtRewriter(nrt)) as { kind: string; frame: Buffer };
  assert.equal(out.kind, 'rewritten');
  assert.ok(out.frame.length < f.length);
  assert.equal(out.frame.readUInt16BE(16), out.frame.length - 14);
  assert.ok(parseFrame(out.frame).ip?.checksumOk);
  assert.ok(l4Ok(out.frame));
  assert.equal(out.frame[14 + 20 + 8 + 3] & 0xf, 2, 'RCODE SERVFAIL');
});

test('a corrupt answer is never made valid; a partial checksum (local sender over veth) is completed first', () => {
  const nrt = new Nrt({ lifetimeS: 60 }, () => 1000);
  const f = udpFrame({ src: DNS, dst: ALICE, sport: 53, dport: 40000, payload: answer() });
  const bad = Buffer.from(f);
  bad[bad.length - 1] ^= 1;  // the address byte, not the checksum: the sum no longer verifies
  assert.deepEqual(rewriteDnsFrame(bad, nrtRewriter(nrt)), { kind: 'passed', why: 'bad_checksum' });
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum only
  const partial = Buffer.from(f);
  const ph = Buffer.alloc(12);
  partial.copy(ph, 0, 26, 34); ph[9] = 17; ph.writeUInt16BE(partial.length - 34, 10);
  const folded = (~inetChecksum(ph)) & 0xffff;
  partial.writeUInt16BE(folded, 40);
  const out = rewriteDnsFrame(partial, nrtRewriter(nrt)) as { kind: string; frame: Buffer };
  assert.equal(out.kind, 'rewritten');
  assert.ok(l4Ok(out.frame));
});

test('TCP: a segment from port 53 is read (where its payload is, its connection), not rewritten here (dns-tcp-stream.ts does)', () => {
  const msg = answer();
  const len = Buffer.alloc(2); len.writeUInt16BE(msg.length, 0);
  const f = tcpFrame({ src: DNS, dst: ALICE, sport: 53, dport: 40001, seq: 7, flags: 0x18, payload: Buffer.concat([len, msg]) });
  const out = rewriteDnsFrame(f, () => { throw new Error('not called for TCP'); });
  assert.equal(out.kind, 'tcp');
  const s = (out as { segment: { frame: Buffer; pay: number; end: number; seq: number; flags: number; key: string } }).segment;
  assert.deepEqual(s.frame.subarray(s.pay, s.end), Buffer.concat([len, msg]));
  assert.deepEqual([s.seq, s.flags, s.key], [7, 0x18, `${DNS}:53>${ALICE}:40001`]);
  const bad = Buffer.from(f);
  bad[bad.length - 1] ^= 1;
  assert.deepEqual(rewriteDnsFrame(bad, () => null), { kind: 'passed', why: 'bad_checksum' }, 'a corrupt segment is never read into a stream');
});

test('VAT: two XLAT entries of kind vat (stack -> wire on egress, wire -> stack on ingress); removed with the flow\'s PIT entries', () => {
  const xlat = new Map<string, XlatVal>();
  const pit = new Map<string, PitVal>();
  const k = (c: Cid): string => JSON.stringify(c);
  const vat = new VatTable({ xlat: { set: (c, v) => { xlat.set(k(c), v); }, delete: (c) => xlat.delete(k(c)) }, pit: { get: (c) => pit.get(k(c)) } }, () => 5n);
  const stack = { saddr: ALICE, daddr: '198.18.0.1', sport: 40000, dport: 80, proto: 6 };
  const wire = { ...stack, daddr: GNAT, dport: 21000 };
  vat.add(stack, wire);
  assert.deepEqual(xlat.get(k({ ...stack, dir: Dir.EGRESS })), { saddr: ALICE, daddr: GNAT, sport: 40000, dport: 21000, kind: XlatKind.VAT, created_ns: 5n });
  assert.deepEqual(xlat.get(k({ saddr: GNAT, daddr: ALICE, sport: 21000, dport: 40000, proto: 6, dir: Dir.INGRESS })), { saddr: '198.18.0.1', daddr: ALICE, sport: 80, dport: 40000, kind: XlatKind.VAT, created_ns: 5n });
  pit.set(k({ ...wire, dir: Dir.EGRESS }), {} as PitVal);
  assert.equal(vat.sweep(), 0, 'kept while the flow has PIT entries');
  assert.ok(vat.uses('198.18.0.1'));
  pit.clear();
  assert.equal(vat.sweep(), 1);
  assert.equal(xlat.size, 0);
  assert.equal(vat.size, 0);
});

test('refusal: ICMP unreachable (13) from the virtual address to the application, quoting its packet, checksums right', () => {
  const syn = tcpFrame({ src: ALICE, dst: '198.18.0.1', sport: 40000, dport: 80, seq: 1, flags: 0x02 });
  const f = unreachableFor(syn)!;
  const p = parseFrame(f);
  assert.equal(p.ip?.src, '198.18.0.1');
  assert.equal(p.ip?.dst, ALICE);
  assert.ok(p.ip?.checksumOk);
  const icmp = f.subarray(34);
  assert.deepEqual([icmp[0], icmp[1]], [3, 13]);
  assert.equal(inetChecksum(icmp), 0);
  assert.deepEqual(icmp.subarray(8), syn.subarray(14, 14 + 28), 'IPv4 header + 8 bytes quoted');
  assert.deepEqual(f.subarray(0, 6), syn.subarray(6, 12), 'to the sender\'s MAC');
  assert.equal(unreachableFor(Buffer.alloc(20)), null);
});

test('a virtual address is routed like its GNAT (next hop, device, source), on-link GNAT as its own next hop; pruned', () => {
  assert.deepEqual(routeOf('192.0.2.2 via 203.0.113.1 dev eth0 src 192.0.2.1 uid 0', GNAT), { dev: 'eth0', via: '203.0.113.1', src: '192.0.2.1' });
  assert.deepEqual(routeOf('192.0.2.2 dev eth0 src 192.0.2.1 uid 0', GNAT), { dev: 'eth0', via: GNAT, src: '192.0.2.1' });
  const calls: string[][] = [];
  const r = new VirtualRoutes((a) => { calls.push(a); return a.includes('get') ? '192.0.2.2 dev eth0 src 192.0.2.1 uid 0' : ''; });
  assert.ok(r.ensure('198.18.0.1', GNAT));
  assert.ok(r.ensure('198.18.0.1', GNAT));
  assert.deepEqual(calls, [['-o', '-4', 'route', 'get', GNAT], ['-4', 'route', 'replace', '198.18.0.1/32', 'via', GNAT, 'dev', 'eth0', 'src', '192.0.2.1', 'onlink']]);
  assert.equal(r.prune(new Set(['198.18.0.1'])), 0);
  assert.equal(r.prune(new Set()), 1);
  assert.deepEqual(calls.at(-1), ['-4', 'route', 'del', '198.18.0.1/32']);
});

test('the rewriter chain: a second part registers its own mapping; the first that changes a message wins; one that throws is skipped', () => {
  const chain = new DnsRewriters();
  const errors: string[] = [];
  chain.register({ name: 'broken', rewrite: () => { throw new Error('x'); } });
  chain.register({ name: 'gsra', rewrite: (m) => (m[0] === 1 ? { message: Buffer.from([9]), label: 'gsra' } : null) });
  assert.throws(() => chain.register({ name: 'gsra', rewrite: () => null }), /already registered/);
  assert.deepEqual(chain.rewrite(Buffer.from([1]), (n) => errors.push(n)), { message: Buffer.from([9]), label: 'gsra' });
  assert.equal(chain.rewrite(Buffer.from([2]), (n) => errors.push(n)), null);
  assert.deepEqual(errors, ['broken', 'broken']);
});

test('a restarted agent adopts the VAT entries left in the pinned XLAT map (egress ones, kind vat only) and sweeps them later', () => {
  const xlat = new Map<string, [Cid, XlatVal]>();
  const k = (c: Cid): string => JSON.stringify(c);
  const maps = {
    xlat: { set: (c: Cid, v: XlatVal) => { xlat.set(k(c), [c, v]); }, delete: (c: Cid) => xlat.delete(k(c)), entries: () => xlat.values() },
    pit: { get: () => undefined },
  };
  const before = new VatTable(maps, () => 1n);
  before.add({ saddr: ALICE, daddr: '198.18.0.1', sport: 40000, dport: 80, proto: 6 }, { saddr: ALICE, daddr: GNAT, sport: 40000, dport: 21000, proto: 6 });
  maps.xlat.set({ saddr: ALICE, daddr: '203.0.113.5', sport: 1, dport: 2, proto: 6, dir: Dir.EGRESS }, { saddr: ALICE, daddr: '203.0.113.6', sport: 1, dport: 2, kind: XlatKind.CIT, created_ns: 0n });
  const after = new VatTable(maps, () => 2n);
  assert.equal(after.adopt(maps.xlat.entries()), 1, 'the VAT flow, not the CIT entry');
  assert.equal(after.entries()[0].wire.dport, 21000);
  assert.equal(after.sweep(), 1, 'its PIT entries are gone: removed');
  assert.equal(xlat.size, 1, 'the CIT entry is not the VAT\'s');
});
