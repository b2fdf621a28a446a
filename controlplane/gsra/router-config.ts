/**
 * The `gsra` section of a GSRA router's agent config (the outside instance;
 * docs/gsra.md "Running a router"):
 *
 *   gsra:
 *     ggr: 192.0.2.1                 # the router's global address (its NAT external, on this instance)
 *     pgr: 100.64.1.1                # its private address (the inside instance's NAT external)
 *     insidePinDir: /sys/fs/bpf/gscip/gsra-in   # the inside instance's pinned maps
 *     ports: { first: 40000, last: 40999 }      # t; keep clear of nat.ports and local ports
 *     maxEntries: 8192
 *     leaseS: 10
 *     idleS: 300
 *     statusFile: /run/gscip/gsra-out.gsra.json   # for `gscip gsra status`
 *     servers: [...]                 # INs {name, address, groups, outsideAccess}; default: the router's ACT from the GMS
 *     users: [{ userId, groups, keyFile }]     # static users (labs, tests); default: remoteUsers from the GMS
 *     legEncryption: pccom           # the Internet leg under the flow's group key (default); none: plaintext (a scripted EN, labs)
 *     ftpPassive: true               # copy INs' FTP 227/229 replies (fast path) to admit only announced data ports
 *     ftpAnnounceS: 60               # an announced data port stays admissible this long
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const serverSchema = z.strictObject({
  name: z.string().min(1).max(253).transform((s) => s.toLowerCase().replace(/\.$/, '')),
  address: z.ipv4(),
  groups: z.array(z.number().int().min(1).max(0xffffffff)).min(1),
  outsideAccess: z.enum(['allow', 'deny']).default('allow'),
  /** The IN's service ports admitted (default: every port). Any other port only as an FTP data port its control connection announced (docs/gsra.md "FTP passive mode"). */
  ports: z.array(z.number().int().min(1).max(65535)).min(1).max(64).optional(),
});
const userSchema = z.strictObject({
  userId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/),
  groups: z.array(z.number().int().min(1).max(0xffffffff)).min(1),
  keyFile: z.string().min(1),
});

export const gsraConfigSchema = z.strictObject({
  ggr: z.ipv4(),
  pgr: z.ipv4(),
  insidePinDir: z.string().min(1),
  ports: z.strictObject({ first: z.number().int().min(1024).max(65535), last: z.number().int().min(1024).max(65535) }).default({ first: 40000, last: 40999 }),
  maxEntries: z.number().int().min(1).max(1 << 20).default(8192),
  leaseS: z.number().int().min(1).max(3600).default(10),
  idleS: z.number().int().min(10).max(86400).default(300),
  tickMs: z.number().int().min(100).max(60_000).default(500),
  /** Where the part writes its state every tick, for `gscip gsra status` (0600, atomic). */
  statusFile: z.string().min(1).optional(),
  servers: z.array(serverSchema).optional(),
  users: z.array(userSchema).optional(),
  legEncryption: z.enum(['pccom', 'none']).default('pccom'),
  /** FTP passive mode: the router copies the INs' 227/229 replies (fast path FTP stage) to learn announced data ports. */
  ftpPassive: z.boolean().default(true),
  /** How long an announced data port stays admissible. */
  ftpAnnounceS: z.number().int().min(1).max(3600).default(60),
}).superRefine((c, ctx) => {
  if (c.ports.first > c.ports.last) ctx.addIssue({ code: 'custom', path: ['ports'], message: 'first must be <= last' });
});

export type GsraConfig = z.infer<typeof gsraConfigSchema>;

/** A static user's key: 32 bytes, base64 or 64 hex digits in the file. */
export function readUserKey(path: string): Buffer {
  const t = readFileSync(path, 'utf8').trim();
  const k = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (k.length !== 32) throw new Error(`gsra.users keyFile ${path}: not a 32-byte key (base64 or 64 hex digits)`);
  return k;
}
