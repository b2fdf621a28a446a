/**
 * The test runner (`make test`) on fixture files: it counts leaf tests from
 * TAP, ends a file that outruns its wall clock or whose hook failed, and
 * closes with `N passed, N failed, N skipped`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { TapCounter } from '../run-tests.js';

const RUNNER = resolve(__dirname, '../run-tests.js');
const fixture = (name: string): string => resolve(__dirname, `../fixtures/${name}.fixture-test.js`);

function runner(args: string[]): { code: number | null; out: string; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [RUNNER, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, seconds: (Date.now() - t0) / 1000 };
}

const lastLine = (out: string): string => out.trimEnd().split('\n').pop() ?? '';

describe('test runner', { timeout: 180_000 }, () => {
  test('TapCounter counts leaf tests, not suites, and notices failed hooks', () => {
    const c = new TapCounter();
    for (const l of `TAP version 13
# Subtest: s
    # Subtest: a
    ok 1 - a
      ---
      duration_ms: 1
      ...
    # Subtest: b
    not ok 2 - b
      ---
      failureType: 'testCodeFailure'
      ...
    ok 3 - c # SKIP not here
      ---
      ...
    1..3
not ok 1 - s
  ---
  type: 'suite'
  failureType: 'hookFailed'
  ...`.split('\n')) c.line(l);
    c.flush();
    assert.deepEqual(c.tally, { passed: 1, failed: 1, skipped: 1, hookFailed: true });
  });

  test('a passing file: counts and the closing line', () => {
    const r = runner([fixture('passing')]);
    assert.equal(r.code, 0, r.out);
    assert.equal(lastLine(r.out), '2 passed, 0 failed, 1 skipped');
    assert.match(r.out, /1 test files in \d/);
  });

  test('a file that never ends is stopped at its wall clock and counted failed', () => {
    const r = runner(['--file-timeout', '3', fixture('hanging'), fixture('passing')]);
    assert.equal(r.code, 1);
    assert.ok(r.seconds < 40, `took ${r.seconds} s`);
    assert.match(r.out, /did not finish within its 3 s wall clock/);
    assert.equal(lastLine(r.out), '2 passed, 1 failed, 1 skipped', 'the next file still ran');
  });

  test('a failed before ends its file at once', () => {
    const r = runner([fixture('failed-before')]);
    assert.equal(r.code, 1);
    assert.ok(r.seconds < 30, `took ${r.seconds} s: the minute-long suite after the failed hook ran`);
    assert.match(r.out, /a hook failed/);
  });
});
