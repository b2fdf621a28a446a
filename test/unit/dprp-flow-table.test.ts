/**
 * DPRP on the flow table (controlplane/flows/), in the in-memory simulation:
 * a negotiated flow has one id at every GE, the same after re-keying and after
 * a re-negotiation that changes its decision; adopted flows get ids; every
 * PIT write a DPRP node makes goes through the table (none of a settled flow's
 * entries is left unowned once it expires).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, fig6Nodes, testKey } from './dprp-sim.js';
import { canonicalFlowKey, reverseFlow } from '../../controlplane/dprp/pit-entries.js';
import type { Flow } from '../../controlplane/dprp/wire.js';

function recordOf(sim: Sim, ge: string, flow: Flow) {
  const want = canonicalFlowKey(flow);
  const recs = sim.ge(ge).node.flowRecords().filter((r) => canonicalFlowKey(r.flow) === want);
  assert.equal(recs.length, 1, `${ge}: one record for the flow`);
  return recs[0];
}

test('a re-keyed flow keeps its flow id at both ends while its entries move to the new key version', () => {
  const sim = new Sim(fig6Nodes());
  const { flow } = sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const before = { s: recordOf(sim, 'GES1', flow), e: recordOf(sim, 'GES2', flow) };
  assert.equal(before.s.version, 1);
  for (const g of ['GES1', 'GES2']) sim.ge(g).keys.add(testKey(1, 2));
  assert.equal(sim.ge('GES1').node.onKeysChanged(), 1);
  sim.time.run(20_000);
  const after = { s: recordOf(sim, 'GES1', flow), e: recordOf(sim, 'GES2', flow) };
  assert.equal(after.s.id, before.s.id, 'start GE: same id');
  assert.equal(after.e.id, before.e.id, 'end GE: same id');
  assert.equal(after.s.version, 2);
  assert.notEqual(after.s.negId, before.s.negId, 'installed by the re-keying negotiation');
  assert.deepEqual(after.s.entries.map((e) => e.version), [2, 2]);
});

test('a flow negotiated again from the other side stays one flow with one id, and its entries all expire together', () => {
  const sim = new Sim(fig6Nodes(), { idleTimeoutMs: 60_000 });
  const { flow } = sim.connect('GES1', 'GES3'); // plaintext: pass on all four hooks
  sim.time.run(10_000);
  const first = recordOf(sim, 'GES3', flow);
  assert.equal(first.role, 'end');
  // GES3 now starts the reverse flow (as after a lost entry): the same 5-tuple, the other orientation
  sim.ge('GES3').node.onPitMiss(reverseFlow(flow), 'h-rev');
  sim.time.run(20_000);
  const again = recordOf(sim, 'GES3', flow);
  assert.equal(again.id, first.id);
  assert.equal(again.role, 'start');
  assert.equal(sim.ge('GES3').pit.size, 4);
  sim.time.advance(61_000);
  for (const g of ['GES1', 'GES3']) sim.ge(g).node.sweep();
  assert.equal(sim.ge('GES3').pit.size, 0, 'expired with every entry');
  assert.equal(sim.ge('GES3').node.flowRecords().length, 0);
});

test('adopted flows get flow ids of their own', () => {
  const sim = new Sim(fig6Nodes());
  const { flow } = sim.connect('GES1', 'GES2');
  const other = sim.connect('GES1', 'GES2', 6, 40999).flow;
  sim.time.run(10_000);
  const pinned = [...sim.ge('GES1').pit.values()];
  const fresh = new Sim(fig6Nodes());
  assert.equal(fresh.ge('GES1').node.adopt(pinned), 2);
  const ids = [recordOf(fresh, 'GES1', flow).id, recordOf(fresh, 'GES1', other).id];
  assert.notEqual(ids[0], ids[1]);
  assert.equal(fresh.ge('GES1').node.adopt(pinned), 0, 'a flow already held is not adopted twice');
});
