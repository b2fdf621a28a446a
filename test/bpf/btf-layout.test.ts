/**
 * The C header is the source of truth: every struct codec in
 * controlplane/maps/codecs.ts must match the compiled object's BTF exactly
 * (struct size; every field's name, order, offset and size). A moved, resized,
 * renamed, added or removed field fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as abi from '../../controlplane/maps/abi.js';
import { ALL_STRUCTS } from '../../controlplane/maps/codecs.js';
import type { StructCodec } from '../../controlplane/maps/layout.js';
import { defaultObjectPath } from '../lib/bpf-harness.js';

interface BtfMember { name: string; type_id: number; bits_offset: number; bitfield_size?: number }
interface BtfType {
  id: number; kind: string; name: string; size?: number; type_id?: number; nr_elems?: number; members?: BtfMember[];
}

export interface BtfField { name: string; offset: number; size: number }
export interface BtfStruct { name: string; size: number; fields: BtfField[] }

/** Read every gscip_* struct from an object's BTF with bpftool. */
export function btfStructs(objPath: string): Map<string, BtfStruct> {
  const json = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objPath], { encoding: 'utf8', maxBuffer: 64 << 20 })) as { types: BtfType[] };
  const byId = new Map<number, BtfType>(json.types.map((t) => [t.id, t]));
  const sizeOf = (id: number, depth = 0): number => {
    const t = byId.get(id);
    if (!t || depth > 32) throw new Error(`BTF type ${id} unresolved`);
    switch (t.kind) {
      case 'INT': case 'STRUCT': case 'UNION': case 'ENUM': case 'ENUM64': case 'FLOAT': return t.size ?? 0;
      case 'PTR': return 8;
      case 'ARRAY': return (t.nr_elems ?? 0) * sizeOf(t.type_id ?? 0, depth + 1);
      case 'TYPEDEF': case 'VOLATILE': case 'CONST': case 'RESTRICT': case 'TYPE_TAG': return sizeOf(t.type_id ?? 0, depth + 1);
      default: throw new Error(`BTF type ${id}: kind ${t.kind} has no size`);
    }
  };
  const out = new Map<string, BtfStruct>();
  for (const t of json.types) {
    // Only our structs: kernel ones (iphdr, ...) legitimately use bitfields.
    if (t.kind !== 'STRUCT' || !t.name.startsWith('gscip_')) continue;
    out.set(t.name, {
      name: t.name,
      size: t.size ?? 0,
      fields: (t.members ?? []).map((m) => {
        assert.ok(!m.bitfield_size, `struct ${t.name}.${m.name} is a bitfield: not allowed in the ABI`);
        assert.equal(m.bits_offset % 8, 0, `struct ${t.name}.${m.name} is not byte aligned`);
        return { name: m.name, offset: m.bits_offset / 8, size: sizeOf(m.type_id) };
      }),
    });
  }
  return out;
}

/** Differences between a codec and its BTF struct, as human-readable lines (empty = identical). */
export function layoutDiff(codec: StructCodec<unknown>, btf: BtfStruct): string[] {
  const diffs: string[] = [];
  if (codec.size !== btf.size) diffs.push(`struct ${btf.name}: size C=${btf.size} TS=${codec.size}`);
  const n = Math.max(codec.fields.length, btf.fields.length);
  for (let i = 0; i < n; i++) {
    const c = codec.fields[i];
    const b = btf.fields[i];
    if (!c) { diffs.push(`struct ${btf.name}: field #${i} ${b.name} (offset ${b.offset}, size ${b.size}) missing in TS`); continue; }
    if (!b) { diffs.push(`struct ${btf.name}: field #${i} ${c.name} exists in TS but not in C`); continue; }
    if (c.name !== b.name) diffs.push(`struct ${btf.name}: field #${i} named ${b.name} in C, ${c.name} in TS`);
    if (c.offset !== b.offset) diffs.push(`struct ${btf.name}.${b.name}: offset C=${b.offset} TS=${c.offset}`);
    if (c.size !== b.size) diffs.push(`struct ${btf.name}.${b.name}: size C=${b.size} TS=${c.size}`);
  }
  return diffs;
}

const ROOT = resolve(__dirname, '../../..');
const HEADER = join(ROOT, 'bpf/include/gscip_abi.h');
const OBJ = defaultObjectPath();
const why = existsSync(OBJ) ? null : `${OBJ} missing: run make bpf`;

