/**
 * The catalogue of protocol parts by name (config `handlers: [...]`, CLI
 * `--handler NAME`): each entry is a part descriptor (parts/part.ts). The
 * agent composes the named ones (parts/compose.ts), which checks their claims
 * and dependencies before anything starts.
 */
import type { PuntHandlerFactory } from '../../parts/handler.js';
import type { PartDescriptor } from '../../parts/part.js';
import { PART_ERROR_CODES, PartError } from '../../parts/errors.js';
import { installPassPart } from './install-pass.js';
import { dprpPart } from '../../dprp/part.js';
import { mobilePpcPart } from '../../mobility/part.js';
import { natPart } from '../../natf/part.js';
import { natfPart } from '../../natf/natf-part.js';
import { gsraRouterPart } from '../../gsra/part.js';
import { gsraEnPart } from '../../gsra/en-part.js';

const catalogue = new Map<string, PartDescriptor>([[installPassPart.name, installPassPart], [dprpPart.name, dprpPart], [mobilePpcPart.name, mobilePpcPart], [natPart.name, natPart], [natfPart.name, natfPart], [gsraRouterPart.name, gsraRouterPart], [gsraEnPart.name, gsraEnPart]]);

export function registerPart(d: PartDescriptor): void {
  const had = catalogue.get(d.name);
  if (had) throw new PartError(PART_ERROR_CODES.DUPLICATE_NAME, `part ${d.name} is already registered (${had.summary})`);
  catalogue.set(d.name, d);
}

/** A plain handler factory, as before parts: it takes every punt and claims nothing exclusive. */
export function registerPuntHandler(name: string, factory: PuntHandlerFactory): void {
  if (catalogue.has(name)) throw new Error(`punt handler ${name} is already registered`);
  registerPart({ name, summary: 'plain punt handler', claims: { puntReasons: ['pit_miss', 'truncated', 'control'] }, create: factory });
}

export function partDescriptor(name: string): PartDescriptor {
  const d = catalogue.get(name);
  if (!d) throw new PartError(PART_ERROR_CODES.UNKNOWN_PART, `handlers: unknown punt handler '${name}' (known: ${[...catalogue.keys()].join(', ')})`);
  return d;
}

export function puntHandlerNames(): string[] { return [...catalogue.keys()]; }
