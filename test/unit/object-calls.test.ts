/**
 * The helpers and kfuncs derived from a compiled object's ELF code
 * (controlplane/bpf/object-calls.ts) agree with llvm-objdump's disassembly of
 * the same object: every `call N` (N >= 0) is helper N, every `call -1`
 * relocated against an undefined symbol is a kfunc; same call counts. Also
 * the helper-name table against the uapi header, and refusals of non-BPF input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ElfError, objectCalls } from '../../controlplane/bpf/object-calls.js';
import { helperName, HELPER_NAME_COUNT } from '../../controlplane/bpf/helper-names.js';
import { btfHasFuncs, btfFuncNames } from '../../controlplane/bpf/btf-funcs.js';

const BPF_OUT = resolve(__dirname, '../../../build/bpf');
const objects = existsSync(BPF_OUT) ? readdirSync(BPF_OUT).filter((f) => f.endsWith('.bpf.o')).map((f) => resolve(BPF_OUT, f)) : [];
const objdump = spawnSync('llvm-objdump', ['--version'], { encoding: 'utf8' }).status === 0;
const skipObjdump = !objects.length ? `no objects in ${BPF_OUT} (make bpf)` : !objdump ? 'llvm-objdump not installed (apt-get install llvm)' : false;

/** Helper id -> calls and kfunc name -> calls, as llvm-objdump -dr shows them. */
function fromObjdump(path: string): { helpers: Map<number, number>; kfuncs: Map<string, number> } {
  const r = spawnSync('llvm-objdump', ['-dr', '--no-show-raw-insn', path], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const und = new Set(spawnSync('llvm-objdump', ['-t', path], { encoding: 'utf8', timeout: 30_000 }).stdout
    .split('\n').filter((l) => /\*UND\*/.test(l)).map((l) => l.trim().split(/\s+/).pop()!).filter(Boolean));
  const helpers = new Map<number, number>();
  const kfuncs = new Map<string, number>();
  const lines = r.stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*[0-9a-f]+:\s+call (-?\d+)\s*$/.exec(lines[i]);
    if (!m) continue;
    const n = Number(m[1]);
    if (n >= 0) { helpers.set(n, (helpers.get(n) ?? 0) + 1); continue; }
    const rel = /R_BPF_64_32\s+(\S+)/.exec(lines[i + 1] ?? '');
    if (rel && und.has(rel[1])) kfuncs.set(rel[1], (kfuncs.get(rel[1]) ?? 0) + 1);
  }
  return { helpers, kfuncs };
}

describe('object calls derived from the ELF code', { timeout: 60_000 }, () => {
  for (const path of objects.length ? objects : ['(none)']) {
    test(`${path.split('/').pop()} matches llvm-objdump -dr`, { skip: skipObjdump }, () => {
      const want = fromObjdump(path);
      const got = objectCalls(readFileSync(path));
      assert.deepEqual(new Map(got.helpers.map((h) => [h.id, h.calls])), want.helpers);
      assert.deepEqual(new Map(got.kfuncs.map((k) => [k.name, k.calls])), want.kfuncs);
    });
  }

  test('the fast path object calls what its sources use (sanity: bpf_loop, ringbuf output, cast_to_kern_ctx)', { skip: skipObjdump }, () => {
    const tc = objects.find((p) => p.endsWith('/gscip_tc.bpf.o'));
    assert.ok(tc, 'gscip_tc.bpf.o built');
    const got = objectCalls(readFileSync(tc));
    const names = got.helpers.map((h) => helperName(h.id));
    for (const n of ['bpf_map_lookup_elem', 'bpf_loop', 'bpf_ringbuf_output', 'bpf_skb_load_bytes']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    assert.deepEqual(got.kfuncs.map((k) => [k.name, k.weak]), [['bpf_cast_to_kern_ctx', false]]);
  });

  test('non-BPF input is refused by name', () => {
    assert.throws(() => objectCalls(Buffer.from('hello')), ElfError);
    assert.throws(() => objectCalls(readFileSync(process.execPath)), /not EM_BPF/);
  });
});

describe('helper names', { timeout: 10_000 }, () => {
  const uapi = '/usr/include/linux/bpf.h';
  test('the table is enum bpf_func_id of the uapi header, in order', { skip: existsSync(uapi) ? false : `${uapi} missing (linux-libc-dev)` }, () => {
    const h = readFileSync(uapi, 'utf8');
    const start = h.indexOf('#define __BPF_FUNC_MAPPER(FN)');
    const body = h.slice(start, h.indexOf('\n\n', start));
    const names = [...body.matchAll(/FN\(([a-z0-9_]+)/g)].map((m) => m[1]).filter((n) => n !== 'unspec');
    assert.ok(names.length > 150);
    names.forEach((n, i) => assert.equal(helperName(i + 1), `bpf_${n}`));
    assert.equal(HELPER_NAME_COUNT, names.length + 1);
  });
  test('unknown ids print as helper #N', () => {
    assert.equal(helperName(100_000), 'helper #100000');
    assert.equal(helperName(0), 'helper #0');
    assert.equal(helperName(-3), 'helper #-3');
  });
});

describe('kernel BTF FUNC lookup', { timeout: 20_000 }, () => {
  const vmlinux = '/sys/kernel/btf/vmlinux';
  test('btfHasFuncs agrees with the full FUNC name list', { skip: existsSync(vmlinux) ? false : 'no kernel BTF' }, () => {
    const b = readFileSync(vmlinux);
    const all = btfFuncNames(b);
    const probe = ['bpf_cast_to_kern_ctx', 'tcp_v4_rcv', 'no_such_function_gscip', 'bpf_map_lookup_elem', 'btf_type_by_id'];
    assert.deepEqual([...btfHasFuncs(b, probe)].sort(), probe.filter((n) => all.has(n)).sort());
    // A struct or type name is not a FUNC.
    assert.equal(btfHasFuncs(b, ['sk_buff']).size, 0);
  });
});
