/**
 * The README's first command runs deploy/demo-fig6.ts. Nothing else would
 * notice if a change broke it, so the test suite runs it as a user would and
 * asserts its verdict: every pair of the SPEC's matrix matched and the live
 * rotation reached the GEs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { bpfUnavailable } from '../lib/bpf-harness.js';

const unavailable = bpfUnavailable();

test('make demo: the Fig. 6 network matches the SPEC pair by pair and survives a rotation', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  const demo = resolve(__dirname, '../../deploy/demo-fig6.js');
  const r = spawnSync(process.execPath, [demo], { encoding: 'utf8', timeout: 170_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `demo exited ${r.status} (${r.signal ?? 'no signal'}):\n${out.slice(-4000)}`);
  assert.match(out, /demo OK: 14\/14 pairs matched, rotation OK/);
  assert.doesNotMatch(out, /MISMATCH/);
});
