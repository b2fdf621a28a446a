/**
 * Mobile PPC through a GE on the new path that is not a member of the moved
 * flows' group (docs/mobility.md "GEs on the new path"): r2 is an OP GEN
 * (DPRP + Mobile PPC) holding only group 2's key, while a and b share
 * group 1. GES b moves from r1's subnet to r2's in the middle of a 6 MiB
 * TCP transfer to a and a UDP exchange with it, PCCOM on.
 *  - the transfer completes byte-exact, no RST on a's interface, the UDP
 *    exchange goes on;
 *  - the new path carries ciphertext only;
 *  - r2, which cannot read the CU, takes the moved flows' first packets as
 *    PIT misses and negotiates them itself: no shared group, so `pass` (OP)
 *    for r2, on the addresses it sees; its unauthenticated word for a
 *    (pass) is refused there, since a encrypts those flows now
 *    (gscip_dprp_downgrades_refused_total), and a's entries on the moved
 *    flows' wire CIDs stay encrypt/decrypt.
 * Without that refusal a installed r2's pass over the moved UDP flow's
 * entries (plaintext to b, which still decrypted) and the transfer failed
 * (checked, docs/mobility.md "GEs on the new path").
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { MARKER } from './pccom-topology.js';
import { A, B_NEW, B_OLD, MobilityTopo } from './mobility-topology.js';
import { transferAcrossMove, capture, count, startMoveScene, type Pinger, TCP_PORT, UDP_PORT } from './mobility-apps.js';
import { ACTIONS, DIRS } from '../../controlplane/maps/vocabulary.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import type { GeOptions } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const BYTES = 6 << 20;

interface Variant {
  name: string;
  /** r2's options, given group 1's key (the ends') and another group's. */
  r2(own: Buffer, other: Buffer): GeOptions;
  /** What this kind of r2 did, from the three GEs' metrics. */
  check(p: MobilityTopo): void;
}

const VARIANTS: Variant[] = [
  {
    name: 'op-other: an OP GEN of another group with Mobile PPC',
    r2: (_own, other) => ({ type: 'GEN', keys: [[2, 1, other]] }),
    check: (p) => {
      assert.ok(p.metric('a', 'gscip_dprp_downgrades_refused_total') >= 1, 'a refused r2\'s unauthenticated pass for the flows it encrypts');
      assert.ok(p.metric('r2', 'gscip_dprp_negotiations_completed_total{outcome="plaintext"}') >= 1, 'r2 completed its negotiations (a answered them)');
    },
  },
  {
    name: 'dprp-only-other: a GEN of another group without Mobile PPC',
    r2: (_own, other) => ({ type: 'GEN', keys: [[2, 1, other]], mobility: false }),
    check: (p) => {
      assert.ok(p.metric('r2', 'gscip_dprp_foreign_control_total{outcome="forwarded"}') >= 1, 'r2 forwarded the CU it does not speak');
      assert.equal(p.metric('r2', 'gscip_dprp_messages_rejected_total{reason="wire_unknown_msg_type"}'), 0, 'r2 took no CU for a malformed DPRP message');
      assert.ok(p.metric('a', 'gscip_dprp_downgrades_refused_total') >= 1, 'a refused r2\'s unauthenticated pass for the flows it encrypts');
      assert.ok(p.metric('r2', 'gscip_dprp_negotiations_completed_total{outcome="plaintext"}') >= 1, 'r2 completed its negotiations (a answered them)');
    },
  },
  {
    name: 'dprp-only: a GEN of the same group without Mobile PPC',
    r2: (own) => ({ type: 'GEN', keys: [[1, 1, own]], mobility: false }),
    check: (p) => {
      assert.ok(p.metric('r2', 'gscip_dprp_foreign_control_total{outcome="forwarded"}') >= 1, 'r2 forwarded the CU it does not speak');
      assert.ok(p.metric('r2', 'gscip_dprp_negotiations_completed_total{outcome="protected_transit"}') >= 1, 'r2 passed the moved flows a said b protects');
      assert.equal(p.metric('r2', 'gscip_dprp_negotiations_completed_total{outcome="encrypted"}'), 0, 'r2 encrypted none of them a second time');
      assert.equal(p.metric('a', 'gscip_dprp_downgrades_refused_total'), 0, 'no word to downgrade reached a');
    },
  },
];

