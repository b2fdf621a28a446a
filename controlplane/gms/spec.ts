/**
 * network.yaml: parse and validate the administrator's declarative file.
 * Every problem is reported with the path of the offending field
 * (`ges[3].mode`), and the file is rejected whole if there is any.
 */
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { Cron } from 'croner';
import { GscipError } from '../errors/catalogue.js';
import { parseRequiredEntry } from '../dprp/encryption-required.js';
import { CIPHERS, DEFAULT_CIPHER, DEFAULT_ROTATION, GE_MODES, GE_TYPES, type GeDef, type GroupDef, type NetworkState, type RotationPolicy } from './model.js';

export class SpecError extends GscipError {
  constructor(readonly problems: string[]) {
    super('GSCIP_E_NETWORK_SPEC', `invalid network file:\n  ${problems.join('\n  ')}`);
  }
}

const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_GROUP_ID = 0xffffffff; // group_id is a __u32 in the ABI; 0 means "none"

function validCron(s: string): boolean {
  const n = s.trim().split(/\s+/).length;
  if (n !== 5 && n !== 6) return false; // 6 = leading seconds field
  try { new Cron(s, { paused: true }); return true; } catch { return false; }
}
function validTz(tz: string): boolean {
  try { new Intl.DateTimeFormat('en', { timeZone: tz }); return true; } catch { return false; }
}

const rotationSchema = z.strictObject({
  schedule: z.string().refine(validCron, 'must be a cron expression (5 fields, or 6 with leading seconds), e.g. "0 3 * * *"').optional(),
  timezone: z.string().refine(validTz, 'must be an IANA time zone, e.g. "UTC" or "Asia/Tokyo"').optional(),
  graceSeconds: z.number().int().min(0).max(30 * 86400).optional(),
});

const groupSchema = z.strictObject({
  id: z.number().int().min(1).max(MAX_GROUP_ID),
  name: z.string().min(1).max(64).optional(),
  rotation: rotationSchema.optional(),
  cipher: z.enum(CIPHERS).optional(),
});

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A GNAT's ACT entry (model.ts ActEntry); cross-checks (only on a GNAT, groups its own, names unique) in crossCheck. */
const actSchema = z.strictObject({
  name: z.string().transform((s) => s.toLowerCase().replace(/\.$/, '')).refine((s) => DNS_NAME.test(s), 'must be a fully qualified DNS name, e.g. bob.example.net'),
  address: z.ipv4(),
  outsideAccess: z.enum(['allow', 'deny']),
  /** The host runs a GE itself: the GNAT relays negotiations inward (docs/natf.md). */
  ge: z.boolean().optional(),
  /** The host is a plain Term behind a GEN inside the GNAT's network: that GEN's private address (docs/natf.md "A GEN inside"). */
  via: z.ipv4().optional(),
  groups: z.array(z.number().int().min(1).max(MAX_GROUP_ID)).optional(),
  /** GSRA only: the IN's service ports admitted (absent: every port); another port only as an announced FTP data port (docs/gsra.md). */
  ports: z.array(z.number().int().min(1).max(65535)).min(1).max(64).optional(),
});

const geSchema = z.strictObject({
  userId: z.string().regex(USER_ID, 'must be 1-63 characters of A-Z a-z 0-9 . _ - starting with a letter or digit'),
  type: z.enum(GE_TYPES),
  mode: z.enum(GE_MODES),
  groups: z.array(z.number().int().min(1).max(MAX_GROUP_ID)).default([]),
  /** GNAT only: the private hosts behind it (NAT-f ACT). */
  act: z.array(actSchema).optional(),
  /**
   * GNAT: its global address (told to every GE: answers naming it are virtualised, NAT-f).
   * GSRA: its global address GGR (told to every GE as a GSRA router: answers naming it get a VIN, docs/gsra.md).
   */
  external: z.ipv4().optional(),
});

const fileSchema = z.strictObject({
    apiVersion: z.literal('gscip/v1'),
    kind: z.literal('Network'),
    metadata: z.strictObject({ name: z.string().optional(), description: z.string().optional() }).optional(),
    defaults: z.strictObject({ rotation: rotationSchema.optional(), cipher: z.enum(CIPHERS).optional() }).optional(),
    groups: z.array(groupSchema).default([]),
    ges: z.array(geSchema).default([]),
    /** Network-wide rules (model.ts NetworkPolicy). */
    policy: z.strictObject({ requireEncryption: z.array(z.string()).default([]) }).optional(),
  });

