/**
 * What a compiled BPF object calls, read from its ELF code (not listed by
 * hand): every helper id and every kfunc its programs use. Pure: a Buffer in,
 * lists out. The doctor and the agent's start-up check probe the kernel for
 * each (host-checks.ts).
 *
 *  - Code is every SHF_EXECINSTR section (program sections and .text).
 *  - A call insn is opcode 0x85 (BPF_JMP | BPF_CALL). src_reg 0: helper call,
 *    imm = enum bpf_func_id. src_reg 1 (BPF_PSEUDO_CALL) with a relocation
 *    against an undefined symbol: a kfunc (clang emits kfunc calls that way in
 *    the object; libbpf turns them into src_reg 2 with a BTF id at load).
 *    src_reg 1 against a defined symbol is a bpf-to-bpf call (ours).
 *    src_reg 2 (BPF_PSEUDO_KFUNC_CALL) in an object is counted as a kfunc by
 *    its relocation too.
 *  - ld_imm64 (opcode 0x18) is 16 bytes: its second half is skipped.
 *  - A kfunc declared __weak (STB_WEAK) is optional: programs test it with
 *    bpf_ksym_exists() and work without it.
 */
import { GscipError } from '../errors/catalogue.js';

const SHT_SYMTAB = 2;
const SHT_REL = 9;
const SHF_EXECINSTR = 0x4;
const STB_WEAK = 2;
const SHN_UNDEF = 0;
const BPF_CALL = 0x85;
const BPF_LD_IMM64 = 0x18;
const EM_BPF = 247;

export class ElfError extends GscipError {
  constructor(message: string) { super('GSCIP_E_ELF', message); }
}

export interface HelperUse { id: number; calls: number; sections: string[] }
export interface KfuncUse { name: string; calls: number; weak: boolean; sections: string[] }
export interface ObjectCalls { helpers: HelperUse[]; kfuncs: KfuncUse[] }

interface Section { name: string; type: number; flags: number; offset: number; size: number; link: number; info: number; entsize: number }
interface Symbol { name: string; shndx: number; bind: number }

function cstr(b: Buffer, off: number): string {
  const end = b.indexOf(0, off);
  return b.toString('latin1', off, end < 0 ? b.length : end);
}

function sections(b: Buffer): Section[] {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) throw new ElfError('not an ELF file');
  if (b[4] !== 2) throw new ElfError('not a 64-bit ELF file (EI_CLASS is not ELFCLASS64)');
  if (b[5] !== 1) throw new ElfError('not a little-endian ELF file (this reader handles bpfel only)');
  const machine = b.readUInt16LE(18);
  if (machine !== EM_BPF) throw new ElfError(`ELF machine ${machine} is not EM_BPF (${EM_BPF})`);
  const shoff = Number(b.readBigUInt64LE(40));
  const shentsize = b.readUInt16LE(58);
  const shnum = b.readUInt16LE(60);
  const shstrndx = b.readUInt16LE(62);
  if (shentsize < 64 || shoff + shnum * shentsize > b.length) throw new ElfError('section header table runs past the end of the file');
  const raw = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      nameOff: b.readUInt32LE(o), type: b.readUInt32LE(o + 4), flags: Number(b.readBigUInt64LE(o + 8)),
      offset: Number(b.readBigUInt64LE(o + 24)), size: Number(b.readBigUInt64LE(o + 32)),
      link: b.readUInt32LE(o + 40), info: b.readUInt32LE(o + 44), entsize: Number(b.readBigUInt64LE(o + 56)),
    };
  });
  const strtab = raw[shstrndx];
  if (!strtab) throw new ElfError('no section name table');
  for (const s of raw) if (s.type !== 8 /* NOBITS */ && s.offset + s.size > b.length) throw new ElfError('a section runs past the end of the file');
  return raw.map((s) => ({ ...s, name: cstr(b, strtab.offset + s.nameOff) }));
}

function symbols(b: Buffer, secs: Section[]): Symbol[] {
  const symtab = secs.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return [];
  const str = secs[symtab.link];
  const n = Math.floor(symtab.size / 24);
  return Array.from({ length: n }, (_, i) => {
    const o = symtab.offset + i * 24;
    return { name: cstr(b, str.offset + b.readUInt32LE(o)), bind: b[o + 4] >> 4, shndx: b.readUInt16LE(o + 6) };
  });
}

/** Helpers and kfuncs the object's code calls, sorted (helpers by id, kfuncs by name). */
export function objectCalls(elf: Buffer): ObjectCalls {
  const secs = sections(elf);
  const syms = symbols(elf, secs);
  // Call-site relocations: code section index -> insn offset -> symbol.
  const relocs = new Map<number, Map<number, Symbol>>();
  const isCode = (s: Section | undefined): boolean => s !== undefined && (s.flags & SHF_EXECINSTR) !== 0 && s.type !== 8;
  // Only relocations of code sections (the debug sections carry thousands more).
  for (const r of secs.filter((s) => s.type === SHT_REL && isCode(secs[s.info]))) {
    const m = relocs.get(r.info) ?? new Map<number, Symbol>();
    relocs.set(r.info, m);
    for (let o = r.offset; o + 16 <= r.offset + r.size; o += 16) {
      const sym = syms[Number(elf.readBigUInt64LE(o + 8) >> 32n)];
      if (sym) m.set(Number(elf.readBigUInt64LE(o)), sym);
    }
  }
  const helpers = new Map<number, HelperUse>();
  const kfuncs = new Map<string, KfuncUse>();
  const note = <T extends { calls: number; sections: string[] }>(u: T, sec: string): void => {
    u.calls++;
    if (!u.sections.includes(sec)) u.sections.push(sec);
  };
  secs.forEach((s, idx) => {
    if (!isCode(s)) return;
    const rel = relocs.get(idx);
    for (let off = 0; off + 8 <= s.size; off += 8) {
      const o = s.offset + off;
      const code = elf[o];
      if (code === BPF_LD_IMM64) { off += 8; continue; }
      if (code !== BPF_CALL) continue;
      const src = elf[o + 1] >> 4;
      if (src === 0) {
        const id = elf.readInt32LE(o + 4);
        note(helpers.get(id) ?? helpers.set(id, { id, calls: 0, sections: [] }).get(id)!, s.name);
        continue;
      }
      const sym = rel?.get(off);
      if (sym && sym.shndx === SHN_UNDEF && sym.name) {
        const k = kfuncs.get(sym.name) ?? kfuncs.set(sym.name, { name: sym.name, calls: 0, weak: sym.bind === STB_WEAK, sections: [] }).get(sym.name)!;
        note(k, s.name);
      } else if (src === 2) {
        throw new ElfError(`section ${s.name} offset ${off}: a kfunc call (src_reg 2) with no relocation naming it`);
      }
    }
  });
  return {
    helpers: [...helpers.values()].sort((a, b) => a.id - b.id),
    kfuncs: [...kfuncs.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
}
