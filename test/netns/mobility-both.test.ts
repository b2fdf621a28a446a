/**
 * Mobile PPC, both ends move at once (docs/mobility.md "Both ends move"), on
 * the real datapath (mobility-topology.ts with `aMoves`): a and b are both
 * mobile GESs, each behind a switch with two routers. Mid-way through a 6 MiB
 * TCP transfer b -> a and a UDP exchange, both old paths are cut and both
 * get new addresses, so each end's CU to the other's old address is lost.
 * BIND 9 on rc holds both names; each GE's DDNS updates its own, and each GE
 * asks it (the rendezvous) where the peer went.
 *  - the transfer completes byte-exact (SHA-256), no socket error, no RST on
 *    a's interface; a's application still sees b's first address;
 *  - the CU reached the peer only after being re-addressed (a redirect is
 *    counted, via the rendezvous or the peer's own CU);
 *  - `gscip maps dump cit` shows the flows as moved at both ends on both GEs;
 *  - the capture on the new paths never carries the plaintext marker.
 * Without the rendezvous (mobility.rendezvous unset) the flows stay split and
 * the transfer stalls (checked: see docs/mobility.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { sh, waitFor } from '../lib/netns.js';
import { startEchoServer } from '../lib/net-apps.js';
import { exited, MARKER, markedData, sha256 } from './pccom-topology.js';
import { A_NEW, A_OLD, B_NEW, B_OLD, MobilityTopo, RC_LO } from './mobility-topology.js';
import { transferAcrossMove, capture, count, PINGER, Pinger, SINK, SOURCE, UDP_PORT } from './mobility-apps.js';
import { dumpCit } from '../../controlplane/cli/commands/maps.js';
import { DnsServer } from './dns-server.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const unavailable = bpfUnavailable() ?? (NAMED ? null : 'BIND 9 (named, dig) not installed: the rendezvous needs it');
const BYTES = 6 << 20;
const WITHOUT_RENDEZVOUS = process.env.GSCIP_TEST_MPPC_NO_RENDEZVOUS === '1';

describe('Mobile PPC: both ends move at once; the rendezvous (DNS) recovers the flows (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: MobilityTopo;
  let pinger: Pinger;
  let dns: DnsServer;
  const key = randomBytes(32);

  before(async () => {
    p = new MobilityTopo('mppc2', { aMoves: true });
    dns = new DnsServer(p.topo, 'rc', RC_LO, { a: A_OLD, b: B_OLD });
    await dns.start();
    const cfg = (h: 'a' | 'b') => {
      const k = dns.keys.get(h)!;
      writeFileSync(`${dns.dir}/ge-${h}.key`, k.secret.toString('base64'), { mode: 0o600 });
      return {
        ddns: { server: RC_LO, zone: 'example.net', name: `${h}.example.net`, keyName: k.keyName, keyFile: `${dns.dir}/ge-${h}.key` },
        ...(WITHOUT_RENDEZVOUS ? {} : { rendezvous: { server: RC_LO, names: ['a.example.net', 'b.example.net'] } }),
      };
    };
    await p.startGe('a', { keys: [[1, 1, key]], mobilityConfig: cfg('a') });
    await p.startGe('b', { keys: [[1, 1, key]], mobilityConfig: cfg('b') });
    await startEchoServer(p.topo, 'a', A_OLD, 7301, UDP_PORT, 170_000);
    pinger = new Pinger(p.topo.spawn('b', 'node', ['-e', PINGER(A_OLD, B_OLD)]));
    await pinger.more(5, 10_000);
  });
  after(async () => { await dns?.stop(); await p?.cleanup(); });

  test('TCP (6 MiB) and UDP go on across both moves, byte-exact, no RST, ciphertext only on the new paths', async () => {
    const newPathB = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
    const newPathA = await capture(p, 'ra2', 'lan', 'tcp or udp or icmp');
    const rsts = await capture(p, 'a', 'va', 'tcp[tcpflags] & tcp-rst != 0');
    try {
      await transferAcrossMove(p, 'b', A_OLD, BYTES, () => p.moveBoth());
      const after = await pinger.more(20, 15_000);
      assert.ok(after.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), `a's application still sees b's first address: ${after[0]}`);
    } finally {
      const capB = await newPathB.stop();
      const capA = await newPathA.stop();
      const rst = await rsts.stop();
      assert.equal(rst.length, 24, 'no RST crossed a\'s interface (the capture holds only its header)');
      assert.ok(capB.length > 1 << 20 && capA.length > 1 << 20, `the new paths carried the transfer (${capB.length}, ${capA.length} bytes captured)`);
      assert.equal(count(capB, MARKER) + count(capA, MARKER), 0, 'no plaintext marker on the new paths');
    }
    const redirected = p.metric('a', 'gscip_mobility_cu_redirected_total') + p.metric('b', 'gscip_mobility_cu_redirected_total');
    assert.ok(redirected >= 1, `a CU was re-addressed to where the peer is now (${redirected})`);
    assert.ok(p.metric('a', 'gscip_mobility_rendezvous_lookups_total{result="moved"}') + p.metric('b', 'gscip_mobility_rendezvous_lookups_total{result="moved"}') >= 1, 'the rendezvous said where the peer went');
    for (const [h, local, peer, lNew, pNew] of [['a', A_OLD, B_OLD, A_NEW, B_NEW], ['b', B_OLD, A_OLD, B_NEW, A_NEW]] as const) {
      const m = p.ges.maps(h);
      try {
        const view = JSON.parse(dumpCit(m, true)) as Array<{ proto: string; local: string; end: string; old: string; new: string }>;
        const tcp = view.filter((r) => r.proto === 'tcp' && r.end === 'both');
        assert.equal(tcp.length, 1, `\`gscip maps dump cit\` on ${h}: the TCP flow moved at both ends: ${JSON.stringify(view)}`);
        assert.ok(tcp[0].old.startsWith(`${local}:`) && tcp[0].old.includes(`>${peer}:`), tcp[0].old);
        assert.ok(tcp[0].new.startsWith(`${lNew}:`) && tcp[0].new.includes(`>${pNew}:`), tcp[0].new);
      } finally { m.close(); }
    }
    assert.equal(p.metric('a', 'gscip_mobility_cu_refused_total') + p.metric('b', 'gscip_mobility_cu_refused_total'), 0, 'no CU refused');
  });

  test('DDNS: both names resolve to the new addresses', async () => {
    await waitFor('dig sees both new addresses', () => dns.lookup('rc', 'a') === A_NEW && dns.lookup('rc', 'b') === B_NEW, 15_000, 200);
  });
});
