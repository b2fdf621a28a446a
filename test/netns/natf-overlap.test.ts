/**
 * NAT-f with overlapping private networks (issue 13 item 6; natf-topology.ts
 * with `second`): two GNATs (192.0.2.2 and 192.0.2.4) whose private hosts
 * are both 100.64.1.10 (bob behind the first, erin behind the second), both
 * reached by name from alice at once. Each name gets its own virtual address;
 * concurrent requests to both reach the right host every time (each answers
 * with its own name); alice's VAT holds flows toward both GNATs and each
 * GNAT's NAT maps its own 100.64.1.10.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sh, waitFor } from '../lib/netns.js';
import { exited } from './pccom-topology.js';
import { ALICE, BOB, GNAT2_OUT, GNAT_OUT, HTTP_PORT, NatfTopo } from './natf-topology.js';

const TOOLS = sh('sh', ['-c', 'command -v named && command -v curl'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !TOOLS ? 'BIND 9 or curl not installed (make deps)' : null;
const VIRTUAL = /^198\.1[89]\.\d{1,3}\.\d{1,3}$/;
const SERVER = (who: string): string => `
require('http').createServer((q, r) => { r.end('hello from ${who}\\n'); }).listen(${HTTP_PORT}, ${JSON.stringify(BOB)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 110000).unref();`;

describe('NAT-f: two GNATs whose private hosts share 100.64.1.10, both reached at once', { skip: unavailable ?? false, timeout: 150_000 }, () => {
  let n: NatfTopo;
  before(async () => {
    n = new NatfTopo('natfov', { second: true });
    try {
      await n.start();
      for (const who of ['bob', 'erin']) {
        const p = n.t.spawn(who, 'node', ['-e', SERVER(who)]);
        let out = '';
        p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
        await waitFor(`${who}'s server`, () => out.includes('ready'), 5000);
      }
    } catch (e) { await n?.stop(); n?.cleanupSync(); throw e; }
  });
  after(async () => { await n?.stop(); n?.cleanupSync(); });

  test('distinct virtual addresses; 2 x 20 concurrent requests each reach their own host; both GNATs map their 100.64.1.10', async () => {
    const vb = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout.trim().split(/\s+/)[0];
    const ve = n.appExec('alice', 'getent', ['ahostsv4', 'erin.example.net']).stdout.trim().split(/\s+/)[0];
    assert.match(vb, VIRTUAL);
    assert.match(ve, VIRTUAL);
    assert.notEqual(vb, ve, 'one virtual address per (name, GNAT)');
    const runs = ['bob', 'erin'].map((who) => {
      const script = `for i in $(seq 1 20); do curl -sS --max-time 10 http://${who}.example.net:${HTTP_PORT}/ || echo FAIL; done`;
      const p = n.appSpawn('alice', 'sh', ['-c', script]);
      let out = '';
      p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      return exited(p, 100_000).then((rc) => ({ who, rc, out }));
    });
    for (const r of await Promise.all(runs)) {
      assert.equal(r.rc, 0);
      const lines = r.out.trim().split('\n');
      assert.equal(lines.length, 20, r.out);
      assert.ok(lines.every((l) => l === `hello from ${r.who}`), `every answer from ${r.who}: ${r.out}`);
    }
    const vat = JSON.parse(n.g.ok('alice', ['maps', 'dump', 'vat', '--json', ...n.g.instanceArgs('alice')])) as Array<{ stack: string; wire: string }>;
    assert.ok(vat.some((v) => v.stack.includes(`>${vb}:`) && v.wire.includes(`>${GNAT_OUT}:`)), 'flows to bob go to the first GNAT');
    assert.ok(vat.some((v) => v.stack.includes(`>${ve}:`) && v.wire.includes(`>${GNAT2_OUT}:`)), 'flows to erin go to the second');
    for (const g of ['gnat', 'gnat2']) {
      const nat = JSON.parse(n.g.ok(g, ['maps', 'dump', 'nat', '--json', ...n.g.instanceArgs(g)])) as Array<{ inside: string; origin: string; peer: string }>;
      assert.ok(nat.filter((s) => s.inside === `${BOB}:${HTTP_PORT}` && s.origin === 'inbound' && s.peer.startsWith(`${ALICE}:`)).length >= 20, `${g}: ${nat.length} sessions`);
    }
  });
});