/** Struct names the ABI header declares. */
function headerStructs(): string[] {
  const src = readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  return [...src.matchAll(/^struct\s+(gscip_\w+)\s*\{/gm)].map((m) => m[1]);
}

/**
 * BTF of a probe object that instantiates every struct of the header, built
 * with the same clang flags as the datapath. Covers structs the datapath only
 * uses through pointers (e.g. the ring-buffer record), which BTF omits.
 */
function probeStructs(): Map<string, BtfStruct> {
  const dir = mkdtempSync(join(tmpdir(), 'gscip-btf-'));
  try {
    const c = join(dir, 'probe.bpf.c');
    writeFileSync(c, ['#include "vmlinux.h"', '#include "gscip_abi.h"', ...headerStructs().map((n) => `struct ${n} probe_${n};`), ''].join('\n'));
    const o = join(dir, 'probe.bpf.o');
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-mcpu=v3', `-I${join(ROOT, 'bpf/include')}`, '-c', c, '-o', o], { stdio: 'pipe' });
    return btfStructs(o);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkAll(btf: Map<string, BtfStruct>, required: boolean): string[] {
  const problems: string[] = [];
  for (const codec of ALL_STRUCTS) {
    const s = btf.get(codec.cName);
    if (!s) { if (required) problems.push(`struct ${codec.cName}: not in BTF`); continue; }
    problems.push(...layoutDiff(codec, s));
  }
  return problems;
}

test('every ABI struct codec matches the BTF of the compiled datapath object', { skip: why ?? false }, () => {
  const btf = btfStructs(OBJ);
  assert.deepEqual(checkAll(btf, false), []);
  // The map keys/values must be there (they are what user space reads and writes).
  for (const n of ['gscip_cid', 'gscip_pit_val', 'gscip_xlat_val', 'gscip_key_id', 'gscip_key_val', 'gscip_flow_key_val', 'gscip_iface_cfg', 'gscip_global_cfg', 'gscip_stat_val']) {
    assert.ok(btf.has(n), `struct ${n} missing from ${OBJ}'s BTF`);
  }
});

test('every ABI struct codec matches clang\'s layout of every struct in gscip_abi.h', () => {
  assert.deepEqual(checkAll(probeStructs(), true), []);
});

test('every struct of gscip_abi.h has a codec', () => {
  const have = new Set(ALL_STRUCTS.map((c) => c.cName));
  assert.deepEqual(headerStructs().filter((n) => !have.has(n)), []);
});

test('the layout check fails when a field moves (the check itself can fail)', () => {
  const btf = probeStructs();
  const codec = ALL_STRUCTS.find((c) => c.cName === 'gscip_pit_val');
  assert.ok(codec);
  const real = btf.get('gscip_pit_val');
  assert.ok(real);
  const moved: BtfStruct = { ...real, fields: real.fields.map((f) => (f.name === 'group_id' ? { ...f, offset: f.offset + 4 } : f)) };
  assert.deepEqual(layoutDiff(codec, moved), ['struct gscip_pit_val.group_id: offset C=8 TS=4']);
  const resized: BtfStruct = { ...real, size: real.size + 8 };
  assert.equal(layoutDiff(codec, resized).length, 1);
  const renamed: BtfStruct = { ...real, fields: real.fields.map((f) => (f.name === 'role' ? { ...f, name: 'rank' } : f)) };
  assert.deepEqual(layoutDiff(codec, renamed), ['struct gscip_pit_val: field #2 named rank in C, role in TS']);
});

// ---- enums (as Cilium's alignchecker checks its enums too) and the compiled reason table ----

interface BtfEnum { name: string; values: Map<string, number> }

/** Every gscip_* enum of an object's BTF, by name. */
export function btfEnums(objPath: string): Map<string, BtfEnum> {
  const json = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objPath], { encoding: 'utf8', maxBuffer: 64 << 20 })) as
    { types: Array<{ kind: string; name: string; values?: Array<{ name: string; val: number }> }> };
  const out = new Map<string, BtfEnum>();
  for (const t of json.types) {
    if ((t.kind !== 'ENUM' && t.kind !== 'ENUM64') || !t.name.startsWith('gscip_')) continue;
    out.set(t.name, { name: t.name, values: new Map((t.values ?? []).map((v) => [v.name, Number(v.val)])) });
  }
  return out;
}

