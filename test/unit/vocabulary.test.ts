/**
 * One vocabulary per concept (issue 10, item 6): the names of action, role and
 * direction (and miss action, PIT state, XLAT kind) come from the ABI enums
 * through controlplane/maps/vocabulary.ts; DPRP's wire names map onto them in
 * one table next to the wire codec (dprp/wire.ts). This file checks the
 * vocabularies, that table's completeness, and that no other source defines a
 * conversion between those names and numbers, or lists a concept's names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as abi from '../../controlplane/maps/abi.js';
import {
  ACTIONS, DIRS, ENTRY_ACTION_NAMES, MISS_ACTIONS, PIT_STATES, ROLES, XLAT_KINDS, type Vocabulary,
} from '../../controlplane/maps/vocabulary.js';
import {
  abiAction, abiRole, WIRE_ACTIONS, WIRE_ROLES, WIRE_TO_ABI_ACTION, WIRE_TO_ABI_ROLE, WireAction, WireRole, wireActionOf, wireRoleOf,
} from '../../controlplane/dprp/wire.js';

const ROOT = resolve(__dirname, '../../..');

const VOCABULARIES: Array<[string, Vocabulary<string, number>, Record<string, number>]> = [
  ['ACTIONS', ACTIONS, abi.Action], ['ROLES', ROLES, abi.Role], ['DIRS', DIRS, abi.Dir],
  ['MISS_ACTIONS', MISS_ACTIONS, abi.MissAction], ['PIT_STATES', PIT_STATES, abi.PitState], ['XLAT_KINDS', XLAT_KINDS, abi.XlatKind],
  ['WIRE_ACTIONS', WIRE_ACTIONS, WireAction], ['WIRE_ROLES', WIRE_ROLES, WireRole],
];

test('each vocabulary is its enum: names are the keys in lower case, in order, and convert both ways', () => {
  for (const [what, v, e] of VOCABULARIES) {
    assert.deepEqual(v.names, Object.keys(e).map((k) => k.toLowerCase()), what);
    for (const [k, c] of Object.entries(e)) {
      const n = k.toLowerCase();
      assert.equal(v.code(n), c, `${what}.code(${n})`);
      assert.equal(v.name(c), n, `${what}.name(${c})`);
      assert.equal(v.of(c), n, `${what}.of(${c})`);
      assert.equal(v.label(c), n, `${what}.label(${c})`);
      assert.equal(v.parse(k, '--x'), c, `${what}.parse(${k})`);
      assert.ok(v.is(n) && !v.is(k) && !v.is(c), `${what}.is(${n})`);
    }
    assert.equal(v.name(250), undefined, what);
    assert.equal(v.label(250), '250', `${what}: an unknown number is shown as itself`);
    assert.throws(() => v.of(250), RangeError, what);
    assert.throws(() => v.parse('no-such', '--x'), /--x: unknown value 'no-such' \(expected one of /, what);
  }
});

test('the spellings operators see are pinned (CLI, JSON, config, metric labels)', () => {
  assert.deepEqual(ACTIONS.names, ['none', 'pass', 'drop', 'encrypt', 'decrypt']);
  assert.deepEqual(ENTRY_ACTION_NAMES, ['pass', 'drop', 'encrypt', 'decrypt']);
  assert.deepEqual(ROLES.names, ['none', 'start', 'intermediate', 'end']);
  assert.deepEqual(DIRS.names, ['ingress', 'egress']);
  assert.deepEqual(MISS_ACTIONS.names, ['punt', 'pass', 'drop']);
  assert.deepEqual(PIT_STATES.names, ['static', 'tentative', 'confirmed']);
  assert.deepEqual(XLAT_KINDS.names, ['static', 'cit', 'vat', 'nat']);
  assert.deepEqual(WIRE_ACTIONS.names, ['pass', 'discard', 'encrypt', 'decrypt']);
  assert.deepEqual(WIRE_ROLES.names, ['start', 'intermediate', 'end']);
});

/** A wire <-> ABI table is complete and one-to-one, and the codes on both sides agree (as wire.ts says). */
function checkWireTable(what: string, table: Readonly<Record<string, string>>, wire: Vocabulary<string, number>, pit: Vocabulary<string, number>,
  pitNames: readonly string[], to: (w: string) => string, back: (p: string) => string): void {
  assert.deepEqual(Object.keys(table).sort(), [...wire.names].sort(), `${what}: every wire name has a row, and only those`);
  assert.deepEqual(Object.values(table).sort(), [...pitNames].sort(), `${what}: every ABI name is reached exactly once`);
  for (const w of wire.names) {
    const p = to(w);
    assert.equal(p, table[w], `${what}: ${w}`);
    assert.equal(back(p), w, `${what}: ${p} maps back to ${w}`);
    assert.equal(pit.code(p), wire.code(w), `${what}: ${w} and ${p} have the same code`);
  }
}

