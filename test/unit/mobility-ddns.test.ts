/**
 * The RFC 2136 + TSIG encoder (controlplane/mobility/ddns.ts) without a
 * server: the UPDATE's sections byte by byte, the TSIG RR in the additional
 * section with a MAC that recomputes over the unsigned message and the TSIG
 * variables (and changes with any byte, the key or the time), an answer's
 * rcode / TSIG error / MAC read back, and bad input refused naming the field.
 * (BIND 9 accepting it: test/netns/mobility-ddns.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { DdnsError, decodeAnswer, encodeName, encodeUpdate, tsigMac } from '../../controlplane/mobility/ddns.js';
import { decodeAAnswer, encodeQuery } from '../../controlplane/mobility/dns-query.js';

const key = { name: 'ge-b', secret: Buffer.alloc(32, 7) };
const req = { zone: 'example.net', name: 'B.example.net', addr: '192.0.2.10', ttl: 30, key, id: 0x1234, nowS: 1_800_000_000, fudgeS: 300 };

test('names: wire form, lower case; a bad name is refused naming the field', () => {
  assert.deepEqual(encodeName('B.Example.net.'), Buffer.from('\x01b\x07example\x03net\x00', 'latin1'));
  assert.throws(() => encodeName('bad_name.example.net', 'name'), (e: unknown) => e instanceof DdnsError && e.field === 'name');
  assert.throws(() => encodeUpdate({ ...req, ttl: -1 }), /ttl/);
  assert.throws(() => encodeUpdate({ ...req, addr: '300.1.1.1' }), /DDNS address/);
});

test('the UPDATE: header, zone, delete-then-add, and a TSIG RR whose MAC recomputes', () => {
  const { msg, mac } = encodeUpdate(req);
  assert.equal(msg.readUInt16BE(0), 0x1234);
  assert.equal(msg.readUInt16BE(2), 5 << 11, 'opcode UPDATE');
  assert.deepEqual([4, 6, 8, 10].map((o) => msg.readUInt16BE(o)), [1, 0, 2, 1], 'ZO/PR/UP/AD counts');
  const zone = encodeName('example.net');
  const name = encodeName('b.example.net');
  let off = 12;
  assert.deepEqual(msg.subarray(off, off + zone.length), zone); off += zone.length;
  assert.deepEqual([msg.readUInt16BE(off), msg.readUInt16BE(off + 2)], [6, 1], 'SOA IN'); off += 4;
  assert.deepEqual(msg.subarray(off, off + name.length), name); off += name.length;
  assert.deepEqual([msg.readUInt16BE(off), msg.readUInt16BE(off + 2), msg.readUInt32BE(off + 4), msg.readUInt16BE(off + 8)], [1, 255, 0, 0], 'delete the A RRset'); off += 10;
  off += name.length;
  assert.deepEqual([msg.readUInt16BE(off), msg.readUInt16BE(off + 2), msg.readUInt32BE(off + 4), msg.readUInt16BE(off + 8)], [1, 1, 30, 4], 'add A IN ttl 30');
  assert.deepEqual([...msg.subarray(off + 10, off + 14)], [192, 0, 2, 10]); off += 14;
  const unsigned = Buffer.from(msg.subarray(0, off));
  unsigned.writeUInt16BE(0, 10);
  // RFC 8945 4.3.3: message, then key name, class ANY, TTL 0, algorithm, time, fudge, error, other len.
  const vars = Buffer.concat([encodeName('ge-b'), Buffer.from([0, 255, 0, 0, 0, 0]), encodeName('hmac-sha256.'), Buffer.from([0, 0]), Buffer.alloc(4), Buffer.from([1, 44, 0, 0, 0, 0])]);
  vars.writeUInt32BE(1_800_000_000, encodeName('ge-b').length + 6 + encodeName('hmac-sha256.').length + 2);
  assert.deepEqual(mac, createHmac('sha256', key.secret).update(unsigned).update(vars).digest());
  assert.deepEqual(tsigMac(key, unsigned, req.nowS, 300), mac);
  assert.notDeepEqual(encodeUpdate({ ...req, nowS: req.nowS + 1 }).mac, mac, 'the time is signed');
  assert.notDeepEqual(encodeUpdate({ ...req, key: { ...key, secret: Buffer.alloc(32, 8) } }).mac, mac, 'so is the key');
  assert.notDeepEqual(encodeUpdate({ ...req, addr: '192.0.2.11' }).mac, mac, 'and every byte');
  assert.equal(encodeUpdate({ ...req, key: undefined }).mac, null, 'unsigned: no TSIG');
  assert.equal(encodeUpdate({ ...req, key: undefined }).msg.readUInt16BE(10), 0);
});

test('a withdrawal: the delete of the A RRset only (UPCOUNT 1, no add), signed the same way', () => {
  const { msg, mac } = encodeUpdate({ ...req, withdraw: true });
  assert.deepEqual([4, 6, 8, 10].map((o) => msg.readUInt16BE(o)), [1, 0, 1, 1], 'ZO/PR/UP/AD counts');
  const zone = encodeName('example.net');
  const name = encodeName('b.example.net');
  let off = 12 + zone.length + 4;
  assert.deepEqual(msg.subarray(off, off + name.length), name); off += name.length;
  assert.deepEqual([msg.readUInt16BE(off), msg.readUInt16BE(off + 2), msg.readUInt32BE(off + 4), msg.readUInt16BE(off + 8)], [1, 255, 0, 0], 'delete the A RRset'); off += 10;
  assert.deepEqual(msg.subarray(off, off + encodeName('ge-b').length), encodeName('ge-b'), 'then the TSIG RR, nothing added');
  const unsigned = Buffer.from(msg.subarray(0, off));
  unsigned.writeUInt16BE(0, 10);
  assert.deepEqual(tsigMac(key, unsigned, req.nowS, 300), mac);
  assert.doesNotThrow(() => encodeUpdate({ ...req, addr: '', withdraw: true }), 'no address needed');
});

test('answers: rcode, TSIG error and a signed answer\'s MAC are read back', () => {
  const { mac } = encodeUpdate(req);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0x1234, 0);
  head.writeUInt16BE(0xa800 | 5, 2); // QR, opcode UPDATE, REFUSED
  assert.deepEqual(decodeAnswer(head, 0x1234, key, mac), { rcode: 'REFUSED', tsigError: null, signed: null });
  // A signed NOERROR answer built the way a server signs it (prior MAC first).
  const ok = Buffer.from(head); ok.writeUInt16BE(0xa800, 2);
  const answerMac = tsigMac(key, ok, req.nowS, 300, 0, Buffer.alloc(0), mac!);
  const tsigRdata = Buffer.concat([encodeName('hmac-sha256.'), Buffer.from([0, 0, 0x6b, 0x49, 0xd2, 0x00]), Buffer.from([1, 44, 0, 32]), answerMac, Buffer.from([0x12, 0x34, 0, 0, 0, 0])]);
  tsigRdata.writeUIntBE(req.nowS, encodeName('hmac-sha256.').length, 6);
  const rrHead = Buffer.alloc(10); rrHead.writeUInt16BE(250, 0); rrHead.writeUInt16BE(255, 2); rrHead.writeUInt16BE(tsigRdata.length, 8);
  const signed = Buffer.concat([ok, encodeName('ge-b'), rrHead, tsigRdata]); signed.writeUInt16BE(1, 10);
  assert.deepEqual(decodeAnswer(signed, 0x1234, key, mac), { rcode: 'NOERROR', tsigError: 'NOERROR', signed: true });
  assert.equal(decodeAnswer(signed, 0x1234, { ...key, secret: Buffer.alloc(32, 9) }, mac).signed, false, 'a MAC under another key does not verify');
  assert.throws(() => decodeAnswer(signed, 0x9999, key, mac), /another request/);
});

test('the rendezvous query (dns-query.ts): NAME A IN byte by byte; an answer\'s A records read (compressed names), anything else skipped or refused', () => {
  const { msg, id } = encodeQuery('b.example.net', 0xbeef);
  assert.equal(id, 0xbeef);
  // id | flags 0 | QDCOUNT 1 | 0 0 0 | 1 'b' 7 'example' 3 'net' 0 | A | IN
  assert.equal(msg.toString('hex'), 'beef' + '0000' + '0001' + '000000000000' + '0162' + '076578616d706c65' + '036e6574' + '00' + '0001' + '0001');
  // An answer: the question, a CNAME-like record of another type (skipped), then two A records with a pointer to the question's name.
  const head = Buffer.from('beef' + '8400' + '0001' + '0003' + '0000' + '0000', 'hex'); // QR AA, NOERROR, 1 question, 3 answers
  const q = msg.subarray(12);
  const rr = (type: number, rdata: Buffer) => { const f = Buffer.alloc(12); f.writeUInt16BE(0xc00c, 0); f.writeUInt16BE(type, 2); f.writeUInt16BE(1, 4); f.writeUInt32BE(30, 6); f.writeUInt16BE(rdata.length, 10); return Buffer.concat([f, rdata]); };
  const answer = Buffer.concat([head, q, rr(16, Buffer.from('\x03abc')), rr(1, Buffer.from([192, 0, 2, 10])), rr(1, Buffer.from([198, 51, 100, 7]))]);
  assert.deepEqual(decodeAAnswer(answer, 0xbeef), { rcode: 'NOERROR', addrs: ['192.0.2.10', '198.51.100.7'] });
  const nx = Buffer.from(answer.subarray(0, 12 + q.length)); nx.writeUInt16BE(0x8403, 2); nx.writeUInt16BE(0, 6);
  assert.deepEqual(decodeAAnswer(nx, 0xbeef), { rcode: 'NXDOMAIN', addrs: [] });
  assert.throws(() => decodeAAnswer(answer, 0x1111), /another query/);
  assert.throws(() => decodeAAnswer(answer.subarray(0, answer.length - 2), 0xbeef), /cut short/);
  assert.throws(() => decodeAAnswer(msg, 0xbeef), /not a response/);
  assert.throws(() => encodeQuery('not a name!'), DdnsError);
});
