/**
 * The directory's pure parts: LDIF as ldapsearch prints it, DN comparison,
 * filter escaping, group mapping, the change between two views, and the
 * directory file's validation (never in clear; every problem named).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeFilterValue, normalizeDn, parseLdif } from '../../controlplane/gms/ldap-tools.js';
import { diffUsers, groupsOf, type DirectoryUser } from '../../controlplane/gms/directory.js';
import { DirectoryConfigError, validateDirectory } from '../../controlplane/gms/directory-config.js';

test('parseLdif: entries, folded lines, base64 values, comments', () => {
  const e = parseLdif('# comment\ndn: cn=staff,ou=groups,dc=example,dc=net\nmember: uid=alice,ou=people,dc=exa\n mple,dc=net\nmember:: ' +
    Buffer.from('uid=bob,ou=people,dc=example,dc=net').toString('base64') + '\n\ndn: uid=x,dc=example,dc=net\nUID: x\n');
  assert.equal(e.length, 2);
  assert.deepEqual(e[0].attrs.get('member'), ['uid=alice,ou=people,dc=example,dc=net', 'uid=bob,ou=people,dc=example,dc=net']);
  assert.deepEqual(e[1].attrs.get('uid'), ['x']);
});

test('normalizeDn and escapeFilterValue', () => {
  assert.equal(normalizeDn('UID=Alice, OU=People,dc=Example , dc=net'), 'uid=alice,ou=people,dc=example,dc=net');
  assert.equal(escapeFilterValue('a*(b)\\'), 'a\\2a\\28b\\29\\5c');
});

test('groupsOf: the union of the mapped groups whose members hold the user', () => {
  const cfg = { groups: [{ dn: 'cn=staff,dc=x', gscipGroups: [1] }, { dn: 'cn=fin,dc=x', gscipGroups: [2, 1] }, { dn: 'cn=none,dc=x', gscipGroups: [9] }] };
  const members = new Map([['cn=staff,dc=x', new Set(['uid=a,dc=x'])], ['cn=fin,dc=x', new Set(['uid=a,dc=x', 'uid=b,dc=x'])]]);
  assert.deepEqual(groupsOf('UID=a, dc=x', members, cfg), [1, 2]);
  assert.deepEqual(groupsOf('uid=b,dc=x', members, cfg), [1, 2]);
  assert.deepEqual(groupsOf('uid=c,dc=x', members, cfg), []);
});

test('diffUsers: left, joined, gone', () => {
  const u = (id: string, groups: number[]): [string, DirectoryUser] => [id, { userId: id, dn: `uid=${id}`, groups }];
  const before = new Map([u('a', [1, 2]), u('b', [1]), u('c', [3])]);
  const after = new Map([u('a', [2]), u('c', [3, 4]), u('d', [1])]);
  assert.deepEqual(diffUsers(before, after), [
    { userId: 'a', left: [1], joined: [], gone: false },
    { userId: 'b', left: [1], joined: [], gone: true },
    { userId: 'c', left: [], joined: [4], gone: false },
    { userId: 'd', left: [], joined: [1], gone: false },
  ]);
  assert.deepEqual(diffUsers(before, before), []);
});

test('directory file: ldap:// without StartTLS refused, every problem named, defaults filled', () => {
  const base = { apiVersion: 'gscip/v1', kind: 'Directory', caFile: '/ca.pem', users: { base: 'ou=people,dc=example,dc=net' }, groups: [{ dn: 'cn=staff,dc=example,dc=net', gscipGroups: [1] }] };
  const read = (p: string): string => { if (p === '/ca.pem') return 'x'; throw new Error('ENOENT'); };
  const ok = validateDirectory({ ...base, url: 'ldaps://ldap.example.net:636' }, read);
  assert.equal(ok.syncSeconds, 1);
  assert.equal(ok.users.attribute, 'uid');
  assert.equal(ok.mode, 'CL');
  assert.ok(validateDirectory({ ...base, url: 'ldap://ldap.example.net', startTls: true }, read));
  const problems = (doc: unknown): string[] => { try { validateDirectory(doc, read); return []; } catch (e) { assert.ok(e instanceof DirectoryConfigError); return e.problems; } };
  assert.deepEqual(problems({ ...base, url: 'ldap://ldap.example.net' }), ['startTls: an ldap:// URL needs startTls: true (passwords never travel in clear); or use ldaps://']);
  const many = problems({ ...base, url: 'http://x', groups: [{ dn: 'staff', gscipGroups: [] }], syncSeconds: 0, extra: 1 });
  for (const p of ['url:', 'groups[0].dn:', 'groups[0].gscipGroups:', 'syncSeconds:', '(file):']) assert.ok(many.some((m) => m.startsWith(p)), `${p} in ${many.join(' | ')}`);
  assert.deepEqual(problems({ ...base, url: 'ldaps://x', caFile: '/missing.pem' }), ['caFile: cannot read /missing.pem: ENOENT']);
});
