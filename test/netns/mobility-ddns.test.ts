/**
 * DDNS against a real BIND 9 (test/netns/dns-server.ts) in a test namespace:
 * the TypeScript RFC 2136 + TSIG encoder (controlplane/mobility/ddns.ts),
 * run inside another namespace, replaces b.example.net's A record with its
 * key and `dig` then sees the new address; an unsigned update, one signed
 * with a wrong secret, and one signed with another GE's key (outside that
 * key's update-policy) are refused by the server and change nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Topology } from '../lib/netns.js';
import { DnsServer } from './dns-server.js';
import type { UpdateAnswer } from '../../controlplane/mobility/ddns.js';
import { sh } from '../lib/netns.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'BIND 9 not installed (make deps: bind9, bind9-dnsutils)' : null;
const DNS_ADDR = '198.51.100.53';
const DDNS = resolve(__dirname, '../../controlplane/mobility/ddns.js');

/** Runs sendUpdate inside `host`; the secret travels in the child's argv (a test key). */
function update(t: Topology, host: string, name: string, addr: string, key?: { name: string; secret: Buffer }): UpdateAnswer {
  const js = `require(${JSON.stringify(DDNS)}).sendUpdate({ zone: 'example.net', name: process.argv[1], addr: process.argv[2], ttl: 30,
    ...(process.argv[3] ? { key: { name: process.argv[3], secret: Buffer.from(process.argv[4], 'base64') } } : {}) }, ${JSON.stringify(DNS_ADDR)})
    .then((a) => console.log(JSON.stringify(a)), (e) => { console.error(e.message); process.exit(1); });`;
  const r = t.exec(host, 'node', ['-e', js, name, addr, ...(key ? [key.name, key.secret.toString('base64')] : [])], { timeoutMs: 15_000 });
  return JSON.parse(r.stdout.trim()) as UpdateAnswer;
}

describe('DDNS: RFC 2136 + TSIG updates against BIND 9 (namespaces)', { skip: unavailable ?? false, timeout: 60_000 }, () => {
  let t: Topology;
  let dns: DnsServer;

  before(async () => {
    t = new Topology('ddns');
    try {
      t.addHost('dns'); t.addHost('cl');
      t.link('dns', 'd0', 'cl', 'c0');
      t.addr('dns', 'd0', `${DNS_ADDR}/24`);
      t.addr('cl', 'c0', '198.51.100.20/24');
      dns = new DnsServer(t, 'dns', DNS_ADDR, { b: '198.51.100.10', other: '198.51.100.99' });
      await dns.start();
    } catch (e) { t.cleanupSync(); throw e; }
  });
  after(async () => { await dns?.stop(); t?.cleanupSync(); });

  test('an update signed with b\'s key replaces b.example.net and dig sees it; the answer is signed', () => {
    assert.equal(dns.lookup('cl', 'b'), '198.51.100.10');
    const k = dns.keys.get('b')!;
    const a = update(t, 'cl', 'b.example.net', '192.0.2.10', { name: k.keyName, secret: k.secret });
    assert.deepEqual(a, { rcode: 'NOERROR', tsigError: 'NOERROR', signed: true });
    assert.equal(dns.lookup('cl', 'b'), '192.0.2.10');
  });

  test('unsigned, wrong-secret and out-of-policy updates are refused and change nothing', () => {
    const before = dns.lookup('cl', 'b');
    assert.equal(update(t, 'cl', 'b.example.net', '192.0.2.66').rcode, 'REFUSED', 'unsigned');
    const bad = update(t, 'cl', 'b.example.net', '192.0.2.67', { name: 'ge-b', secret: randomBytes(32) });
    assert.equal(bad.rcode, 'NOTAUTH', 'wrong secret');
    assert.equal(bad.tsigError, 'BADSIG');
    const other = dns.keys.get('other')!;
    assert.equal(update(t, 'cl', 'b.example.net', '192.0.2.68', { name: other.keyName, secret: other.secret }).rcode, 'REFUSED', 'another GE\'s key: outside its update-policy');
    assert.equal(dns.lookup('cl', 'b'), before);
    assert.equal(dns.lookup('cl', 'other'), '198.51.100.99');
  });
});
