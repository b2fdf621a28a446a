/**
 * Seed 002 Fig. 6 in namespaces, every pair of the SPEC's expected matrix in
 * both directions, with real TCP and UDP applications and the real agent on
 * every GE (nothing configured about any peer: only each GE's type, mode and
 * group keys, as the GMS would deliver them):
 *
 *            GES1 (OP, GK1)   GES2 (OP, GK1+GK2)   GES3 (OP, GK3)
 *                 \                 |                  /
 *                  +------------ LAN switch ----------+   192.0.2.0/24
 *                 /                                    \
 *   GEN (CL, GK1) 192.0.2.1                  GEA (CL, GK2+GK3) 192.0.2.20
 *        | 198.51.100.1                            | 203.0.113.1
 *      Term 198.51.100.10 (plain host)          server 203.0.113.10 (plain host)
 *
 * Asserted: the application outcome; the PIT of the GEs that decide the flow;
 * the wire: no plaintext marker on the LAN where encrypted, the marker on the
 * LAN where plaintext is allowed, on the GEN-Term link for GES<->Term
 * (decrypted by the GEN), and nothing of a discarded flow on the LAN; no TCP
 * retransmission on any allowed flow.
 * Every GE's type, mode and group keys come from a GMS (seed 002's Fig. 6
 * definitions, test/gms/helpers.ts FIG6): the GEs enroll with one-time tokens,
 * fetch their GE info, and a GMS client per GE writes the keys into that GE's
 * key map, as the agent's own GMS client does.
 * Deviation: the GEA is a router in front of the server here (the papers' GEA
 * is a bridge; DPRP sees the same thing).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { type Topology, waitFor } from '../lib/netns.js';
import { buildFig6, HOSTS, MATRIX, USER_ID, type EndHost } from '../../deploy/fig6-network.js';
import { Action, Dir, PitState } from '../../controlplane/maps/abi.js';
import type { Cid } from '../../controlplane/maps/codecs.js';
import { fetchGeState, type GmsClientHandle } from '../../controlplane/gms/client.js';
import type { GmsServer } from '../../controlplane/gms/server.js';
import { keyMapSink } from '../../controlplane/gms/key-map-sink.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import { enrollGe, FIG6, startAgent, startGms, tempDir } from '../gms/helpers.js';
import { echoServer, GeProcesses, MARKER, RouterCapture, retransSegs, runClients, waitReady } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const TCP_PORT = 7001;
const UDP_PORT = 7002;

type Host = EndHost;

function count(frames: Buffer[], needle: string): number {
  return frames.filter((f) => f.includes(needle)).length;
}

describe('seed 002 Fig. 6 in namespaces', { skip: unavailable ?? false }, () => {
  let t: Topology;
  let ges: GeProcesses;
  let port = 40000;
  let gms: { server: GmsServer; dirs: Array<{ remove(): void }>; clients: GmsClientHandle[]; maps: GscipMaps[] } | null = null;
  /** GE host -> its userId in the GMS network definition. */
  const USER: Record<string, string> = USER_ID;

  before(async () => {
    t = buildFig6('fig6', { management: false }); // the GMS runs in this process
    ges = new GeProcesses(t);
    try {
      // The GMS holds the only definitions: GE info (type, mode, groups) and group keys.
      const gmsDir = tempDir('fig6');
      const { server, admin } = await startGms(gmsDir.path);
      gms = { server, dirs: [gmsDir], clients: [], maps: [] };
      await admin.apply(FIG6, false);
      for (const [host, user] of Object.entries(USER)) {
        const dir = tempDir(`fig6-${host}`);
        gms.dirs.push(dir);
        await enrollGe(server, admin, user, dir.path);
        const info = await fetchGeState(dir.path);
        await ges.start(host, ['lan0'], { type: info.type, mode: info.mode, keys: [] });
        const maps = ges.maps(host);
        gms.maps.push(maps);
        gms.clients.push(await startAgent(dir.path, keyMapSink(maps.keys)));
      }
      const want: Record<string, number[]> = { GEN: [1], GES1: [1], GES2: [1, 2], GES3: [3], GEA: [2, 3] };
      await waitFor('every GE holds exactly its groups\' keys from the GMS', () => Object.keys(USER).every((h, i) =>
        JSON.stringify([...gms!.maps[i].keys.keys()].map((k) => k.group_id).sort()) === JSON.stringify(want[h])), 10_000);
      await new Promise((r) => setTimeout(r, 1200)); // the DPRP handlers re-read the key map every second
      for (const h of Object.keys(HOSTS)) {
        await waitReady(echoServer(t, h, 'tcp', TCP_PORT), `tcp echo on ${h}`);
        await waitReady(echoServer(t, h, 'udp', UDP_PORT), `udp echo on ${h}`);
      }
    } catch (e) {
      await stopGms();
      ges.killAllSync();
      t.cleanupSync();
      throw e;
    }
  });
  async function stopGms(): Promise<void> {
    if (!gms) return;
    for (const c of gms.clients) await c.stop().catch(() => undefined);
    for (const m of gms.maps) m.close();
    await gms.server.close();
    for (const d of gms.dirs) d.remove();
    gms = null;
  }
  after(async () => {
    await stopGms();
    await ges?.stopAll();
    ges?.killAllSync();
    t?.cleanupSync();
  });

  function pit(ge: string, c: Cid) {
    const m = ges.maps(ge);
    try {
      return m.pit.get(c);
    } finally {
      m.close();
    }
  }

  for (const [x, y, want] of MATRIX) {
    for (const [src, dst] of [[x, y], [y, x]] as Array<[Host, Host]>) {
      for (const proto of ['tcp', 'udp'] as const) {
        const label = want.kind === 'enc' ? `encrypted with GK${want.group}` : want.kind === 'plain' ? 'plaintext' : 'discarded';
        test(`${src} -> ${dst} ${proto.toUpperCase()}: ${label}`, async () => {
          const cport = port++;
          const sport = proto === 'tcp' ? TCP_PORT : UDP_PORT;
          const msg = `${MARKER}-${src}-${dst}-${proto}`;
          const retrans0 = retransSegs(t, src);
          const lanCap = await RouterCapture.start(t, 'any', 'sw');
          const termSide = dst === 'Term' || src === 'Term' ? await RouterCapture.start(t, 'eth0', 'Term') : null;
          const r = await runClients(t, src, proto, HOSTS[dst].addr, sport, 1, cport, msg, want.kind === 'discard' ? 1500 : 10_000);
          const lan = await lanCap.stop();
          const term = termSide ? await termSide.stop() : null;
          const fwd: Cid = { saddr: HOSTS[src].addr, daddr: HOSTS[dst].addr, sport: cport, dport: sport, proto: proto === 'tcp' ? 6 : 17, dir: Dir.EGRESS };
          const start = HOSTS[src].protector;
          const end = HOSTS[dst].protector;

          if (want.kind === 'discard') {
            assert.notEqual(r.reply, msg.toUpperCase(), 'the application got nothing back');
            assert.equal(count(lan, msg), 0, 'nothing of the flow on the LAN');
            assert.equal(pit(start, fwd)?.action, Action.DROP, `${start} discards`);
            return;
          }
          assert.ok(r.ok, `application failed: ${r.error}`);
          assert.equal(r.reply, msg.toUpperCase(), 'application data intact both ways');
          if (proto === 'tcp') assert.equal(retransSegs(t, src) - retrans0, 0, 'no SYN retransmission');
          const s = pit(start, fwd)!;
          const e = pit(end, { ...fwd, dir: Dir.INGRESS })!;
          if (want.kind === 'plain') {
            assert.ok(count(lan, msg) >= 1, `plaintext allowed: the marker is on the LAN (${lan.length} frames captured; PIT ${start} ${s?.action}, ${end} ${e?.action})`);
            assert.equal(s.action, Action.PASS);
            assert.equal(e.action, Action.PASS);
            return;
          }
          assert.equal(count(lan, msg), 0, 'no plaintext on the LAN');
          assert.equal(count(lan, msg.toUpperCase()), 0, 'no plaintext reply on the LAN');
          assert.deepEqual([s.action, s.group_id, s.state], [Action.ENCRYPT, want.group, PitState.CONFIRMED], `${start} encrypts`);
          assert.deepEqual([e.action, e.group_id, e.state], [Action.DECRYPT, want.group, PitState.CONFIRMED], `${end} decrypts`);
          if (term) assert.ok(count(term, msg) + count(term, msg.toUpperCase()) >= 1, 'plaintext between the GEN and the Term');
        });
      }
    }
  }
});
