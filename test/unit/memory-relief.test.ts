/** agent/memory-relief.ts: one relief per burst, only once the burst is over; never without a burst. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRelief, v8FullGc } from '../../controlplane/agent/memory-relief.js';
import { mallocTrim } from '../../controlplane/bpf/libc.js';

test('a burst, then quiet: one GC + trim after quietForMs of quiet, and none again until the next burst', () => {
  let t = 0;
  const calls: string[] = [];
  const r = new MemoryRelief({ now: () => t, gc: () => calls.push('gc'), trim: () => calls.push('trim'), burstPerSec: 1000, quietPerSec: 10, quietForMs: 3000 });
  const second = (punts: number): boolean => { r.note(punts); t += 1000; return r.tick(); };
  assert.equal(second(5), false, 'no burst yet');
  assert.equal(second(50_000), false, 'during the burst: nothing');
  assert.equal(second(20_000), false);
  assert.equal(second(500), false, 'tailing off, not quiet yet');
  assert.equal(second(0), false);
  assert.equal(second(0), false);
  assert.equal(second(0), false);
  assert.equal(second(0), true, 'quiet for 3 s: relieved');
  assert.deepEqual(calls, ['gc', 'trim']);
  second(0);
  assert.deepEqual(calls, ['gc', 'trim'], 'the late trim waits lateTrimMs (2 s)');
  second(0);
  assert.deepEqual(calls, ['gc', 'trim', 'trim'], 'then malloc_trim once more (what V8 freed after the collection)');
  for (let i = 0; i < 10; i++) assert.equal(second(0), false, 'once per burst');
  assert.deepEqual(calls, ['gc', 'trim', 'trim'], 'no more');
  assert.equal(second(2000), false);
  for (let i = 0; i < 3; i++) second(0);
  assert.equal(second(0), true, 'the next burst gets its own relief');
});

test('the relief waits for what the burst left held to drain (flood flows ageing out), at most maxWaitMs', () => {
  let t = 0;
  let held = 0;
  const calls: string[] = [];
  const reliefs: number[] = [];
  const r = new MemoryRelief({
    now: () => t, gc: () => calls.push('gc'), trim: () => calls.push('trim'), burstPerSec: 1000, quietPerSec: 10, quietForMs: 3000,
    held: () => held, heldFloor: 100, maxWaitMs: 20_000, onRelief: (i) => reliefs.push(i.held),
  });
  const second = (punts: number): boolean => { r.note(punts); t += 1000; return r.tick(); };
  held = 300;
  assert.equal(second(5), false, 'normal operation: 300 held');
  held = 4096;
  assert.equal(second(50_000), false, 'during the burst: nothing');
  held = 1736;
  for (let i = 0; i < 6; i++) assert.equal(second(0), false, `quiet ${i + 1} s but 1,736 records still held (300 before the burst): waiting`);
  held = 401;
  assert.equal(second(0), false, 'still more than heldFloor (100) above what was held before');
  held = 400;
  assert.equal(second(0), true, 'back within heldFloor of the 300 held before: relieved');
  assert.deepEqual(reliefs, [400]);
  // A GE that legitimately holds many records is relieved anyway, maxWaitMs after the quiet began.
  held = 5000;
  assert.equal(second(20_000), false);
  let at = 0;
  for (let i = 1; i <= 25 && !at; i++) if (second(0)) at = i;
  assert.equal(at, 21, 'relieved maxWaitMs (20 s) after the first quiet second was seen, though nothing drained');
  assert.deepEqual(calls.filter((c) => c === 'gc'), ['gc', 'gc']);
});

test('the real GC and malloc_trim run (no --expose-gc needed)', () => {
  const gc = v8FullGc();
  gc();
  assert.equal(typeof mallocTrim(), 'boolean');
});