test('DPRP wire actions and roles map onto the ABI names one-to-one, in one table', () => {
  checkWireTable('action', WIRE_TO_ABI_ACTION, WIRE_ACTIONS, ACTIONS, ENTRY_ACTION_NAMES, (w) => abiAction(w as never), (p) => wireActionOf(p as never));
  checkWireTable('role', WIRE_TO_ABI_ROLE, WIRE_ROLES, ROLES, ROLES.names.filter((n) => n !== 'none'), (w) => abiRole(w as never), (p) => wireRoleOf(p as never));
  assert.equal(abiAction('discard'), 'drop', 'the one spelling that differs');
});

// ---- no second definition anywhere -------------------------------------------------------------

/** The only sources that may spell a conversion between these names and numbers, or list a concept's names. */
const DEFINERS = new Set(['controlplane/maps/abi.ts', 'controlplane/maps/vocabulary.ts', 'controlplane/dprp/wire.ts']);
/**
 * Scanned: the shipped TypeScript. controlplane/bpf/ is generic (libbpf's TC
 * hook names, no GSCIP imports); bench/ and deploy/ are checked for tables
 * only (they name subsets, e.g. a bench's 'encrypt' | 'pass', and tc(8)'s words).
 */
const SCANNED: ReadonlyArray<[string, boolean]> = [['controlplane', true], ['bench', false], ['deploy', false]];
const GENERIC = /^controlplane\/bpf\//;

const ENUMS = 'Action|Role|Dir|MissAction|PitState|XlatKind|WireAction|WireRole';
const CONCEPTS: ReadonlyArray<readonly string[]> = [
  [...ACTIONS.names, ...WIRE_ACTIONS.names], ROLES.names, DIRS.names, MISS_ACTIONS.names, PIT_STATES.names, XLAT_KINDS.names,
];
const WORDS = [...new Set(CONCEPTS.flat())];
const W = WORDS.join('|');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== 'results') out.push(...sources(p)); } else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The code of a source: comments blanked (line numbers kept). */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/(^|\s)\/\/.*$/gm, '$1');
}

