/**
 * Checks a set of part descriptors before anything starts: every exclusive
 * claim has one owner, every dependency is loaded, every descriptor agrees with
 * itself. Each refusal names both parts (the claimer and the owner, or the part
 * and what it lacks). Pure.
 */
import { OPTION_SKIPPABLE_FROM } from './dprp-extension.js';
import { REASON__END, REASON_PART_SIZE } from '../maps/abi.js';
import { PART_ERROR_CODES, PartError } from './errors.js';
import type { PartDescriptor } from './part.js';

export type PartDeclaration = Omit<PartDescriptor, 'create'>;

/** One exclusive thing a part can claim, as compared between parts. */
interface Claim { what: string; key: string }

function exclusiveClaims(p: PartDeclaration): Claim[] {
  const c = p.claims;
  const out: Claim[] = [];
  for (const code of c.icmpCodes ?? []) out.push({ what: `ICMP control code ${code}`, key: `icmp:${code}` });
  if (c.otherControl) out.push({ what: 'the control messages no part claims', key: 'icmp:other' });
  for (const k of c.xlatKinds ?? []) out.push({ what: `XLAT kind ${k}`, key: `xlat:${k}` });
  for (const o of c.dprpOptions ?? []) out.push({ what: `DPRP option type ${o.type} (${o.name})`, key: `opt:${o.type}` });
  if (c.configKey) out.push({ what: `config key '${c.configKey}'`, key: `config:${c.configKey}` });
  if (c.metricsPrefix) out.push({ what: `metrics prefix '${c.metricsPrefix}'`, key: `metrics:${c.metricsPrefix}` });
  for (const cmd of c.cliCommands ?? []) out.push({ what: `CLI subcommand '${cmd}'`, key: `cli:${cmd}` });
  return out;
}

function checkSelf(p: PartDeclaration): void {
  const bad = (why: string): never => { throw new PartError(PART_ERROR_CODES.BAD_DESCRIPTOR, `part '${p.name}': ${why}`); };
  for (const code of p.claims.icmpCodes ?? []) if (!Number.isInteger(code) || code < 0 || code > 255) bad(`ICMP code ${code} is not 0..255`);
  for (const o of p.claims.dprpOptions ?? []) {
    if (!Number.isInteger(o.type) || o.type < 1 || o.type > 255) bad(`DPRP option ${o.name}: type ${o.type} is not 1..255`);
    if (o.skippable !== (o.type >= OPTION_SKIPPABLE_FROM)) {
      bad(`DPRP option ${o.name} (type ${o.type}) is declared ${o.skippable ? '' : 'not '}skippable, but types ${o.skippable ? '>=' : '<'} ${OPTION_SKIPPABLE_FROM} are the ${o.skippable ? 'skippable' : 'critical'} ones`);
    }
  }
  const r = p.claims.counterRange;
  if (r && (!Number.isInteger(r.first) || !Number.isInteger(r.last) || r.first < 0 || r.last < r.first)) bad(`counter range ${r.first}..${r.last}`);
  // The datapath's reason space (gscip_abi.h GSCIP_REASON_*): a range lies inside it and inside one part's block.
  if (r && r.last >= REASON__END) bad(`counter range ${r.first}..${r.last} runs past the datapath's reason space (0..${REASON__END - 1})`);
  if (r && Math.floor(r.first / REASON_PART_SIZE) !== Math.floor(r.last / REASON_PART_SIZE)) {
    bad(`counter range ${r.first}..${r.last} straddles two blocks of ${REASON_PART_SIZE} reasons (gscip_abi.h gives each part one block)`);
  }
}

/** Throws PartError for the first conflict, naming both parts. */
export function checkParts(parts: readonly PartDeclaration[]): void {
  const names = new Set<string>();
  for (const p of parts) {
    if (names.has(p.name)) throw new PartError(PART_ERROR_CODES.DUPLICATE_NAME, `part '${p.name}' is loaded twice`);
    names.add(p.name);
    checkSelf(p);
  }
  const owner = new Map<string, string>();
  const ranges: Array<{ part: string; first: number; last: number }> = [];
  for (const p of parts) {
    for (const c of exclusiveClaims(p)) {
      const was = owner.get(c.key);
      if (was !== undefined) throw new PartError(PART_ERROR_CODES.CLAIM_TAKEN, `part '${p.name}' claims ${c.what}, already claimed by part '${was}'`);
      owner.set(c.key, p.name);
    }
    const r = p.claims.counterRange;
    if (r) {
      const hit = ranges.find((x) => r.first <= x.last && x.first <= r.last);
      if (hit) throw new PartError(PART_ERROR_CODES.CLAIM_TAKEN, `part '${p.name}' claims counters ${r.first}..${r.last}, overlapping ${hit.first}..${hit.last} of part '${hit.part}'`);
      ranges.push({ part: p.name, ...r });
    }
  }
  for (const p of parts) {
    for (const d of p.dependsOn ?? []) {
      if (!names.has(d)) {
        throw new PartError(PART_ERROR_CODES.MISSING_DEPENDENCY, `part '${p.name}' depends on part '${d}', which is not loaded (add --handler ${d})`);
      }
    }
  }
}
