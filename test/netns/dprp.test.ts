/**
 * DPRP end to end in namespaces: two GESs (real agent + fast path + PCCOM) in
 * one group, nothing configured about each other.
 *  - baseline first (no GSCIP): the capture on the router sees the marker, so
 *    the leak check below can fail;
 *  - the first TCP connect completes with no SYN retransmission, the data is
 *    end to end intact, the router sees only ciphertext, and both PITs hold the
 *    negotiated, confirmed entries (roles start/end, group 1);
 *  - UDP likewise;
 *  - DPRP control messages crossed the router and never reached b's stack;
 *  - forged and replayed DPRP messages injected at the router change nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { Action, Dir, PitState, Role } from '../../controlplane/maps/abi.js';
import type { Cid } from '../../controlplane/maps/codecs.js';
import { decode, encode, GSCIP_ICMP_TYPE, MsgType, WireAction } from '../../controlplane/dprp/wire.js';
import { buildIpv4Packet, IPPROTO_ICMP } from '../../controlplane/dprp/ipv4.js';
import { controlOfFrame, frameControl } from '../../controlplane/parts/control-framing.js';
import { CONTROL_UDP_PORT } from '../../controlplane/maps/abi.js';
import { A, B, DprpTopo, echoServer, injectFrom, MARKER, RouterCapture, runClients, waitReady } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const TCP_PORT = 7001;
const UDP_PORT = 7002;

function count(frames: Buffer[], needle: string): number {
  let n = 0;
  for (const f of frames) if (f.includes(needle)) n++;
  return n;
}

/** The control messages on the wire, over UDP (sport set) or as ICMP type 253 (the fallback copies of retransmitted DDEs). */
function controlMessages(frames: Buffer[], opts: { icmpCopies?: boolean } = {}): Array<{ src: string; dst: string; sport?: number; icmp: Buffer }> {
  const out: Array<{ src: string; dst: string; sport?: number; icmp: Buffer }> = [];
  for (const f of frames) {
    const c = controlOfFrame(f);
    if (!c || (c.sport === undefined && !opts.icmpCopies)) continue;
    out.push({ src: c.src, dst: c.dst, sport: c.sport, icmp: Buffer.from(c.msg) });
  }
  return out;
}

function pitRows(p: DprpTopo, host: 'a' | 'b'): Array<[Cid, { action: number; state: number; role: number; group_id: number; key_version: number }]> {
  const m = p.maps(host);
  try {
    return [...m.pit.entries()];
  } finally {
    m.close();
  }
}

