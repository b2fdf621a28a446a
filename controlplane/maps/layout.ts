/**
 * A tiny layout DSL for C structs shared with the fast path.
 *
 * Each field has a C type with a size and an alignment; struct() lays the
 * fields out with the C rules (each field at the next multiple of its
 * alignment, the struct padded to a multiple of its widest alignment), so the
 * offsets are computed, never typed by hand. test/bpf/btf-layout.test.ts
 * compares every struct and field against the compiled object's BTF.
 *
 * Host-order integers are little-endian (x86-64, arm64 LE: the only targets);
 * `be16`/`be32`/`ipv4` are network order, as `__be16`/`__be32` in the header.
 */
import { isIPv4 } from 'node:net';

export interface FieldType<T> {
  /** C spelling, for messages ("__u32", "__u8[2]"). */
  readonly cType: string;
  readonly size: number;
  readonly align: number;
  read(buf: Buffer, off: number): T;
  /** Throws a RangeError naming `where` if v does not fit. */
  write(buf: Buffer, off: number, v: T, where: string): void;
}

/** A field that exists in C (explicit padding) but not in the JS object: always written as zero. */
export interface PadType extends FieldType<undefined> { readonly isPad: true }

function intType(cType: string, size: 1 | 2 | 4, be: boolean): FieldType<number> {
  const max = 2 ** (size * 8) - 1;
  return {
    cType, size, align: size,
    read: (b, o) => (size === 1 ? b.readUInt8(o) : size === 2 ? (be ? b.readUInt16BE(o) : b.readUInt16LE(o)) : be ? b.readUInt32BE(o) : b.readUInt32LE(o)),
    write: (b, o, v, where) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
        throw new RangeError(`${where}: expected an integer 0..${max} (${cType}), got ${String(v)}`);
      }
      if (size === 1) b.writeUInt8(v, o);
      else if (size === 2) { if (be) b.writeUInt16BE(v, o); else b.writeUInt16LE(v, o); }
      else if (be) b.writeUInt32BE(v, o); else b.writeUInt32LE(v, o);
    },
  };
}

export const u8 = intType('__u8', 1, false);
export const u16 = intType('__u16', 2, false);
export const u32 = intType('__u32', 4, false);
/** Signed 32-bit little-endian value (__s32). */
export const s32: FieldType<number> = {
  cType: '__s32', size: 4, align: 4,
  read: (b, o) => b.readInt32LE(o),
  write: (b, o, v, where) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 31 - 1) {
      throw new RangeError(`${where}: expected an integer -2^31..2^31-1 (__s32), got ${String(v)}`);
    }
    b.writeInt32LE(v, o);
  },
};
/** Network-order 16-bit value, exposed in host order (ports). */
export const be16 = intType('__be16', 2, true);
/** Network-order 32-bit value, exposed in host order. */
export const be32 = intType('__be32', 4, true);

export const u64: FieldType<bigint> = {
  cType: '__u64', size: 8, align: 8,
  read: (b, o) => b.readBigUInt64LE(o),
  write: (b, o, v, where) => {
    const x = typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v;
    if (typeof x !== 'bigint' || x < 0n || x > 0xffff_ffff_ffff_ffffn) {
      throw new RangeError(`${where}: expected an integer 0..2^64-1 (__u64), got ${String(v)}`);
    }
    b.writeBigUInt64LE(x, o);
  },
};

