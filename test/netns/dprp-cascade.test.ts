/**
 * DPRP through GENs on the real datapath: GEs BEHIND a GEN. Their control
 * messages leave the GEN through its guarded (outside) interface's EGRESS, where
 * the fast path punts them unless the GEN's own agent sent them
 * (GSCIP_MARK_CONTROL_TX), so the GEN takes its part in the negotiation.
 *
 *   GESin 100.64.1.10 (OP, GK1+GK3)              GESout  203.0.113.2 (OP, GK1+GK2)
 *        | in1 100.64.1.1                              | 203.0.113.254
 *      GEN1 (CL, GK3) out0 192.0.2.1 ---- 192.0.2.254 r
 *        | in2 100.64.3.1                              | 198.51.100.254
 *      GEN2 (CL, GK2) out0 100.64.3.2             GESout2 198.51.100.2 (OP, GK4)
 *        | in0 100.64.2.1
 *      Term 100.64.2.10 (plain host)
 *
 * Only the out0 interfaces of the GENs are guarded (in* are not). Expected, by
 * the decision rules of docs/dprp.md section 4:
 *  - GESin <-> GESout (GES behind a GEN): encrypted with GK1 end to end; GEN1 (CL,
 *    another group) relays the ciphertext (pass, transit, intermediate).
 *  - Term <-> GESout (cascaded GENs): encrypted with GK2 between GEN2 and GESout,
 *    plaintext GEN2 <-> Term; GEN1 relays (pass, intermediate: it must NOT end the
 *    negotiation itself, the GEN2 behind it answers).
 *  - GESin -> GESout2: GESin shares GK3 only with GEN1: encrypted GESin -> GEN1,
 *    GEN1 decrypts (its entries on EGRESS fwd / INGRESS rev: the flow comes from
 *    inside), plaintext outside (GESout2 is OP). GESout2 -> GESin: refused by
 *    the CL GEN1 (plaintext from a non-member).
 * Each case: real TCP and UDP applications, the application outcome, every GE's
 * PIT, and the wire (captures on both sides of GEN1 and behind GEN2).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { Topology } from '../lib/netns.js';
import { Action, Dir, PitState, Role, Stat } from '../../controlplane/maps/abi.js';
import { readStat } from '../../controlplane/maps/accessors.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';
import { echoServer, GeProcesses, MARKER, RouterCapture, retransSegs, runClients, waitReady } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const TCP_PORT = 7301;
const UDP_PORT = 7302;

const ADDR = {
  GESin: '100.64.1.10', GESout: '203.0.113.2', GESout2: '198.51.100.2', Term: '100.64.2.10',
} as const;
type App = keyof typeof ADDR;

// The GENs run with the product defaults: a GEN that forwards a DDE inside waits
// for a GE there to answer, the outer one a step (endWaitStepMs) longer than the
// inner one. With the former 1 ms step (and 3 ms floor) the outer GEN sometimes
// answered first and refused the flow (in 2 of 3 runs here).
const GEN_DPRP = {};

interface Expect {
  /** Per GE: action on the GE's hook for the forward flow, and its role. */
  pit: Array<{ ge: string; dir: 'ingress' | 'egress'; action: number; role: number; group?: number }>;
  /** Captures that must show the plaintext marker / must not. */
  plainOn: string[];
  cipherOn: string[];
  discard?: boolean;
}