/** The three GEs' Mobile PPC and DPRP counters that are not 0, for a failure's report. */
function dump(p: MobilityTopo): void {
  for (const h of ['a', 'b', 'r2'] as const) {
    console.log(`# ${h}: ${p.metrics(h).split('\n').filter((l) => /mobility_cu|negotiations_(started|completed|failed)|rejected|plaintext|downgrades|foreign/.test(l) && !l.startsWith('#') && !l.endsWith(' 0')).join('; ')}`);
  }
}

for (const v of VARIANTS) {
  describe(`Mobile PPC: the moved GES's new path crosses ${v.name} (namespaces)`, { skip: unavailable ?? false, timeout: 120_000 }, () => {
    let p: MobilityTopo;
    let pinger: Pinger;
    const key = randomBytes(32);

    before(async () => {
      p = new MobilityTopo('mppcnm');
      pinger = await startMoveScene(p, key, { metrics: true, ...v.r2(key, randomBytes(32)) }, 110_000);
    });
    after(async () => { await p?.cleanup(); });

    test('TCP (6 MiB) and UDP go on across the move through r2, byte-exact, ciphertext only', async () => {
      const lan = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
      const out = await capture(p, 'r2', 'u2', 'tcp or udp or icmp');
      const rsts = await capture(p, 'a', 'va', 'tcp[tcpflags] & tcp-rst != 0');
      let failure: unknown = null;
      try {
        await transferAcrossMove(p, 'b', A, BYTES, () => p.moveToR2());
        const later = await pinger.more(20, 15_000);
        assert.ok(later.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), `a's application still sees b's old address: ${later[0]}`);
      } catch (e) { failure = e; console.log(`# transfer: ${(e as Error).message}`); } finally {
        const capLan = await lan.stop();
        const capOut = await out.stop();
        const rst = await rsts.stop();
        if (failure) {
          dump(p);
          throw failure;
        }
        assert.equal(rst.length, 24, 'no RST crossed a\'s interface (the capture holds only its header)');
        for (const [where, cap] of [['r2 lan', capLan], ['r2 u2', capOut]] as const) {
          assert.ok(cap.length > 1 << 20, `${where} carried the transfer (${cap.length} bytes captured)`);
          assert.equal(count(cap, MARKER), 0, `no plaintext marker on ${where}`);
        }
      }
      const slots = (h: 'a' | 'r2') => {
        const m: GscipMaps = p.ges.maps(h);
        try {
          return new Map([...m.pit.entries()].map(([k, v]) => [`${k.saddr}:${k.sport}>${k.daddr}:${k.dport}/${k.proto} ${DIRS.name(k.dir)}`, ACTIONS.name(v.action)]));
        } finally { m.close(); }
      };
      const atA = slots('a');
      const atR2 = slots('r2');
      for (const [bp, ap, proto] of [[40100, TCP_PORT, 6], [41000, UDP_PORT, 17]] as const) {
        const toA = `${B_NEW}:${bp}>${A}:${ap}/${proto}`;
        const fromA = `${A}:${ap}>${B_NEW}:${bp}/${proto}`;
        assert.equal(atA.get(`${toA} ingress`), 'decrypt', `a decrypts ${toA} (its entries on the moved flow's wire CID kept)`);
        assert.equal(atA.get(`${fromA} egress`), 'encrypt', `a encrypts ${fromA}`);
        for (const flow of [toA, fromA]) {
          for (const dir of ['egress', 'ingress']) assert.equal(atR2.get(`${flow} ${dir}`), 'pass', `r2 passes ${flow} ${dir}`);
        }
      }
      assert.equal(p.metric('r2', 'gscip_dprp_negotiations_failed_total'), 0, 'none of r2\'s negotiations failed');
      try { v.check(p); } catch (e) { dump(p); throw e; }
    });
  });
}