/** A __be32 IPv4 address, exposed as dotted quad. */
export const ipv4: FieldType<string> = {
  cType: '__be32', size: 4, align: 4,
  read: (b, o) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`,
  write: (b, o, v, where) => {
    if (typeof v !== 'string' || !writeDottedQuad(b, o, v)) {
      if (typeof v !== 'string' || !isIPv4(v)) throw new RangeError(`${where}: expected an IPv4 address, got ${String(v)}`);
      const p = v.split('.').map(Number);
      for (let i = 0; i < 4; i++) b[o + i] = p[i];
    }
  },
};

/**
 * Parses "a.b.c.d" into b[o..o+3] without allocating (every map key holds
 * IPv4 addresses: a regex and a split per address showed in Mobile PPC's
 * profile). Accepts exactly what node:net isIPv4 accepts for dotted quads:
 * four decimal parts 0..255, no leading zeros, nothing else. False (and the
 * bytes unspecified) otherwise.
 */
function writeDottedQuad(b: Buffer, o: number, v: string): boolean {
  const n = v.length;
  if (n < 7 || n > 15) return false;
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    const c = i === n ? 46 : v.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      b[o + part] = val;
      part++;
      val = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return false;
    if (digits > 0 && val === 0) return false; // a leading zero
    val = val * 10 + (c - 48);
    if (++digits > 3 || val > 255) return false;
  }
  return part === 4;
}

/** __u8 name[n], exposed as a Buffer (copied on read; must be exactly n bytes on write). */
export function bytes(n: number): FieldType<Buffer> {
  return {
    cType: `__u8[${n}]`, size: n, align: 1,
    read: (b, o) => Buffer.from(b.subarray(o, o + n)),
    write: (b, o, v, where) => {
      if (!((v as unknown) instanceof Uint8Array)) throw new RangeError(`${where}: expected ${n} bytes, got ${typeof v}`);
      if (v.length !== n) throw new RangeError(`${where}: expected ${n} bytes, got ${v.length}`);
      b.set(v, o);
    },
  };
}

/** T name[n], exposed as an array of n values. */
export function array<T>(el: FieldType<T>, n: number): FieldType<T[]> {
  return {
    cType: `${el.cType}[${n}]`, size: el.size * n, align: el.align,
    read: (b, o) => Array.from({ length: n }, (_, i) => el.read(b, o + i * el.size)),
    write: (b, o, v, where) => {
      if (!Array.isArray(v) || v.length !== n) throw new RangeError(`${where}: expected an array of ${n} ${el.cType}`);
      v.forEach((x, i) => el.write(b, o + i * el.size, x, `${where}[${i}]`));
    },
  };
}

/** Explicit padding of the given C type: zero on write, absent from the object. */
export function pad(t: FieldType<unknown>): PadType {
  return {
    cType: t.cType, size: t.size, align: t.align, isPad: true,
    read: () => undefined,
    write: (b, o) => { b.fill(0, o, o + t.size); },
  };
}

export interface FieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly type: FieldType<unknown>;
  readonly isPad: boolean;
}

/** One entry of a struct definition: [name, type]; names must match the C header. */
export type FieldDef<T> =
  | { [K in keyof T & string]: readonly [K, FieldType<T[K]>] }[keyof T & string]
  | readonly [string, PadType];

export class StructCodec<T> implements FieldType<T> {
  readonly size: number;
  readonly align: number;
  readonly fields: readonly FieldLayout[];

  constructor(readonly cName: string, defs: ReadonlyArray<FieldDef<T>>) {
    let off = 0;
    let align = 1;
    const fields: FieldLayout[] = [];
    const seen = new Set<string>();
    for (const [name, type] of defs as ReadonlyArray<readonly [string, FieldType<unknown>]>) {
      if (seen.has(name)) throw new Error(`struct ${cName}: field ${name} defined twice`);
      seen.add(name);
      off = Math.ceil(off / type.align) * type.align;
      fields.push({ name, offset: off, size: type.size, type, isPad: 'isPad' in type });
      off += type.size;
      align = Math.max(align, type.align);
    }
    this.size = Math.ceil(off / align) * align;
    this.align = align;
    this.fields = fields;
    this.readFields = compileRead(fields);
    this.writeFields = compileWrite(fields);
  }

  get cType(): string { return `struct ${this.cName}`; }

  field(name: string): FieldLayout {
    const f = this.fields.find((x) => x.name === name);
    if (!f) throw new Error(`struct ${this.cName} has no field ${name}`);
    return f;
  }

  read(buf: Buffer, off: number): T {
    if (buf.length < off + this.size) throw new RangeError(`struct ${this.cName}: need ${this.size} bytes at offset ${off}, buffer has ${buf.length}`);
    return this.readFields(buf, off) as T;
  }

  write(buf: Buffer, off: number, v: T, where: string = this.cName): void {
    if (v === null || typeof v !== 'object') throw new RangeError(`${where}: expected an object`);
    buf.fill(0, off, off + this.size); // holes and padding are zero: hash keys compare bytes
    this.writeFields(buf, off, v as Record<string, unknown>, where);
  }

  /**
   * The field loops, compiled once per struct into straight-line code (one
   * object literal of a fixed shape per read, no per-field name strings per
   * write): a map read or write per flow was mostly this loop in Mobile
   * PPC's profiles (a gscip_flow_key_val read went from ~3.3 to ~0.9 us).
   * The same fields, offsets and messages as the loop they replace. A
   * field's name goes into `where` only when its write throws (the same
   * write again, with it, throws the same way).
   */
  private readonly readFields: (b: Buffer, o: number) => Record<string, unknown>;
  private readonly writeFields: (b: Buffer, o: number, v: Record<string, unknown>, where: string) => void;

  decode(buf: Buffer, off = 0): T { return this.read(buf, off); }

  encode(v: T, buf?: Buffer, off = 0): Buffer {
    const out = buf ?? Buffer.alloc(this.size);
    this.write(out, off, v);
    return out;
  }
}

function compileRead(fields: readonly FieldLayout[]): (b: Buffer, o: number) => Record<string, unknown> {
  const fs = fields.filter((f) => !f.isPad);
  const body = `return function readFields(b, o) { return { ${fs.map((f, i) => `${JSON.stringify(f.name)}: t[${i}].read(b, o + ${f.offset})`).join(', ')} }; };`;
  return new Function('t', body)(fs.map((f) => f.type)) as (b: Buffer, o: number) => Record<string, unknown>;
}

function compileWrite(fields: readonly FieldLayout[]): (b: Buffer, o: number, v: Record<string, unknown>, where: string) => void {
  const fs = fields.filter((f) => !f.isPad);
  const lines = fs.map((f, i) => {
    const name = JSON.stringify(f.name);
    const suffix = JSON.stringify(`.${f.name}`);
    return `x = v[${name}]; if (x === undefined) throw new RangeError(where + ${JSON.stringify(`.${f.name}: missing`)});
  try { t[${i}].write(b, o + ${f.offset}, x, where); } catch { t[${i}].write(b, o + ${f.offset}, x, where + ${suffix}); }`;
  });
  const body = `return function writeFields(b, o, v, where) { let x;\n  ${lines.join('\n  ')}\n};`;
  return new Function('t', body)(fs.map((f) => f.type)) as (b: Buffer, o: number, v: Record<string, unknown>, where: string) => void;
}

export function struct<T>(cName: string, defs: ReadonlyArray<FieldDef<T>>): StructCodec<T> {
  return new StructCodec<T>(cName, defs);
}
