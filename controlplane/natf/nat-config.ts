/**
 * The GNAT's NAT configuration (agent config `nat`, docs/natf.md): the
 * schema, and its translation into struct gscip_nat_cfg (gscip_nat_cfg,
 * index 0). Pure: no maps, no I/O.
 */
import { z } from 'zod';
import { NAT_MAX_INSIDE } from '../maps/abi.js';
import type { NatCfg, NatPrefix } from '../maps/codecs.js';
import { parseDeliveredAct } from './act.js';

function ipToInt(a: string): number {
  return a.split('.').reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

/** "100.64.1.0/24" -> {addr, mask}; throws a message naming the problem. */
export function parseInsidePrefix(text: string): NatPrefix {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text.trim());
  if (!m || m[1].split('.').some((p) => Number(p) > 255)) throw new RangeError(`'${text}' is not an IPv4 prefix (ADDR/LEN)`);
  const len = Number(m[2]);
  if (len < 1 || len > 32) throw new RangeError(`'${text}': prefix length must be 1..32 (a /0 would translate everything)`);
  const mask = len === 32 ? 0xffffffff : (~((1 << (32 - len)) - 1)) >>> 0;
  const addr = ipToInt(m[1]);
  if ((addr & mask) >>> 0 !== addr) throw new RangeError(`'${text}': host bits are set (did you mean ${intToIp((addr & mask) >>> 0)}/${len}?)`);
  return { addr: m[1], mask: intToIp(mask) };
}

export function prefixContains(p: NatPrefix, a: string): boolean {
  return ((ipToInt(a) & ipToInt(p.mask)) >>> 0) === ipToInt(p.addr);
}

/**
 * RFC 4787 REQ-5 (UDP: at least 2 min, 5 min recommended) and RFC 6146 /
 * RFC 5382 (TCP established at least 2 h 4 min; transitory, i.e. a SYN not
 * yet answered, both FINs or an RST, 4 min).
 */
export const NAT_TIMEOUT_DEFAULTS = { udpS: 300, tcpEstablishedS: 7440, tcpTransitoryS: 240 } as const;

export const natConfigSchema = z.object({
  /** The GNAT's global address: the source inside hosts get (with `follow`: the address it starts with). */
  external: z.ipv4(),
  /**
   * Follow the outside interface's address (the agent's first interface): when
   * `external` leaves it and another global address comes (a DHCP renewal to
   * another address, an operator's `ip addr` change), the agent takes that one:
   * gscip_nat_cfg is rewritten, the sessions on the old address are flushed and
   * the ACT's names are published again with the new one (natf/external-follow.ts).
   * Off by default: the address stays what `external` says.
   */
  follow: z.boolean().default(false),
  /** Inside prefixes whose sources are translated (at most NAT_MAX_INSIDE). */
  inside: z.array(z.string()).min(1, 'at least one inside prefix').max(NAT_MAX_INSIDE, `at most ${NAT_MAX_INSIDE} inside prefixes`)
    .superRefine((l, ctx) => l.forEach((v, i) => {
      try { parseInsidePrefix(v); } catch (e) { ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: (e as Error).message }); }
    })),
  /**
   * External ports handed out, inclusive. Keep it clear of the GNAT's own
   * services and of net.ipv4.ip_local_port_range (the GNAT's own outgoing
   * connections; the agent warns on an overlap): a claimed port's inbound
   * traffic belongs to its session.
   */
  ports: z.object({
    first: z.number().int().min(1024).max(65535).default(20000),
    last: z.number().int().min(1024).max(65535).default(32767),
  }).strict().default({ first: 20000, last: 32767 }).refine((p) => p.first <= p.last, 'first must be <= last'),
  /** gscip_nat max_entries: sessions at once; a full table refuses new ones (counted nat_table_full). */
  maxSessions: z.number().int().min(1).max(1 << 22).default(65536),
  timeouts: z.object({
    udpS: z.number().int().min(120, 'RFC 4787 REQ-5: at least 120 s').max(86_400).default(NAT_TIMEOUT_DEFAULTS.udpS),
    tcpEstablishedS: z.number().int().min(7440, 'RFC 5382 REQ-5: at least 7440 s').max(7 * 86_400).default(NAT_TIMEOUT_DEFAULTS.tcpEstablishedS),
    tcpTransitoryS: z.number().int().min(240, 'RFC 5382 REQ-5: at least 240 s').max(86_400).default(NAT_TIMEOUT_DEFAULTS.tcpTransitoryS),
  }).strict().default({ ...NAT_TIMEOUT_DEFAULTS }),
  /** How often the agent expires idle sessions (and checks the ACT for names to publish). */
  sweepMs: z.number().int().min(100).max(600_000).default(5000),
  /**
   * DDNS (RFC 2136 + TSIG) for the ACT's names: each name outside access is
   * allowed to gets an A record with `external` on `server`; the key file
   * holds the base64 secret of `keyName`, which the server's update-policy
   * lets change those names. The ACT comes from the GMS (`gms.dataDir`).
   */
  ddns: z.object({
    server: z.ipv4(),
    port: z.number().int().min(1).max(65535).default(53),
    zone: z.string().min(1).max(253),
    ttl: z.number().int().min(0).max(86_400).default(30),
    keyName: z.string().min(1).max(253),
    keyFile: z.string().min(1),
  }).strict().nullable().default(null),
  /**
   * The ACT of a GNAT run without a GMS (same entries as the network file's
   * `act`, groups required). A GMS delivery's ACT, when there is one, is used
   * instead: this is the fallback, not a second source to merge.
   */
  act: z.array(z.unknown()).max(4096).default([]).superRefine((l, ctx) => {
    try { parseDeliveredAct(l); } catch (e) { ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message.replace(/^delivered act/, 'act') }); }
  }),
}).strict().superRefine((n, ctx) => {
  for (const p of n.inside) {
    let pre: NatPrefix;
    try { pre = parseInsidePrefix(p); } catch { continue; }
    if (prefixContains(pre, n.external)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['external'], message: `${n.external} is inside ${p}: the external address must be outside` });
  }
});

export type NatConfig = z.infer<typeof natConfigSchema>;
export type NatTimeouts = NatConfig['timeouts'];

/** The gscip_nat_cfg value for this config (unused prefix slots are 0.0.0.0/0.0.0.0). */
export function natCfgOf(n: NatConfig): NatCfg {
  const inside = n.inside.map(parseInsidePrefix);
  while (inside.length < NAT_MAX_INSIDE) inside.push({ addr: '0.0.0.0', mask: '0.0.0.0' });
  return { ext_addr: n.external, port_lo: n.ports.first, port_hi: n.ports.last, inside };
}

/** Ranges [a0,a1] and [b0,b1] overlap: for the ip_local_port_range warning. */
export function portRangesOverlap(a: { first: number; last: number }, b: { first: number; last: number }): boolean {
  return a.first <= b.last && b.first <= a.last;
}
