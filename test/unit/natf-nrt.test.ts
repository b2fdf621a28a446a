/**
 * The initiator side's NRT (controlplane/natf/nrt.ts) and DNS answer patching
 * (dns-answer.ts) on DNS responses built here byte by byte (an encoder of its
 * own, with name compression): A records naming a GNAT get a virtual address
 * from 198.18.0.0/15 with a TTL capped to the entry's life, everything else
 * stays byte for byte (other A records, CNAME chains, AAAA, EDNS); one virtual
 * address per (name, GNAT address), kept while answers come, expired on a
 * fake clock; an exhausted pool answers SERVFAIL with no address at all;
 * malformed messages are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsFormatError, parseAnswer } from '../../controlplane/natf/dns-answer.js';
import { Nrt } from '../../controlplane/natf/nrt.js';

const GNAT = '192.0.2.2';
const OTHER = '203.0.113.7';
const GNATS = new Set([GNAT]);

function name(n: string): Buffer {
  return Buffer.concat([...n.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}
interface Rr { owner: Buffer; type: number; ttl: number; rdata: Buffer }
const PTR_Q = Buffer.from([0xc0, 12]); // the question's name
function rr(r: Rr): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt16BE(r.type, 0); h.writeUInt16BE(1, 2); h.writeUInt32BE(r.ttl, 4); h.writeUInt16BE(r.rdata.length, 8);
  return Buffer.concat([r.owner, h, r.rdata]);
}
const a = (addr: string): Buffer => Buffer.from(addr.split('.').map(Number));
function response(q: string, answers: Rr[], extra: Buffer[] = [], arcount = 0): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x1234, 0); h.writeUInt16BE(0x8180, 2); h.writeUInt16BE(1, 4); h.writeUInt16BE(answers.length, 6); h.writeUInt16BE(arcount, 10);
  return Buffer.concat([h, name(q), Buffer.from([0, 1, 0, 1]), ...answers.map(rr), ...extra]);
}
const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]); // EDNS OPT, udp 1232

test('bob.example.net A 192.0.2.2 (a GNAT): a virtual address from 198.18.0.0/15, TTL capped to the entry\'s life; nothing else moves', () => {
  let now = 1_000_000;
  const nrt = new Nrt({ lifetimeS: 300 }, () => now);
  const m = response('bob.example.net', [{ owner: PTR_Q, type: 1, ttl: 3600, rdata: a(GNAT) }], [opt], 1);
  const r = nrt.rewrite(m, GNATS);
  assert.equal(r.kind, 'rewritten');
  if (r.kind !== 'rewritten') return;
  const p = parseAnswer(r.message);
  assert.equal(p.a[0].address, '198.18.0.1');
  assert.equal(p.a[0].ttl, 300, 'no longer than the NRT entry lives');
  assert.equal(r.message.length, m.length);
  const diff = [...m].map((b, i) => (b !== r.message[i] ? i : -1)).filter((i) => i >= 0);
  assert.ok(diff.every((i) => (i >= p.a[0].ttlOff && i < p.a[0].ttlOff + 4) || (i >= p.a[0].rdataOff && i < p.a[0].rdataOff + 4)), 'only the TTL and address bytes changed');
  assert.deepEqual(nrt.entries(), [{ name: 'bob.example.net', real: GNAT, virtual: '198.18.0.1', expiresMs: now + 300_000 }]);
  // asked again later: the same virtual address, the life extended, the TTL as the server gave it when shorter
  now += 100_000;
  const again = nrt.rewrite(response('BOB.example.net', [{ owner: PTR_Q, type: 1, ttl: 20, rdata: a(GNAT) }]), GNATS);
  assert.equal(again.kind === 'rewritten' && parseAnswer(again.message).a[0].address, '198.18.0.1');
  assert.equal(again.kind === 'rewritten' && parseAnswer(again.message).a[0].ttl, 20);
  assert.equal(nrt.lookupVirtual('198.18.0.1')?.real, GNAT);
  now += 300_001;
  assert.equal(nrt.lookupVirtual('198.18.0.1'), undefined, 'expired 300 s after the last answer');
  assert.equal(nrt.expire(), 1);
  assert.equal(nrt.count(), 0);
});

test('several A records and a CNAME chain: only the GNAT\'s address is replaced; the entry is under the name the application asked for', () => {
  const nrt = new Nrt({ lifetimeS: 300 }, () => 0);
  // the CNAME's target bob.<example.net of the question> starts at 45 (header 12 + question 21 + owner 2 + 10)
  const bob = Buffer.concat([Buffer.from([3]), Buffer.from('bob'), Buffer.from([0xc0, 16])]);
  const m = response('www.example.net', [
    { owner: PTR_Q, type: 5, ttl: 60, rdata: bob },
    { owner: Buffer.from([0xc0, 45]), type: 1, ttl: 60, rdata: a(OTHER) },
    { owner: Buffer.from([0xc0, 45]), type: 1, ttl: 60, rdata: a(GNAT) },
  ]);
  const r = nrt.rewrite(m, GNATS);
  assert.equal(r.kind, 'rewritten');
  if (r.kind !== 'rewritten') return;
  const p = parseAnswer(r.message);
  assert.deepEqual(p.a.map((x) => `${x.owner} ${x.address}`), ['bob.example.net 203.0.113.7', 'bob.example.net 198.18.0.1']);
  assert.equal(r.entries[0].name, 'www.example.net');
  assert.deepEqual(nrt.rewrite(response('x.example.net', [{ owner: PTR_Q, type: 1, ttl: 60, rdata: a(OTHER) }]), GNATS), { kind: 'untouched' });
});

test('one virtual address per (name, GNAT address); an exhausted pool answers SERVFAIL with no address in it', () => {
  const nrt = new Nrt({ lifetimeS: 300, pool: { base: '198.18.0.0', length: 30 } }, () => 0);
  const ask = (n: string) => nrt.rewrite(response(n, [{ owner: PTR_Q, type: 1, ttl: 60, rdata: a(GNAT) }]), GNATS);
  const got = ['a.example.net', 'b.example.net', 'c.example.net'].map((n) => { const r = ask(n); return r.kind === 'rewritten' ? r.entries[0].virtual : r.kind; });
  assert.deepEqual(got, ['198.18.0.1', '198.18.0.2', '198.18.0.3'], '.0 is never handed out');
  const r = ask('d.example.net');
  assert.equal(r.kind, 'refused');
  if (r.kind !== 'refused') return;
  assert.equal(r.reason, 'pool_exhausted');
  const p = parseAnswer(r.message);
  assert.equal(p.rcode, 2);
  assert.deepEqual(p.a, []);
  assert.equal(r.message.includes(a(GNAT)), false, 'the real address is not in the refusal');
});

test('malformed responses are refused, never half-read', () => {
  const ok = response('bob.example.net', [{ owner: PTR_Q, type: 1, ttl: 60, rdata: a(GNAT) }]);
  assert.throws(() => parseAnswer(ok.subarray(0, 11)), DnsFormatError);
  assert.throws(() => parseAnswer(ok.subarray(0, ok.length - 2)), /truncated rdata/);
  const query = Buffer.from(ok); query.writeUInt16BE(0x0100, 2);
  assert.throws(() => parseAnswer(query), /not a response/);
  const loop = Buffer.from(ok); loop.set([0xc0, 12], 12);
  assert.throws(() => parseAnswer(loop), /does not point back/);
});

test('restore: an entry a previous agent published is taken back (same name, same virtual address); out of pool, expired or taken refused', () => {
  let now = 1_000_000;
  const nrt = new Nrt({ lifetimeS: 300 }, () => now);
  assert.ok(nrt.restore({ name: 'bob.example.net', real: GNAT, virtual: '198.18.0.7', expiresMs: now + 100_000 }));
  assert.equal(nrt.lookupVirtual('198.18.0.7')?.name, 'bob.example.net');
  assert.equal(nrt.bind('bob.example.net', GNAT)?.virtual, '198.18.0.7', 'the next answer keeps it');
  assert.equal(nrt.restore({ name: 'carol.example.net', real: GNAT, virtual: '198.18.0.7', expiresMs: now + 100_000 }), false, 'address taken');
  assert.equal(nrt.restore({ name: 'dave.example.net', real: GNAT, virtual: '10.0.0.1', expiresMs: now + 100_000 }), false, 'outside the pool');
  assert.equal(nrt.restore({ name: 'erin.example.net', real: GNAT, virtual: '198.18.0.9', expiresMs: now - 1 }), false, 'past its life');
  now += 200_000;
  assert.equal(nrt.lookupVirtual('198.18.0.7')?.name, 'bob.example.net');
});

test('a virtual address live flows still use is never handed to another name, even after its entry expired', () => {
  let now = 1_000_000;
  const used = new Set<string>();
  const nrt = new Nrt({ lifetimeS: 10, pool: { base: '198.18.0.0', length: 30 } }, () => now);
  const nrt2 = new Nrt({ lifetimeS: 10, pool: { base: '198.18.0.0', length: 30 }, inUse: (v) => used.has(v) }, () => now);
  for (const n of [nrt, nrt2]) assert.equal(n.bind('bob.example.net', GNAT)?.virtual, '198.18.0.1');
  used.add('198.18.0.1');
  now += 20_000;  // bob's entries expired; a flow to 198.18.0.1 lives on
  assert.equal(nrt2.bind('carol.example.net', GNAT)?.virtual, '198.18.0.2', 'skips the address in use');
  assert.equal(nrt.bind('carol.example.net', GNAT)?.virtual, '198.18.0.2', 'the cursor moves on anyway');
  used.add('198.18.0.2'); used.add('198.18.0.3');
  now += 20_000;
  assert.equal(nrt2.bind('dave.example.net', GNAT), null, 'every address in use: refused (SERVFAIL), not reused');
  nrt.bind('dave.example.net', GNAT);
  assert.equal(nrt.bind('erin.example.net', GNAT)?.virtual, '198.18.0.1', 'without the check the live address would go to another name');
});
