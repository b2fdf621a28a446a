/**
 * The part contract on the real datapath: two GESs (a, b; test/netns/dprp-topology.ts)
 * run the agent with `handlers: [dprp, probe]` composed by the agent itself,
 * where `probe` is the test-only part of test/lib/probe-part.ts (one ICMP
 * control code, one critical DPRP option).
 *  - the probe option rides in a real DPRP exchange: b verifies a's (DDE) and a
 *    verifies b's (RGI), both authenticated by the records' group tags, and the
 *    flow is negotiated and encrypted as without the part;
 *  - a control message with the probe's ICMP code, injected at the router,
 *    reaches b's probe and nothing of DPRP: b's gscip_dprp_messages_rejected_total
 *    does not move (and a DPRP-code garbage message right after moves it by
 *    one, so the check can fail).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { Action, Dir } from '../../controlplane/maps/abi.js';
import { buildIpv4Packet, inetChecksum, IPPROTO_ICMP } from '../../controlplane/dprp/ipv4.js';
import { GSCIP_ICMP_TYPE, MsgType } from '../../controlplane/dprp/wire.js';
import { A, B, DprpTopo, echoServer, injectFrom, runClients, waitReady } from './dprp-topology.js';
import { metricsText } from './dprp-topology.js';
import { PROBE_EVENT } from './dprp-ge.js';
import { PROBE_ICMP_CODE, type ProbeEvent } from '../lib/probe-part.js';

const unavailable = bpfUnavailable();
const TCP_PORT = 7101;

function probeEvents(p: DprpTopo, host: 'a' | 'b'): ProbeEvent[] {
  return p.ges.output(host).split('\n').filter((l) => l.startsWith(`${PROBE_EVENT} `)).map((l) => JSON.parse(l.slice(PROBE_EVENT.length + 1)) as ProbeEvent);
}

/** Sum over reasons of b's gscip_dprp_messages_rejected_total, read from its /metrics inside the namespace. */
function dprpRejected(p: DprpTopo, host: 'a' | 'b'): number {
  const text = metricsText(p.topo, host);
  assert.match(text, /gscip_dprp_negotiations_started_total/, 'the GE serves DPRP metrics');
  return text.split('\n').filter((l) => l.startsWith('gscip_dprp_messages_rejected_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

function icmpControl(code: number, body: Buffer): Buffer {
  const icmp = Buffer.concat([Buffer.from([GSCIP_ICMP_TYPE, code, 0, 0, 0, 0, 0, 0]), body]);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  return buildIpv4Packet(A, B, IPPROTO_ICMP, icmp);
}

describe('a test-only part on the real datapath (namespaces)', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let p: DprpTopo;
  const key = randomBytes(32);

  before(async () => {
    p = new DprpTopo('parts');
    await waitReady(echoServer(p.topo, 'b', 'tcp', TCP_PORT), 'tcp echo');
    await p.startGe('a', 'va', { keys: [[1, 1, key]], probe: true });
    await p.startGe('b', 'vb', { keys: [[1, 1, key]], probe: true });
  });
  after(async () => { await p?.cleanup(); });

  test('the probe option rides in the DPRP exchange and is verified, authenticated, on the other side', async () => {
    const r = await runClients(p.topo, 'a', 'tcp', B, TCP_PORT, 1, 41000, 'probe-hello');
    assert.ok(r.ok, r.error);
    assert.equal(r.reply, 'PROBE-HELLO');
    await waitFor('probe option events on both GEs', () => probeEvents(p, 'a').length > 0 && probeEvents(p, 'b').length > 0, 5000);
    const atB = probeEvents(p, 'b').filter((e) => e.kind === 'option');
    const atA = probeEvents(p, 'a').filter((e) => e.kind === 'option');
    assert.deepEqual(atB[0], { kind: 'option', from: A, msgType: MsgType.DDE, authenticated: true, value: A }, 'b verified a\'s option (DDE)');
    assert.deepEqual(atA[0], { kind: 'option', from: B, msgType: MsgType.RGI, authenticated: true, value: B }, 'a verified b\'s option (RGI)');
    const m = p.maps('a');
    try {
      const out = [...m.pit.entries()].find(([k]) => k.dir === Dir.EGRESS && k.sport === 41000 && k.daddr === B)?.[1];
      assert.equal(out?.action, Action.ENCRYPT, 'the flow is negotiated and encrypted as without the part');
    } finally { m.close(); }
  });

  test('a control message with the probe\'s ICMP code reaches only the probe: DPRP counts nothing', async () => {
    const rejected0 = dprpRejected(p, 'b');
    const controls0 = probeEvents(p, 'b').filter((e) => e.kind === 'control').length;
    injectFrom(p.topo, 'r', [icmpControl(PROBE_ICMP_CODE, Buffer.from('probe control message, not DPRP'))]);
    await waitFor('the probe sees its control message', () => probeEvents(p, 'b').filter((e) => e.kind === 'control').length > controls0, 5000);
    const ev = probeEvents(p, 'b').filter((e) => e.kind === 'control').pop()!;
    assert.equal(ev.kind === 'control' && ev.code, PROBE_ICMP_CODE);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(dprpRejected(p, 'b'), rejected0, 'DPRP neither saw nor counted the probe\'s message');
    // The same check sees a message DPRP does get: garbage under DPRP's MPIT code is counted once.
    injectFrom(p.topo, 'r', [icmpControl(MsgType.MPIT, randomBytes(60))]);
    await waitFor('DPRP counts the garbage', () => dprpRejected(p, 'b') === rejected0 + 1, 5000);
    assert.equal(probeEvents(p, 'b').filter((e) => e.kind === 'control').length, controls0 + 1, 'and the probe does not see DPRP\'s');
  });
});
