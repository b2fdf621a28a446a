/**
 * The `gsraEn` section of a remote user's laptop (EN) agent (part `gsra-en`,
 * docs/gsra.md "The EN part"):
 *
 *   gsraEn:
 *     routers: [192.0.2.1]       # GGRs: an A record naming one is an IN behind that GSRA router
 *     group: 1                   # the group the EN claims in AUTH (one of its own)
 *     pool: 198.19.128.0/17      # VINs; must not overlap natf.pool (checked)
 *     lifetimeS: 300             # a VIN lives this long after the last answer using it
 *     idleS: 300                 # an admitted flow's PIT/VAT entries go after this long idle
 *     userId / keyFile           # the user and key without a GMS (labs); default: the GMS delivery
 *     maxPending: 1024           # admissions under way at once (more: refused, counted)
 *     requireEncryption: true    # a router offering a plaintext leg (MAP_OK action PASS) is refused
 *     ftpPassive: true           # 227 replies from VIN:21 rewritten to (VIN,p1,p2) (docs/gsra.md "FTP passive mode")
 *     ftpResize: true            # a 227 with no room for the VIN grows, with a sequence delta (false: passed, no_room)
 *     behindNat: auto            # BIND first (home router): auto = the flow's source is a private address
 *     udpWireValid: true         # behind it, UDP on the leg in PCCOM's wire-valid form (per-flow keys; the router's MAP_OK salt)
 */
import { z } from 'zod';

const prefix = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 prefix a.b.c.d/n');

export const gsraEnConfigSchema = z.strictObject({
  routers: z.array(z.ipv4()).max(64).default([]),
  group: z.number().int().min(1).max(0xffffffff),
  pool: prefix.default('198.19.128.0/17'),
  lifetimeS: z.number().int().min(5).max(86400).default(300),
  idleS: z.number().int().min(5).max(86400).default(300),
  sweepMs: z.number().int().min(100).max(60_000).default(1000),
  maxPending: z.number().int().min(1).max(65536).default(1024),
  /** Refuse a flow whose router offers a plaintext Internet leg (MAP_OK action PASS). */
  requireEncryption: z.boolean().default(true),
  /** FTP passive mode: 227 replies from a VIN's port 21 get the VIN as their address (fast path FTP stage, the agent rewrites). */
  ftpPassive: z.boolean().default(true),
  /**
   * A 227 whose free text has no room for the VIN: rewritten with a different length, the connection's
   * sequence delta kept in gscip_ftp_seq (ftp-seq.ts). false: passed unmodified, counted no_room.
   */
  ftpResize: z.boolean().default(true),
  /**
   * The EN behind a home router it does not control (docs/gsra.md "Binding"): BIND from the flow's port s
   * before MAP, so the router learns GHR:m. auto (default): when the flow's source is not a global address
   * (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16).
   */
  behindNat: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /**
   * Behind a home NAT, UDP on the Internet leg in PCCOM's UDP wire-valid form under per-flow keys (salt from
   * the router's MAP_OK), so a home router whose conntrack verifies checksums translates it. false: the keyed
   * form (such a home router drops it as INVALID).
   */
  udpWireValid: z.boolean().default(true),
  userId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/).optional(),
  keyFile: z.string().min(1).optional(),
}).superRefine((c, ctx) => {
  const [base, len] = c.pool.split('/');
  const n = Number(len);
  const b = base.split('.').map(Number).reduce((a, x) => a * 256 + x, 0);
  if (n < 15 || n > 30) ctx.addIssue({ code: 'custom', path: ['pool'], message: 'length must be /15../30' });
  else if (b < 0xc6120000 || b >= 0xc6140000) ctx.addIssue({ code: 'custom', path: ['pool'], message: 'must be inside 198.18.0.0/15' });
  else if (b % 2 ** (32 - n) !== 0) ctx.addIssue({ code: 'custom', path: ['pool'], message: 'host bits set' });
  if ((c.userId === undefined) !== (c.keyFile === undefined)) ctx.addIssue({ code: 'custom', path: ['userId'], message: 'userId and keyFile go together' });
});

export type GsraEnConfig = z.infer<typeof gsraEnConfigSchema>;

/** Whether two a.b.c.d/n prefixes overlap. */
export function prefixesOverlap(a: string, b: string): boolean {
  const p = (s: string): [number, number] => {
    const [base, len] = s.split('/');
    return [base.split('.').map(Number).reduce((x, y) => x * 256 + y, 0), 2 ** (32 - Number(len))];
  };
  const [ab, as] = p(a); const [bb, bs] = p(b);
  return ab < bb + bs && bb < ab + as;
}

/** Not a global address: RFC 1918, shared (100.64/10, RFC 6598), link-local. An EN with such a source is behind a NAT. */
export function isPrivateIpv4(a: string): boolean {
  const [x, y] = a.split('.').map(Number);
  return x === 10 || (x === 172 && y >= 16 && y < 32) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y < 128) || (x === 169 && y === 254);
}
