/** Pure parts of the agent-side GMS client: SSE block parsing, backoff bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, parseSse } from '../../controlplane/gms/client.js';

test('SSE blocks: event name, multi-line data, comments and heartbeats', () => {
  assert.deepEqual(parseSse('event: state\ndata: {"a":1}'), { event: 'state', data: '{"a":1}' });
  assert.deepEqual(parseSse('data: x\ndata: y'), { event: 'message', data: 'x\ny' });
  assert.deepEqual(parseSse('retry: 2000\nevent: state\ndata:{}'), { event: 'state', data: '{}' });
  assert.equal(parseSse(': ping'), null, 'heartbeat comment carries no event');
  assert.deepEqual(parseSse('event: removed\ndata: {}'), { event: 'removed', data: '{}' });
});

test('backoff: full jitter under an exponential ceiling capped at max', () => {
  assert.equal(backoffDelay(0, 500, 30_000, () => 1), 500);
  assert.equal(backoffDelay(3, 500, 30_000, () => 1), 4000);
  assert.equal(backoffDelay(10, 500, 30_000, () => 1), 30_000);
  assert.equal(backoffDelay(1000, 500, 30_000, () => 1), 30_000, 'no overflow for huge attempt counts');
  assert.equal(backoffDelay(5, 500, 30_000, () => 0), 0);
  const xs = Array.from({ length: 200 }, () => backoffDelay(4, 500, 30_000));
  assert.ok(xs.every((x) => x >= 0 && x <= 8000));
  assert.ok(new Set(xs).size > 50, 'jittered: agents do not reconnect in lockstep');
});
