/**
 * The agent's configuration: one schema with every default, in one place.
 * Sources, later wins: defaults < config file (JSON or YAML) < CLI flags.
 * Invalid input is rejected with a message naming the field path.
 */
import { IPV6_POLICY_BY_NAME, type Ipv6PolicyName } from '../maps/abi.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { gsraConfigSchema } from '../gsra/router-config.js';
import { gsraEnConfigSchema, prefixesOverlap } from '../gsra/en-config.js';
import { natConfigSchema } from '../natf/nat-config.js';
import { natfConfigSchema } from '../natf/natf-config.js';
import { parseRequiredEntry } from '../dprp/encryption-required.js';
import { GscipError } from '../errors/catalogue.js';
import { DIRS, MISS_ACTIONS, nameTuple, type MissActionName } from '../maps/vocabulary.js';

/** Repo root from dist/controlplane/config (compiled) or controlplane/config (sources). */
const ROOT = resolve(__dirname, __dirname.includes('/dist/') ? '../../..' : '../..');

export const DEFAULT_BPF_OBJECT = resolve(ROOT, 'build/bpf/gscip_tc.bpf.o');
export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/gscip';
export const DEFAULT_RUN_DIR = '/run/gscip';

const missAction = z.enum(nameTuple(MISS_ACTIONS));
export type { MissActionName };

/**
 * What an interface does with IPv6 (gscip_iface_cfg.ipv6_policy, bpf/lib/ipv6.h):
 * GSCIP speaks IPv4 only, so IPv6 is never negotiated or encrypted.
 *   pass     every IPv6 packet passes untouched
 *   drop     every IPv6 packet is dropped
 *   nd-only  neighbour discovery (ICMPv6 133..137, hop limit 255) and
 *            link-local scope traffic pass, everything else is dropped
 * Not given: nd-only on a CL element (closed on both address families); pass
 * on an OP element, and on one whose mode the agent does not know (no `ge`, or
 * a GMS it does not ask because it runs no handler), which is what every
 * earlier release did: an in-place upgrade of such an agent keeps its IPv6
 * behaviour, and `gscip doctor` warns that IPv6 passes on an element it cannot
 * call open (resolveIpv6Policy).
 */
const ipv6Policy = z.enum(Object.keys(IPV6_POLICY_BY_NAME) as [Ipv6PolicyName, ...Ipv6PolicyName[]]);
export type Ipv6PolicyConfig = z.infer<typeof ipv6Policy>;

/** The IPv6 policy of an interface: as configured, else from this GE's mode (see ipv6Policy). */
export function resolveIpv6Policy(configured: Ipv6PolicyConfig | undefined, mode: 'OP' | 'CL' | null): Ipv6PolicyConfig {
  if (configured) return configured;
  return mode === 'CL' ? 'nd-only' : 'pass';
}

const hostPort = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:9464')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0..65535');

const ifaceSchema = z.object({
  name: z.string().min(1).max(15).regex(/^[^/\s:]+$/, 'not a valid interface name'),
  miss: z.object({ ingress: missAction.default('punt'), egress: missAction.default('punt') }).strict().default({ ingress: 'punt', egress: 'punt' }),
  /** IPv6 policy; absent: from the GE's mode (resolveIpv6Policy). */
  ipv6: ipv6Policy.optional(),
}).strict();

