/**
 * Decision engine, table-driven: the full seed-002 Fig. 6 matrix (SPEC section 3),
 * cascaded GENs, multi-group members, every OP/CL combination.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonKey, decide, DecisionInputError, type PathGe } from '../../controlplane/dprp/decide.js';
import type { ModeName } from '../../controlplane/dprp/wire.js';

type Ge = Omit<PathGe, 'keys'> & { groups: number[] };
const v1 = (groups: number[]) => groups.map((group) => ({ group, version: 1 }));

// Seed 002 Fig. 6 / Table 2.
const GEN: Ge = { addr: '192.0.2.1', type: 'GEN', mode: 'CL', groups: [1] };
const GES1: Ge = { addr: '192.0.2.11', type: 'GES', mode: 'OP', groups: [1] };
const GES2: Ge = { addr: '192.0.2.12', type: 'GES', mode: 'OP', groups: [1, 2] };
const GES3: Ge = { addr: '192.0.2.13', type: 'GES', mode: 'OP', groups: [3] };
const GEA: Ge = { addr: '192.0.2.20', type: 'GEA', mode: 'CL', groups: [2, 3] };
/** Endpoints: a GES is its own GE; Term is behind GEN; the server is behind GEA. */
const PROTECTOR: Record<string, Ge> = { GES1, GES2, GES3, Term: GEN, server: GEA };

/** What the start GE sees: its own keys, and the keys each other GE proves it shares. */
function view(path: Ge[]): PathGe[] {
  const mine = v1(path[0].groups);
  return path.map((g, i) => ({
    addr: g.addr, type: g.type, mode: g.mode,
    keys: i === 0 ? mine : v1(g.groups.filter((x) => path[0].groups.includes(x))),
  }));
}

type Expect = { verdict: 'encrypted'; group: number } | { verdict: 'plaintext' } | { verdict: 'refused' };
const FIG6: Array<[string, string, Expect]> = [
  ['GES1', 'Term', { verdict: 'encrypted', group: 1 }],
  ['GES1', 'GES2', { verdict: 'encrypted', group: 1 }],
  ['GES2', 'server', { verdict: 'encrypted', group: 2 }],
  ['GES3', 'server', { verdict: 'encrypted', group: 3 }],
  ['GES1', 'server', { verdict: 'refused' }],
  ['GES3', 'Term', { verdict: 'refused' }],
  ['GES1', 'GES3', { verdict: 'plaintext' }],
  // the rest of the matrix, same rules
  ['GES2', 'Term', { verdict: 'encrypted', group: 1 }],
  ['GES2', 'GES3', { verdict: 'plaintext' }],
  ['Term', 'server', { verdict: 'refused' }],
];

for (const [a, b, want] of FIG6) {
  for (const [src, dst] of [[a, b], [b, a]]) {
    test(`Fig. 6: ${src} -> ${dst} is ${want.verdict}${'group' in want ? ` with GK${want.group}` : ''}`, () => {
      const path = [PROTECTOR[src], PROTECTOR[dst]];
      const out = decide(view(path));
      assert.equal(out.verdict, want.verdict);
      if (out.verdict === 'encrypted' && 'group' in want) {
        assert.equal(out.group, want.group);
        assert.equal(out.version, 1);
        assert.deepEqual(out.actions.map((x) => x.action), ['encrypt', 'decrypt']);
        assert.equal(out.peer, path[1].addr);
      }
      if (out.verdict === 'refused') {
        assert.ok(out.actions.every((x) => x.action === 'discard'));
        const cl = path.find((g) => g.mode === 'CL');
        assert.equal(out.refusedBy, cl?.addr);
      }
      if (out.verdict === 'plaintext') assert.ok(out.actions.every((x) => x.action === 'pass'));
      assert.deepEqual(out.actions.map((x) => x.role), ['start', 'end']);
    });
  }
}

test('GES1 -> Term: GEN decrypts (plain GEN-Term), GES1 encrypts with GK1', () => {
  const out = decide(view([GES1, GEN]));
  assert.deepEqual(out.actions, [
    { addr: GES1.addr, role: 'start', action: 'encrypt', group: 1, version: 1, transit: false },
    { addr: GEN.addr, role: 'end', action: 'decrypt', group: 1, version: 1, transit: false },
  ]);
});

test('cascaded GENs sharing the group: encrypt to the inner GEN, outer relays ciphertext', () => {
  const outer: Ge = { addr: '198.51.100.1', type: 'GEN', mode: 'CL', groups: [1] };
  const inner: Ge = { addr: '198.51.100.2', type: 'GEN', mode: 'CL', groups: [1] };
  const out = decide(view([GES1, outer, inner]));
  assert.equal(out.verdict, 'encrypted');
  assert.deepEqual(out.actions.map((x) => [x.action, x.role, x.transit]), [
    ['encrypt', 'start', false], ['pass', 'intermediate', true], ['decrypt', 'end', false],
  ]);
});

test('cascade: outer CL GEN of another group relays ciphertext between members', () => {
  const outer: Ge = { addr: '198.51.100.1', type: 'GEN', mode: 'CL', groups: [9] };
  const inner: Ge = { addr: '198.51.100.2', type: 'GEN', mode: 'CL', groups: [1] };
  const out = decide(view([GES1, outer, inner]));
  assert.equal(out.verdict, 'encrypted');
  assert.equal(out.actions[1].action, 'pass');
  assert.equal(out.actions[1].transit, true);
});

