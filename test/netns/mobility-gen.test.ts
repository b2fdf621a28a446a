/**
 * Mobile PPC for a subnet: a GEN's outside address changes and the Terms
 * behind it keep their connections (docs/mobility.md "A GEN's outside address
 * changes"), on the real datapath (mobility-topology.ts with `termBehindB`):
 * b is a GEN whose inside (Term t, 100.64.9.0/24) it source-NATs to its
 * outside address (`mobility.subnetNat`); a is a stationary GES. Mid-way
 * through a 6 MiB TCP transfer t -> a and a UDP exchange of t with a, b's
 * outside interface moves from r1's subnet to r2's.
 *  - the transfer completes byte-exact, t's source sees no socket error, no
 *    RST on a's interface; a's application still sees b's first address;
 *  - the capture on the new path carries the transfer, never the plaintext;
 *  - `gscip maps dump cit` on b shows the Term's flows moved (end mover), on a
 *    the stationary end;
 *  - a flow t opens after the move leaves from b's new address directly.
 * With the usual `masquerade` instead (GSCIP_TEST_MPPC_MASQUERADE=1: the test
 * writes it, no subnetNat) the kernel drops the conntrack entries of the old
 * address and the transfer fails (checked).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { startEchoServer } from '../lib/net-apps.js';
import { exited, MARKER, markedData, sha256 } from './pccom-topology.js';
import { A, B_NEW, B_OLD, INSIDE, MobilityTopo, T } from './mobility-topology.js';
import { transferAcrossMove, capture, count, PINGER, Pinger, SINK, SOURCE, UDP_PORT } from './mobility-apps.js';
import { dumpCit } from '../../controlplane/cli/commands/maps.js';
import { natTableName } from '../../controlplane/mobility/subnet-nat.js';
import { ACTIONS } from '../../controlplane/maps/vocabulary.js';

const unavailable = bpfUnavailable();
const BYTES = 6 << 20;
const MASQUERADE = process.env.GSCIP_TEST_MPPC_MASQUERADE === '1';

describe('Mobile PPC: a GEN\'s outside address changes; the Terms behind it keep their connections (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: MobilityTopo;
  let pinger: Pinger;
  const key = randomBytes(32);

  before(async () => {
    p = new MobilityTopo('mppcgen', { termBehindB: true });
    if (MASQUERADE) {
      p.topo.exec('b', 'nft', ['-f', '-'], { input: `table ip t { chain post { type nat hook postrouting priority srcnat; oifname "vb" ip saddr ${INSIDE} masquerade; }; }\n` });
    }
    await p.startGe('a', { keys: [[1, 1, key]] });
    await p.startGe('b', { type: 'GEN', keys: [[1, 1, key]], ...(MASQUERADE ? {} : { mobilityConfig: { subnetNat: { inside: [INSIDE] } } }) });
    await startEchoServer(p.topo, 'a', A, 7301, UDP_PORT, 170_000);
    await waitFor('b\'s NAT rule', () => MASQUERADE || p.topo.exec('b', 'nft', ['list', 'table', 'ip', natTableName('vb')], { allowFail: true }).stdout.includes(`snat to ${B_OLD}`), 10_000);
    pinger = new Pinger(p.topo.spawn('t', 'node', ['-e', PINGER(A, T)]));
    await pinger.more(5, 10_000);
  });
  after(async () => { await p?.cleanup(); });

  test('the Term\'s TCP (6 MiB) and UDP go on across the GEN\'s move, byte-exact, no RST, ciphertext only on the new path', async () => {
    const before = await pinger.more(1, 5000);
    assert.ok(before[0].startsWith(`peer=${B_OLD}:41000|u`), `a sees the Term NATed to b's outside address: ${before[0]}`);
    const newPath = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
    const rsts = await capture(p, 'a', 'va', 'tcp[tcpflags] & tcp-rst != 0');
    try {
      await transferAcrossMove(p, 't', A, BYTES, () => p.moveToR2());
      const after = await pinger.more(20, 15_000);
      assert.ok(after.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), `a's application still sees b's first address for the Term's flow: ${after[0]}`);
    } finally {
      const cap = await newPath.stop();
      const rst = await rsts.stop();
      assert.equal(rst.length, 24, 'no RST crossed a\'s interface');
      assert.ok(cap.length > 1 << 20, `the new path carried the transfer (${cap.length} bytes captured)`);
      assert.equal(count(cap, MARKER), 0, 'no plaintext marker on the new path');
    }
    for (const [h, end] of [['b', 'mover'], ['a', 'stationary']] as const) {
      const m = p.ges.maps(h);
      try {
        const view = JSON.parse(dumpCit(m, true)) as Array<{ proto: string; end: string; old: string; new: string }>;
        assert.deepEqual(view.map((r) => `${r.proto} ${r.end} ${r.old} -> ${r.new}`).sort(),
          [`tcp ${end} ${B_OLD}:40100 -> ${B_NEW}:40100`, `udp ${end} ${B_OLD}:41000 -> ${B_NEW}:41000`], `\`gscip maps dump cit\` on ${h}`);
      } finally { m.close(); }
    }
  });

  test('a flow the Term opens after the move is NATed to b\'s new address directly (no CIT), and DPRP encrypts it from there', async () => {
    const js = `const d = require('dgram').createSocket('udp4'); d.on('message', (m) => { console.log(String(m)); process.exit(0); });
d.bind(41500, ${JSON.stringify(T)}, () => { let n = 0; const t = setInterval(() => { if (++n > 50) process.exit(3); d.send('new', ${UDP_PORT}, ${JSON.stringify(A)}); }, 100); });`;
    const r = p.topo.exec('t', 'node', ['-e', js], { allowFail: true, timeoutMs: 15_000 });
    assert.equal(r.code, 0, `an echo came back: ${r.stdout}${r.stderr}`);
    assert.ok(r.stdout.startsWith(`peer=${B_NEW}:41500|new`), r.stdout);
    // DPRP negotiated it from b's new address (its start address follows the move): encrypted, both ends.
    for (const h of ['a', 'b'] as const) {
      const m = p.ges.maps(h);
      try {
        const enc = [...m.pit.entries()].filter(([k, v]) => k.saddr === B_NEW && k.sport === 41500 && ACTIONS.name(v.action) === 'encrypt');
        const all = [...m.pit.entries()].filter(([k]) => k.sport === 41500 || k.dport === 41500).map(([k, v]) => `${k.saddr}:${k.sport}>${k.daddr}:${k.dport} ${ACTIONS.name(v.action)}`);
        assert.equal(h === 'b' ? enc.length : 0, h === 'b' ? 1 : 0, `${h}: ${all.join(', ')}`);
        if (h === 'a') assert.ok([...m.pit.entries()].some(([k, v]) => k.saddr === A && k.dport === 41500 && k.daddr === B_NEW && ACTIONS.name(v.action) === 'encrypt'), `a encrypts to b's new address: ${all.join(', ')}`);
      } finally { m.close(); }
    }
  });
});
