/**
 * NAT-f's initiator configuration (agent config `natf`, docs/natf.md): the
 * GNAT addresses this GE virtualises on top of those the GMS tells it, the
 * virtual pool and how long a virtual address lives. Pure.
 */
import { z } from 'zod';
import { parseInsidePrefix, prefixContains } from './nat-config.js';

export const natfConfigSchema = z.object({
  /** GNAT global addresses known without the GMS (the GMS's GE info adds the network's GNATs). */
  gnats: z.array(z.ipv4()).max(1024).default([]),
  /** Where virtual addresses come from: inside 198.18.0.0/15 (RFC 2544's benchmarking block). */
  pool: z.string().default('198.18.0.0/15'),
  /** An NRT entry (name, GNAT, virtual address) lives this long after the last answer that used it; answers' TTLs are capped to it. */
  lifetimeS: z.number().int().min(10).max(86_400).default(300),
  /** At most this many virtual addresses at once (default: the pool's size). */
  maxVirtual: z.number().int().min(1).max(131_072).optional(),
  /** Milliseconds between sweeps of expired NRT entries and idle VAT flows. */
  sweepMs: z.number().int().min(100).max(60_000).default(1000),
  /** A flow the GNAT refused is answered at once (ICMP unreachable) this long without asking it again; 0: every packet asks (refusal-hold.ts). */
  refusalHoldMs: z.number().int().min(0).max(60_000).default(2000),
}).strict().superRefine((c, ctx) => {
  let p;
  try { p = parseInsidePrefix(c.pool); } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['pool'], message: (e as Error).message });
    return;
  }
  const len = Number(c.pool.split('/')[1]);
  const vbase = { addr: '198.18.0.0', mask: '255.254.0.0' };
  if (len < 15 || !prefixContains(vbase, p.addr)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['pool'], message: `'${c.pool}' is not inside 198.18.0.0/15 (virtual addresses come from there only)` });
  }
  if (len > 30) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['pool'], message: `'${c.pool}' is too small (at most /30)` });
});

export type NatfConfig = z.infer<typeof natfConfigSchema>;

/** The pool as Nrt wants it. */
export function poolOf(cfg: NatfConfig): { base: string; length: number } {
  const [base, len] = cfg.pool.split('/');
  return { base, length: Number(len) };
}
