/**
 * The GNAT's external address changes at run time (namespaces, a real BIND 9,
 * real agents; natf-topology.ts with `gnatDdns`): the GNAT runs with
 * `nat.follow` and publishes its ACT's names in the test's BIND itself.
 * alice reaches bob (private, behind the GNAT) by name; then the GNAT's
 * outside interface gets 192.0.2.22 and loses 192.0.2.2 (a DHCP renewal to
 * another address, in the order a DHCP client applies it), and the global
 * side routes the new address to it. Seen from outside:
 *  - `dig` at the BIND gives 192.0.2.22 for bob and carol (the GNAT's TSIG
 *    UPDATEs), counted as republished on the GNAT;
 *  - `gscip maps dump nat` on the GNAT names 192.0.2.22 as the external
 *    address; the session alice's first transfer left on 192.0.2.2 is gone
 *    (counted as flushed);
 *  - alice reaches bob by name again with curl, 2 MiB byte-exact by hash,
 *    through a new virtual address whose real address is 192.0.2.22.
 * alice knows 192.0.2.22 as a GNAT address from her config here (natf.gnats);
 * docs/natf.md says how a GE learns it from the GMS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sh, waitFor, waitReady } from '../lib/netns.js';
import { exited, sha256 } from './pccom-topology.js';
import { ALICE, BOB, GNAT_OUT, HTTP_PORT, NatfTopo } from './natf-topology.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig && command -v curl'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'BIND 9, dig or curl not installed (make deps)' : null;
const NEW_OUT = '192.0.2.22';
const BYTES = 2 << 20;
const VIRTUAL = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;

const HTTP_SERVER = (file: string): string => `
const http = require('http'), fs = require('fs');
const srv = http.createServer((q, r) => { const b = fs.readFileSync(${JSON.stringify(file)}); r.writeHead(200, { 'content-length': b.length }); r.end(b); });
srv.keepAliveTimeout = 100;
srv.listen(${HTTP_PORT}, ${JSON.stringify(BOB)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 110000).unref();`;

describe('NAT-f: the GNAT\'s external address changes at run time (nat.follow, BIND 9, namespaces)', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let n: NatfTopo;
  let blob: string;
  let data: Buffer;

  before(async () => {
    n = new NatfTopo('natfx', { gnatDdns: true, aliceGnats: [NEW_OUT] });
    try {
      await n.start();
      data = randomBytes(BYTES);
      blob = n.t.scratchPath(`/tmp/${n.t.prefix}-blob`);
      writeFileSync(blob, data);
      await waitReady(n.t.spawn('bob', 'node', ['-e', HTTP_SERVER(blob)]), 'bob\'s HTTP server');
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await n?.stop(); n?.cleanupSync(); });

  /** curl http://bob.example.net/ on alice: the address it connected to; the body byte-exact. */
  async function fetchByName(tag: string): Promise<string> {
    const out = n.t.scratchPath(`/tmp/${n.t.prefix}-${tag}`);
    try {
      const curl = n.appSpawn('alice', 'curl', ['-sS', '--max-time', '30', '-o', out, '-w', '%{remote_ip}', `http://bob.example.net:${HTTP_PORT}/blob`]);
      let remote = '';
      let err = '';
      curl.stdout?.on('data', (d: Buffer) => { remote += d.toString(); });
      curl.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      const rc = await exited(curl, 40_000);
      const counted = (host: 'alice' | 'gnat', re: RegExp): string => n.metrics(host).split('\n').filter((l) => re.test(l) && !l.startsWith('#') && !/ 0$/.test(l)).join('; ');
      if (rc !== 0) err += ` | alice: ${counted('alice', /natf_flows_total|dprp_negotiations_failed/)} | gnat: ${counted('gnat', /nat_inbound_mappings|dprp_messages_rejected/)}`;
      assert.equal(rc, 0, `curl: ${err}`);
      const got = readFileSync(out);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
      return remote;
    } finally { rmSync(out, { force: true }); }
  }

  const natDump = (): string => n.g.ok('gnat', ['maps', 'dump', 'nat', ...n.g.instanceArgs('gnat')]);

  test('before: the GNAT published bob and carol at 192.0.2.2; alice fetches from bob by name', async () => {
    await waitFor('bob and carol published by the GNAT', () => /gscip_nat_ddns_updates_total\{action="published",result="NOERROR"\} 2/.test(n.metrics('gnat')), 20_000, 300);
    assert.equal(n.dns.lookup('dns', 'bob'), GNAT_OUT);
    assert.match(await fetchByName('got1'), VIRTUAL);
    assert.match(natDump(), new RegExp(`^external ${GNAT_OUT.replace(/\./g, '\\.')},`));
  });

  test('the outside address changes to 192.0.2.22: DNS, the NAT config and the sessions follow; alice reaches bob by name again, byte-exact', async () => {
    const t0 = Date.now();
    n.t.exec('gnat', 'ip', ['addr', 'add', `${NEW_OUT}/32`, 'dev', 'out0']);
    n.t.exec('alice', 'ip', ['route', 'add', `${NEW_OUT}/32`, 'dev', 'eth0', 'src', ALICE]);
    n.t.exec('gnat', 'ip', ['addr', 'del', `${GNAT_OUT}/32`, 'dev', 'out0']);
    await waitFor('bob and carol at the new address in DNS', () => n.dns.lookup('dns', 'bob') === NEW_OUT && n.dns.lookup('dns', 'carol') === NEW_OUT, 20_000, 200);
    const ms = Date.now() - t0;
    assert.equal(n.dns.lookup('dns', 'dave'), GNAT_OUT, 'dave (denied, never published by the GNAT) is not touched');
    const dump = natDump();
    assert.match(dump, new RegExp(`^external ${NEW_OUT.replace(/\./g, '\\.')},`), dump);
    assert.ok(!dump.includes(`${GNAT_OUT}:`), `no session left on the old address:\n${dump}`);
    const m = n.metrics('gnat');
    assert.match(m, /gscip_nat_external_changes_total 1\b/);
    assert.match(m, /gscip_nat_ddns_updates_total\{action="republished",result="NOERROR"\} 2/);
    assert.match(m, /gscip_nat_sessions_flushed_total\{state="tcp_[a-z]+"\} [1-9]/, 'the first transfer\'s session was flushed');
    console.log(`# DNS at the new address ${ms} ms after the address change`);

    const remote = await fetchByName('got2');
    assert.match(remote, VIRTUAL, 'curl connected to a virtual address');
    const nrt = JSON.parse(n.g.ok('alice', ['maps', 'dump', 'nrt', '--json', ...n.g.instanceArgs('alice')])) as Array<{ name: string; real: string; virtual: string }>;
    assert.ok(nrt.some((e) => e.name === 'bob.example.net' && e.real === NEW_OUT && e.virtual === remote), JSON.stringify(nrt));
    const nat = JSON.parse(n.g.ok('gnat', ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs('gnat')])) as Array<{ inside: string; origin: string; external: string; peer: string }>;
    assert.ok(nat.some((s) => s.inside === `${BOB}:${HTTP_PORT}` && s.origin === 'inbound' && s.external.startsWith(`${NEW_OUT}:`) && s.peer.startsWith(`${ALICE}:`)), JSON.stringify(nat));
  });
});