test('cascade: member outer GEN, CL inner GEN of another group -> refused by the inner GEN', () => {
  const outer: Ge = { addr: '198.51.100.1', type: 'GEN', mode: 'CL', groups: [1] };
  const inner: Ge = { addr: '198.51.100.2', type: 'GEN', mode: 'CL', groups: [7] };
  const out = decide(view([GES1, outer, inner]));
  assert.equal(out.verdict, 'refused');
  assert.equal(out.verdict === 'refused' && out.refusedBy, inner.addr);
});

test('cascade: member outer GEN, OP inner GE of another group -> outer decrypts, inner passes plaintext', () => {
  const outer: Ge = { addr: '198.51.100.1', type: 'GEN', mode: 'CL', groups: [1] };
  const inner: Ge = { addr: '198.51.100.2', type: 'GEN', mode: 'OP', groups: [7] };
  const out = decide(view([GES1, outer, inner]));
  assert.equal(out.verdict, 'encrypted');
  assert.deepEqual(out.actions.map((x) => x.action), ['encrypt', 'decrypt', 'pass']);
  assert.equal(out.actions[2].transit, false);
});

test('cascaded GENs on both sides (Term - GEN - GEN ... GEN - GEN - Term)', () => {
  const a1: Ge = { addr: '203.0.113.1', type: 'GEN', mode: 'CL', groups: [1] };
  const a2: Ge = { addr: '203.0.113.2', type: 'GEN', mode: 'CL', groups: [4] };
  const b2: Ge = { addr: '203.0.113.3', type: 'GEN', mode: 'CL', groups: [4] };
  const b1: Ge = { addr: '203.0.113.4', type: 'GEN', mode: 'CL', groups: [1] };
  const out = decide(view([a1, a2, b2, b1]));
  assert.equal(out.verdict, 'encrypted');
  assert.deepEqual(out.actions.map((x) => x.action), ['encrypt', 'pass', 'pass', 'decrypt']);
});

test('multi-group member: lowest shared group id wins, deterministic', () => {
  const x: Ge = { addr: '198.51.100.5', type: 'GES', mode: 'OP', groups: [5, 2, 9] };
  const y: Ge = { addr: '198.51.100.6', type: 'GES', mode: 'OP', groups: [9, 5] };
  const out = decide(view([x, y]));
  assert.equal(out.verdict === 'encrypted' && out.group, 5);
});

test('key rotation: the highest version both hold is used', () => {
  const path: PathGe[] = [
    { addr: '198.51.100.5', type: 'GES', mode: 'OP', keys: [{ group: 1, version: 3 }, { group: 1, version: 4 }] },
    { addr: '198.51.100.6', type: 'GES', mode: 'OP', keys: [{ group: 1, version: 3 }] },
  ];
  const out = decide(path);
  assert.equal(out.verdict === 'encrypted' && out.version, 3);
  path[1].keys.push({ group: 1, version: 4 });
  const again = decide(path);
  assert.equal(again.verdict === 'encrypted' && again.version, 4);
  assert.deepEqual(commonKey([{ group: 1, version: 1 }], [{ group: 1, version: 2 }]), null);
});

test('no GE answered (destination not behind any GE): OP start passes, CL start refuses', () => {
  assert.equal(decide([{ addr: '192.0.2.9', type: 'GES', mode: 'OP', keys: v1([1]) }]).verdict, 'plaintext');
  assert.equal(decide([{ addr: '192.0.2.9', type: 'GES', mode: 'CL', keys: v1([1]) }]).verdict, 'refused');
});

// Every OP/CL combination of (start, intermediate, end) with and without a shared group.
const MODES: ModeName[] = ['OP', 'CL'];
for (const ms of MODES) for (const mi of MODES) for (const me of MODES) {
  for (const shareEnd of [true, false]) {
    const name = `modes start=${ms} mid=${mi} end=${me}, end ${shareEnd ? 'shares' : 'does not share'} a group`;
    test(name, () => {
      const path: PathGe[] = [
        { addr: '100.64.0.1', type: 'GES', mode: ms, keys: v1([1]) },
        { addr: '100.64.0.2', type: 'GEN', mode: mi, keys: [] },
        { addr: '100.64.0.3', type: 'GEN', mode: me, keys: shareEnd ? v1([1]) : [] },
      ];
      const out = decide(path);
      if (shareEnd) {
        // members encrypt; the non-member relay in between passes whatever its mode
        assert.equal(out.verdict, 'encrypted');
        assert.deepEqual(out.actions.map((a) => a.action), ['encrypt', 'pass', 'decrypt']);
      } else if (ms === 'OP' && mi === 'OP' && me === 'OP') {
        assert.equal(out.verdict, 'plaintext');
      } else {
        assert.equal(out.verdict, 'refused');
        const firstCl = path.find((g) => g.mode === 'CL');
        assert.equal(out.verdict === 'refused' && out.refusedBy, firstCl?.addr);
        assert.ok(out.actions.every((a) => a.action === 'discard'));
      }
    });
  }
}

test('bad input names the field', () => {
  assert.throws(() => decide([]), DecisionInputError);
  const g: PathGe = { addr: '192.0.2.1', type: 'GES', mode: 'OP', keys: [] };
  assert.throws(() => decide([g, g]), /path\[1\]\.addr/);
});