/** L4 payload lengths of the TCP/UDP frames (Ethernet) that carry client port `cport`. */
function flowPayloads(frames: Buffer[], cport: number): number[] {
  const out: number[] = [];
  for (const f of frames) {
    if (f.length < 34 || f.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (f[14] & 0x0f) * 4;
    const proto = f[23];
    const l4 = 14 + ihl;
    if ((proto !== 6 && proto !== 17) || f.length < l4 + 8) continue;
    if (f.readUInt16BE(l4) !== cport && f.readUInt16BE(l4 + 2) !== cport) continue;
    const ipEnd = 14 + f.readUInt16BE(16);
    const hl = proto === 6 ? (f[l4 + 12] >> 4) * 4 : 8;
    out.push(ipEnd - l4 - hl);
  }
  return out;
}

describe('DPRP through GENs: a GES behind a GEN, cascaded GENs (namespaces)', { skip: unavailable ?? false }, () => {
  let t: Topology;
  let ges: GeProcesses;
  let port = 41000;

  before(async () => {
    t = new Topology('dpcasc');
    ges = new GeProcesses(t);
    try {
      for (const h of ['GESin', 'GEN1', 'GEN2', 'Term', 'r', 'GESout', 'GESout2']) t.addHost(h);
      t.link('GESin', 'eth0', 'GEN1', 'in1');
      t.link('GEN1', 'in2', 'GEN2', 'out0');
      t.link('GEN2', 'in0', 'Term', 'eth0');
      t.link('GEN1', 'out0', 'r', 'ra');
      t.link('r', 'rb', 'GESout', 'eth0');
      t.link('r', 'rc', 'GESout2', 'eth0');
      t.addr('GESin', 'eth0', `${ADDR.GESin}/24`);
      t.addr('GEN1', 'in1', '100.64.1.1/24');
      t.addr('GEN1', 'in2', '100.64.3.1/24');
      t.addr('GEN2', 'out0', '100.64.3.2/24');
      t.addr('GEN2', 'in0', '100.64.2.1/24');
      t.addr('Term', 'eth0', `${ADDR.Term}/24`);
      t.addr('GEN1', 'out0', '192.0.2.1/24');
      t.addr('r', 'ra', '192.0.2.254/24');
      t.addr('r', 'rb', '203.0.113.254/24');
      t.addr('r', 'rc', '198.51.100.254/24');
      t.addr('GESout', 'eth0', `${ADDR.GESout}/24`);
      t.addr('GESout2', 'eth0', `${ADDR.GESout2}/24`);
      t.route('GESin', 'default', '100.64.1.1');
      t.route('Term', 'default', '100.64.2.1');
      t.route('GEN2', 'default', '100.64.3.1');
      t.route('GEN1', 'default', '192.0.2.254');
      t.route('GEN1', '100.64.2.0/24', '100.64.3.2');
      t.route('r', '100.64.0.0/10', '192.0.2.1');
      t.route('GESout', 'default', '203.0.113.254');
      t.route('GESout2', 'default', '198.51.100.254');
      for (const h of ['GEN1', 'GEN2', 'r']) t.forwarding(h);
      // PCCOM must see every wire packet (docs/pccom.md): no TSO/GSO/GRO anywhere.
      const devs: Array<[string, string]> = [['GESin', 'eth0'], ['GEN1', 'in1'], ['GEN1', 'in2'], ['GEN1', 'out0'], ['GEN2', 'out0'],
        ['GEN2', 'in0'], ['Term', 'eth0'], ['r', 'ra'], ['r', 'rb'], ['r', 'rc'], ['GESout', 'eth0'], ['GESout2', 'eth0']];
      for (const [h, d] of devs) t.exec(h, 'ethtool', ['-K', d, 'tso', 'off', 'gso', 'off', 'gro', 'off']);

      const gk = new Map([1, 2, 3, 4].map((g) => [g, randomBytes(32)]));
      const keys = (...gs: number[]): Array<[number, number, Buffer]> => gs.map((g) => [g, 1, gk.get(g)!]);
      await ges.start('GEN1', ['out0'], { type: 'GEN', mode: 'CL', keys: keys(3), dprp: GEN_DPRP });
      await ges.start('GEN2', ['out0'], { type: 'GEN', mode: 'CL', keys: keys(2), dprp: GEN_DPRP });
      await ges.start('GESin', ['eth0'], { type: 'GES', mode: 'OP', keys: keys(1, 3) });
      await ges.start('GESout', ['eth0'], { type: 'GES', mode: 'OP', keys: keys(1, 2) });
      await ges.start('GESout2', ['eth0'], { type: 'GES', mode: 'OP', keys: keys(4) });
      await new Promise((r) => setTimeout(r, 1200)); // the DPRP handlers re-read the key map every second
      for (const h of Object.keys(ADDR)) {
        await waitReady(echoServer(t, h, 'tcp', TCP_PORT), `tcp echo on ${h}`);
        await waitReady(echoServer(t, h, 'udp', UDP_PORT), `udp echo on ${h}`);
      }
    } catch (e) {
      ges.killAllSync();
      t.cleanupSync();
      throw e;
    }
  });
  after(async () => {
    await ges?.stopAll();
    ges?.killAllSync();
    t?.cleanupSync();
  });

  function pit(ge: string, c: Cid): PitVal | undefined {
    const m = ges.maps(ge);
    try {
      return m.pit.get(c);
    } finally {
      m.close();
    }
  }

  /** Captures: outside GEN1 (r's ra), inside GEN1 toward GESin (in1) and toward GEN2 (in2), behind GEN2 (Term's eth0). */
  const CAPS: Record<string, [string, string]> = {
    outside: ['r', 'ra'], gesinLink: ['GEN1', 'in1'], gen2Link: ['GEN1', 'in2'], termLink: ['Term', 'eth0'],
  };

  const P = { PASS: Action.PASS, ENC: Action.ENCRYPT, DEC: Action.DECRYPT, DROP: Action.DROP };
  const R = { S: Role.START, I: Role.INTERMEDIATE, E: Role.END };

  const CASES: Array<[App, App, string, Expect]> = [
    ['GESin', 'GESout', 'GES behind a GEN: GK1 end to end, GEN1 relays ciphertext', {
      pit: [
        { ge: 'GESin', dir: 'egress', action: P.ENC, role: R.S, group: 1 },
        { ge: 'GEN1', dir: 'egress', action: P.PASS, role: R.I },
        { ge: 'GESout', dir: 'ingress', action: P.DEC, role: R.E, group: 1 },
      ],
      plainOn: [], cipherOn: ['outside', 'gesinLink'],
    }],
    ['GESout', 'GESin', 'to a GES behind a GEN: the GES answers, GEN1 only relays', {
      pit: [
        { ge: 'GESout', dir: 'egress', action: P.ENC, role: R.S, group: 1 },
        { ge: 'GEN1', dir: 'ingress', action: P.PASS, role: R.I },
        { ge: 'GESin', dir: 'ingress', action: P.DEC, role: R.E, group: 1 },
      ],
      plainOn: [], cipherOn: ['outside', 'gesinLink'],
    }],
    ['Term', 'GESout', 'cascade, from the Term: GEN2 starts, GK2 to GESout, GEN1 relays', {
      pit: [
        { ge: 'GEN2', dir: 'egress', action: P.ENC, role: R.S, group: 2 },
        { ge: 'GEN1', dir: 'egress', action: P.PASS, role: R.I },
        { ge: 'GESout', dir: 'ingress', action: P.DEC, role: R.E, group: 2 },
      ],
      plainOn: ['termLink'], cipherOn: ['outside', 'gen2Link'],
    }],
    ['GESout', 'Term', 'cascade, to the Term: GEN2 (inner) ends it, GEN1 (outer) relays', {
      pit: [
        { ge: 'GESout', dir: 'egress', action: P.ENC, role: R.S, group: 2 },
        { ge: 'GEN1', dir: 'ingress', action: P.PASS, role: R.I },
        { ge: 'GEN2', dir: 'ingress', action: P.DEC, role: R.E, group: 2 },
      ],
      plainOn: ['termLink'], cipherOn: ['outside', 'gen2Link'],
    }],
    ['GESin', 'GESout2', 'GEN1 decrypts for the GES inside it (egress), plaintext outside', {
      pit: [
        { ge: 'GESin', dir: 'egress', action: P.ENC, role: R.S, group: 3 },
        { ge: 'GEN1', dir: 'egress', action: P.DEC, role: R.I, group: 3 },
        { ge: 'GESout2', dir: 'ingress', action: P.PASS, role: R.E },
      ],
      plainOn: ['outside'], cipherOn: ['gesinLink'],
    }],
    ['GESout2', 'GESin', 'plaintext from a non-member into the CL GEN1: refused', {
      pit: [
        { ge: 'GESout2', dir: 'egress', action: P.DROP, role: R.S },
        { ge: 'GEN1', dir: 'ingress', action: P.DROP, role: R.I },
      ],
      plainOn: [], cipherOn: ['gesinLink'], discard: true,
    }],
  ];

  for (const [src, dst, label, want] of CASES) {
    for (const proto of ['tcp', 'udp'] as const) {
      test(`${src} -> ${dst} ${proto.toUpperCase()}: ${label}`, async () => {
        const cport = port++;
        const sport = proto === 'tcp' ? TCP_PORT : UDP_PORT;
        const msg = `${MARKER}-${src}-${dst}-${proto}`;
        const retrans0 = proto === 'tcp' ? retransSegs(t, src) : 0;
        const caps = new Map<string, RouterCapture>();
        for (const [name, [h, dev]] of Object.entries(CAPS)) caps.set(name, await RouterCapture.start(t, dev, h));
        const r = await runClients(t, src, proto, ADDR[dst], sport, 1, cport, msg, want.discard ? 1500 : 10_000);
        const frames = new Map<string, Buffer[]>();
        for (const [name, c] of caps) frames.set(name, await c.stop());
        const seen = (cap: string): number => frames.get(cap)!.filter((f) => f.includes(msg) || f.includes(msg.toUpperCase())).length;
        const fwd: Cid = { saddr: ADDR[src], daddr: ADDR[dst], sport: cport, dport: sport, proto: proto === 'tcp' ? 6 : 17, dir: Dir.EGRESS };
        const pits = want.pit.map((w) => {
          const v = pit(w.ge, { ...fwd, dir: w.dir === 'egress' ? Dir.EGRESS : Dir.INGRESS });
          return `${w.ge}@${w.dir}=${v ? `a${v.action}/r${v.role}/g${v.group_id}/s${v.state}` : 'none'}`;
        }).join(' ');

        if (want.discard) {
          assert.notEqual(r.reply, msg.toUpperCase(), 'the application got nothing back');
        } else {
          assert.ok(r.ok, `application failed: ${r.error} (PITs: ${pits})`);
          assert.equal(r.reply, msg.toUpperCase(), 'application data intact both ways');
          if (proto === 'tcp') assert.equal(retransSegs(t, src) - retrans0, 0, 'no SYN retransmission');
        }
        for (const w of want.pit) {
          const v = pit(w.ge, { ...fwd, dir: w.dir === 'egress' ? Dir.EGRESS : Dir.INGRESS });
          assert.ok(v, `${w.ge} has a ${w.dir} entry for the flow (PITs: ${pits})`);
          assert.equal(v.action, w.action, `${w.ge} ${w.dir} action (PITs: ${pits})`);
          assert.equal(v.role, w.role, `${w.ge} role (PITs: ${pits})`);
          if (!want.discard) assert.equal(v.state, PitState.CONFIRMED, `${w.ge} confirmed`);
          if (w.group !== undefined) assert.equal(v.group_id, w.group, `${w.ge} group`);
        }
        for (const cap of want.plainOn) assert.ok(seen(cap) >= 1, `plaintext allowed on ${cap}: the marker is there (${frames.get(cap)!.length} frames)`);
        for (const cap of want.cipherOn) assert.equal(seen(cap), 0, `no plaintext on ${cap} (${frames.get(cap)!.length} frames)`);
        if (!want.discard) {
          // ... and the flow did cross those links (ciphertext of the same length is there).
          for (const cap of want.cipherOn) {
            const n = flowPayloads(frames.get(cap)!, cport).filter((len) => len === msg.length).length;
            assert.ok(n >= 2, `the flow's request and reply crossed ${cap} (as ciphertext of the same length): ${n}`);
          }
        }
      });
    }
  }

  test('the inner GEN answered the DDEs GEN1 relayed to the Term from its fast path (HOLD): GEN1 never waited on its agent', () => {
    const m = ges.maps('GEN2');
    try {
      // GESout -> Term, TCP and UDP: one relayed DDE each at least
      assert.ok(readStat(m, Stat.STAT_DPRP_HOLD).packets >= 2n, `GEN2 dprp_hold ${readStat(m, Stat.STAT_DPRP_HOLD).packets}`);
    } finally {
      m.close();
    }
  });
});
