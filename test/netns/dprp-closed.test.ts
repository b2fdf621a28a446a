/**
 * PIT lifecycle in namespaces (issue 5): two GESs (real agents, fast path,
 * PCCOM) with closedTimeoutMs 1 s and the default 300 s idle timeout.
 *  - a TCP connection closed normally (FIN each way): its PIT entries on both
 *    GEs carry GSCIP_PIT_F_FIN and disappear within a bounded time;
 *  - a TCP connection that stays open but silent keeps its entries (no flag).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { Action, Dir, PIT_F_FIN, PIT_F_RST } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';
import { A, B, DprpTopo, echoServer, MARKER, runClients, waitReady } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const TCP_PORT = 7101;
const CLOSED_PORT = 32000; // client port of the connection that closes
const OPEN_PORT = 32100;   // client port of the connection left open and idle
const CLOSED_TIMEOUT_MS = 1_000;

type Rows = Array<[Cid, PitVal]>;

function pitRows(p: DprpTopo, host: 'a' | 'b'): Rows {
  const m = p.maps(host);
  try {
    return [...m.pit.entries()];
  } finally {
    m.close();
  }
}

/** The PIT rows of one TCP connection A:cport <-> B:TCP_PORT on a GE. */
function flowRows(rows: Rows, cport: number): Rows {
  return rows.filter(([k]) => k.proto === 6 && ((k.saddr === A && k.sport === cport && k.daddr === B && k.dport === TCP_PORT) ||
    (k.saddr === B && k.sport === TCP_PORT && k.daddr === A && k.dport === cport)));
}

/** A client on a that connects from `cport`, gets one echo, then holds the connection open, silent. */
function idleClient(p: DprpTopo, cport: number): ChildProcess {
  const js = `const s = require('net').connect({ host: ${JSON.stringify(B)}, port: ${TCP_PORT}, localPort: ${cport} });
s.on('connect', () => s.write('hold-open'));
s.on('data', () => console.log('ready'));
s.on('error', (e) => { console.error(e.message); process.exit(2); });
setTimeout(() => process.exit(0), 60000);`;
  return p.topo.spawn('a', 'node', ['-e', js]);
}

describe('DPRP PIT lifecycle: closed TCP flows expire promptly, open idle ones stay (namespaces)', { skip: unavailable ?? false }, () => {
  let p: DprpTopo;
  let holder: ChildProcess | undefined;
  const key = randomBytes(32);

  before(async () => {
    p = new DprpTopo('dprpcl');
    await waitReady(echoServer(p.topo, 'b', 'tcp', TCP_PORT), 'tcp echo');
    const dprp = { closedTimeoutMs: CLOSED_TIMEOUT_MS };
    await p.startGe('a', 'va', { keys: [[1, 1, key]], dprp });
    await p.startGe('b', 'vb', { keys: [[1, 1, key]], dprp });
  });
  after(async () => {
    holder?.kill('SIGKILL');
    await p?.cleanup();
  });

  test('FIN each way: both GEs drop the flow within closedTimeoutMs + a few sweeps; the open idle flow stays', async () => {
    holder = idleClient(p, OPEN_PORT);
    await waitReady(holder, 'idle client echo');
    const r = await runClients(p.topo, 'a', 'tcp', B, TCP_PORT, 1, CLOSED_PORT, `${MARKER}-closing`);
    assert.ok(r.ok, r.error);
    assert.equal(r.reply, `${MARKER}-closing`.toUpperCase());

    // Right after the close: the entries are there and carry the FIN bit (egress and ingress, both GEs).
    for (const host of ['a', 'b'] as const) {
      const rows = flowRows(pitRows(p, host), CLOSED_PORT);
      assert.equal(rows.length, 2, `${host}: entries of the closing flow ${JSON.stringify(rows.map(([k]) => k))}`);
      for (const [k, v] of rows) {
        assert.ok(v.action === Action.ENCRYPT || v.action === Action.DECRYPT);
        assert.equal(v.flags & PIT_F_FIN, PIT_F_FIN, `${host} ${k.dir === Dir.EGRESS ? 'egress' : 'ingress'}: FIN not recorded`);
      }
      const open = flowRows(pitRows(p, host), OPEN_PORT);
      assert.equal(open.length, 2, `${host}: entries of the open flow`);
      for (const [, v] of open) assert.equal(v.flags & (PIT_F_FIN | PIT_F_RST), 0, 'the open flow was marked closed');
    }

    // Bound: closedTimeoutMs + last_seen granularity (1 s) + sweep tick (1 s) + slack.
    const t0 = Date.now();
    let gone = false;
    while (Date.now() - t0 < CLOSED_TIMEOUT_MS + 6_000) {
      if (flowRows(pitRows(p, 'a'), CLOSED_PORT).length === 0 && flowRows(pitRows(p, 'b'), CLOSED_PORT).length === 0) { gone = true; break; }
      await new Promise((res) => setTimeout(res, 100));
    }
    const took = Date.now() - t0;
    assert.ok(gone, `closed flow still in a PIT after ${took} ms`);
    process.stderr.write(`closed flow left both PITs ${took} ms after the client's close\n`);
    for (const host of ['a', 'b'] as const) {
      const open = flowRows(pitRows(p, host), OPEN_PORT);
      assert.equal(open.length, 2, `${host}: the open idle flow was expired too`);
    }
  });
});
