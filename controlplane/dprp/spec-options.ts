/**
 * The option types docs/dprp.md defines for Mobile PPC and NAT-f, as codecs.
 * Declared by the DPRP part (dprp/part.ts) until those protocols land as parts
 * of their own, which will then claim them instead.
 */
import type { DprpOptionCodec } from '../parts/dprp-extension.js';
import { readIpv4, writeIpv4 } from './ipv4.js';
import { OptionCodecs } from './option-codecs.js';
import { PIT_WHYS, type PitWhyName } from '../maps/vocabulary.js';

export const OptionType = {
  MOBILE_OLD: 1, // old IPv4 (4) + port (2): Mobile PPC
  MOBILE_NEW: 2, // new IPv4 (4) + port (2)
  NATF_NAME: 3,  // host name, 1..253 bytes [A-Za-z0-9.-]
  NATF_LIP: 4,   // local (private) IPv4, 4
  NATF_PORT: 5,  // port, 2
  PCCOM_CAPS: 0x81, // skippable; 1 byte of PCCOM_CAP_* bits: what this GE's PCCOM receiver takes (in its own record)
  NAT_SEEN: 0x82,   // skippable; 4 bytes: the source address this GE saw the DDE come from, when not the start GE's (a NAT)
  WHY: 0x83,        // skippable; 1 byte, an MPIT's message option: why the start's decision is plaintext or refused (enum gscip_pit_why)
  FIRST: 0x84,      // skippable; 4 bytes, an MPIT's message option: the mark of the flow's first packet (first-packet.ts), for GEs past a NAT
  PROTECTED: 0x85,  // skippable; 4 bytes, in an end GE's RGI record: the flow is already encrypted between this GE and that one (a moved flow): a start GE between them passes it
} as const;

/** The first-packet mark an MPIT names (its FIRST option), or null. */
export function mpitFirstOf(m: { options: ReadonlyArray<{ type: number; value: Buffer }> }): number | null {
  const o = m.options.find((x) => x.type === OptionType.FIRST);
  return o && o.value.length === 4 ? o.value.readUInt32BE(0) : null;
}

/** The FIRST option for a first-packet mark (none for null). */
export function firstOption(mark: number | null | undefined): Array<{ type: number; value: Buffer }> {
  if (mark === null || mark === undefined) return [];
  const v = Buffer.alloc(4);
  v.writeUInt32BE(mark >>> 0, 0);
  return [{ type: OptionType.FIRST, value: v }];
}

/** The why an MPIT carries (its WHY option), or null (none, unknown, or from a start older than the option). */
export function mpitWhyOf(m: { options: ReadonlyArray<{ type: number; value: Buffer }> }): PitWhyName | null {
  const o = m.options.find((x) => x.type === OptionType.WHY);
  if (!o || o.value.length !== 1) return null;
  return PIT_WHYS.name(o.value[0]) ?? null;
}

/** The WHY option for a decision's why (none for 'none'). */
export function whyOption(why: PitWhyName): Array<{ type: number; value: Buffer }> {
  return why === 'none' ? [] : [{ type: OptionType.WHY, value: Buffer.from([PIT_WHYS.code(why)]) }];
}

/** The address a record's NAT_SEEN option names (a NAT between the start GE and that GE), or null. */
export function natSeenOf(rec: { options: ReadonlyArray<{ type: number; value: Buffer }> } | undefined): string | null {
  const o = rec?.options.find((x) => x.type === OptionType.NAT_SEEN);
  return o && o.value.length === 4 ? readIpv4(o.value, 0) : null;
}

/** The GE an end GE's record says protects the flow with it (its PROTECTED option), or null. */
export function protectedOf(rec: { options: ReadonlyArray<{ type: number; value: Buffer }> } | undefined): string | null {
  const o = rec?.options.find((x) => x.type === OptionType.PROTECTED);
  return o && o.value.length === 4 ? readIpv4(o.value, 0) : null;
}

/** PCCOM_CAPS bit: this GE's receiver takes the TCP wire-valid form (docs/pccom.md "Checksums a middlebox verifies"). */
export const PCCOM_CAP_WIRE_CSUM = 0x01;
/**
 * PCCOM_CAPS bit: this GE encrypts and decrypts with per-flow keys derived over
 * the negotiation id (docs/pccom.md "Per-flow keys and nonces"). Both ends of
 * an encrypted flow must say it, else the flow keeps the group key (a peer of
 * an older release: rolling upgrades work).
 */
export const PCCOM_CAP_FLOW_KEYS = 0x02;
/**
 * PCCOM_CAPS bit: this GE's receiver takes the UDP wire-valid form (the
 * ordinary UDP checksum, membership in the IP ID; per-flow keys only;
 * docs/pccom.md "UDP across a checksum-verifying NAT"). Sent only across a NAT.
 */