export type NetworkFile = z.infer<typeof fileSchema>;

/** `['ges', 3, 'mode']` -> `ges[3].mode` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(file)' : out;
}

/** Validate an already-parsed object (e.g. JSON over the admin API). */
export function validateNetwork(input: unknown): NetworkState {
  const r = fileSchema.safeParse(input);
  // Cross-references are checked on the raw input too, so one run reports every problem.
  const problems = [...(r.success ? [] : r.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`)), ...crossCheck(input)];
  if (!r.success || problems.length) throw new SpecError(problems);
  return normalize(r.data);
}

/**
 * An ACT entry's `via` (the GEN in front of a plain Term inside a GNAT's
 * network): only in a GNAT's ACT, never with `ge: true` (the host is then its
 * own end GE: there is no GEN to name), never the host's own address or the
 * GNAT's external one.
 */
function viaProblems(e: { address?: unknown; ge?: unknown; via?: unknown }, at: string, type: unknown, external: unknown): string[] {
  if (type !== 'GNAT') return [`${at}: only a GNAT's ACT names a GEN in front of a host (this GE is ${String(type)})`];
  if (e.ge === true) return [`${at}: a host that is its own GE (ge: true) has no GEN in front of it: give ge or via, not both`];
  if (e.via === e.address) return [`${at}: ${String(e.via)} is the host's own address; via names the GEN in front of it (a host that is a GE: ge: true)`];
  if (e.via === external) return [`${at}: ${String(e.via)} is the GNAT's external address; via names a GEN inside its network`];
  return [];
}

/** Duplicates and references between entries: group numbers used by GEs must be defined. */
function crossCheck(raw: unknown): string[] {
  const out: string[] = [];
  const f = raw as { groups?: unknown; ges?: unknown } | null;
  const groups = Array.isArray(f?.groups) ? (f!.groups as Array<{ id?: unknown }>) : [];
  const ges = Array.isArray(f?.ges) ? (f!.ges as Array<{ userId?: unknown; groups?: unknown }>) : [];
  const req = (f as { policy?: { requireEncryption?: unknown } } | null)?.policy?.requireEncryption;
  if (Array.isArray(req)) {
    req.forEach((v, i) => {
      if (typeof v !== 'string') return; // the schema names it
      try { parseRequiredEntry(v, `policy.requireEncryption[${i}]`); } catch (e) { out.push((e as Error).message); }
    });
  }
  const seenGroup = new Map<unknown, number>();
  groups.forEach((g, i) => {
    const id = g?.id;
    if (typeof id !== 'number') return;
    const prev = seenGroup.get(id);
    if (prev !== undefined) out.push(`groups[${i}].id: group ${id} already defined at groups[${prev}]`);
    else seenGroup.set(id, i);
  });
  const seenGe = new Map<unknown, number>();
  const actNames = new Map<string, string>(); // name -> where
  ges.forEach((ge, i) => {
    const g = ge as { type?: unknown; act?: unknown; groups?: unknown };
    if ((g as { external?: unknown }).external !== undefined && g.type !== 'GNAT' && g.type !== 'GSRA') out.push(`ges[${i}].external: only a GNAT or a GSRA router has an external address (this GE is ${String(g.type)})`);
    if (Array.isArray(g.act)) {
      // A GSRA router's ACT lists the internal servers (INs) behind it with their groups (docs/gsra.md).
      if (g.type !== 'GNAT' && g.type !== 'GSRA' && g.act.length) out.push(`ges[${i}].act: only a GNAT has an ACT (this GE is ${String(g.type)})`);
      const own = Array.isArray(g.groups) ? g.groups : [];
      const addrs = new Map<unknown, number>();
      (g.act as Array<{ name?: unknown; address?: unknown; groups?: unknown; ports?: unknown; ge?: unknown; via?: unknown }>).forEach((e, j) => {
        if (e?.ports !== undefined && g.type !== 'GSRA') out.push(`ges[${i}].act[${j}].ports: only a GSRA router's INs have service ports (this GE is ${String(g.type)})`);
        if (e?.via !== undefined) out.push(...viaProblems(e, `ges[${i}].act[${j}].via`, g.type, (g as { external?: unknown }).external));
        const name = typeof e?.name === 'string' ? e.name.toLowerCase().replace(/\.$/, '') : null;
        if (name) {
          const prev = actNames.get(name);
          if (prev) out.push(`ges[${i}].act[${j}].name: ${name} is already in the ACT at ${prev} (one name, one place in DDNS)`);
          else actNames.set(name, `ges[${i}].act[${j}]`);
        }
        if (typeof e?.address === 'string') {
          const prev = addrs.get(e.address);
          if (prev !== undefined) out.push(`ges[${i}].act[${j}].address: ${e.address} is already ges[${i}].act[${prev}]`);
          else addrs.set(e.address, j);
        }
        if (Array.isArray(e?.groups)) {
          (e.groups as unknown[]).forEach((gid, k) => {
            if (typeof gid === 'number' && !own.includes(gid)) {
              out.push(`ges[${i}].act[${j}].groups[${k}]: group ${gid} is not one of this GNAT's groups (it could not tell that group's members)`);
            }
          });
        }
      });
    }
  });
  ges.forEach((ge, i) => {
    if (typeof ge?.userId === 'string') {
      const prev = seenGe.get(ge.userId);
      if (prev !== undefined) out.push(`ges[${i}].userId: user ID "${ge.userId}" already used at ges[${prev}]`);
      else seenGe.set(ge.userId, i);
    }
    if (!Array.isArray(ge?.groups)) return;
    const seen = new Set<unknown>();
    (ge.groups as unknown[]).forEach((gid, j) => {
      if (typeof gid !== 'number') return;
      if (!seenGroup.has(gid)) out.push(`ges[${i}].groups[${j}]: group ${gid} is not defined under groups`);
      if (seen.has(gid)) out.push(`ges[${i}].groups[${j}]: group ${gid} listed twice`);
      seen.add(gid);
    });
  });
  return out;
}

/** Parse YAML text and validate it. */
export function parseNetworkYaml(text: string): NetworkState {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new SpecError(doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  return validateNetwork(doc.toJS());
}

function normalize(f: NetworkFile): NetworkState {
  const base: RotationPolicy = { ...DEFAULT_ROTATION, ...dropUndefined(f.defaults?.rotation ?? {}) };
  const cipher = f.defaults?.cipher ?? DEFAULT_CIPHER;
  const groups: GroupDef[] = f.groups
    .map((g) => ({ id: g.id, name: g.name ?? `group-${g.id}`, rotation: { ...base, ...dropUndefined(g.rotation ?? {}) }, cipher: g.cipher ?? cipher }))
    .sort((a, b) => a.id - b.id);
  const ges: GeDef[] = f.ges
    .map((ge): GeDef => {
      const groups = [...ge.groups].sort((a, b) => a - b);
      const def: GeDef = { userId: ge.userId, type: ge.type, mode: ge.mode, groups };
      if (ge.act?.length) {
        def.act = ge.act.map((e) => ({ name: e.name, address: e.address, outsideAccess: e.outsideAccess, groups: [...new Set(e.groups ?? groups)].sort((a, b) => a - b),
          ...(e.ports ? { ports: [...new Set(e.ports)].sort((a, b) => a - b) } : {}), ...(e.ge ? { ge: true } : {}), ...(e.via ? { via: e.via } : {}) }))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      }
      return def;
    })
    .sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  const requireEncryption = [...new Set((f.policy?.requireEncryption ?? []).map((v) => {
    const e = parseRequiredEntry(v, 'policy.requireEncryption');
    return e.kind === 'prefix' ? e.prefix : e.name;
  }))].sort();
  const externals = (type: string): string[] => [...new Set(f.ges.flatMap((ge) => (ge.external && ge.type === type ? [ge.external] : [])))].sort();
  const gnats = externals('GNAT');
  const gsraRouters = externals('GSRA');
  const gnatOwners: Record<string, string> = {};
  for (const ge of f.ges) if (ge.type === 'GNAT' && ge.external) gnatOwners[ge.userId] = ge.external;
  return { groups, ges, policy: { requireEncryption, ...(gnats.length ? { gnats, gnatOwners } : {}), ...(gsraRouters.length ? { gsraRouters } : {}) } };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
