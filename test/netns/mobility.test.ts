/**
 * Mobile PPC on the real datapath (test/netns/mobility-topology.ts): GES b
 * moves from r1's subnet to r2's in the middle of a multi-MB TCP transfer to
 * a and of a UDP exchange with it, with PCCOM on (both GEs hold group 1).
 *  - the transfer completes byte-exact (SHA-256), the source sees no socket
 *    error, and no RST crosses a's interface;
 *  - the UDP exchange goes on after the move, and a's application still sees
 *    b's old address (the CIT translates below it);
 *  - the capture on the new path (r2's LAN side) saw the traffic and never
 *    the plaintext marker;
 *  - a's XLAT map holds kind-cit entries and both GEs count the move;
 *  - moving back home removes the CIT and the UDP exchange goes on.
 * Without Mobile PPC the transfer stalls (a's answers go to the old path).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { startEchoServer } from '../lib/net-apps.js';
import { XlatKind } from '../../controlplane/maps/abi.js';
import { exited, MARKER, markedData, sha256 } from './pccom-topology.js';
import { A, B_NEW, B_OLD, MobilityTopo } from './mobility-topology.js';
import { transferAcrossMove, capture, controlPackets, count, PINGER, Pinger, SINK, SOURCE, UDP_PORT } from './mobility-apps.js';
import { dumpCit } from '../../controlplane/cli/commands/maps.js';
import { readPublishedTable } from '../../controlplane/parts/published-table.js';
import { MOVES_TABLE, movesByFlow } from '../../controlplane/mobility/published-moves.js';
import { frameControl } from '../../controlplane/parts/control-framing.js';
import { CU_CODE, encodeCu } from '../../controlplane/mobility/cu-wire.js';
import { injectFrom } from './dprp-topology.js';
import { writeFileSync as writeKey } from 'node:fs';
import { DnsServer } from './dns-server.js';
import { sh } from '../lib/netns.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const DNS_ADDR = '203.0.113.254';

const unavailable = bpfUnavailable();
const BYTES = 6 << 20;

describe('Mobile PPC: a GES moves between two subnets mid-transfer (namespaces)', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: MobilityTopo;
  let pinger: Pinger;
  let dns: DnsServer | null = null;
  let recordedCu: Buffer | undefined;
  const key = randomBytes(32);

  before(async () => {
    p = new MobilityTopo('mppc');
    // BIND 9 on rc: b's name, updated by b's agent after each move (skipped where BIND is not installed).
    let mobilityConfig: Record<string, unknown> | undefined;
    if (NAMED) {
      dns = new DnsServer(p.topo, 'rc', DNS_ADDR, { b: B_OLD });
      await dns.start();
      const k = dns.keys.get('b')!;
      writeKey(`${dns.dir}/ge-b.key`, k.secret.toString('base64'), { mode: 0o600 });
      mobilityConfig = { ddns: { server: DNS_ADDR, zone: 'example.net', name: 'b.example.net', keyName: k.keyName, keyFile: `${dns.dir}/ge-b.key` } };
    }
    await p.startGe('a', { keys: [[1, 1, key]] });
    await p.startGe('b', { keys: [[1, 1, key]], mobilityConfig });
    await startEchoServer(p.topo, 'a', A, 7301, UDP_PORT, 170_000);
    pinger = new Pinger(p.topo.spawn('b', 'node', ['-e', PINGER(A, B_OLD)]));
    await pinger.more(5, 10_000);
  });
  after(async () => { await dns?.stop(); await p?.cleanup(); });

  test('TCP (6 MiB) and UDP keep going across the move, byte-exact, no RST, ciphertext only on the new path', async () => {
    const newPath = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
    const rsts = await capture(p, 'a', 'va', 'tcp[tcpflags] & tcp-rst != 0');
    try {
      await transferAcrossMove(p, 'b', A, BYTES, () => p.moveToR2());
      const after = await pinger.more(20, 15_000);
      assert.ok(after.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), `a's application still sees b's old address: ${after[0]}`);
    } finally {
      const cap = await newPath.stop();
      recordedCu = controlPackets(cap, CU_CODE.CU)[0];
      const rst = await rsts.stop();
      assert.equal(rst.length, 24, 'no RST crossed a\'s interface (the capture holds only its header)');
      assert.ok(cap.length > 1 << 20, `the new path carried the transfer (${cap.length} bytes captured)`);
      assert.equal(count(cap, MARKER), 0, 'no plaintext marker on the new path');
    }
    const m = p.ges.maps('a');
    try {
      const cit = [...m.xlat.entries()].filter(([, v]) => v.kind === XlatKind.CIT);
      assert.ok(cit.length >= 4, `a holds the CIT of the TCP and the UDP flow (${cit.length} entries)`);
      const view = JSON.parse(dumpCit(m, true)) as Array<{ proto: string; peer: string; end: string; old: string; new: string }>;
      assert.deepEqual(view.map((r) => `${r.proto} ${r.peer} ${r.end} ${r.old} -> ${r.new}`).sort(),
        [`tcp ${B_OLD}:40100 stationary ${B_OLD}:40100 -> ${B_NEW}:40100`, `udp ${B_OLD}:41000 stationary ${B_OLD}:41000 -> ${B_NEW}:41000`], '`gscip maps dump cit` on a');
    } finally { m.close(); }
    // The move count is the agent's, published for `gscip maps dump cit` (the map holds only the translation).
    await waitFor('a publishes the moved flows\' counts', () => {
      const moves = movesByFlow(readPublishedTable(p.ges.runDir, 'dprp-a', MOVES_TABLE));
      return moves.get(`6 ${A}:7300 ${B_OLD}:40100`) === 1 && moves.get(`17 ${A}:${UDP_PORT} ${B_OLD}:41000`) === 1;
    }, 5000, 100);
    const m2 = p.ges.maps('a');
    try {
      const rows = JSON.parse(dumpCit(m2, true, movesByFlow(readPublishedTable(p.ges.runDir, 'dprp-a', MOVES_TABLE)))) as Array<{ moves: number | null }>;
      assert.deepEqual(rows.map((r) => r.moves), [1, 1], '`gscip maps dump cit` shows each flow moved once');
    } finally { m2.close(); }
    assert.ok(p.metric('a', 'gscip_mobility_flows_moved_total{end="stationary"}') >= 2);
    assert.ok(p.metric('b', 'gscip_mobility_cu_answered_total') >= 1);
    assert.ok(p.metric('b', 'gscip_mobility_handover_seconds_count') >= 1);
    assert.equal(p.metric('a', 'gscip_mobility_cu_refused_total'), 0);
  });

  test('DDNS: after the move, b.example.net resolves to b\'s new address (BIND 9, TSIG)', { skip: NAMED ? false : 'BIND 9 not installed' }, async () => {
    await waitFor('dig sees the new address', () => dns!.lookup('rc', 'b') === B_NEW, 15_000, 200);
    assert.ok(p.metric('b', 'gscip_mobility_ddns_updates_total{result="noerror"}') >= 1);
  });

  test('moving back home removes the CIT; the UDP exchange goes on', async () => {
    const citNow = (): number => {
      const m = p.ges.maps('a');
      try { return [...m.xlat.entries()].filter(([, v]) => v.kind === XlatKind.CIT).length; } finally { m.close(); }
    };
    assert.ok(citNow() > 0, 'away from home, a holds a CIT');
    p.moveBackToR1();
    await waitFor('a\'s CIT gone', () => {
      const m = p.ges.maps('a');
      try { return [...m.xlat.entries()].filter(([, v]) => v.kind === XlatKind.CIT).length === 0; } finally { m.close(); }
    }, 10_000);
    const after = await pinger.more(20, 15_000);
    assert.ok(after.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)));
    if (dns) await waitFor('dig sees the home address again', () => dns!.lookup('rc', 'b') === B_OLD, 15_000, 200);
  });

  test('the recorded CU replayed, a forged CU and a non-member\'s CU, injected on the real path, move nothing and are counted', async () => {
    assert.ok(recordedCu, 'the capture on the new path holds b\'s CU');
    const refused = (r: string) => p.metric('a', `gscip_mobility_cu_refused_total{reason="${r}"}`);
    const before = { replayed: refused('replayed') + refused('stale'), badMac: refused('bad_mac'), noKey: refused('no_key') };
    const cit = () => { const m = p.ges.maps('a'); try { return [...m.xlat.entries()].filter(([, v]) => v.kind === XlatKind.CIT).length; } finally { m.close(); } };
    const entry = { proto: 17, status: 0, peer: { addr: A, port: UDP_PORT }, seq: 99, old: { addr: B_OLD, port: 41000 }, next: { addr: B_NEW, port: 41000 } };
    const forged = (group: number) => frameControl(B_NEW, A, encodeCu({ code: CU_CODE.CU, group, version: 1, cuId: randomBytes(8), timestampMs: Date.now(), entries: [entry] }, B_NEW, A, randomBytes(32)));
    injectFrom(p.topo, 'r2', [recordedCu!, forged(1), forged(7)]);
    await waitFor('a counts the three', () => refused('replayed') + refused('stale') > before.replayed && refused('bad_mac') > before.badMac && refused('no_key') > before.noKey, 10_000, 100);
    assert.equal(cit(), 0, 'b is home: still no CIT at a');
    const after = await pinger.more(10, 10_000);
    assert.ok(after.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), 'and the flow goes on');
  });
});