export const PCCOM_CAP_UDP_WIRE = 0x04;
/** What this build's PCCOM receiver takes. */
export const OWN_PCCOM_CAPS = PCCOM_CAP_WIRE_CSUM | PCCOM_CAP_FLOW_KEYS | PCCOM_CAP_UDP_WIRE;

/** The PCCOM capabilities a GE record announces (0: none, e.g. an agent older than the option). */
export function pccomCapsOf(rec: { options: ReadonlyArray<{ type: number; value: Buffer }> } | undefined): number {
  const o = rec?.options.find((x) => x.type === OptionType.PCCOM_CAPS);
  return o && o.value.length === 1 ? o.value[0] : 0;
}

const HOSTNAME = /^[A-Za-z0-9.-]{1,253}$/;

function fixed(b: Buffer, name: string, type: number, n: number): void {
  if (b.length !== n) throw new Error(`type ${type} (${name}) needs ${n} bytes, has ${b.length}`);
}

function addrPort(type: number, name: string): DprpOptionCodec<{ addr: string; port: number }> {
  return {
    type, name, skippable: false,
    encode: ({ addr, port }) => {
      const v = Buffer.alloc(6);
      writeIpv4(v, 0, addr, `${name} address`);
      v.writeUInt16BE(port, 4);
      return v;
    },
    decode: (b) => { fixed(b, name, type, 6); return { addr: readIpv4(b, 0), port: b.readUInt16BE(4) }; },
  };
}

export const SPEC_OPTION_CODECS: readonly DprpOptionCodec[] = [
  addrPort(OptionType.MOBILE_OLD, 'MOBILE_OLD'),
  addrPort(OptionType.MOBILE_NEW, 'MOBILE_NEW'),
  {
    type: OptionType.NATF_NAME, name: 'NATF_NAME', skippable: false,
    encode: (name: string) => Buffer.from(name, 'latin1'),
    decode: (b) => {
      const s = b.toString('latin1');
      if (!HOSTNAME.test(s)) throw new Error('NATF_NAME is not a host name');
      return s;
    },
  } as DprpOptionCodec<string>,
  {
    type: OptionType.NATF_LIP, name: 'NATF_LIP', skippable: false,
    encode: (addr: string) => { const v = Buffer.alloc(4); writeIpv4(v, 0, addr, 'NATF_LIP'); return v; },
    decode: (b) => { fixed(b, 'NATF_LIP', OptionType.NATF_LIP, 4); return readIpv4(b, 0); },
  } as DprpOptionCodec<string>,
  {
    type: OptionType.NATF_PORT, name: 'NATF_PORT', skippable: false,
    encode: (port: number) => { const v = Buffer.alloc(2); v.writeUInt16BE(port, 0); return v; },
    decode: (b) => { fixed(b, 'NATF_PORT', OptionType.NATF_PORT, 2); return b.readUInt16BE(0); },
  } as DprpOptionCodec<number>,
  {
    type: OptionType.PCCOM_CAPS, name: 'PCCOM_CAPS', skippable: true,
    encode: (caps: number) => Buffer.from([caps & 0xff]),
    decode: (b) => { fixed(b, 'PCCOM_CAPS', OptionType.PCCOM_CAPS, 1); return b[0]; },
  } as DprpOptionCodec<number>,
  {
    type: OptionType.FIRST, name: 'FIRST', skippable: true,
    encode: (mark: number) => { const v = Buffer.alloc(4); v.writeUInt32BE(mark >>> 0, 0); return v; },
    decode: (b) => { fixed(b, 'FIRST', OptionType.FIRST, 4); return b.readUInt32BE(0); },
  } as DprpOptionCodec<number>,
  {
    type: OptionType.WHY, name: 'WHY', skippable: true,
    encode: (why: number) => Buffer.from([why & 0xff]),
    decode: (b) => { fixed(b, 'WHY', OptionType.WHY, 1); return b[0]; },
  } as DprpOptionCodec<number>,
  {
    type: OptionType.PROTECTED, name: 'PROTECTED', skippable: true,
    encode: (addr: string) => { const v = Buffer.alloc(4); writeIpv4(v, 0, addr, 'PROTECTED'); return v; },
    decode: (b) => { fixed(b, 'PROTECTED', OptionType.PROTECTED, 4); return readIpv4(b, 0); },
  } as DprpOptionCodec<string>,
  {
    type: OptionType.NAT_SEEN, name: 'NAT_SEEN', skippable: true,
    encode: (addr: string) => { const v = Buffer.alloc(4); writeIpv4(v, 0, addr, 'NAT_SEEN'); return v; },
    decode: (b) => { fixed(b, 'NAT_SEEN', OptionType.NAT_SEEN, 4); return readIpv4(b, 0); },
  } as DprpOptionCodec<string>,
] as DprpOptionCodec[];

/** The codecs a GE knows without any part: what wire.ts uses by default. */
export const SPEC_OPTIONS = new OptionCodecs(SPEC_OPTION_CODECS);
