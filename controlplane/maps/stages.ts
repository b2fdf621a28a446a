/**
 * The datapath stages a load contains (enum gscip_stage, struct
 * gscip_load_cfg in gscip_abi.h; bpf/lib/stages.h): config names <-> bits,
 * and the .rodata.gscip_load value the loader writes before load. Pure.
 */
import { Stage, STAGE_BITS, type StageName } from './abi.js';
import { loadCfgCodec } from './codecs.js';

/** The section (libbpf internal map) holding struct gscip_load_cfg. */
export const LOAD_CFG_SECTION = '.rodata.gscip_load';

/** Every stage bit this build knows. */
export const KNOWN_STAGES: number = Object.values(STAGE_BITS).reduce((a, b) => a | b, 0);

/** nat, dns and ftp are optional: absent = off (only a GNAT loads nat, only a NAT-f initiator dns, only GSRA ftp; every element before them said only xlat and pccom). */
export type StageSwitches = Record<Exclude<StageName, 'nat' | 'dns' | 'ftp'>, boolean> & { nat?: boolean; dns?: boolean; ftp?: boolean };

/** What a load does when nothing is said: every stage but NAT (behaviour of the builds before stages). */
export const DEFAULT_STAGES: StageSwitches = { xlat: true, pccom: true };

export function stageBits(s: StageSwitches): number {
  let bits = 0;
  for (const [name, bit] of Object.entries(STAGE_BITS) as Array<[StageName, number]>) if (s[name]) bits |= bit;
  return bits;
}

export function stageSwitches(bits: number): StageSwitches {
  if (!Number.isInteger(bits) || bits < 0 || (bits & ~KNOWN_STAGES) !== 0) {
    throw new RangeError(`stage bits 0x${bits.toString(16)}: this build knows only 0x${KNOWN_STAGES.toString(16)}`);
  }
  const s: StageSwitches = { xlat: (bits & Stage.XLAT) !== 0, pccom: (bits & Stage.PCCOM) !== 0 };
  if (bits & Stage.NAT) s.nat = true;
  if (bits & Stage.DNS) s.dns = true;
  if (bits & Stage.FTP) s.ftp = true;
  return s;
}

/** "xlat,pccom" / "none": for logs and doctor lines. */
export function stageList(s: StageSwitches): string {
  const on = (Object.keys(STAGE_BITS) as StageName[]).filter((n) => s[n]);
  return on.length ? on.join(',') : 'none';
}

/** BpfObject OpenOptions.initialValues for these stages. */
export function stageInitialValues(s: StageSwitches): Record<string, Buffer> {
  return { [LOAD_CFG_SECTION]: loadCfgCodec.encode({ stages: stageBits(s) }) };
}
