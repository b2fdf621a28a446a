/**
 * The error catalogue (controlplane/errors/catalogue.ts): every code unique and
 * documented, every Error class of the control plane built on GscipError, the
 * CLI's exit code taken from the code, and the GMS server and its clients
 * agreeing on every wire code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  CODES, ERRNO_EXIT, EXIT, GMS_WIRE, GscipError, exitCodeFor, exitCodeOf, readGmsErrorBody, refusesIdentity,
  type GmsWireCode, type GscipCode, type WireDef,
} from '../../controlplane/errors/catalogue.js';
import { fail } from '../../controlplane/cli/output.js';
import { UsageError } from '../../controlplane/cli/args.js';
import { ConfigError } from '../../controlplane/config/agent-config.js';
import { AgentConflictError } from '../../controlplane/agent/instance.js';
import { BpfError } from '../../controlplane/bpf/errors.js';
import { BpffsError } from '../../controlplane/bpf/bpffs.js';
import { SpecError } from '../../controlplane/gms/spec.js';
import { DprpWireError } from '../../controlplane/dprp/wire.js';
import { HttpError } from '../../controlplane/gms/http-util.js';
import { refusal, GmsRefusedError } from '../../controlplane/gms/client.js';
import { adminRefusal, AdminError } from '../../controlplane/gms/admin-client.js';

/** Repo root from dist/test/unit (compiled) or test/unit (sources). */
const ROOT = [resolve(__dirname, '../../..'), resolve(__dirname, '../..')].find((d) => {
  try { return statSync(join(d, 'controlplane/errors/catalogue.ts')).isFile(); } catch { return false; }
})!;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}
const CONTROLPLANE = sources(join(ROOT, 'controlplane')).map((p) => ({ path: relative(ROOT, p), text: readFileSync(p, 'utf8') }));
const ALL_SOURCE = CONTROLPLANE.map((f) => f.text).join('\n');

const wire = GMS_WIRE as Record<GmsWireCode, WireDef>;
const EXITS = new Set<number>(Object.values(EXIT));

