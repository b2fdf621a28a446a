/**
 * The C header is the source of truth: every struct codec in
 * controlplane/maps/codecs.ts must match the compiled object's BTF exactly
 * (struct size; every field's name, order, offset and size). A moved, resized,
 * renamed, added or removed field fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

const OBJ = defaultObjectPath();
const why = existsSync(OBJ) ? null : `${OBJ} missing: run make bpf`;

test('every ABI struct codec matches the BTF of the compiled object', { skip: why ?? false }, () => {
  const btf = btfStructs(OBJ);
  const problems: string[] = [];
  for (const codec of ALL_STRUCTS) {
    const s = btf.get(codec.cName);
    if (!s) { problems.push(`struct ${codec.cName}: not in the object's BTF (the datapath must reference it, e.g. as a map key/value)`); continue; }
    problems.push(...layoutDiff(codec, s));
  }
  assert.deepEqual(problems, []);
});

test('every gscip_* struct of the ABI header has a codec', { skip: why ?? false }, () => {
  const btf = btfStructs(OBJ);
  const have = new Set(ALL_STRUCTS.map((c) => c.cName));
  // gscip_pkt (bpf/lib/pkt.h) is fast-path internal, not shared with user space.
  const internal = new Set(['gscip_pkt']);
  const missing = [...btf.keys()].filter((n) => n.startsWith('gscip_') && !have.has(n) && !internal.has(n));
  assert.deepEqual(missing, []);
});

test('the layout check fails when a field moves (the check itself can fail)', { skip: why ?? false }, () => {
  const btf = btfStructs(OBJ);
  const codec = ALL_STRUCTS.find((c) => c.cName === 'gscip_pit_val');
  assert.ok(codec);
  const real = btf.get('gscip_pit_val');
  assert.ok(real);
  const moved: BtfStruct = { ...real, fields: real.fields.map((f) => (f.name === 'group_id' ? { ...f, offset: f.offset + 4 } : f)) };
  assert.deepEqual(layoutDiff(codec, moved), ['struct gscip_pit_val.group_id: offset C=8 TS=4']);
  const resized: BtfStruct = { ...real, size: real.size + 8 };
  assert.equal(layoutDiff(codec, resized).length, 1);
});
