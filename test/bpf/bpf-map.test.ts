/**
 * BpfMap batch paths (controlplane/bpf/bpf-map.ts, libbpf.ts) on the real
 * gscip_pit of a loaded (unpinned) datapath object: what the kernel holds
 * after setBatch / deleteBatch / count / entries, and the update modes the
 * kernel's batch call cannot express (it accepts no elem_flags but BPF_F_LOCK).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable } from '../lib/bpf-harness.js';
import { BpfError } from '../../controlplane/bpf/errors.js';
import { Action, Dir, PitState, Role } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';

const unavailable = bpfUnavailable();
const cid = (i: number): Cid => ({ saddr: '192.0.2.1', daddr: '198.51.100.2', sport: 1024 + i, dport: 443, proto: 6, dir: Dir.EGRESS });
const val = (i: number): PitVal => ({
  action: Action.ENCRYPT, state: PitState.CONFIRMED, role: Role.START, flags: 0, group_id: i, key_version: 1, prev_key_version: 0,
  created_ns: BigInt(i) * 1000n, last_seen_ns: BigInt(i) * 1000n + 1n,
});

describe('BpfMap batch operations (gscip_pit)', { skip: unavailable ?? false }, () => {
  let h: BpfHarness;
  before(() => { h = BpfHarness.open({ maxEntries: { gscip_pit: 8192 } }); });
  after(() => { h?.close(); });
  beforeEach(() => { for (const k of [...h.maps.pit.keys()]) h.maps.pit.delete(k); });

  test('setBatch of 3000 entries lands whole; count, get and entries see exactly them', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => [cid(i), val(i)] as const);
    assert.equal(h.maps.pit.setBatch(rows), 3000);
    assert.equal(h.maps.pit.count(), 3000);
    assert.deepEqual(h.maps.pit.get(cid(2999)), val(2999));
    const seen = new Map([...h.maps.pit.entries()].map(([k, v]) => [k.sport, v.group_id]));
    assert.equal(seen.size, 3000);
    for (let i = 0; i < 3000; i += 499) assert.equal(seen.get(1024 + i), i);
  });

  test('repeated single-entry installs (the DPRP pattern) reuse nothing stale between calls', () => {
    for (let i = 0; i < 200; i++) assert.equal(h.maps.pit.setBatch([[cid(i), val(i)], [{ ...cid(i), dir: Dir.INGRESS }, val(i + 1)]]), 2);
    assert.equal(h.maps.pit.count(), 400);
    assert.equal(h.maps.pit.get({ ...cid(150), dir: Dir.INGRESS })?.group_id, 151);
  });

  test('deleteBatch stops at the first absent key and reports how many it deleted', () => {
    h.maps.pit.setBatch([0, 1, 2].map((i) => [cid(i), val(i)] as const));
    assert.equal(h.maps.pit.deleteBatch([cid(0), cid(1), cid(77), cid(2)]), 2);
    assert.equal(h.maps.pit.count(), 1);
    assert.ok(h.maps.pit.has(cid(2)));
  });

  test("setBatch 'noexist' / 'exist' keep their meaning (element by element) and name the failing entry", () => {
    assert.equal(h.maps.pit.setBatch([[cid(1), val(1)]], 'noexist'), 1);
    assert.throws(() => h.maps.pit.setBatch([[cid(2), val(2)], [cid(1), val(9)]], 'noexist'),
      (e: unknown) => e instanceof BpfError && e.code === 'EEXIST' && /entry 1/.test(e.message));
    assert.equal(h.maps.pit.get(cid(1))?.group_id, 1, 'the existing entry was not overwritten');
    assert.throws(() => h.maps.pit.setBatch([[cid(50), val(50)]], 'exist'), (e: unknown) => e instanceof BpfError && e.code === 'ENOENT');
    assert.equal(h.maps.pit.setBatch([[cid(1), val(5)]], 'exist'), 1);
    assert.equal(h.maps.pit.get(cid(1))?.group_id, 5);
  });
});