test('every code is unique across the families, spelled as its family, and documented', () => {
  const local = Object.keys(CODES);
  const onWire = Object.keys(GMS_WIRE);
  const errnos = Object.keys(ERRNO_EXIT);
  const all = [...local, ...onWire, ...errnos];
  assert.equal(new Set(all).size, all.length, 'a code is declared twice');
  for (const c of local) assert.match(c, /^GSCIP_E_[A-Z0-9]+(_[A-Z0-9]+)*$/);
  for (const c of onWire) assert.match(c, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
  for (const c of errnos) assert.match(c, /^E[A-Z0-9]+$/);
  for (const [c, d] of Object.entries(CODES)) {
    assert.ok(d.meaning.length >= 20, `${c}: meaning`);
    assert.ok(EXITS.has(d.exit), `${c}: exit ${d.exit} is not one of EXIT`);
  }
  for (const [c, d] of Object.entries(wire)) {
    assert.ok(d.meaning.length >= 15, `${c}: meaning`);
    assert.ok(d.http === null || (Number.isInteger(d.http) && d.http >= 400 && d.http <= 599), `${c}: http ${String(d.http)}`);
  }
  for (const [c, x] of Object.entries(ERRNO_EXIT)) assert.ok(EXITS.has(x), `${c}: exit ${x}`);
});

test('every code that is not retired is raised somewhere (no dead entries)', () => {
  for (const [c, d] of Object.entries(CODES)) {
    if ('retired' in d) continue;
    // the declaration is an unquoted key: any quoted occurrence is a use
    assert.ok(ALL_SOURCE.includes(`'${c}'`), `${c} is declared but never raised`);
  }
  const server = CONTROLPLANE.filter((f) => /^controlplane\/gms\/(server|http-util|admin-client|client)\.ts$/.test(f.path)).map((f) => f.text).join('\n');
  for (const [c, d] of Object.entries(wire)) {
    if (d.retired) continue;
    assert.ok(server.includes(`'${c}'`), `wire code ${c} is declared but neither the GMS nor a client uses it`);
  }
});

test('every Error class in controlplane/ extends the catalogue\'s GscipError', () => {
  const parent = new Map<string, { base: string; path: string }>();
  for (const f of CONTROLPLANE) {
    for (const m of f.text.matchAll(/\bclass\s+(\w+)(?:\s*<[^>{]*>)?\s+extends\s+(\w+)/g)) parent.set(m[1], { base: m[2], path: f.path });
  }
  const errorClasses: string[] = [];
  for (const [name, { base, path }] of parent) {
    // walk up to a class not declared in controlplane/ (a built-in, or one from a package)
    const chain = [name];
    let cur = base;
    while (parent.has(cur) && cur !== 'GscipError') { chain.push(cur); cur = parent.get(cur)!.base; }
    if (cur === 'GscipError') { errorClasses.push(name); continue; }
    if (name === 'GscipError') {
      assert.equal(path, 'controlplane/errors/catalogue.ts');
      assert.equal(cur, 'Error');
      continue;
    }
    assert.ok(!/Error$/.test(cur), `${path}: ${chain.join(' -> ')} -> ${cur}: an error class must extend GscipError (controlplane/errors/catalogue.ts)`);
  }
  // The sixteen the catalogue was built from, at least; new ones join them.
  for (const n of ['ConfigError', 'SpecError', 'HttpError', 'AdminError', 'GmsRefusedError', 'DataDirLockedError', 'AgentConflictError',
    'UsageError', 'DprpWireError', 'DecisionInputError', 'Ipv4AddressError', 'BpffsError', 'ElfError', 'BtfError', 'BpfError', 'PrerequisiteError']) {
    assert.ok(errorClasses.includes(n), `${n} does not extend GscipError`);
  }
  // And at run time: instanceof, name, code and cause.
  const cause = new Error('inner');
  const samples: Array<[GscipError<string>, string, string]> = [
    [new UsageError('u'), 'UsageError', 'GSCIP_E_USAGE'],
    [new ConfigError('c', [], { cause }), 'ConfigError', 'GSCIP_E_CONFIG'],
    [new AgentConflictError('a'), 'AgentConflictError', 'GSCIP_E_AGENT_CONFLICT'],
    [new SpecError(['x: bad']), 'SpecError', 'GSCIP_E_NETWORK_SPEC'],
    [new DprpWireError('bad_length', 'short'), 'DprpWireError', 'GSCIP_E_DPRP_WIRE'],
    [new BpffsError('mount_failed', 'm', { cause }), 'BpffsError', 'GSCIP_E_BPFFS_MOUNT_FAILED'],
    [new BpfError('bpf_map_lookup_elem', 2), 'BpfError', 'ENOENT'],
    [new HttpError('revoked', 'r'), 'HttpError', 'revoked'],
  ];
  for (const [e, name, code] of samples) {
    assert.ok(e instanceof GscipError && e instanceof Error, name);
    assert.equal(e.name, name);
    assert.equal(e.code, code);
  }
  assert.equal((samples[1][0] as Error).cause, cause);
  assert.equal((samples[5][0] as Error).cause, cause);
});

/** fail() as a command would call it; returns the exit code it set and what it printed. */
function failWith(e: unknown): { exit: number | undefined; stderr: string } {
  const write = process.stderr.write;
  const prev = process.exitCode;
  let stderr = '';
  process.stderr.write = ((s: string) => { stderr += s; return true; }) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    fail(e);
    return { exit: process.exitCode as number | undefined, stderr };
  } finally {
    process.stderr.write = write;
    process.exitCode = prev;
  }
}

test('the CLI exits with the code each catalogue entry documents', () => {
  for (const [c, d] of Object.entries(CODES)) {
    const r = failWith(new GscipError(c as GscipCode, `message of ${c}`));
    assert.equal(r.exit, d.exit, c);
    assert.equal(r.stderr, `error: message of ${c}\n`, 'the message is printed unchanged');
  }
  for (const c of Object.keys(GMS_WIRE)) assert.equal(failWith(new AdminError(400, c, 'x')).exit, EXIT.ERROR, c);
  // The classes, as the commands raise them (exit codes of README "Agent and CLI").
  assert.equal(failWith(new UsageError('--src: bad')).exit, EXIT.USAGE);
  assert.equal(failWith(new ConfigError('config: invalid', [])).exit, EXIT.USAGE);
  assert.equal(failWith(new AgentConflictError('held')).exit, EXIT.CONFLICT);
  assert.equal(failWith(new BpfError('bpf_map_delete_elem', 2)).exit, EXIT.NOT_FOUND, 'ENOENT: not found');
  assert.equal(failWith(new BpfError('bpf_map_update_elem', 7)).exit, EXIT.ERROR, 'E2BIG');
  assert.equal(failWith(new BpfError('bpf_obj_get', 1)).exit, EXIT.ERROR, 'EPERM');
  // Codes decide, not text: a message saying "not found" without a code is an error (1) ...
  assert.equal(failWith(new Error('tcpdump not found')).exit, EXIT.ERROR);
  assert.equal(failWith('a string').exit, EXIT.ERROR);
  // ... and a code decides whatever the message says.
  assert.equal(failWith(new GscipError('GSCIP_E_NO_PINNED_MAPS', 'x')).exit, EXIT.NOT_FOUND);
  assert.equal(exitCodeFor('GSCIP_E_NEVER_DECLARED'), EXIT.ERROR);
  assert.equal(exitCodeOf(undefined), EXIT.ERROR);
});

test('the GMS server and both clients agree on every wire code', () => {
  const sent = new Set<string>();
  for (const [c, d] of Object.entries(wire) as Array<[GmsWireCode, WireDef]>) {
    if (d.http === null) continue; // made up by a client, never sent
    const h = new HttpError(c, `why ${c}`, c === 'invalid_network' ? ['groups[0].id: bad'] : undefined);
    assert.equal(h.status, d.http, `${c}: HTTP status`);
    const body = JSON.stringify(h.body());
    const agent = refusal(h.status, body);
    assert.ok(agent instanceof GmsRefusedError);
    assert.equal(agent.code, c);
    assert.equal(agent.status, d.http);
    assert.equal(agent.message, `GMS refused (${d.http} ${c}): why ${c}`);
    const admin = adminRefusal(h.status, body);
    assert.ok(admin instanceof AdminError);
    assert.equal(admin.code, c);
    assert.equal(admin.message, `why ${c}`);
    assert.deepEqual(admin.problems, c === 'invalid_network' ? ['groups[0].id: bad'] : []);
    assert.deepEqual(readGmsErrorBody(h.status, body)?.code, c);
    sent.add(c);
  }
  assert.ok(sent.size >= 18);
  // The refusals after which an agent drops every group key: the same three as before the catalogue.
  assert.deepEqual(Object.keys(GMS_WIRE).filter(refusesIdentity).sort(), ['ge_removed', 'revoked', 'unknown_cert']);
  assert.equal(refusesIdentity('toString'), false);
  // Answers without a code, or not JSON.
  assert.equal(refusal(502, 'Bad Gateway').message, 'GMS answered HTTP 502');
  assert.equal(refusal(502, 'Bad Gateway').code, 'http_502');
  assert.equal(refusal(500, '{}').code, 'http_500');
  assert.equal(adminRefusal(502, '<html>').code, 'bad_response');
  assert.equal(adminRefusal(502, '<html>').message, 'GMS answered HTTP 502 with non-JSON');
});