export const agentConfigSchema = z.object({
  /** Names the pin directory and the lock: several instances may run on one host, on different interfaces. */
  instance: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - only (1..32)').default('default'),
  bpfObject: z.string().min(1).default(DEFAULT_BPF_OBJECT),
  /** Maps are pinned under <pinRoot>/<instance>/ (must be on bpffs). */
  pinRoot: z.string().startsWith('/', 'must be an absolute path').default(DEFAULT_PIN_ROOT),
  /** Lock and state files. */
  runDir: z.string().startsWith('/', 'must be an absolute path').default(DEFAULT_RUN_DIR),
  interfaces: z.array(ifaceSchema).min(1, 'at least one interface to protect').refine(
    (l) => new Set(l.map((i) => i.name)).size === l.length, 'an interface is listed twice'),
  /** Punt handlers, in order (built in: install-pass). No handler: punted packets wait in the stash and expire. */
  handlers: z.array(z.string().min(1)).default([]),
  /** HOST:PORT for Prometheus /metrics, or null for none. */
  metrics: hostPort.nullable().default('127.0.0.1:9464'),
  stash: z.object({
    perFlowPackets: z.number().int().min(1).max(1024).default(8),
    totalPackets: z.number().int().min(1).max(1_000_000).default(4096),
    ttlMs: z.number().int().min(10).max(600_000).default(3000),
  }).strict().default({ perFlowPackets: 8, totalPackets: 4096, ttlMs: 3000 }),
  punt: z.object({
    /** Per CPU token bucket in the fast path (0 = the datapath default). */
    ratePps: z.number().int().min(0).max(10_000_000).default(0),
    burst: z.number().int().min(0).max(10_000_000).default(0),
  }).strict().default({ ratePps: 0, burst: 0 }),
  maxEntries: z.object({
    pit: z.number().int().min(1).max(1 << 24).optional(),
    xlat: z.number().int().min(1).max(1 << 24).optional(),
  }).strict().default({}),
  /**
   * Datapath stages this GE loads (bpf/lib/stages.h): a stage off is not in
   * the loaded programs at all (the verifier removes it). Default: every stage,
   * as before stages could be switched. xlat off: XLAT entries are ignored
   * (packets pass untranslated), for a GES that never translates; pccom off:
   * PIT encrypt/decrypt entries drop as `unsupported` (never in the clear).
   * A change takes effect when the agent (re)loads the programs.
   */
  stages: z.object({
    xlat: z.boolean().default(true),
    pccom: z.boolean().default(true),
    /** The GNAT's NAT (bpf/lib/nat.h); off by default, turned on by a `nat` section. */
    nat: z.boolean().default(false),
    /** NAT-f's DNS interception (bpf/lib/dns.h); off by default, turned on by a `natf` section. */
    dns: z.boolean().default(false),
    /** GSRA's FTP passive mode (bpf/lib/ftp.h); off by default, turned on by a `gsra` section or `gsraEn.ftpPassive`. */
    ftp: z.boolean().default(false),
  }).strict().default({ xlat: true, pccom: true, nat: false, dns: false, ftp: false }),
  /** Remove the TC filters when the agent exits (default: keep them, the fast path keeps working). */
  detachOnExit: z.boolean().default(false),
  /**
   * This GE's type and mode for protocol handlers (DPRP). With `gms` the GMS's
   * GE info is used and this, if given, must agree with it (agent/ge-identity.ts).
   */
  ge: z.object({
    type: z.enum(['GES', 'GEN', 'GEA', 'GNAT', 'GSRA']),
    mode: z.enum(['OP', 'CL']),
  }).strict().nullable().default(null),
  /**
   * Mobile PPC (handler mobile-ppc, docs/mobility.md). `ddns`: after a move the
   * GE replaces its own name's A record (RFC 2136 + TSIG) on `server`; the key
   * file holds the base64 secret of `keyName`, which the server's update-policy
   * lets change only `name`. `rendezvous`: when both ends of a flow move at
   * once, where a peer is now, from the A records of `names` (the peers' names,
   * which their own DDNS keeps current) on `server`. `subnetNat`: a GEN
   * whose subnet moves with it source-NATs `inside` to its outside address
   * (mobility/subnet-nat.ts), re-pointed on each move.
   */
  mobility: z.object({
    ddns: z.object({
      server: z.ipv4(),
      port: z.number().int().min(1).max(65535).default(53),
      zone: z.string().min(1).max(253),
      name: z.string().min(1).max(253),
      ttl: z.number().int().min(0).max(86_400).default(30),
      keyName: z.string().min(1).max(253),
      keyFile: z.string().min(1),
    }).strict().nullable().default(null),
    rendezvous: z.object({
      server: z.ipv4(),
      port: z.number().int().min(1).max(65535).default(53),
      names: z.array(z.string().min(1).max(253)).min(1).max(1024),
      refreshS: z.number().int().min(1).max(86_400).default(60),
    }).strict().nullable().default(null),
    subnetNat: z.object({
      inside: z.array(z.cidrv4()).min(1).max(64),
    }).strict().nullable().default(null),
  }).strict().default({ ddns: null, rendezvous: null, subnetNat: null }),
  /**
   * Destinations (IPv4 prefixes or DNS names) to which this GE refuses to carry
   * a flow in plaintext (strict mode, dprp/encryption-required.ts), on top of
   * the network definition's `policy.requireEncryption` from the GMS.
   */
  requireEncryption: z.array(z.string()).default([]).superRefine((l, ctx) => {
    l.forEach((v, i) => {
      try { parseRequiredEntry(v, `requireEncryption[${i}]`); } catch (e) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: (e as Error).message.replace(/^requireEncryption\[\d+\]: /, '') });
      }
    });
  }),
  /** GMS client: agent data dir from `gscip agent enroll`; keys are installed into gscip_keys. */
  gms: z.object({ dataDir: z.string().min(1) }).strict().nullable().default(null),
  /**
   * The GNAT's outbound NAPT (part `nat`, docs/natf.md): inside hosts' sources
   * become `external` on the protected (outside) interface. Loads the NAT
   * stage; needs handler `nat`, which expires idle sessions.
   */
  nat: natConfigSchema.nullable().default(null),
  /**
   * NAT-f's initiator side (part `natf`, docs/natf.md): DNS answers naming a
   * GNAT get a virtual address (NRT), a flow to it is negotiated with the
   * GNAT by name and translated (VAT). Loads the DNS stage; needs handlers
   * `natf` and `dprp`.
   */
  natf: natfConfigSchema.nullable().default(null),
  /** A GSRA router's outside instance (docs/gsra.md); needs handler gsra-router (and nat). */
  gsra: gsraConfigSchema.nullable().default(null),
  /** A GSRA remote user's laptop (EN, docs/gsra.md "The EN part"); needs handler gsra-en (and natf, dprp). */
  gsraEn: gsraEnConfigSchema.nullable().default(null),
}).strict().superRefine((c, ctx) => {
  if (c.natf && !(c.handlers.includes('natf') && c.handlers.includes('dprp'))) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['natf'], message: 'needs the natf and dprp parts (add handlers natf, dprp / --handler natf --handler dprp)' });
  }
  if (c.nat && !c.handlers.includes('nat')) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['nat'], message: 'needs the nat part, which expires its sessions (add handler nat / --handler nat)' });
  }
  if (c.nat?.follow && c.gsra) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['nat', 'follow'], message: 'a GSRA router\'s NAT address is gsra.ggr, which it does not follow: remove nat.follow' });
  }
  if (c.gsra && !c.handlers.includes('gsra-router')) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['gsra'], message: 'needs the gsra-router part (add handler gsra-router / --handler gsra-router)' });
  }
  if (c.gsraEn && !c.handlers.includes('gsra-en')) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['gsraEn'], message: 'needs the gsra-en part (add handler gsra-en / --handler gsra-en)' });
  }
  if (c.gsraEn && c.natf && prefixesOverlap(c.gsraEn.pool, c.natf.pool)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['gsraEn', 'pool'], message: `overlaps natf.pool ${c.natf.pool}: give each its own part of 198.18.0.0/15 (e.g. natf.pool 198.18.0.0/16)` });
  }
}).transform((c) => (c.nat ? { ...c, stages: { ...c.stages, nat: true } } : c))
  .transform((c) => (c.natf ? { ...c, stages: { ...c.stages, dns: true } } : c))
  .transform((c) => ((c.gsra && c.gsra.ftpPassive) || (c.gsraEn && c.gsraEn.ftpPassive) ? { ...c, stages: { ...c.stages, ftp: true } } : c));

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

