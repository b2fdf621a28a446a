/**
 * Where each punt goes, from the parts' claims:
 *  - a PIT miss (or a truncated miss) goes through the chain of the parts that
 *    take that reason, lowest missOrder first (ties: configured order); a part
 *    whose onMiss returns 'taken' ends the chain for that packet;
 *  - a control message goes to the one part claiming its ICMP code; one whose
 *    code nobody claims (or whose frame does not parse) goes to the part that
 *    claims otherControl and to every part taking 'control' without claiming a
 *    code (plain handlers: they saw every control message before parts existed);
 *  - a re-key signal (PCCOM's per-flow key asks for a new one) goes to every
 *    part with an onRekey (DPRP, which negotiated the key);
 *  - a DNS answer / an FTP 227 reply goes to the first part with onDns /
 *    onFtpReply (it re-injects it); a copy of an FTP reply to every part with
 *    onFtpCopy.
 */
import type { PuntHandler } from './handler.js';
import type { PartDeclaration } from './claims.js';
import { MISS_ORDER } from './part.js';

export interface PuntRoute {
  readonly miss: readonly PuntHandler[];
  readonly truncated: readonly PuntHandler[];
  readonly controlByCode: ReadonlyMap<number, PuntHandler>;
  readonly otherControl: readonly PuntHandler[];
  readonly rekey: readonly PuntHandler[];
  /** Parts taking DNS answers (NAT-f's DNS stage); the first one rewrites. */
  readonly dns: readonly PuntHandler[];
  /** Parts taking FTP 227 replies (GSRA's FTP stage, ingress); the first one rewrites. */
  readonly ftpReply: readonly PuntHandler[];
  /** Parts taking copies of FTP 227/229 replies (GSRA's FTP stage, egress): every one. */
  readonly ftpCopy: readonly PuntHandler[];
}

export interface RoutedPart {
  readonly declaration: PartDeclaration;
  readonly handler: PuntHandler;
}

function chain(parts: readonly RoutedPart[], reason: 'pit_miss' | 'truncated'): PuntHandler[] {
  return parts
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => p.handler.onMiss && (p.declaration.claims.puntReasons ?? []).includes(reason))
    .sort((a, b) => (a.p.declaration.missOrder ?? MISS_ORDER.NEGOTIATE) - (b.p.declaration.missOrder ?? MISS_ORDER.NEGOTIATE) || a.i - b.i)
    .map(({ p }) => p.handler);
}

export function buildRoute(parts: readonly RoutedPart[]): PuntRoute {
  const controlByCode = new Map<number, PuntHandler>();
  const otherControl: PuntHandler[] = [];
  for (const p of parts) {
    const c = p.declaration.claims;
    if (!p.handler.onControl) continue;
    for (const code of c.icmpCodes ?? []) controlByCode.set(code, p.handler);
    const takesControl = (c.puntReasons ?? []).includes('control');
    if (c.otherControl || (takesControl && !(c.icmpCodes ?? []).length)) otherControl.push(p.handler);
  }
  return { miss: chain(parts, 'pit_miss'), truncated: chain(parts, 'truncated'), controlByCode, otherControl, rekey: parts.filter((p) => p.handler.onRekey).map((p) => p.handler), dns: parts.filter((p) => p.handler.onDns).map((p) => p.handler),
    ftpReply: parts.filter((p) => p.handler.onFtpReply).map((p) => p.handler), ftpCopy: parts.filter((p) => p.handler.onFtpCopy).map((p) => p.handler) };
}

/** A plain handler with no descriptor takes every punt reason and claims nothing exclusive. */
export function plainDeclaration(h: PuntHandler): PartDeclaration {
  return { name: h.name, summary: 'plain punt handler (no descriptor)', claims: { puntReasons: ['pit_miss', 'truncated', 'control'] } };
}

/** The route of plain handlers (everything to everyone, in order): PuntDispatcher's default. */
export function plainRoute(handlers: readonly PuntHandler[]): PuntRoute {
  return buildRoute(handlers.map((h) => ({ declaration: plainDeclaration(h), handler: h })));
}
