/**
 * Registry of punt handlers by name (config `handlers: [...]`, CLI
 * `--handler NAME`). Protocol engines register theirs here.
 */
import type { PuntHandlerFactory } from '../handler.js';
import { installPass } from './install-pass.js';
import { dprpHandlerFactory } from '../../dprp/handler.js';

const registry = new Map<string, PuntHandlerFactory>([['install-pass', installPass], ['dprp', dprpHandlerFactory]]);

export function registerPuntHandler(name: string, factory: PuntHandlerFactory): void {
  if (registry.has(name)) throw new Error(`punt handler ${name} is already registered`);
  registry.set(name, factory);
}

export function puntHandlerFactory(name: string): PuntHandlerFactory {
  const f = registry.get(name);
  if (!f) throw new Error(`handlers: unknown punt handler '${name}' (known: ${[...registry.keys()].join(', ')})`);
  return f;
}

export function puntHandlerNames(): string[] { return [...registry.keys()]; }
