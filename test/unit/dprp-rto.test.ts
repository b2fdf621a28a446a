/**
 * The start GE's retransmission timeout follows its measured DDE -> RGI round
 * trips (controlplane/dprp/rtt-estimator.ts): when answers take longer than
 * rtoMs (both agents busy), a later negotiation waits for its answer instead
 * of sending a DDE the end GE answers twice; with no measurement, or fast
 * answers, rtoMs stays; the timeout never exceeds rtoMaxMs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, fig6Nodes } from './dprp-sim.js';
import { MsgType } from '../../controlplane/dprp/wire.js';
import { RttEstimator } from '../../controlplane/dprp/rtt-estimator.js';

const msgType = (b: Buffer): number => b[1];
const ddesFrom = (sim: Sim, ge: string, sport: number): number[] =>
  sim.wire.filter((w) => w.from === ge && msgType(w.icmp) === MsgType.DDE && w.icmp.readUInt16BE(40) === sport).map((w) => w.at);

test('answers slower than rtoMs: the first negotiation retransmits, the next ones wait for their answer', { timeout: 10_000 }, () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, rtoMaxMs: 200, maxSends: 4 });
  sim.extraDelayMs = (w) => (msgType(w.icmp) === MsgType.RGI ? 30 : 0);
  sim.connect('GES1', 'GES2', 6, 41000);
  sim.time.run(1_000);
  assert.equal(ddesFrom(sim, 'GES1', 41000).length, 2, 'nothing measured yet: the DDE is sent again after rtoMs');
  for (let i = 1; i <= 5; i++) {
    sim.connect('GES1', 'GES2', 6, 41000 + i);
    sim.time.run(sim.time.now + 1_000);
    assert.equal(ddesFrom(sim, 'GES1', 41000 + i).length, 1, `negotiation ${i + 1}: one DDE, its answer awaited`);
  }
  const g = sim.ge('GES1');
  assert.equal(g.obs.completions.length, 6);
  assert.ok(g.obs.completions.every((c) => c.outcome === 'encrypted'));
});

test('rtoFollowsRtt false: the same slow answers, every negotiation retransmits after rtoMs (the fixed timeout of before)', { timeout: 10_000 }, () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, rtoMaxMs: 200, maxSends: 4, rtoFollowsRtt: false });
  sim.extraDelayMs = (w) => (msgType(w.icmp) === MsgType.RGI ? 30 : 0);
  for (let i = 0; i < 3; i++) {
    sim.connect('GES1', 'GES2', 6, 43000 + i);
    sim.time.run(sim.time.now + 1_000);
    assert.equal(ddesFrom(sim, 'GES1', 43000 + i).length, 2);
  }
});

test('fast answers keep rtoMs: a lost DDE is sent again rtoMs later', { timeout: 10_000 }, () => {
  const sim = new Sim(fig6Nodes(), { rtoMs: 20, rtoMaxMs: 200, maxSends: 4 });
  sim.connect('GES1', 'GES2', 6, 42000);
  sim.time.run(1_000);
  let dropped = false;
  sim.dropIf = (w) => { if (!dropped && msgType(w.icmp) === MsgType.DDE) { dropped = true; return true; } return false; };
  sim.connect('GES1', 'GES2', 6, 42001);
  const t0 = sim.time.now;
  sim.time.run(t0 + 1_000);
  assert.ok(dropped);
  assert.deepEqual(ddesFrom(sim, 'GES1', 42001).map((at) => at - t0), [20], 'the lost one (at 0, not on the wire) sent again 20 ms later');
});

test('the timeout is bounded: never below the floor, never above the cap, whatever was measured', () => {
  const e = new RttEstimator();
  assert.equal(e.baseMs(20, 200), 20, 'nothing measured');
  e.sample(1);
  assert.equal(e.baseMs(20, 200), 20, 'fast answers');
  for (let i = 0; i < 20; i++) e.sample(10_000);
  assert.equal(e.baseMs(20, 200), 200, 'slow answers: capped');
  e.sample(Number.NaN);
  e.sample(-5);
  assert.equal(e.baseMs(20, 200), 200, 'nonsense samples ignored');
});