describe('DPRP between two GESs in one group (namespaces)', { skip: unavailable ?? false }, () => {
  let p: DprpTopo;
  const key = randomBytes(32);

  before(async () => {
    p = new DprpTopo('dprp');
    await waitReady(echoServer(p.topo, 'b', 'tcp', TCP_PORT), 'tcp echo');
    await waitReady(echoServer(p.topo, 'b', 'udp', UDP_PORT), 'udp echo');
  });
  after(async () => { await p?.cleanup(); });

  test('baseline without GSCIP: plaintext crosses the router (the leak check can see it)', async () => {
    const cap = await RouterCapture.start(p.topo);
    const r = await runClients(p.topo, 'a', 'tcp', B, TCP_PORT, 1, 30000, `${MARKER}-baseline`);
    const frames = await cap.stop();
    assert.ok(r.ok, r.error);
    assert.equal(r.reply, `${MARKER}-baseline`.toUpperCase());
    assert.ok(count(frames, MARKER) >= 1, 'marker visible on the wire without GSCIP');
  });

  test('first TCP connect: negotiated, encrypted, no SYN retransmission, PITs on both GEs', async () => {
    await p.startGe('a', 'va', { keys: [[1, 1, key]] });
    await p.startGe('b', 'vb', { keys: [[1, 1, key]] });
    const retrans0 = p.retransSegs('a');
    const cap = await RouterCapture.start(p.topo);
    const r = await runClients(p.topo, 'a', 'tcp', B, TCP_PORT, 1, 31000, `${MARKER}-tcp`);
    const frames = await cap.stop();
    assert.ok(r.ok, r.error);
    assert.equal(r.reply, `${MARKER}-tcp`.toUpperCase(), 'application data intact end to end');
    assert.equal(p.retransSegs('a') - retrans0, 0, 'no SYN (or any) retransmission');
    assert.ok(r.connectMs[0] < 500, `connect took ${r.connectMs[0]} ms (a lost SYN would take >= 1 s)`);
    assert.equal(count(frames, MARKER), 0, 'no plaintext marker on the wire');
    assert.equal(count(frames, `${MARKER}-TCP`), 0, 'reply not in plaintext either');

    // Two round trips; under load a retransmission (attempt + 1) may add a DDE/RGI or MPIT/CDN pair.
    // Every message over UDP, from and to the control port (no NAT here); ICMP 253 only as a retransmitted DDE's copy.
    for (const c of controlMessages(frames, { icmpCopies: true })) {
      if (c.sport === undefined) assert.ok(c.icmp[1] === MsgType.DDE && decode(c.icmp).attempt > 1, 'ICMP 253 only for a retransmitted DDE');
      else assert.equal(c.sport, CONTROL_UDP_PORT);
    }
    const ctl = controlMessages(frames).map((c) => decode(c.icmp));
    const types = ctl.map((m) => m.type);
    assert.equal(types[0], MsgType.DDE, `sequence ${types.join(',')}`);
    assert.equal(types[types.length - 1], MsgType.CDN, `sequence ${types.join(',')}`);
    for (const ty of [MsgType.DDE, MsgType.RGI, MsgType.MPIT, MsgType.CDN]) {
      const n = types.filter((x) => x === ty).length;
      assert.ok(n >= 1 && n <= 4, `${n} messages of type ${ty} (at most maxSends)`);
    }
    assert.equal(new Set(ctl.map((m) => m.negId.toString('hex'))).size, 1, 'one negotiation');

    const fwd: Cid = { saddr: A, daddr: B, sport: 31000, dport: TCP_PORT, proto: 6, dir: Dir.EGRESS };
    const rowsA = pitRows(p, 'a');
    const rowsB = pitRows(p, 'b');
    const find = (rows: typeof rowsA, c: Cid) => rows.find(([k]) => k.saddr === c.saddr && k.daddr === c.daddr && k.sport === c.sport && k.dport === c.dport && k.proto === c.proto && k.dir === c.dir)?.[1];
    const aOut = find(rowsA, fwd)!;
    const aIn = find(rowsA, { ...fwd, saddr: B, daddr: A, sport: TCP_PORT, dport: 31000, dir: Dir.INGRESS })!;
    const bIn = find(rowsB, { ...fwd, dir: Dir.INGRESS })!;
    const bOut = find(rowsB, { ...fwd, saddr: B, daddr: A, sport: TCP_PORT, dport: 31000, dir: Dir.EGRESS })!;
    assert.deepEqual([aOut.action, aIn.action, bIn.action, bOut.action], [Action.ENCRYPT, Action.DECRYPT, Action.DECRYPT, Action.ENCRYPT]);
    for (const e of [aOut, aIn, bIn, bOut]) {
      assert.equal(e.state, PitState.CONFIRMED);
      assert.equal(e.group_id, 1);
      assert.equal(e.key_version, 1);
    }
    assert.equal(aOut.role, Role.START);
    assert.equal(bIn.role, Role.END);
  });

  test('first UDP datagram: delivered (not lost to the negotiation), encrypted on the wire', async () => {
    const cap = await RouterCapture.start(p.topo);
    const r = await runClients(p.topo, 'a', 'udp', B, UDP_PORT, 1, 32000, `${MARKER}-udp`, 5000);
    const frames = await cap.stop();
    assert.ok(r.ok && r.reply === `${MARKER}-udp`.toUpperCase(), `UDP echo: ${JSON.stringify(r)}`);
    assert.equal(count(frames, MARKER), 0);
  });

  test('forged and replayed DPRP messages injected at the router change nothing', async () => {
    const cap = await RouterCapture.start(p.topo);
    const r = await runClients(p.topo, 'a', 'tcp', B, TCP_PORT, 1, 33000, 'hello');
    const frames = await cap.stop();
    assert.ok(r.ok, r.error);
    const ctl = controlMessages(frames);
    assert.equal(ctl.length, 4);
    const before = { a: pitRows(p, 'a'), b: pitRows(p, 'b') };

    const injected: Buffer[] = [];
    // 1. exact replays of the four messages, toward their original destinations, over UDP and as ICMP 253
    for (const c of ctl) injected.push(frameControl(c.src, c.dst, c.icmp, { sport: c.sport }), buildIpv4Packet(c.src, c.dst, IPPROTO_ICMP, c.icmp));
    // 2. an altered MPIT: GES b told to pass the flow in plaintext (fresh attempt and timestamp)
    const mpit = decode(ctl.find((c) => c.icmp[1] === MsgType.MPIT)!.icmp);
    mpit.attempt += 5;
    mpit.timestampMs = Date.now();
    mpit.actions[0].action = WireAction.PASS;
    injected.push(frameControl(A, B, encode(mpit)));
    // 3. a forged MPIT for a flow never negotiated (unknown negotiation id)
    const forged = { ...mpit, negId: randomBytes(8), flow: { ...mpit.flow, sport: 34000 } };
    injected.push(frameControl(A, B, encode(forged)));
    // 4. garbage with a GSCIP ICMP type
    injected.push(buildIpv4Packet(A, B, IPPROTO_ICMP, Buffer.concat([Buffer.from([GSCIP_ICMP_TYPE, 3, 0, 0]), randomBytes(80)])));
    injected.push(frameControl(A, B, Buffer.concat([Buffer.from([GSCIP_ICMP_TYPE, 3, 0, 0]), randomBytes(80)])));
    injectFrom(p.topo, 'r', injected);
    await new Promise((res) => setTimeout(res, 300));

    const strip = (rows: typeof before.a) => rows.map(([k, v]) => `${k.dir} ${k.saddr}:${k.sport}>${k.daddr}:${k.dport} ${v.action}/${v.state}/${v.role}/${v.group_id}/${v.key_version}`).sort();
    assert.deepEqual(strip(pitRows(p, 'a')), strip(before.a), 'a PIT unchanged');
    assert.deepEqual(strip(pitRows(p, 'b')), strip(before.b), 'b PIT unchanged');
    // the flow still works, encrypted
    const again = await runClients(p.topo, 'a', 'tcp', B, TCP_PORT, 1, 33001, 'still fine');
    assert.ok(again.ok && again.reply === 'STILL FINE', again.error);
  });
});