/** Every place in `text` that defines a name <-> number conversion or lists a concept's names, as `line: what`. */
function secondDefinitions(text: string, lists = true): string[] {
  const src = code(text);
  const found: Array<[number, string]> = [];
  const at = (i: number, what: string): void => { found.push([src.slice(0, i).split('\n').length, what]); };
  const scan = (re: RegExp, what: (m: RegExpMatchArray) => string | null): void => {
    for (const m of src.matchAll(re)) { const w = what(m); if (w) at(m.index ?? 0, w); }
  };
  // { pass: Action.PASS }: a name keyed to a number.
  scan(new RegExp(`\\b(${W})\\s*:\\s*(?:\\w+\\.)?(?:${ENUMS})\\.[A-Z_]+`, 'g'), (m) => `name -> number table (${m[0]})`);
  // { [Action.PASS]: 'pass' }: a number keyed to a string.
  scan(new RegExp(`\\[\\s*(?:\\w+\\.)?(?:${ENUMS})\\.[A-Z_]+\\s*\\]\\s*:\\s*['"]`, 'g'), (m) => `number -> name table (${m[0]}...)`);
  // { discard: 'drop' }: a name keyed to a name of the same concept ({ ingress: 'punt' } is a value per direction).
  const sameConcept = (a: string, b: string): boolean => CONCEPTS.some((c) => c.includes(a) && c.includes(b));
  scan(new RegExp(`\\b(${W})\\s*:\\s*'(${W})'`, 'g'), (m) => (sameConcept(m[1], m[2]) ? `name -> name table (${m[0]})` : null));
  // x === 'egress' ? Dir.EGRESS : ...  and  Dir.EGRESS ? ... / k.dir ? 'egress' : 'ingress'
  scan(new RegExp(`['"](${W})['"]\\s*\\?\\s*(?:\\w+\\.)?(?:${ENUMS})\\.`, 'g'), (m) => `name -> number ternary (${m[0]}...)`);
  scan(new RegExp(`(?:${ENUMS})\\.[A-Z_]+\\s*\\?\\s*['"](${W})['"]`, 'g'), (m) => `number -> name ternary (${m[0]})`);
  scan(new RegExp(`\\.dir\\s*\\?\\s*['"](${W})['"]`, 'g'), (m) => `number -> name ternary (${m[0]})`);
  // 'pass' | 'drop' (a union type) or ['punt', 'pass', ...] (a list): two names of one concept side by side.
  if (lists) scan(new RegExp(`'(${W})'\\s*[|,]\\s*'(${W})'`, 'g'), (m) => (sameConcept(m[1], m[2]) ? `name list (${m[0]})` : null));
  // The protocol's 'discard' beside the datapath's 'drop': the wire table's job.
  for (const [i, line] of src.split('\n').entries()) if (/'discard'/.test(line) && /'drop'/.test(line)) found.push([i + 1, `discard <-> drop outside the wire table (${line.trim()})`]);
  // The generic derivations are the vocabulary's to call.
  scan(/\b(enumName|enumValue)\s*\(/g, (m) => `${m[1]}() outside maps/vocabulary.ts`);
  return found.sort((a, b) => a[0] - b[0]).map(([l, w]) => `${l}: ${w}`);
}

test('the scanner finds each kind of table this tree used to have', () => {
  const old = [
    "const ACTION_CODE = { pass: Action.PASS, drop: Action.DROP, encrypt: Action.ENCRYPT, decrypt: Action.DECRYPT } as const;",
    "const ROLE_NAME = { [Role.START]: 'start', [Role.INTERMEDIATE]: 'intermediate', [Role.END]: 'end' } as const;",
    "const MISS: Record<MissActionName, number> = { punt: MissAction.PUNT, pass: MissAction.PASS, drop: MissAction.DROP };",
    "let d = ({ [WireAction.ENCRYPT]: 'encrypt', [WireAction.DISCARD]: 'discard' } as const)[x];",
    "const a = ({ encrypt: WireAction.ENCRYPT, discard: WireAction.DISCARD } as const)[y];",
    "const t = { pass: 'pass', discard: 'drop' };",
    "return { dir: dir === 'egress' ? Dir.EGRESS : Dir.INGRESS };",
    "print(`pit: ${k.dir ? 'egress' : 'ingress'}`);",
    "export type PitAction = 'pass' | 'drop' | 'encrypt' | 'decrypt';",
    "const missAction = z.enum(['punt', 'pass', 'drop']);",
    "const decision = any.action === 'drop' ? 'discard' : 'pass';",
    "x = enumName(Dir, rec.dir);",
  ];
  for (const line of old) assert.equal(secondDefinitions(line).length > 0, true, `not found: ${line}`);
  assert.deepEqual(secondDefinitions([
    '// { pass: Action.PASS } in a comment',
    "/** 'pass' | 'drop' */",
    "const v = { action: Action.PASS, state: PitState.STATIC, role: Role.NONE, dir: Dir.EGRESS };",
    "if (e.action === 'encrypt' && e.dir === 'egress') return 'start';",
    "const kind = 'verdict' | 'drop';",
    "miss: { ingress: 'punt', egress: 'punt' },",
  ].join('\n')), [], 'field values and uses are not definitions');
});

test('no source outside the vocabulary and the wire codec defines a name <-> number conversion or lists the names', () => {
  const problems: string[] = [];
  for (const [dir, lists] of SCANNED) {
    for (const f of sources(dir)) {
      if (DEFINERS.has(f) || GENERIC.test(f)) continue;
      for (const p of secondDefinitions(readFileSync(join(ROOT, f), 'utf8'), lists)) problems.push(`${f}:${p}`);
    }
  }
  assert.deepEqual(problems, [], 'use maps/vocabulary.ts (ACTIONS, ROLES, DIRS, ...) or dprp/wire.ts (WIRE_TO_ABI_*) instead');
});
