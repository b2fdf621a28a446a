/**
 * Pure parsers for CLI arguments: each error names the argument. Tested in
 * test/unit/cli.test.ts.
 */
import { isIPv4 } from 'node:net';
import { KEY_BYTES } from '../maps/abi.js';
import { ACTIONS, DIRS, type DirName } from '../maps/vocabulary.js';
import type { Cid } from '../maps/codecs.js';
import { GscipError } from '../errors/catalogue.js';

export class UsageError extends GscipError {
  constructor(message: string) { super('GSCIP_E_USAGE', message); }
}

export function parseIPv4Arg(v: unknown, arg: string): string {
  const s = String(v ?? '');
  if (!isIPv4(s)) throw new UsageError(`${arg}: '${s}' is not an IPv4 address`);
  return s;
}

export function parsePortArg(v: unknown, arg: string): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${arg}: '${String(v)}' is not a port (0..65535)`);
  return n;
}

export function parseU32Arg(v: unknown, arg: string): number {
  const n = typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : Number(v);
  if (v === undefined || v === '' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UsageError(`${arg}: '${String(v)}' is not an integer 0..4294967295`);
  return n;
}

const PROTOS: Record<string, number> = { tcp: 6, udp: 17 };

export function parseProtoArg(v: unknown, arg = '--proto'): number {
  const s = String(v ?? '').toLowerCase();
  if (s in PROTOS) return PROTOS[s];
  throw new UsageError(`${arg}: '${String(v)}' must be tcp or udp`);
}

export function protoName(p: number): string {
  return p === 6 ? 'tcp' : p === 17 ? 'udp' : p === 1 ? 'icmp' : String(p);
}

/** The CLI's short spellings of the directions. */
const DIR_ALIASES: ReadonlyMap<string, DirName> = new Map([['in', 'ingress'], ['out', 'egress']]);

export function parseDirArg(v: unknown, arg = '--dir'): number {
  const s = String(v ?? '').toLowerCase();
  const name = DIR_ALIASES.get(s) ?? s;
  if (DIRS.is(name)) return DIRS.code(name);
  throw new UsageError(`${arg}: '${String(v)}' must be ${DIRS.names.join(' or ')}`);
}

export function parseActionArg(v: unknown, arg = '--action'): number {
  const s = String(v ?? '');
  if (s.toLowerCase() === 'none') throw new UsageError(`${arg}: 'none' is not a valid entry action`);
  try { return ACTIONS.parse(s, arg); } catch (e) { throw new UsageError((e as Error).message); }
}

export interface CidArgs { src?: unknown; dst?: unknown; sport?: unknown; dport?: unknown; proto?: unknown; dir?: unknown }

export function parseCidArgs(a: CidArgs): Cid {
  return {
    saddr: parseIPv4Arg(a.src, '--src'),
    daddr: parseIPv4Arg(a.dst, '--dst'),
    sport: parsePortArg(a.sport, '--sport'),
    dport: parsePortArg(a.dport, '--dport'),
    proto: parseProtoArg(a.proto),
    dir: parseDirArg(a.dir),
  };
}

/** A 32-byte key given as 64 hex digits (whitespace ignored) or as 32 raw bytes. */
export function parseKeyMaterial(raw: Buffer, source: string): Buffer {
  const text = raw.toString('latin1').replace(/\s+/g, '');
  if (/^[0-9a-fA-F]+$/.test(text)) {
    if (text.length !== KEY_BYTES * 2) throw new UsageError(`${source}: expected ${KEY_BYTES * 2} hex digits, got ${text.length}`);
    return Buffer.from(text, 'hex');
  }
  if (raw.length === KEY_BYTES) return Buffer.from(raw);
  throw new UsageError(`${source}: expected ${KEY_BYTES * 2} hex digits or ${KEY_BYTES} raw bytes`);
}

export function cidString(c: Cid): string {
  return `${protoName(c.proto)} ${c.saddr}:${c.sport} > ${c.daddr}:${c.dport}`;
}
