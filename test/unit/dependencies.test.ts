/**
 * The tree's dependency rules, read from the sources' import lines:
 *  - controlplane/bpf/ is generic: it imports only Node, koffi, itself and
 *    the error catalogue (a leaf): no GSCIP maps, codecs or ABI;
 *  - protocol parts (dprp/) never import the agent: the part contract lives
 *    in parts/, the agent composes the parts, not the other way round;
 *  - the flow table serves every part: it imports no part (dprp/) and not the agent;
 *  - the error catalogue imports nothing of the control plane.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
}

function violations(dir: string, allowed: (spec: string) => boolean): string[] {
  return sources(dir).flatMap((f) => imports(f).filter((s) => !allowed(s)).map((s) => `${f} imports ${s}`));
}

test('controlplane/bpf/ imports only node:, koffi, its own modules and the error catalogue', () => {
  assert.deepEqual(violations('controlplane/bpf', (s) => s.startsWith('node:') || s === 'koffi' || /^\.\/[^/]+$/.test(s) || s === '../errors/catalogue.js'), []);
});

test('protocol parts never import the agent', () => {
  for (const dir of ['controlplane/dprp', 'controlplane/parts']) {
    assert.deepEqual(violations(dir, (s) => !/(^|\/)agent\//.test(s)), [], dir);
  }
});

test('the flow table imports no protocol part and not the agent', () => {
  assert.deepEqual(violations('controlplane/flows', (s) => !/(^|\/)(agent|dprp)\//.test(s)), []);
});

test('the error catalogue imports nothing of the control plane', () => {
  assert.deepEqual(violations('controlplane/errors', (s) => s.startsWith('node:')), []);
});
