/**
 * The FUNC names of a raw BTF blob (/sys/kernel/btf/vmlinux): which kfuncs
 * the running kernel could offer. A minimal reader: the header, then one walk
 * over the type section that only needs each kind's trailing size. Pure.
 *
 * A name here means the kernel has the function; whether it is registered as
 * a kfunc for TC programs only the verifier knows (the doctor's load check).
 */
import { GscipError } from '../errors/catalogue.js';

export const BTF_MAGIC = 0xeb9f;
const BTF_KIND_FUNC = 12;

export class BtfError extends GscipError {
  constructor(message: string) { super('GSCIP_E_BTF', message); }
}

/** Bytes that follow struct btf_type (12 bytes) for a kind with vlen members. */
function trailing(kind: number, vlen: number): number {
  switch (kind) {
    case 1: return 4; // INT
    case 3: return 12; // ARRAY
    case 4: case 5: return vlen * 12; // STRUCT, UNION
    case 6: return vlen * 8; // ENUM
    case 13: return vlen * 8; // FUNC_PROTO
    case 14: return 4; // VAR
    case 15: return vlen * 12; // DATASEC
    case 17: return 4; // DECL_TAG
    case 19: return vlen * 12; // ENUM64
    case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18: return 0;
    default: throw new BtfError(`unknown BTF kind ${kind} (a newer kernel than this reader?)`);
  }
}

interface Layout { typeOff: number; typeEnd: number; strOff: number; strEnd: number }

function layout(b: Buffer): Layout {
  if (b.length < 24 || b.readUInt16LE(0) !== BTF_MAGIC) throw new BtfError('not little-endian BTF (bad magic)');
  const hdrLen = b.readUInt32LE(4);
  const typeOff = hdrLen + b.readUInt32LE(8);
  const typeLen = b.readUInt32LE(12);
  const strOff = hdrLen + b.readUInt32LE(16);
  const strLen = b.readUInt32LE(20);
  if (typeOff + typeLen > b.length || strOff + strLen > b.length) throw new BtfError('BTF sections run past the end of the blob');
  return { typeOff, typeEnd: typeOff + typeLen, strOff, strEnd: strOff + strLen };
}

/** Calls fn(nameOff) for every FUNC type. */
function eachFunc(b: Buffer, l: Layout, fn: (nameOff: number) => void): void {
  for (let o = l.typeOff; o + 12 <= l.typeEnd;) {
    const info = b.readUInt32LE(o + 4);
    const kind = (info >>> 24) & 0x1f;
    if (kind === BTF_KIND_FUNC) fn(b.readUInt32LE(o));
    o += 12 + trailing(kind, info & 0xffff);
  }
}

/** Every FUNC name in a (non-split) BTF blob (~60 ms for vmlinux: prefer btfHasFuncs). */
export function btfFuncNames(b: Buffer): Set<string> {
  const l = layout(b);
  const out = new Set<string>();
  eachFunc(b, l, (off) => {
    const s = l.strOff + off;
    if (s >= l.strEnd) return;
    const z = b.indexOf(0, s);
    out.add(b.toString('latin1', s, z < 0 || z > l.strEnd ? l.strEnd : z));
  });
  return out;
}

/**
 * Which of `names` are FUNCs in the blob. Finds each name in the string
 * section first (BTF strings are deduplicated: one offset per name), then
 * walks the types comparing offsets only (~5 ms for vmlinux).
 */
export function btfHasFuncs(b: Buffer, names: readonly string[]): Set<string> {
  const l = layout(b);
  const byOff = new Map<number, string>();
  const strs = b.subarray(l.strOff, l.strEnd);
  for (const n of names) {
    const at = strs.indexOf(Buffer.from(`\0${n}\0`, 'latin1'));
    if (at >= 0) byOff.set(at + 1, n);
  }
  const found = new Set<string>();
  if (byOff.size) eachFunc(b, l, (off) => { const n = byOff.get(off); if (n !== undefined) found.add(n); });
  return found;
}
