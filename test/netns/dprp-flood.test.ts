/**
 * Issue 11 item 3 on the real agent: a flood of new UDP flows from a
 * non-member at a GES, at 50,000 new flows/s, while a TCP connection runs:
 *
 *   a (192.0.2.1: TCP client, 192.0.2.3: flood source; no GSCIP) --- r --- (203.0.113.2) b (GES, OP)
 *
 * Sampled each second: the agent's RSS and CPU (/proc), its PIT size.
 * Asserted: the TCP connection keeps echoing during and after the flood (no
 * error); the PIT never holds more than maxUnauthFlows flows' entries beyond
 * the connection's, and is back to the connection's within 10 s of the
 * flood's end; the DDEs b sends toward the flood's source stay within the
 * per-destination limit (burst + rate x time, from a capture that fails on a
 * lost frame; the flood comes from an address of its own, so the client's
 * no-GE-there cache does not spare it the DDEs); the agent's CPU is under 25 % of a core from 3 s after the
 * flood; RSS 10 s after the flood is within 10 % of its baseline (the
 * issue's target; bench/dprp-flood measures it over longer floods).
 * Bounded: 200,000 datagrams, a time limit on the file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { Capture } from '../lib/capture.js';
import { floodScript, procStats } from '../lib/flood-source.js';
import { startEchoServer, StreamClient } from '../lib/net-apps.js';
import { B, DprpTopo } from './dprp-topology.js';
import { CONTROL_PCAP_FILTER } from '../../controlplane/parts/control-framing.js';
import { DEFAULT_DPRP_CONFIG } from '../../controlplane/dprp/node-deps.js';

const unavailable = bpfUnavailable();
const RATE = 50_000;
const SECONDS = 4;
const TCP_PORT = 7501;
const FLOOD_SRC = '192.0.2.3';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function framesIn(file: string): number {
  if (!existsSync(file)) return 0;
  const b = readFileSync(file);
  let n = 0;
  for (let off = 24; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 8)) n++;
  return n;
}

describe('a flood of 50,000 new flows/s from a non-member at a GES (namespaces): bounded, counted, memory and CPU back', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let p: DprpTopo;

  before(async () => {
    p = new DprpTopo('dflood');
    p.topo.addr('a', 'va', `${FLOOD_SRC}/24`);
    // The systemd unit's node flag (deploy/gscip-agent@.service).
    await p.startGe('b', 'vb', { keys: [[1, 1, randomBytes(32)]], nodeArgs: ['--max-semi-space-size=1'] });
  });

  after(async () => {
    await p?.cleanup();
  });

  test('the TCP connection holds; PIT, DDEs, CPU and RSS within their bounds', async () => {
    const cfg = DEFAULT_DPRP_CONFIG;
    const pid = p.ges.pid('b');
    assert.ok(pid, 'the agent of b runs');
    const pitSize = (): number => {
      const m = p.maps('b');
      try { let n = 0; for (const _ of m.pit.entries()) n++; return n; } finally { m.close(); }
    };
    await startEchoServer(p.topo, 'b', B, TCP_PORT, TCP_PORT + 1);
    const stream = new StreamClient(p.topo, 'a', B, TCP_PORT, 40001, 50, 120_000);
    await waitFor('the TCP connection echoes', () => stream.echoed() >= 5, 15_000);
    const file = `/tmp/${p.topo.prefix}-dflood.pcap`;
    const cap = await Capture.start(p.topo, { host: 'b', iface: 'vb', direction: 'out', snaplen: 128, filter: `(${CONTROL_PCAP_FILTER}) and dst host ${FLOOD_SRC}`, file });
    try {
      await sleep(2_000);
      const base = procStats(pid!);
      const basePit = pitSize();
      console.log(`# baseline: RSS ${base.rssMb.toFixed(1)} MB, PIT ${basePit} entries (the TCP connection's)`);
      const ddes0 = framesIn(file);
      const t0 = Date.now();
      const flood = p.topo.spawn('a', 'node', ['-e', floodScript(FLOOD_SRC, B, RATE, SECONDS)]);
      let out = '';
      flood.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      let done = false;
      flood.once('exit', () => { done = true; });
      let last = procStats(pid!);
      let pitPeak = 0;
      const echoedBefore = stream.echoed();
      for (let i = 0; i < SECONDS * 4 && !done; i++) {
        await sleep(1_000);
        const s = procStats(pid!);
        const pit = pitSize();
        pitPeak = Math.max(pitPeak, pit);
        console.log(`# flood  +${i + 1} s: RSS ${s.rssMb.toFixed(1)} MB, CPU ${Math.round((s.cpuS - last.cpuS) * 100)} %, PIT ${pit}`);
        last = s;
      }
      await waitFor('the flood source is done', () => done, 30_000);
      const floodEnd = Date.now();
      assert.equal(Number(out), RATE * SECONDS, 'every datagram of the flood was sent');
      const echoedDuring = stream.echoed() - echoedBefore;
      const samples: Array<{ s: number; rssMb: number; cpuPct: number; pit: number }> = [];
      last = procStats(pid!);
      for (let s = 1; s <= 10; s++) {
        await sleep(Math.max(0, floodEnd + s * 1000 - Date.now()));
        const x = procStats(pid!);
        const pit = pitSize();
        pitPeak = Math.max(pitPeak, pit);
        samples.push({ s, rssMb: x.rssMb, cpuPct: Math.round((x.cpuS - last.cpuS) * 100), pit });
        console.log(`# after  +${s} s: RSS ${x.rssMb.toFixed(1)} MB, CPU ${samples[samples.length - 1].cpuPct} %, PIT ${pit}`);
        last = x;
      }
      await stream.advances(5, 10_000);
      await cap.stop();
      cap.pcap();  // throws if the capture lost frames: the DDE count below is complete
      const ddes = framesIn(file) - ddes0;
      const elapsedS = (Date.now() - t0) / 1000;
      const end = samples[samples.length - 1];
      const rssRatio = end.rssMb / base.rssMb;
      console.log(`# ${RATE * SECONDS} new flows at ${RATE}/s: PIT peak ${pitPeak} -> ${end.pit}; ${ddes} control messages sent toward ${FLOOD_SRC} in ${elapsedS.toFixed(1)} s; RSS ${base.rssMb.toFixed(1)} -> ${end.rssMb.toFixed(1)} MB 10 s after (${((rssRatio - 1) * 100).toFixed(1)} %); echoes during the flood ${echoedDuring}`);

      assert.ok(echoedDuring >= 1, 'the TCP connection echoed during the flood');
      assert.ok(pitPeak <= basePit + 4 * cfg.maxUnauthFlows, `PIT peak ${pitPeak} <= ${basePit} + 4 x maxUnauthFlows (${cfg.maxUnauthFlows})`);
      assert.ok(pitPeak > basePit + 1000, `the flood did reach the PIT (peak ${pitPeak}): the bounds were exercised`);
      assert.equal(end.pit, basePit, 'the PIT is back to the TCP connection\'s entries 10 s after the flood');
      const ddeBound = cfg.ddeLimit.burst + Math.ceil(cfg.ddeLimit.ratePerSec * elapsedS);
      assert.ok(ddes >= 1, 'b sent DDEs toward the flood\'s source: the limit was exercised');
      assert.ok(ddes <= ddeBound, `${ddes} control messages toward the flood's source <= ${ddeBound} (burst + rate x ${elapsedS.toFixed(1)} s)`);
      for (const x of samples.filter((y) => y.s >= 4)) assert.ok(x.cpuPct < 25, `agent CPU ${x.cpuPct} % at +${x.s} s (< 25 % from 3 s after the flood)`);
      assert.ok(rssRatio <= 1.10, `RSS 10 s after the flood ${end.rssMb.toFixed(1)} MB is within 10 % of the baseline ${base.rssMb.toFixed(1)} MB`);
    } finally {
      await cap.stop();
      rmSync(file, { force: true });
      stream.proc.kill('SIGKILL');
    }
  });
});
