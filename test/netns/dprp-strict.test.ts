/**
 * No silent downgrade (issue 11 item 2), in namespaces: a - r - b, a GE agent
 * on a only, so no GE answers for b.
 *  - default: the flow to b is carried in plaintext, and it is visible: a's PIT
 *    entries say why (no_ge), gscip_dprp_plaintext_flows_total counts it, and
 *    the agent logs it;
 *  - strict (requireEncryption covers b): the same flow is refused: the client
 *    gets nothing through, no packet of it reaches b's link (capture on r),
 *    and the PIT, the counter and the log say encryption_required.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { Action } from '../../controlplane/maps/abi.js';
import { pitWhyOf } from '../../controlplane/maps/vocabulary.js';
import { parseFrame } from '../lib/packets.js';
import { A, B, DprpTopo, echoServer, MARKER, metricsText, RouterCapture, runClients, waitReady } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const PORT = 7301;

/** a's PIT rows of the TCP flow A:cport <-> B:PORT: [action, why] per row. */
function flowRows(p: DprpTopo, cport: number): Array<[number, string]> {
  const m = p.maps('a');
  try {
    return [...m.pit.entries()]
      .filter(([k]) => k.proto === 6 && ((k.saddr === A && k.sport === cport && k.daddr === B) || (k.saddr === B && k.daddr === A && k.dport === cport)))
      .map(([, v]) => [v.action, pitWhyOf(v.flags)]);
  } finally {
    m.close();
  }
}

/** a's gscip_dprp_plaintext_flows_total{result, why}, from its /metrics inside the namespace. */
function plaintextCount(p: DprpTopo, result: string, why: string): number {
  const text = metricsText(p.topo, 'a');
  const line = text.split('\n').find((l) => l.startsWith(`gscip_dprp_plaintext_flows_total{result="${result}",why="${why}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('DPRP: no silent downgrade, and strict mode fails closed (namespaces)', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let p: DprpTopo;
  const key = randomBytes(32);

  before(async () => {
    p = new DprpTopo('dprpst');
    await waitReady(echoServer(p.topo, 'b', 'tcp', PORT), 'tcp echo');
  });
  after(async () => {
    await p?.cleanup();
  });

  test('no GE answers: plaintext, and the PIT, the counter and the log say no_ge', async () => {
    await p.startGe('a', 'va', { keys: [[1, 1, key]], metrics: true });
    const r = await runClients(p.topo, 'a', 'tcp', B, PORT, 1, 33100, `${MARKER}-open`);
    assert.ok(r.ok, r.error);
    assert.equal(r.reply, `${MARKER}-open`.toUpperCase());
    const rows = flowRows(p, 33100);
    assert.ok(rows.length >= 2, `entries of the flow: ${JSON.stringify(rows)}`);
    for (const [action, why] of rows) {
      assert.equal(action, Action.PASS);
      assert.equal(why, 'no_ge');
    }
    assert.equal(plaintextCount(p, 'pass', 'no_ge'), 1);
    assert.match(p.ges.output('a'), /flow carried in plaintext: no_ge/);
    await p.stopGes();
  });

  test('requireEncryption covers b: the flow is refused, nothing of it reaches b, and everything says encryption_required', async () => {
    await p.startGe('a', 'va', { keys: [[1, 1, key]], metrics: true, requireEncryption: ['203.0.113.0/24'] });
    const cap = await RouterCapture.start(p.topo, 'rb', 'r');
    const r = await runClients(p.topo, 'a', 'tcp', B, PORT, 1, 33200, `${MARKER}-strict`, 4_000);
    const frames = await cap.stop();
    assert.equal(r.ok, false, 'the client got through');
    const toB = frames.map((f) => parseFrame(f)).filter((f) => f.ip?.proto === 6 && f.ip.dst === B && f.l4?.dport === PORT);
    assert.deepEqual(toB.length, 0, 'a TCP packet of the refused flow crossed to b');
    const rows = flowRows(p, 33200);
    assert.ok(rows.length >= 2, `entries of the flow: ${JSON.stringify(rows)}`);
    for (const [action, why] of rows) {
      assert.equal(action, Action.DROP);
      assert.equal(why, 'encryption_required');
    }
    assert.equal(plaintextCount(p, 'refused', 'encryption_required'), 1);
    assert.equal(plaintextCount(p, 'pass', 'no_ge'), 0);
    assert.match(p.ges.output('a'), /flow refused: encryption_required/);
  });
});
