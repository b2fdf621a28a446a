/**
 * NAT-f's resource refusals end to end (issue 13 item 5; natf-topology.ts
 * with a virtual pool of three addresses and a GNAT NAT table of four
 * sessions): each is refused with a counted reason and the application fails
 * promptly, never hangs.
 *
 *  - the virtual pool exhausted: the fourth name's answer is a SERVFAIL with
 *    no address (getent fails at once), counted servfail_pool_exhausted;
 *  - the GNAT's NAT table full: the fifth fresh connection to bob is refused
 *    by the GNAT (table_full) and the application gets EHOSTUNREACH at once
 *    (an ICMP unreachable from the virtual address), no SYN retransmitted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sh, waitFor } from '../lib/netns.js';
import { exited } from './pccom-topology.js';
import { BOB, HTTP_PORT, NatfTopo } from './natf-topology.js';

const TOOLS = sh('sh', ['-c', 'command -v named'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !TOOLS ? 'BIND 9 not installed (make deps)' : null;
const VIRTUAL = /^198\.18\.0\.[1-3]$/;

const CONNECTS = (host: string, n: number): string => `
const net = require('net'); const out = [];
(async () => {
  for (let i = 0; i < ${n}; i++) {
    const t0 = Date.now();
    out.push(await new Promise((ok) => { const s = net.connect({ host: ${JSON.stringify(host)}, port: ${HTTP_PORT} }); s.setTimeout(8000);
      s.on('connect', () => { s.destroy(); ok({ r: 'ok', ms: Date.now() - t0 }); }); s.on('timeout', () => { s.destroy(); ok({ r: 'timeout', ms: Date.now() - t0 }); });
      s.on('error', (e) => ok({ r: e.code, ms: Date.now() - t0 })); }));
  }
  console.log(JSON.stringify(out)); process.exit(0);
})();`;

describe('NAT-f refusals: exhausted virtual pool, full NAT table at the GNAT', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let n: NatfTopo;
  before(async () => {
    n = new NatfTopo('natfdn', { pool: '198.18.0.0/30', maxSessions: 4 });
    try {
      await n.start();
      const p = n.t.spawn('bob', 'node', ['-e', `require('net').createServer((c) => c.end()).listen(${HTTP_PORT}, ${JSON.stringify(BOB)}, () => console.log('ready')); setTimeout(() => process.exit(3), 100000).unref();`]);
      let o = '';
      p.stdout?.on('data', (d: Buffer) => { o += d.toString(); });
      await waitFor('bob\'s server', () => o.includes('ready'), 5000);
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await n?.stop(); n?.cleanupSync(); });

  test('the pool of three is used up by three names; the fourth name fails at once (SERVFAIL, counted)', () => {
    for (const name of ['bob', 'frank', 'gina']) {
      assert.match(n.appExec('alice', 'getent', ['ahostsv4', `${name}.example.net`]).stdout.trim().split(/\s+/)[0], VIRTUAL, name);
    }
    const t0 = Date.now();
    const r = n.appExec('alice', 'getent', ['ahostsv4', 'hank.example.net'], { allowFail: true });
    assert.notEqual(r.code, 0, 'no address for the fourth name');
    assert.equal(r.stdout.trim(), '', 'and none at all (not the GNAT\'s)');
    assert.ok(Date.now() - t0 < 5000, `failed in ${Date.now() - t0} ms`);
    assert.match(n.appExec('alice', 'dig', ['hank.example.net', 'A']).stdout, /status: SERVFAIL/);
    assert.match(n.metrics('alice'), /gscip_natf_dns_answers_total\{result="servfail_pool_exhausted"\} [1-9]/);
  });

  test('the GNAT\'s table of four: four connections, the fifth refused at once (EHOSTUNREACH), counted table_full', async () => {
    const v = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    const p = n.appSpawn('alice', 'node', ['-e', CONNECTS(v, 5)]);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    assert.equal(await exited(p, 60_000), 0);
    const res = JSON.parse(out.trim()) as Array<{ r: string; ms: number }>;
    assert.deepEqual(res.map((x) => x.r), ['ok', 'ok', 'ok', 'ok', 'EHOSTUNREACH'], out);
    assert.ok(res[4].ms < 1000, `refused in ${res[4].ms} ms`);
    assert.match(n.metrics('gnat'), /gscip_nat_inbound_mappings_total\{result="table_full"\} 1/);
    assert.match(n.metrics('alice'), /gscip_natf_flows_total\{result="refused_by_gnat"\} 1/);
  });
});
