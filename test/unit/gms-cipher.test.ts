/**
 * Per-group PCCOM cipher: network.yaml field, plan on change, delivery, and the
 * agent's checks of delivered keys (cipher -> key map flags). Pure, no I/O.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { SpecError, validateNetwork, parseNetworkYaml } from '../../controlplane/gms/spec.js';
import { computePlan, formatPlan } from '../../controlplane/gms/plan.js';
import { buildDelivery, deliveryDigest, keysByGroup } from '../../controlplane/gms/delivery.js';
import { cipherKeyFlags, deliveredCipher } from '../../controlplane/gms/key-cipher.js';
import { usableKeys } from '../../controlplane/gms/delivered-keys.js';
import { countOptionalGroupItems } from '../../controlplane/gms/load-report.js';
import type { Cipher, GeDelivery } from '../../controlplane/gms/model.js';
import { KEY_F_NONE, KEY_F_ROUNDS_12, KEY_F_ROUNDS_8 } from '../../controlplane/maps/abi.js';

const FIG6_PATH = new URL('../../../deploy/examples/fig6-network.yaml', `file://${__filename}`);
const fig6 = () => parseYaml(readFileSync(FIG6_PATH, 'utf8'));

function problemsOf(fn: () => unknown): string[] {
  try { fn(); } catch (e) { if (e instanceof SpecError) return e.problems; throw e; }
  assert.fail('expected a SpecError');
}

test('cipher: default chacha20, per group, or for every group under defaults', () => {
  assert.deepEqual(validateNetwork(fig6()).groups.map((g) => g.cipher), ['chacha20', 'chacha20', 'chacha20']);
  const raw = fig6();
  raw.groups[1].cipher = 'chacha8';
  raw.groups[2].cipher = 'chacha12';
  assert.deepEqual(validateNetwork(raw).groups.map((g) => `${g.id}:${g.cipher}`), ['1:chacha20', '2:chacha8', '3:chacha12']);
  raw.defaults = { cipher: 'chacha12' };
  assert.deepEqual(validateNetwork(raw).groups.map((g) => `${g.id}:${g.cipher}`), ['1:chacha12', '2:chacha8', '3:chacha12'], 'a group\'s own cipher beats the default');
  const yaml = 'apiVersion: gscip/v1\nkind: Network\ngroups:\n  - { id: 5, cipher: chacha8 }\n';
  assert.equal(parseNetworkYaml(yaml).groups[0].cipher, 'chacha8');
});

test('cipher: a bad value is rejected with the path of the field and the allowed names', () => {
  const raw = fig6();
  raw.groups[1].cipher = 'aes256';
  raw.groups[2].cipher = 20;
  raw.defaults = { cipher: 'ChaCha8' };
  const p = problemsOf(() => validateNetwork(raw));
  for (const path of ['groups[1].cipher', 'groups[2].cipher', 'defaults.cipher']) {
    const line = p.find((x) => x.startsWith(`${path}:`));
    assert.ok(line, `${path} in:\n${p.join('\n')}`);
    assert.match(line!, /expected one of "chacha20"\|"chacha12"\|"chacha8"/);
  }
});

test('plan: changing a group\'s cipher is a change plus one rotation under the new cipher; dry-run text shows both', () => {
  const cur = validateNetwork({ ...fig6(), groups: [{ id: 1, cipher: 'chacha8' }, { id: 2 }, { id: 3 }] });
  const des = validateNetwork({ ...fig6(), groups: [{ id: 1, cipher: 'chacha12' }, { id: 2 }, { id: 3 }] });
  const p = computePlan(cur, des);
  assert.deepEqual(p.ops.map((o) => o.op), ['update-group', 'rotate'], 'update first: the rotation reads the new cipher');
  assert.deepEqual(p.ops[1], { op: 'rotate', groupId: 1, reason: 'cipher chacha8 -> chacha12', cause: 'cipher_changed' });
  const text = formatPlan(p);
  assert.match(text, /~ group 1: cipher chacha8 -> chacha12/);
  assert.match(text, /! rotate group 1 \(cipher chacha8 -> chacha12\)/);
  assert.match(text, /0 to add, 1 to change, 0 to remove, 1 key rotation\(s\)/);
  assert.equal(computePlan(des, des).ops.length, 0, 'same cipher: no change, no rotation');
  assert.match(formatPlan(computePlan({ groups: [], ges: [] }, des)), /\+ group 1 \(group-1\) .* new key v1 \(chacha12\)/);
});

test('plan: a member leaving and a cipher change in one apply rotate the group once, counted as member_left', () => {
  const cur = validateNetwork(fig6());
  const raw = fig6();
  raw.groups[0].cipher = 'chacha8';
  raw.ges = raw.ges.filter((g: { userId: string }) => g.userId !== 'ges1-staff');
  const rot = computePlan(cur, validateNetwork(raw)).ops.filter((o) => o.op === 'rotate');
  assert.deepEqual(rot, [{ op: 'rotate', groupId: 1, reason: 'ges1-staff left; cipher chacha20 -> chacha8', cause: 'member_left' }]);
});

test('delivery carries each version\'s own cipher, and the digest changes with it', () => {
  const k = (version: number, cipher: Cipher, expiresAt: number | null) => ({ groupId: 1, version, key: Buffer.alloc(32, version), createdAt: 0, expiresAt, cipher });
  const ge = { userId: 'a', type: 'GES' as const, mode: 'OP' as const, groups: [1] };
  const d = buildDelivery(ge, keysByGroup([k(1, 'chacha8', 99), k(2, 'chacha12', null)]), 0);
  assert.deepEqual(d.keys.map((x) => `${x.version}:${x.cipher}`), ['1:chacha8', '2:chacha12']);
  const d2 = buildDelivery(ge, keysByGroup([k(1, 'chacha8', 99), k(2, 'chacha20', null)]), 0);
  assert.notEqual(deliveryDigest(d), deliveryDigest(d2));
});

test('agent: cipher -> key map flags as the fast path reads them (gscip_abi.h)', () => {
  assert.equal(cipherKeyFlags('chacha20'), KEY_F_NONE);
  assert.equal(cipherKeyFlags('chacha12'), KEY_F_ROUNDS_12);
  assert.equal(cipherKeyFlags('chacha8'), KEY_F_ROUNDS_8);
  assert.throws(() => cipherKeyFlags('aes' as Cipher), /cipher: "aes" is not one of chacha20, chacha12, chacha8/);
  assert.equal(deliveredCipher(undefined), 'chacha20', 'older GMS without the field = chacha20');
  assert.equal(deliveredCipher('chacha8'), 'chacha8');
  assert.equal(deliveredCipher('chacha7'), null);
  assert.equal(deliveredCipher(null), null, 'null is not "absent"');
});

test('agent: delivered keys are checked one by one; a bad one is refused alone', () => {
  const key = Buffer.alloc(32, 1).toString('base64');
  const d: GeDelivery = {
    userId: 'a', type: 'GES', mode: 'OP', groups: [1, 2], issuedAt: 0, keys: [
      { group: 1, version: 1, key, createdAt: 0, expiresAt: null }, // older GMS: no cipher field
      { group: 1, version: 2, key, createdAt: 0, expiresAt: null, cipher: 'chacha8' },
      { group: 2, version: 1, key, createdAt: 0, expiresAt: null, cipher: 'chacha99' as Cipher },
      { group: 2, version: 2, key: Buffer.alloc(16).toString('base64'), createdAt: 0, expiresAt: null, cipher: 'chacha12' },
      { group: 2, version: 3, key, createdAt: 0, expiresAt: 5, cipher: 'chacha99' as Cipher }, // expired: neither
    ],
  };
  const r = usableKeys(d, 10);
  assert.deepEqual(r.usable.map((k) => `${k.group}/${k.version}:${k.cipher}`), ['1/1:chacha20', '1/2:chacha8']);
  assert.deepEqual(r.refused.map((k) => `${k.group}/${k.version}:${k.reason}`), ['2/1:unknown_cipher', '2/2:bad_key']);
  assert.match(r.refused[0].detail, /cipher "chacha99" is not one of chacha20, chacha12, chacha8/);
  assert.deepEqual(usableKeys(null, 0), { usable: [], refused: [] });
});

test('load report counts a written cipher as one item', () => {
  const raw = fig6();
  assert.equal(countOptionalGroupItems(raw), 0);
  raw.groups[0].cipher = 'chacha8';
  raw.defaults = { cipher: 'chacha12' };
  assert.equal(countOptionalGroupItems(raw), 2);
});
