/**
 * NAT-f end to end (namespaces, real BIND 9, real agents; natf-topology.ts):
 * alice on the global side reaches bob, a private host (100.64.1.10) behind
 * the GNAT, by name, encrypted, with no port forward.
 *
 *  - unmodified applications on alice (getent, dig over UDP and TCP) get a
 *    virtual address from 198.18.0.0/15 for bob.example.net; a name that is
 *    not at a GNAT keeps its address;
 *  - a TCP answer the server splits over several segments is rewritten too;
 *  - curl http://bob.example.net:8080/blob fetches 6 MiB byte-exact; a
 *    capture on the GNAT's global leg holds no private address, no plaintext
 *    marker, and only alice <-> 192.0.2.2 for the flow;
 *  - `gscip maps dump nrt|vat` on alice and `act|nat` on the GNAT show it;
 *  - a name the ACT denies fails promptly (curl exits 7 in well under a second
 *    of negotiation, no retransmission of the SYN), counted on both sides;
 *  - 1,000 fresh first connects by the virtual address: zero failures, zero
 *    SYN retransmissions (alice's TcpRetransSegs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sh, waitReady } from '../lib/netns.js';
import { ipv4Records, readPcapFile } from '../../controlplane/lab/pcap.js';
import { exited, sha256 } from './pccom-topology.js';
import { ALICE, ALICE_DNS_SIDE, BOB, DNS_ADDR, GNAT_OUT, GLOB, HTTP_PORT, NatfTopo } from './natf-topology.js';
import { isPrivate } from './nat-topology.js';
import { markedData } from './natf-apps.js';
import { Capture } from '../lib/capture.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig && command -v curl'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'BIND 9, dig or curl not installed (make deps)' : null;
const MARKER = 'NATF-PLAINTEXT-MARKER-7f3a';
const BYTES = 6 << 20;

/** bob's service: GET /blob serves the file; any other connection is accepted and closed (first-connect counts). */
const HTTP_SERVER = (file: string): string => `
const http = require('http'), fs = require('fs');
const srv = http.createServer((q, r) => {
  if (q.url === '/blob') { const b = fs.readFileSync(${JSON.stringify(file)}); r.writeHead(200, { 'content-length': b.length }); r.end(b); return; }
  r.writeHead(200, { 'content-type': 'text/plain' }); r.end('hello from bob ' + q.socket.remoteAddress + ':' + q.socket.remotePort + '\\n');
});
srv.keepAliveTimeout = 100;
srv.listen(${HTTP_PORT}, ${JSON.stringify(BOB)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 170000).unref();`;

/** gscip_natf_dns_answers_total{result} in an agent's metrics text (0 when absent). */
function answersCount(metrics: string, result: string): number {
  const m = new RegExp(`gscip_natf_dns_answers_total\\{result="${result}"\\} (\\d+)`).exec(metrics);
  return m ? Number(m[1]) : 0;
}

/** N fresh TCP connects to host:port, `par` at a time; prints {ok, failed, ms}. */
const CONNECTS = (host: string, port: number, n: number, par: number): string => `
const net = require('net');
let next = 0, ok = 0, failed = 0, errs = {}; const t0 = Date.now();
function one() {
  if (next >= ${n}) return;
  next++;
  const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port} });
  s.setTimeout(5000);
  const done = (good, why) => { if (s.destroyed && s.__done) return; s.__done = true; if (good) ok++; else { failed++; errs[why] = (errs[why] || 0) + 1; } s.destroy(); if (ok + failed === ${n}) { console.log(JSON.stringify({ ok, failed, errs, ms: Date.now() - t0 })); process.exit(0); } else one(); };
  s.on('connect', () => done(true));
  s.on('timeout', () => done(false, 'timeout'));
  s.on('error', (e) => done(false, e.code));
}
for (let i = 0; i < ${par}; i++) one();
setTimeout(() => { console.log(JSON.stringify({ ok, failed, errs, ms: Date.now() - t0, timedOut: true })); process.exit(0); }, 100000).unref();`;