export class ConfigError extends GscipError {
  constructor(message: string, readonly problems: string[], options?: { cause?: unknown }) {
    super('GSCIP_E_CONFIG', message, options);
  }
}

function pathOf(p: ReadonlyArray<PropertyKey>): string {
  return p.map((x, i) => (typeof x === 'number' ? `[${x}]` : `${i ? '.' : ''}${String(x)}`)).join('') || '(root)';
}

/** Validate; throws ConfigError whose message names each bad field. */
export function parseAgentConfig(input: unknown, source = 'config'): AgentConfig {
  const r = agentConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${pathOf(i.path)}: ${i.message}`);
  throw new ConfigError(`${source}: invalid: ${problems.join('; ')}`, problems);
}

/** Read a config file (.json, .yaml or .yml) as unvalidated input. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new ConfigError(`config file ${path}: ${(e as Error).message}`, []); }
  let v: unknown;
  try { v = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text); } catch (e) {
    throw new ConfigError(`config file ${path}: not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(e as Error).message}`, []);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`config file ${path}: expected a mapping at the top level`, []);
  return v as Record<string, unknown>;
}

/**
 * Parse `--miss` flags into per-interface settings:
 *   ACTION              every interface, both directions
 *   IFACE:ACTION        one interface, both directions
 *   IFACE:DIR:ACTION    one interface, one direction (DIR = ingress | egress)
 */
export function applyMissFlags(ifaces: string[], flags: string[]): Array<{ name: string; miss: { ingress: MissActionName; egress: MissActionName } }> {
  const out = ifaces.map((name) => ({ name, miss: { ingress: 'punt' as MissActionName, egress: 'punt' as MissActionName } }));
  const act = (s: string, flag: string): MissActionName => {
    const r = missAction.safeParse(s);
    if (!r.success) throw new ConfigError(`--miss ${flag}: action must be punt, pass or drop (got '${s}')`, []);
    return r.data;
  };
  for (const f of flags) {
    const parts = f.split(':');
    if (parts.length === 1) { const a = act(parts[0], f); for (const i of out) i.miss = { ingress: a, egress: a }; continue; }
    const target = out.find((i) => i.name === parts[0]);
    if (!target) throw new ConfigError(`--miss ${f}: interface '${parts[0]}' is not one of --iface (${ifaces.join(', ')})`, []);
    if (parts.length === 2) { const a = act(parts[1], f); target.miss = { ingress: a, egress: a }; continue; }
    if (parts.length === 3 && DIRS.is(parts[1])) { target.miss[parts[1]] = act(parts[2], f); continue; }
    throw new ConfigError(`--miss ${f}: expected ACTION, IFACE:ACTION or IFACE:ingress|egress:ACTION`, []);
  }
  return out;
}

/**
 * Apply `--ipv6` flags to the interface list (in place, returned):
 *   POLICY         every interface
 *   IFACE:POLICY   one interface
 * POLICY = pass | drop | nd-only.
 */
export function applyIpv6Flags<T extends { name: string; ipv6?: Ipv6PolicyConfig }>(ifaces: T[], flags: string[]): T[] {
  const pol = (s: string, flag: string): Ipv6PolicyConfig => {
    const r = ipv6Policy.safeParse(s);
    if (!r.success) throw new ConfigError(`--ipv6 ${flag}: policy must be pass, drop or nd-only (got '${s}')`, []);
    return r.data;
  };
  for (const f of flags) {
    const i = f.lastIndexOf(':');
    if (i < 0) { const p = pol(f, f); for (const x of ifaces) x.ipv6 = p; continue; }
    const name = f.slice(0, i);
    const target = ifaces.find((x) => x.name === name);
    if (!target) throw new ConfigError(`--ipv6 ${f}: interface '${name}' is not one of the interfaces (${ifaces.map((x) => x.name).join(', ')})`, []);
    target.ipv6 = pol(f.slice(i + 1), f);
  }
  return ifaces;
}

/**
 * Parse `--stages LIST` (comma list of stage names, or `none`) into the
 * `stages` config: listed stages on, every other one off.
 */
export function applyStagesFlag(flag: string): { xlat: boolean; pccom: boolean; nat?: boolean; dns?: boolean; ftp?: boolean } {
  const known = ['xlat', 'pccom', 'nat', 'dns', 'ftp'] as const;
  const names = flag.trim() === 'none' ? [] : flag.split(',').map((x) => x.trim()).filter((x) => x.length);
  const bad = names.filter((n) => !(known as readonly string[]).includes(n));
  if (bad.length) throw new ConfigError(`--stages ${flag}: unknown stage ${bad.join(', ')} (known: ${known.join(', ')}, or none)`, []);
  if (!names.length && flag.trim() !== 'none') throw new ConfigError(`--stages: expected a comma list of ${known.join(', ')}, or none`, []);
  return { xlat: names.includes('xlat'), pccom: names.includes('pccom'), ...(names.includes('nat') ? { nat: true } : {}), ...(names.includes('dns') ? { dns: true } : {}), ...(names.includes('ftp') ? { ftp: true } : {}) };
}
