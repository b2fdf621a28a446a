/**
 * NAT-f's held refusals (controlplane/natf/refusal-hold.ts), fake clock: a
 * flow the GNAT refused is answered at once for holdMs (an ICMP at most every
 * icmpEveryMs, quiet drops between), then negotiated again; other flows are
 * not held; the table is bounded (the oldest forgotten); holdMs 0 holds
 * nothing; the agent config refuses a hold out of range, naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RefusalHold } from '../../controlplane/natf/refusal-hold.js';
import { natfConfigSchema } from '../../controlplane/natf/natf-config.js';

const flow = (sport: number) => ({ saddr: '192.0.2.1', daddr: '198.18.0.3', sport, dport: 7003, proto: 17 });

test('a refused flow is held: an ICMP at most every icmpEveryMs, quiet between, negotiated again after holdMs; another flow is not held', () => {
  let now = 0;
  const h = new RefusalHold({ holdMs: 1000, icmpEveryMs: 50, maxFlows: 8 }, () => now);
  assert.equal(h.check(flow(1)), 'not_held');
  h.refused(flow(1));
  now = 10;
  assert.equal(h.check(flow(1)), 'quiet', 'the refusal\'s own ICMP was just sent');
  assert.equal(h.check(flow(2)), 'not_held', 'another port of the same host');
  now = 60;
  assert.equal(h.check(flow(1)), 'icmp');
  assert.equal(h.check(flow(1)), 'quiet');
  now = 1000;
  assert.equal(h.check(flow(1)), 'not_held', 'the hold lapsed: the GNAT is asked again');
  assert.equal(h.size, 0);
});

test('bounded: the oldest hold goes first; expire() forgets the lapsed; holdMs 0 holds nothing', () => {
  let now = 0;
  const h = new RefusalHold({ holdMs: 1000, icmpEveryMs: 50, maxFlows: 2 }, () => now);
  h.refused(flow(1));
  now = 1;
  h.refused(flow(2));
  h.refused(flow(3));
  assert.equal(h.size, 2);
  now = 100;
  assert.equal(h.check(flow(1)), 'not_held', 'the oldest was forgotten');
  assert.equal(h.check(flow(3)), 'icmp');
  now = 2000;
  assert.equal(h.expire(), 2);
  const off = new RefusalHold({ holdMs: 0, icmpEveryMs: 50, maxFlows: 2 }, () => now);
  off.refused(flow(1));
  assert.equal(off.check(flow(1)), 'not_held');
});

test('natf.refusalHoldMs: default 2000, 0 allowed, out of range refused naming the field', () => {
  assert.equal(natfConfigSchema.parse({}).refusalHoldMs, 2000);
  assert.equal(natfConfigSchema.parse({ refusalHoldMs: 0 }).refusalHoldMs, 0);
  const r = natfConfigSchema.safeParse({ refusalHoldMs: 120_000 });
  assert.ok(!r.success);
  assert.deepEqual(r.error.issues[0].path, ['refusalHoldMs']);
});
