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
 *
 * Key rotation of moved flows (docs/mobility.md "Key rotation of moved
 * flows"): b back home, a new 24 MiB transfer, b moves behind r2 again at
 * 1 MiB, and at 8 MiB group 1's key version 2 appears on a, b and r2 (a GMS
 * rotation): the transfer completes byte-exact, and the moved flows' PIT
 * entries on their wire CIDs, at both ends, are on version 2 (decrypt
 * entries keeping version 1 as prev). Without rekey.ts they stay on version 1
 * (checked).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { MARKER } from './pccom-topology.js';
import { A, B_NEW, B_OLD, MobilityTopo } from './mobility-topology.js';
import { transferAcrossMove, capture, count, startMoveScene, type Pinger, TCP_PORT, UDP_PORT } from './mobility-apps.js';
import { ACTIONS, DIRS, ROLES } from '../../controlplane/maps/vocabulary.js';
import { waitFor } from '../lib/netns.js';

const unavailable = bpfUnavailable();
const BYTES = 6 << 20;

describe('Mobile PPC: the moved GES\'s new path crosses a GEN, which gets its PIT entries from the CU (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: MobilityTopo;
  let pinger: Pinger;
  const key = randomBytes(32);

  before(async () => {
    p = new MobilityTopo('mppcpath');
    pinger = await startMoveScene(p, key, { type: 'GEN', keys: [[1, 1, key]] }, 170_000);
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

  test('a key rotation after the move re-keys the moved flows on their wire CIDs; the transfer goes on byte-exact', async () => {
    p.moveBackToR1();
    await pinger.more(5, 15_000);
    const key2 = randomBytes(32);
    const rotate = () => {
      for (const h of ['a', 'b', 'r2']) {
        const m = p.ges.maps(h);
        try { m.keys.set({ group_id: 1, version: 2 }, { key: key2, flags: 0, installed_ns: 0n }); } finally { m.close(); }
      }
    };
    const slot = (h: 'a' | 'b', s: string, dport: number, d: string, dir: 'egress' | 'ingress', proto: number) => {
      const m = p.ges.maps(h);
      try {
        const [sa, sp] = s.split(':');
        const v = [...m.pit.entries()].find(([k]) => k.saddr === sa && k.sport === Number(sp) && k.daddr === d && k.dport === dport && k.proto === proto && DIRS.name(k.dir) === dir)?.[1];
        return v ? `${ACTIONS.name(v.action)} v${v.key_version} prev${v.prev_key_version}` : 'none';
      } finally { m.close(); }
    };
    const flowSlots = (bp: number, ap: number, proto: number) => [
      slot('b', `${B_NEW}:${bp}`, ap, A, 'egress', proto), slot('b', `${A}:${ap}`, bp, B_NEW, 'ingress', proto),
      slot('a', `${A}:${ap}`, bp, B_NEW, 'egress', proto), slot('a', `${B_NEW}:${bp}`, ap, A, 'ingress', proto),
    ];
    // The TCP flow's entries go when it closes: sampled while it runs, after the rotation.
    const tcpSamples: string[][] = [];
    let sampler: NodeJS.Timeout | undefined;
    const sample = () => { if (tcpSamples.length < 300) tcpSamples.push(flowSlots(40200, TCP_PORT, 6)); };
    const lan = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
    try {
      await transferAcrossMove(p, 'b', A, 24 << 20, () => p.moveToR2(), { localPort: 40200, then: { bytes: 8 << 20, fn: () => { rotate(); sampler = setInterval(sample, 100); } } });
    } catch (e) {
      if (process.env.MPPC_DEBUG === '1') {
        for (const h of ['a', 'b'] as const) {
          const m = p.ges.maps(h);
          try {
            console.log(h, [...m.pit.entries()].filter(([k]) => k.sport === 40200 || k.dport === 40200).map(([k, v]) => `${k.saddr}:${k.sport}>${k.daddr}:${k.dport} ${DIRS.name(k.dir)} ${ACTIONS.name(v.action)} v${v.key_version} prev${v.prev_key_version} flags${v.flags}`).join('\n'));
            console.log(h, 'xlat', [...m.xlat.entries()].filter(([k]) => k.sport === 40200 || k.dport === 40200).map(([k, v]) => `${k.saddr}:${k.sport}>${k.daddr}:${k.dport} ${DIRS.name(k.dir)} kind${v.kind} -> ${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x))}`).join('\n'));
            console.log(h, 'fk', [...m.flowKeys.entries()].filter(([k]) => k.sport === 40200 || k.dport === 40200).map(([k, v]) => `${k.saddr}:${k.sport}>${k.daddr}:${k.dport} ${DIRS.name(k.dir)} cur v${v.cur.key_version} ${Buffer.from(v.cur.key).toString('hex').slice(0, 8)} salt ${v.salt} leg ${v.leg} prev v${v.prev.key_version} ${Buffer.from(v.prev.key).toString('hex').slice(0, 8)} psalt ${v.prev_salt} pleg ${v.prev_leg}`).join('\n'));
          } finally { m.close(); }
          console.log(h, p.metrics(h).split('\n').filter((l) => /drop|rekey|mobility_cu|pccom/.test(l) && !l.startsWith('#') && !l.endsWith(' 0')).join('\n'));
          console.log(h, p.ges.output(h).split('\n').filter((l) => /rekey|re-key|error|warn|new key|nat/i.test(l)).slice(-30).join('\n'));
        }
      }
      throw e;
    } finally {
      if (sampler) clearInterval(sampler);
      const cap = await lan.stop();
      assert.equal(count(cap, MARKER), 0, 'no plaintext marker on the new path');
    }
    const want = ['encrypt v2 prev0', 'decrypt v2 prev1', 'encrypt v2 prev0', 'decrypt v2 prev1'];
    assert.ok(tcpSamples.some((x) => JSON.stringify(x) === JSON.stringify(want)),
      `the moved TCP flow on version 2 at both ends while it ran (b egress, b ingress, a egress, a ingress): last ${JSON.stringify(tcpSamples.at(-1))}`);
    await pinger.more(10, 15_000);
    const udp = () => flowSlots(41000, UDP_PORT, 17);
    await waitFor('the moved UDP flow on version 2 at both ends', () => udp().every((g) => g.includes(' v2')), 10_000, 200).catch(() => undefined);
    assert.deepEqual(udp(), want, 'the moved UDP flow: b egress, b ingress, a egress, a ingress');
    assert.ok(p.metric('b', 'gscip_mobility_flows_rekeyed_total') + p.metric('a', 'gscip_mobility_flows_rekeyed_total') >= 2);
  });
});
