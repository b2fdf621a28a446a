/** network.yaml parsing/validation, plan (diff) and the management-load count: pure, no I/O. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseNetworkYaml, SpecError, validateNetwork, formatPath } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan, planIsEmpty } from '../../controlplane/gms/plan.js';
import { changeReport, countOptionalGroupItems, loadReport } from '../../controlplane/gms/load-report.js';
import { nextRotation, timerDelay, MAX_TIMER_MS } from '../../controlplane/gms/scheduler.js';
import { buildDelivery, keysByGroup } from '../../controlplane/gms/delivery.js';
import { DEFAULT_ROTATION } from '../../controlplane/gms/model.js';

const FIG6_PATH = new URL('../../../deploy/examples/fig6-network.yaml', `file://${__filename}`);
const fig6Text = readFileSync(FIG6_PATH, 'utf8');

function problemsOf(fn: () => unknown): string[] {
  try { fn(); } catch (e) { if (e instanceof SpecError) return e.problems; throw e; }
  assert.fail('expected a SpecError');
}

test('Fig. 6 example parses with the daily 03:00 UTC default and sorted entries', () => {
  const n = parseNetworkYaml(fig6Text);
  assert.deepEqual(n.groups.map((g) => g.id), [1, 2, 3]);
  assert.deepEqual(n.groups[0].rotation, DEFAULT_ROTATION);
  assert.deepEqual(n.ges.map((g) => `${g.userId}/${g.type}/${g.mode}/${g.groups.join('+')}`),
    ['gea-server/GEA/CL/2+3', 'gen-dept/GEN/CL/1', 'ges1-staff/GES/OP/1', 'ges2-manager/GES/OP/1+2', 'ges3-manager/GES/OP/3']);
});

test('load report of Fig. 6 reproduces the papers\' 38 items', () => {
  const r = loadReport(parseNetworkYaml(fig6Text), countOptionalGroupItems(parseYaml(fig6Text)));
  assert.deepEqual(r.paper, { geInfo: 17, groupKeyInfo: 21, total: 38 });
  assert.equal(r.memberships, 7);
  assert.deepEqual(r.written, { geInfo: 22, groupInfo: 3, total: 25 });
  assert.deepEqual(r.reference, { gscip: 38, ipsecIke: 174 });
});

test('every invalid field is reported with its path, in one run', () => {
  const raw = parseYaml(fig6Text);
  raw.ges[3].mode = 'closed';
  raw.ges[1].type = 'ROUTER';
  raw.ges[2].groups = [1, 1, 5];
  raw.ges[4].userId = 'ges1-staff';
  raw.ges[0].colour = 'red';
  raw.groups[1].rotation = { schedule: 'every day', graceSeconds: -1 };
  raw.groups.push({ id: 1 });
  const p = problemsOf(() => validateNetwork(raw));
  const has = (prefix: string) => assert.ok(p.some((x) => x.startsWith(prefix)), `${prefix} in:\n${p.join('\n')}`);
  has('ges[3].mode:');
  has('ges[1].type:');
  has('ges[0]: Unrecognized key');
  has('groups[1].rotation.schedule:');
  has('groups[1].rotation.graceSeconds:');
  has('groups[3].id: group 1 already defined at groups[0]');
  has('ges[2].groups[1]: group 1 listed twice');
  has('ges[2].groups[2]: group 5 is not defined under groups');
  has('ges[4].userId: user ID "ges1-staff" already used at ges[1]');
});

test('wrong apiVersion, YAML syntax errors, duplicate keys are rejected', () => {
  assert.ok(problemsOf(() => parseNetworkYaml(fig6Text.replace('gscip/v1', 'v2')))[0].startsWith('apiVersion:'));
  assert.ok(problemsOf(() => parseNetworkYaml('groups: [1, 2\nges: ['))[0].startsWith('YAML:'));
  assert.ok(problemsOf(() => parseNetworkYaml('apiVersion: gscip/v1\napiVersion: gscip/v1\nkind: Network\n'))[0].startsWith('YAML:'));
  assert.equal(formatPath(['ges', 3, 'mode']), 'ges[3].mode');
});

test('plan: empty when equal, rotations only for groups a member leaves', () => {
  const cur = parseNetworkYaml(fig6Text);
  assert.ok(planIsEmpty(computePlan(cur, cur)));
  const raw = parseYaml(fig6Text);
  raw.ges = raw.ges.filter((g: { userId: string }) => g.userId !== 'ges3-manager'); // leaves 3
  raw.ges.find((g: { userId: string }) => g.userId === 'ges2-manager').groups = [2]; // leaves 1
  raw.groups.push({ id: 9, name: 'new' });
  const p = computePlan(cur, validateNetwork(raw));
  assert.deepEqual(p.ops.map((o) => o.op), ['add-group', 'update-ge', 'remove-ge', 'rotate', 'rotate']);
  assert.deepEqual(p.ops.filter((o) => o.op === 'rotate').map((o) => (o as { groupId: number }).groupId), [1, 3]);
  assert.match(formatPlan(p), /1 to add, 1 to change, 1 to remove, 2 key rotation\(s\)/);
  // Removing a group altogether does not rotate it (its keys are withdrawn).
  const raw2 = parseYaml(fig6Text);
  raw2.groups = raw2.groups.filter((g: { id: number }) => g.id !== 3);
  raw2.ges = raw2.ges.filter((g: { userId: string }) => g.userId !== 'ges3-manager');
  raw2.ges.find((g: { userId: string }) => g.userId === 'gea-server').groups = [2];
  const p2 = computePlan(cur, validateNetwork(raw2));
  assert.equal(p2.ops.some((o) => o.op === 'rotate'), false);
  assert.ok(p2.ops.some((o) => o.op === 'remove-group' && o.id === 3));
});

test('schedule: next daily 03:00 in the configured zone; a missed one is due now', () => {
  const g = { id: 1, name: 'g', rotation: { ...DEFAULT_ROTATION }, cipher: 'chacha20' as const };
  assert.equal(new Date(nextRotation(g, Date.parse('2026-11-23T10:00:00Z'))).toISOString(), '2026-11-24T03:00:00.000Z');
  const tokyo = { ...g, rotation: { ...DEFAULT_ROTATION, timezone: 'Asia/Tokyo' } };
  assert.equal(new Date(nextRotation(tokyo, Date.parse('2026-11-23T10:00:00Z'))).toISOString(), '2026-11-23T18:00:00.000Z');
  assert.ok(nextRotation(g, Date.parse('2026-01-01T00:00:00Z')) < Date.now(), 'rotation missed while down -> due');
  assert.equal(timerDelay(Date.now() + 10 * MAX_TIMER_MS, Date.now()), MAX_TIMER_MS);
  assert.equal(timerDelay(0, Date.now()), 0);
});

test('delivery: only the GE\'s groups, expired versions left out', () => {
  const now = 1_000_000;
  const k = (groupId: number, version: number, expiresAt: number | null) => ({ groupId, version, key: Buffer.alloc(32, version), createdAt: 0, expiresAt, cipher: 'chacha20' as const });
  const d = buildDelivery({ userId: 'a', type: 'GES', mode: 'OP', groups: [1, 3] },
    keysByGroup([k(1, 1, now - 1), k(1, 2, now + 5), k(1, 3, null), k(2, 1, null), k(3, 4, null)]), now);
  assert.deepEqual(d.keys.map((x) => `${x.group}/${x.version}`), ['1/2', '1/3', '3/4']);
  assert.equal(Buffer.from(d.keys[1].key, 'base64').length, 32);
});

test('load report of the Fig. 6 changes: a host moving changes nothing (0), a member plus a new group for the server costs the papers\' 10', () => {
  const after = readFileSync(new URL('../../../deploy/examples/fig6-add-member.yaml', `file://${__filename}`), 'utf8');
  const fig6 = parseNetworkYaml(fig6Text);
  const moved = changeReport(fig6, parseNetworkYaml(fig6Text));
  assert.deepEqual([moved.paper, moved.written], [0, 0], 'nothing in the network names an address');
  const c = changeReport(fig6, parseNetworkYaml(after), countOptionalGroupItems(parseYaml(fig6Text)), countOptionalGroupItems(parseYaml(after)));
  assert.deepEqual({ added: c.gesAdded, changed: c.gesChanged, groups: c.groupsAdded }, { added: ['ges4-member'], changed: ['gea-server'], groups: [4] });
  assert.equal(c.paper, 10, 'papers: GE info 3 + group key info 3 for the member, 1 + 3 for the server');
  assert.equal(c.written, 6, 'this GMS: the member\'s user ID, type, mode, group; the group\'s number; the server\'s new group');
  assert.deepEqual(c.reference, { hostMoves: { gscip: 0, ipsecIke: 20 }, memberAndGroup: { gscip: 10, ipsecIke: 72 } });
  const back = changeReport(parseNetworkYaml(after), fig6);
  assert.deepEqual([back.paper, back.written, back.gesRemoved, back.groupsRemoved], [10, 6, ['ges4-member'], [4]], 'undoing it costs the same');
});
