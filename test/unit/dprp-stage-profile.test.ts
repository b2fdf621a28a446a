/**
 * The DPRP stage profile (controlplane/dprp/stage-profile.ts): off, a
 * negotiation records nothing; on, one negotiation between two GESs records
 * each wire decode, the decision once, and its MACs; a handler call's `logic`
 * is its time minus the sub-stages inside it, and the punt's wake/deliver are
 * split at the reader's wake-up.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, fig6Nodes } from './dprp-sim.js';
import { Stage, stageProfile } from '../../controlplane/dprp/stage-profile.js';

afterEach(() => { stageProfile.on = false; stageProfile.reset(); });

test('off: a negotiation records no stage', { timeout: 10_000 }, () => {
  stageProfile.reset();
  const sim = new Sim(fig6Nodes());
  sim.connect('GES1', 'GES2');
  sim.time.run(1_000);
  assert.equal(sim.ge('GES1').obs.completions.length, 1);
  for (const [name, s] of Object.entries(stageProfile.summary())) assert.equal(s.n, 0, name);
});

test('on: one GES-GES negotiation decodes its 4 messages once each, decides once, and makes or checks MACs', { timeout: 10_000 }, () => {
  stageProfile.reset();
  stageProfile.on = true;
  const sim = new Sim(fig6Nodes());
  sim.connect('GES1', 'GES2');
  sim.time.run(1_000);
  assert.equal(sim.ge('GES1').obs.completions[0]?.outcome, 'encrypted');
  const s = stageProfile.summary();
  // DDE at GES2, RGI at GES1, MPIT at GES2, CDN at GES1 (and anything the path's other GEs decoded).
  const decoded = sim.wire.length; // every message delivered to a GE (plain hosts' are in sim.toHosts)
  assert.equal(s.decode.n, decoded, 'one decode per message a GE received');
  assert.equal(s.decide.n, 1, 'the start GE decides once');
  assert.ok(s.auth.n >= 4, `sign DDE record, verify RGI records, sign actions, check the seal (saw ${s.auth.n})`);
  assert.equal(s.wake.n, 0, 'no punt record in the simulation: wake/deliver stay empty');
});

test('a handler call: wake and deliver split at the wake-up, logic excludes the sub-stages inside it', () => {
  stageProfile.reset();
  stageProfile.on = true;
  const now = process.hrtime.bigint();
  stageProfile.woke(now - 1_000_000n); // woke 1 ms ago
  stageProfile.begin(now - 3_000_000n); // punted 3 ms ago
  const t0 = stageProfile.now();
  for (let i = 0; i < 1e8 && stageProfile.now() - t0 < 5; i++); // a 5 ms send inside the call (bounded spin)
  stageProfile.sub(Stage.send, t0);
  const spunUs = (stageProfile.now() - t0) * 1000; // the spin as this test saw it (a loaded machine preempts it)
  stageProfile.end();
  const s = stageProfile.summary();
  assert.ok(Math.abs(s.wake.p50Us - 2000) < 50, `wake ${s.wake.p50Us} us`);
  assert.ok(s.deliver.p50Us >= 1000 && s.deliver.p50Us < 2000, `deliver ${s.deliver.p50Us} us`);
  assert.ok(s.send.p50Us >= 5000 && s.send.p50Us <= spunUs + 50, `send ${s.send.p50Us} us (spun ${spunUs.toFixed(0)} us)`);
  // Counted twice, logic would hold the send too: at least as long as it.
  assert.ok(s.logic.n === 1 && s.logic.p50Us < s.send.p50Us, `logic ${s.logic.p50Us} us: the ${s.send.p50Us} us send is not counted twice`);
});