const VIRTUAL = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;
const UDP_PORT = 5300;
const UDP_ECHO = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => d.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
d.bind(${UDP_PORT}, ${JSON.stringify(BOB)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 170000).unref();`;
/** Three datagrams to bob's echo by name; prints each reply with the address it came from. */
const UDP_CLIENT = `
const d = require('dgram').createSocket('udp4'); const got = [];
d.on('message', (m, r) => { got.push(r.address + ' ' + m.toString()); if (got.length === 3) { console.log(JSON.stringify(got)); process.exit(0); } });
require('dns').lookup('bob.example.net', { family: 4 }, (e, a) => { if (e) { console.log('lookup ' + e.code); process.exit(1); }
  d.connect(${UDP_PORT}, a, () => { for (let i = 0; i < 3; i++) setTimeout(() => d.send('datagram-' + i), i * 50); }); });
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 8000).unref();`;

/** Five datagrams on a connected UDP socket to a name the ACT denies, 100 ms apart; prints how long each took to fail (ms, -1: no error). */
const UDP_DENIED = `
const d = require('dgram').createSocket('udp4'); const took = []; let sentAt = 0; let i = 0;
const next = () => { if (i === 5) { console.log(JSON.stringify(took)); process.exit(0); } took.push(-1); sentAt = performance.now(); d.send('denied-' + i++, (e) => { if (e) fail(e); }); setTimeout(next, 100); };
const fail = (e) => { if (e.code === 'EHOSTUNREACH' && took[took.length - 1] === -1) took[took.length - 1] = Math.round(performance.now() - sentAt); };
d.on('error', fail);
require('dns').lookup('dave.example.net', { family: 4 }, (e, a) => { if (e) { console.log('lookup ' + e.code); process.exit(1); } d.connect(${UDP_PORT}, a, next); });
setTimeout(() => { console.log(JSON.stringify(took)); process.exit(0); }, 8000).unref();`;

describe('NAT-f: a global host reaches a private host behind a GNAT by name (BIND 9, namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let n: NatfTopo;
  let blob: string;
  let data: Buffer;

  before(async () => {
    n = new NatfTopo('natf');
    try {
      await n.start();
      data = markedData(BYTES, MARKER);
      blob = n.t.scratchPath(`/tmp/${n.t.prefix}-blob`);
      writeFileSync(blob, data);
      await waitReady(n.t.spawn('bob', 'node', ['-e', HTTP_SERVER(blob)]), 'bob\'s HTTP server');
      await waitReady(n.t.spawn('bob', 'node', ['-e', UDP_ECHO]), 'bob\'s UDP echo');
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await n?.stop(); n?.cleanupSync(); });

  test('the system resolver gives alice a virtual address for bob (UDP and TCP answers); other names keep theirs', () => {
    const getent = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    assert.match(getent, VIRTUAL, `getent: ${getent}`);
    const udp = n.appExec('alice', 'dig', ['+short', '+time=2', '+tries=2', 'bob.example.net', 'A']).stdout.trim();
    assert.equal(udp, getent, 'the same name gets the same virtual address');
    const tcp = n.appExec('alice', 'dig', ['+tcp', '+short', '+time=2', '+tries=2', 'bob.example.net', 'A']).stdout.trim();
    assert.equal(tcp, getent, 'an answer over TCP is rewritten too');
    const ttl = Number(n.appExec('alice', 'dig', ['+noall', '+answer', 'bob.example.net', 'A']).stdout.trim().split(/\s+/)[1]);
    assert.ok(ttl <= 60, `TTL capped (${ttl})`);
    assert.equal(n.appExec('alice', 'dig', ['+short', 'glob.example.net', 'A']).stdout.trim(), GLOB, 'a name not at a GNAT is untouched');
    // The real address as the resolver answers it, asked from the DNS server's own namespace.
    assert.equal(n.dns.lookup('dns', 'bob'), GNAT_OUT);
    const m = n.metrics('alice');
    assert.match(m, /gscip_natf_dns_answers_total\{result="rewritten"\} [1-9]/);
    assert.match(m, /gscip_natf_dns_answers_total\{result="untouched"\} [1-9]/);
  });

  test('a TCP answer split over several segments (alice advertises the least MSS to the DNS server) is rewritten too', async () => {
    // Only for this test: segments from the DNS server carry at most 76 bytes (the kernel's least MSS, 88, less the timestamps option).
    // veth hands a GSO packet over whole: the server's segmentation offload goes off, so they are real segments.
    n.t.exec('alice', 'ip', ['route', 'add', `${DNS_ADDR}/32`, 'dev', 'd0', 'src', ALICE_DNS_SIDE, 'advmss', '48']);
    n.t.exec('dns', 'ethtool', ['-K', 'dns0', 'tso', 'off', 'gso', 'off']);
    const pcap = n.t.scratchPath(`/tmp/${n.t.prefix}-dns.pcap`);
    let cap: Capture | null = null;
    try {
      cap = await Capture.start(n.t, { host: 'dns', iface: 'dns0', file: pcap, filter: 'tcp and src port 53' });
      const want = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
      const before = answersCount(n.metrics('alice'), 'rewritten');
      const tcp = n.appExec('alice', 'dig', ['+tcp', '+short', '+time=2', '+tries=1', 'bob.example.net', 'A']).stdout.trim();
      assert.equal(tcp, want, 'the split answer carries the virtual address');
      assert.equal(n.appExec('alice', 'dig', ['+tcp', '+short', '+time=2', '+tries=1', 'glob.example.net', 'A']).stdout.trim(), GLOB, 'a split answer not at a GNAT passes as it was');
      assert.ok(answersCount(n.metrics('alice'), 'rewritten') > before, 'counted as rewritten');
    } finally {
      await cap?.stop(3000);
      n.t.exec('alice', 'ip', ['route', 'del', `${DNS_ADDR}/32`, 'dev', 'd0']);
      n.t.exec('dns', 'ethtool', ['-K', 'dns0', 'tso', 'on', 'gso', 'on']);
    }
    const sizes = ipv4Records(readPcapFile(cap!.pcap())).map((r) => {
      const ip = r.record.subarray(14);  // an Ethernet capture
      const ihl = (ip[0] & 0xf) * 4;
      return ip.readUInt16BE(2) - ihl - (ip[ihl + 12] >> 4) * 4;
    }).filter((x) => x > 0);
    rmSync(pcap, { force: true });
    assert.ok(sizes.length >= 4 && Math.max(...sizes) <= 76, `the server sent each of the two answers in more than one segment (${sizes.join(',')})`);
  });

  test('curl http://bob.example.net: 6 MiB byte-exact; the global leg carries ciphertext only, no private address', async () => {
    const pcap = n.t.scratchPath(`/tmp/${n.t.prefix}-global.pcap`);
    const cap = await Capture.start(n.t, { host: 'gnat', iface: 'out0', file: pcap, filter: 'ip' });
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-got`);
    let curlRc: number | null;
    try {
      const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '60', '-o', out, '-w', '%{remote_ip}', `http://bob.example.net:${HTTP_PORT}/blob`]);
      let remote = '';
      let err = '';
      curl.stdout?.on('data', (d: Buffer) => { remote += d.toString(); });
      curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      curlRc = await exited(curl, 70_000);
      assert.equal(curlRc, 0, `curl: ${err}`);
      assert.match(remote, VIRTUAL, 'curl connected to the virtual address');
      const got = readFileSync(out);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally {
      await new Promise((r) => setTimeout(r, 200));
      await cap.stop(3000);
      rmSync(out, { force: true });
    }
    const raw = cap.pcap();
    const recs = ipv4Records(readPcapFile(raw));
    rmSync(pcap, { force: true });
        const virt = (a: string): boolean => VIRTUAL.test(a);
    assert.ok(recs.length > 100, `the capture holds the transfer (${recs.length} packets)`);
    assert.equal(recs.filter((r) => isPrivate(r.src) || isPrivate(r.dst) || virt(r.src) || virt(r.dst)).length, 0, 'no private or virtual address on the global leg');
    const http = recs.filter((r) => r.proto === 6);
    assert.ok(http.every((r) => (r.src === ALICE && r.dst === GNAT_OUT) || (r.src === GNAT_OUT && r.dst === ALICE)), 'the flow is alice <-> the GNAT only');
    assert.ok(!raw.includes(Buffer.from(MARKER)), 'no plaintext marker on the global leg (PCCOM)');
    assert.ok(!raw.includes(Buffer.from('HTTP/1.1')), 'no plaintext HTTP on the global leg');
    const g = n.metrics('gnat');
    assert.match(g, /gscip_nat_inbound_mappings_total\{result="created"\} [1-9]/);
  });

  test('UDP by name too: datagrams to bob\'s echo through the GNAT, answers from the virtual address', async () => {
    const p = n.appSpawn('alice', 'node', ['-e', UDP_CLIENT]);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    assert.equal(await exited(p, 15_000), 0, out);
    const got = JSON.parse(out.trim()) as string[];
    assert.equal(got.length, 3, out);
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    assert.deepEqual(got.sort(), [0, 1, 2].map((i) => `${v} echo:datagram-${i}`));
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as Array<{ proto: string; inside: string; origin: string }>;
    assert.ok(nat.some((s) => s.proto === 'udp' && s.inside === `${BOB}:${UDP_PORT}` && s.origin === 'inbound'), JSON.stringify(nat));
  });

  test('`gscip maps dump nrt|vat` on alice and `dump nat` on the GNAT show the name, the virtual address and the mapping', () => {
    const nrt = JSON.parse(n.g.ok('alice', ['maps', 'dump', 'nrt', '--json', ...n.g.instanceArgs('alice')])) as Array<{ name: string; real: string; virtual: string }>;
    const e = nrt.find((x) => x.name === 'bob.example.net');
    assert.ok(e, JSON.stringify(nrt));
    assert.equal(e.real, GNAT_OUT);
    assert.match(e.virtual, VIRTUAL);
    const vat = JSON.parse(n.g.ok('alice', ['maps', 'dump', 'vat', '--json', ...n.g.instanceArgs('alice')])) as Array<{ stack: string; wire: string }>;
    assert.ok(vat.some((v) => v.stack.includes(`${e.virtual}:${HTTP_PORT}`) && v.wire.includes(`${GNAT_OUT}:`)), JSON.stringify(vat));
    const act = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'act', '--json', ...n.g.instanceArgs('gnat')])) as Array<{ name: string; outsideAccess: string; source: string }>;
    assert.deepEqual(act.map((x) => `${x.name}:${x.outsideAccess}:${x.source}`), ['bob.example.net:allow:config', 'carol.example.net:allow:config', 'dave.example.net:deny:config']);
    assert.match(n.g.ok('alice', ['maps', 'dump', 'nrt', ...n.g.instanceArgs('alice')]), /bob\.example\.net\s+192\.0\.2\.2\s+198\.1[89]\./);
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as Array<{ inside: string; origin: string; peer: string }>;
    assert.ok(nat.some((s) => s.inside === `${BOB}:${HTTP_PORT}` && s.origin === 'inbound' && s.peer.startsWith(`${ALICE}:`)), JSON.stringify(nat));
  });

  test('a name the ACT denies fails promptly: no hang, no SYN retransmitted, counted on both sides', async () => {
    const before = retrans(n);
    const t0 = Date.now();
    const r = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://dave.example.net:${HTTP_PORT}/`], { allowFail: true });
    const ms = Date.now() - t0;
    assert.equal(r.code, 7, `curl could not connect (exit 7): ${r.stderr}`);
    assert.ok(ms < 3000, `failed in ${ms} ms`);
    assert.equal(retrans(n) - before, 0, 'no SYN retransmitted');
    assert.match(n.metrics('gnat'), /gscip_nat_inbound_mappings_total\{result="outside_access_denied"\} 1/);
    assert.match(n.metrics('alice'), /gscip_natf_flows_total\{result="refused_by_gnat"\} 1/);
    // carol is allowed only to group 11, which alice does not hold.
    const c = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://carol.example.net:${HTTP_PORT}/`], { allowFail: true });
    assert.equal(c.code, 7);
    assert.match(n.metrics('gnat'), /gscip_nat_inbound_mappings_total\{result="not_member"\} 1/);
  });

  test('UDP to a name the ACT denies: each datagram on a connected socket fails (EHOSTUNREACH); after the first, at once and without asking the GNAT again', async () => {
    const count = (m: string, re: RegExp): number => Number(re.exec(m)?.[1] ?? 0);
    const deniedAtGnat = (): number => count(n.metrics('gnat'), /gscip_nat_inbound_mappings_total\{result="outside_access_denied"\} (\d+)/);
    const gnat0 = deniedAtGnat();
    const p = n.appSpawn('alice', 'node', ['-e', UDP_DENIED]);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    assert.equal(await exited(p, 15_000), 0, out);
    const took = JSON.parse(out.trim()) as number[];
    assert.equal(took.length, 5, out);
    assert.ok(took.every((ms) => ms >= 0), `every datagram's send failed with EHOSTUNREACH: ${out}`);
    assert.equal(deniedAtGnat() - gnat0, 1, 'the GNAT was asked once, for the first datagram (the refusal is held for the rest)');
    assert.ok(count(n.metrics('alice'), /gscip_natf_flows_total\{result="refusal_held"\} (\d+)/) >= 4, 'the other four answered from the held refusal');
  });

  test('alice\'s agent killed mid-transfer and restarted: the transfer completes byte-exact; the cached virtual address still reaches bob', async () => {
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    await new Promise((r) => setTimeout(r, 700));  // the NRT is published (natf.sweepMs 500)
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-got2`);
    const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '60', '--limit-rate', '2M', '-o', out, `http://${v}:${HTTP_PORT}/blob`]);
    let err = '';
    curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    await new Promise((r) => setTimeout(r, 800));
    await n.restartAlice('SIGKILL');
    assert.equal(await exited(curl, 70_000), 0, `curl: ${err}`);
    assert.equal(sha256(readFileSync(out)), sha256(data), 'byte-exact across the crash and restart');
    rmSync(out, { force: true });
    const again = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://${v}:${HTTP_PORT}/`], { allowFail: true });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^hello from bob /, 'a new flow to the virtual address the application kept');
  });

  test('1,000 fresh first connects through the GNAT: zero failures, zero SYN retransmissions', async () => {
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    const before = retrans(n);
    const p = n.t.spawn('alice', 'node', ['-e', CONNECTS(v, HTTP_PORT, 1000, 4)]);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    assert.equal(await exited(p, 110_000), 0);
    const res = JSON.parse(out.trim()) as { ok: number; failed: number; errs: Record<string, number>; ms: number };
    assert.deepEqual({ ok: res.ok, failed: res.failed, errs: res.errs }, { ok: 1000, failed: 0, errs: {} }, `in ${res.ms} ms`);
    assert.equal(retrans(n) - before, 0, 'no SYN retransmitted (TcpRetransSegs on alice)');
  });
});

function retrans(n: NatfTopo): number {
  const out = n.t.exec('alice', 'nstat', ['-az', 'TcpRetransSegs']).stdout;
  const m = /TcpRetransSegs\s+(\d+)/.exec(out);
  return m ? Number(m[1]) : 0;
}