/** Enum names the ABI header declares. */
function headerEnums(): string[] {
  const src = readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  return [...src.matchAll(/^enum\s+(gscip_\w+)\s*\{/gm)].map((m) => m[1]);
}

/** C enum -> (prefix of its constants, the TS mirror). */
const ENUM_MIRRORS: Record<string, [string, Record<string, number>]> = {
  gscip_dir: ['GSCIP_DIR_', abi.Dir], gscip_action: ['GSCIP_ACT_', abi.Action], gscip_pit_state: ['GSCIP_PIT_', abi.PitState],
  gscip_role: ['GSCIP_ROLE_', abi.Role], gscip_miss_action: ['GSCIP_MISS_', abi.MissAction], gscip_ipv6_policy: ['GSCIP_IPV6_', abi.Ipv6Policy], gscip_xlat_kind: ['GSCIP_XLAT_', abi.XlatKind],
  gscip_punt_reason: ['GSCIP_PUNT_', abi.PuntReason], gscip_stat: ['GSCIP_', abi.Stat], gscip_reason_kind: ['GSCIP_KIND_', abi.ReasonKind],
  gscip_tc_verdict: ['GSCIP_TC_', abi.TcVerdict], gscip_stage: ['GSCIP_STAGE_', abi.Stage], gscip_pit_why: ['GSCIP_WHY_', abi.PitWhy], gscip_nat_origin: ['GSCIP_NAT_', abi.NatOrigin],
  gscip_flow_leg: ['GSCIP_LEG_', abi.FlowLeg],
};

/** Differences between a BTF enum and its TS mirror (both ways), as lines. */
export function enumDiff(btf: BtfEnum, prefix: string, ts: Record<string, number>): string[] {
  const d: string[] = [];
  for (const [k, v] of btf.values) {
    const t = k.startsWith(prefix) ? ts[k.slice(prefix.length)] : undefined;
    if (t === undefined) d.push(`enum ${btf.name}: ${k} = ${v} missing in TS`);
    else if (t !== v) d.push(`enum ${btf.name}: ${k} C=${v} TS=${t}`);
  }
  for (const [k, v] of Object.entries(ts)) if (!btf.values.has(prefix + k)) d.push(`enum ${btf.name}: ${prefix}${k} = ${v} exists in TS but not in C`);
  return d;
}

function probeEnums(): Map<string, BtfEnum> {
  const dir = mkdtempSync(join(tmpdir(), 'gscip-btf-enum-'));
  try {
    const c = join(dir, 'probe.bpf.c');
    writeFileSync(c, ['#include "vmlinux.h"', '#include "gscip_abi.h"', ...headerEnums().map((n) => `enum ${n} probe_${n};`), ''].join('\n'));
    const o = join(dir, 'probe.bpf.o');
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-mcpu=v3', `-I${join(ROOT, 'bpf/include')}`, '-c', c, '-o', o], { stdio: 'pipe' });
    return btfEnums(o);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('every enum of gscip_abi.h has a TS mirror and matches clang\'s BTF value for value', () => {
  const btf = probeEnums();
  assert.deepEqual(headerEnums().filter((n) => !(n in ENUM_MIRRORS)), [], 'enums without a TS mirror');
  const problems: string[] = [];
  for (const [name, [prefix, ts]] of Object.entries(ENUM_MIRRORS)) {
    const e = btf.get(name);
    if (!e) { problems.push(`enum ${name}: not in BTF`); continue; }
    problems.push(...enumDiff(e, prefix, ts));
  }
  assert.deepEqual(problems, []);
});

test('the enum check can fail: a renumbered or missing constant is named', () => {
  const e = probeEnums().get('gscip_stat');
  assert.ok(e);
  assert.deepEqual(enumDiff(e, 'GSCIP_', { ...abi.Stat, DROP_CRYPTO: 43 }), ['enum gscip_stat: GSCIP_DROP_CRYPTO C=290 TS=43']);
  const { DROP_NO_KEY: _gone, ...less } = abi.Stat;
  assert.deepEqual(enumDiff(e, 'GSCIP_', less), ['enum gscip_stat: GSCIP_DROP_NO_KEY = 288 missing in TS']);
});

test('the reason table compiled into the datapath (.rodata) is abi.ts REASONS: kind and TC action per reason, holes unused', { skip: why ?? false }, () => {
  const json = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', OBJ], { encoding: 'utf8', maxBuffer: 64 << 20 })) as
    { types: Array<{ id: number; kind: string; name: string; vars?: Array<{ type_id: number; offset: number; size: number }> }> };
  const v = json.types.find((t) => t.kind === 'VAR' && t.name === 'gscip_reason_info');
  assert.ok(v, 'gscip_reason_info in BTF');
  const sec = json.types.find((t) => t.kind === 'DATASEC' && t.name === '.rodata');
  const at = sec?.vars?.find((x) => x.type_id === v.id);
  assert.ok(at, 'gscip_reason_info in .rodata');
  assert.equal(at.size, abi.REASON__END * 2);
  const dir = mkdtempSync(join(tmpdir(), 'gscip-rodata-'));
  let rodata: Buffer;
  try {
    execFileSync('llvm-objcopy', [`--dump-section=.rodata=${join(dir, 'rodata')}`, OBJ, join(dir, 'copy.o')], { stdio: 'pipe' });
    rodata = readFileSync(join(dir, 'rodata'));
  } finally { rmSync(dir, { recursive: true, force: true }); }
  const KIND = { verdict: abi.ReasonKind.VERDICT, drop: abi.ReasonKind.DROP, overlay: abi.ReasonKind.OVERLAY } as const;
  const TC = { pass: abi.TcVerdict.PASS, shot: abi.TcVerdict.SHOT, stolen: abi.TcVerdict.STOLEN, redirect: abi.TcVerdict.REDIRECT, none: abi.TcVerdict.NONE } as const;
  const problems: string[] = [];
  for (let id = 0; id < abi.REASON__END; id++) {
    const kind = rodata[at.offset + 2 * id];
    const tc = rodata[at.offset + 2 * id + 1];
    const s = abi.STAT_BY_ID.get(id);
    const want = s ? [KIND[s.kind], TC[s.action]] : [abi.ReasonKind.UNUSED, 0];
    if (kind !== want[0] || tc !== want[1]) problems.push(`reason ${id} (${s?.name ?? 'unused'}): compiled kind=${kind} tc=${tc}, TS kind=${want[0]} tc=${want[1]}`);
  }
  assert.deepEqual(problems, []);
});
