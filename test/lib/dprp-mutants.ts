/**
 * Deliberately broken copies of the compiled DPRP codec (dist/.../wire.js with
 * one line changed, compiled in memory next to the real one; nothing written),
 * to show that the properties of dprp-properties.ts fail, and what fast-check
 * shrinks the counterexample to.
 */
import { readFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import type { WireCodec } from './dprp-properties.js';

const WIRE_JS = join(__dirname, '..', '..', 'controlplane', 'dprp', 'wire.js');

export const MUTANTS = {
  /** The flow's source port is read from the destination port's offset. */
  sportFromDport: ['sport: b.readUInt16BE(off + 8)', 'sport: b.readUInt16BE(off + 10)'],
  /** A record's fixed part is read without checking it is there (a RangeError the catch-all hides as bad_field). */
  recordBoundsUnchecked: ['need(exports.RECORD_FIXED_LEN, `record ${i}`);', ''],
} as const satisfies Record<string, readonly [string, string]>;

export function mutantCodec(name: keyof typeof MUTANTS): WireCodec {
  const [from, to] = MUTANTS[name];
  const src = readFileSync(WIRE_JS, 'utf8');
  if (!src.includes(from)) throw new Error(`mutant ${name}: '${from}' is not in ${WIRE_JS} (the codec changed: update test/lib/dprp-mutants.ts)`);
  const file = WIRE_JS.replace(/\.js$/, `.mutant-${name}.js`);
  const M = Module as unknown as { new (id: string): { filename: string; paths: string[]; exports: WireCodec; _compile(s: string, f: string): void }; _nodeModulePaths(d: string): string[] };
  const m = new M(file);
  m.filename = file;
  m.paths = M._nodeModulePaths(dirname(file));
  // The mutant throws the real DprpWireError class, so only the injected bug differs.
  const shared = src.replace(from, to).replace('class DprpWireError extends', "const DprpWireError = require('./wire.js').DprpWireError;\nclass DprpWireErrorOfTheMutant extends");
  if (shared.includes('class DprpWireError extends')) throw new Error('mutant: could not share DprpWireError');
  m._compile(shared, file);
  const w = m.exports as unknown as { encode(x: unknown): Buffer; decode(b: Buffer): never };
  return { encode: (x) => w.encode(x), decode: (b) => w.decode(b) };
}
