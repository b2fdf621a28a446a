/**
 * Mobile PPC through a GE on the new path (docs/mobility.md "GEs on the new
 * path"): r2 is a GEN (DPRP + Mobile PPC, group 1 like a and b) guarding its
 * outside u2; r1 is a plain router. GES b moves from r1's subnet to r2's in
 * the middle of a 6 MiB TCP transfer to a and a UDP exchange with it, PCCOM
 * on. r2 had no entry for the flows (the old path did not cross it).
 *  - the transfer completes byte-exact, no RST on a's interface, the UDP
 *    exchange goes on and a's application still sees b's old address;
 *  - the new path (r2's LAN side and its outside u2) carries ciphertext only;
 *  - r2's PIT holds `pass` (intermediate) entries for the moved flows on the
 *    addresses it sees: b's new address <-> a, both directions, both hooks,
 *    learnt from the CU that crossed it (gscip_mobility_transit_total
 *    {result="learned"}), and r2 started no DPRP negotiation for them.
 * Without transit.ts (r2's agent treating the CU as one addressed to itself)
 * the CU never reaches a and the transfer fails (checked, docs/mobility.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { startEchoServer } from '../lib/net-apps.js';
import { MARKER } from './pccom-topology.js';
import { A, B_NEW, B_OLD, MobilityTopo } from './mobility-topology.js';
import { transferAcrossMove, capture, count, PINGER, Pinger, TCP_PORT, UDP_PORT } from './mobility-apps.js';
import { ACTIONS, DIRS, ROLES } from '../../controlplane/maps/vocabulary.js';

const unavailable = bpfUnavailable();
const BYTES = 6 << 20;

describe('Mobile PPC: the moved GES\'s new path crosses a GEN, which gets its PIT entries from the CU (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: MobilityTopo;
  let pinger: Pinger;
  const key = randomBytes(32);

  before(async () => {
    p = new MobilityTopo('mppcpath');
    await p.startGe('a', { keys: [[1, 1, key]] });
    await p.startGe('b', { keys: [[1, 1, key]] });
    await p.startGe('r2', { type: 'GEN', keys: [[1, 1, key]] });
    await startEchoServer(p.topo, 'a', A, 7301, UDP_PORT, 170_000);
    pinger = new Pinger(p.topo.spawn('b', 'node', ['-e', PINGER(A, B_OLD)]));
    await pinger.more(5, 10_000);
  });
  after(async () => { await p?.cleanup(); });

  test('TCP (6 MiB) and UDP go on across the move through the GEN, byte-exact, ciphertext only; the GEN\'s PIT holds the moved flows', async () => {
    const lan = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
    const out = await capture(p, 'r2', 'u2', 'tcp or udp or icmp');
    const rsts = await capture(p, 'a', 'va', 'tcp[tcpflags] & tcp-rst != 0');
    try {
      await transferAcrossMove(p, 'b', A, BYTES, () => p.moveToR2());
      const later = await pinger.more(20, 15_000);
      assert.ok(later.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), `a's application still sees b's old address: ${later[0]}`);
    } finally {
      const capLan = await lan.stop();
      const capOut = await out.stop();
      const rst = await rsts.stop();
      assert.equal(rst.length, 24, 'no RST crossed a\'s interface (the capture holds only its header)');
      for (const [where, cap] of [['r2 lan', capLan], ['r2 u2', capOut]] as const) {
        assert.ok(cap.length > 1 << 20, `${where} carried the transfer (${cap.length} bytes captured)`);
        assert.equal(count(cap, MARKER), 0, `no plaintext marker on ${where}`);
      }
    }
    const m = p.ges.maps('r2');
    try {
      const pit = [...m.pit.entries()].map(([k, v]) => ({
        s: `${k.saddr}:${k.sport}>${k.daddr}:${k.dport}/${k.proto} ${DIRS.name(k.dir)}`, action: ACTIONS.name(v.action), role: ROLES.name(v.role),
      }));
      const shown = pit.map((e) => `${e.s} ${e.action} ${e.role}`).join('\n');
      for (const [bp, ap, proto] of [[40100, TCP_PORT, 6], [41000, UDP_PORT, 17]] as const) {
        for (const flow of [`${B_NEW}:${bp}>${A}:${ap}/${proto}`, `${A}:${ap}>${B_NEW}:${bp}/${proto}`]) {
          for (const dir of ['egress', 'ingress']) {
            const e = pit.find((x) => x.s === `${flow} ${dir}`);
            assert.ok(e, `r2 holds ${flow} ${dir}:\n${shown}`);
            assert.equal(`${e.action} ${e.role}`, 'pass intermediate', `${flow} ${dir}`);
          }
        }
      }
    } finally { m.close(); }
    assert.ok(p.metric('r2', 'gscip_mobility_transit_total{result="learned"}') >= 1, 'r2 learnt from a CU crossing it');
    assert.equal(p.metric('r2', 'gscip_mobility_transit_total{result="bad_mac"}'), 0);
    const mob = (h: 'a' | 'b' | 'r2') => p.metrics(h).split('\n').filter((l) => l.startsWith('gscip_mobility_') && !l.endsWith(' 0')).join('\n');
    assert.ok(p.metric('b', 'gscip_mobility_cu_answered_total') >= 1, `the CU crossed r2 to a and its answer came back:\n${['a', 'b', 'r2'].map((h) => `${h}:\n${mob(h as 'a')}`).join('\n')}`);
    assert.equal(p.metric('a', 'gscip_mobility_cu_refused_total'), 0);
  });
});
