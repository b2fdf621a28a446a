/**
 * Property-based fuzzing of DPRP (fast-check), the short CI run of
 * bench/fuzz.ts: the codec round-trips every message type, refuses arbitrary
 * and mutated bytes only with counted reasons, authentication refuses any
 * single-byte change, and a DprpNode fed arbitrary command sequences never
 * throws, counts every message, holds its caps and empties after its
 * timeouts. Fixed seed (DPRP_PROPERTY_SEED to change it), a few thousand runs
 * per property, each bounded in time. A failure prints the seed, the path and
 * the shrunk counterexample: replay it with
 *   node dist/bench/fuzz.js --target <name> --seed <seed> --path <path>
 * The last tests point the properties at deliberately broken codecs and show
 * they fail, with the counterexample fast-check shrinks to.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fc from 'fast-check';
import {
  authSingleByteProperty, bytesProperty, encodeStrictProperty, mutationProperty, roundTripProperty,
} from '../lib/dprp-properties.js';
import { newStats, nodeProperty, unauthenticatedFlowsCappedProperty } from '../lib/dprp-node-fuzz.js';
import { mutantCodec } from '../lib/dprp-mutants.js';
import { authenticatedArb } from '../lib/dprp-arbitraries.js';

const SEED = Number(process.env.DPRP_PROPERTY_SEED ?? 0x6e5c);
/** Per property; a property interrupted by it must still have run `min` times. */
const TIME_LIMIT_MS = 4_000;
const MUST_FAIL_TIME_LIMIT_MS = 15_000;

function run<Ts>(name: string, p: fc.IProperty<Ts>, numRuns: number, min = Math.min(numRuns, 500)): fc.RunDetails<Ts> {
  const r = fc.check(p, { seed: SEED, numRuns, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false });
  if (r.failed) {
    assert.fail(`${name} failed (seed ${r.seed}, path ${r.counterexamplePath}; replay: node dist/bench/fuzz.js --target ${name} --seed ${r.seed} --path ${r.counterexamplePath}):\n`
      + `${(r.errorInstance as Error | undefined)?.message ?? ''}\ncounterexample: ${fc.stringify(r.counterexample)}`);
  }
  assert.ok(r.numRuns >= min, `${name}: only ${r.numRuns} runs within ${TIME_LIMIT_MS} ms`);
  return r;
}

/** Checks a property fails, and returns its shrunk counterexample and message. */
function mustFail<Ts>(p: fc.IProperty<Ts>, numRuns = 2000): string {
  // Longer than a property's own limit: a finding is rare per run (one byte of a long message), and a
  // loaded machine runs fewer inputs in the time (the planted bug went unfound in 4 s under load).
  const r = fc.check(p, { seed: SEED, numRuns, interruptAfterTimeLimit: MUST_FAIL_TIME_LIMIT_MS });
  assert.ok(r.failed, 'the property finds the bug');
  return `${(r.errorInstance as Error | undefined)?.message?.split('\n')[0]}\n  shrunk counterexample: ${fc.stringify(r.counterexample)}`;
}

describe(`DPRP properties (fast-check, seed ${SEED})`, { timeout: 40_000 }, () => {
  test('codec: encode∘decode = id for every message type, options included (unknown skippable ones too)', () => {
    run('roundtrip', roundTripProperty(), 2_000);
  });

  test('codec: arbitrary header-shaped bytes are refused with a counted reason, or decode canonically', () => {
    const seen = new Map<string, number>();
    run('bytes', bytesProperty(undefined, seen), 5_000);
    assert.ok(seen.size >= 8, `reasons reached: ${[...seen.keys()].join(',')}`);
  });

  test('codec: mutations of valid messages are refused with a counted reason, or decode canonically', (t) => {
    const seen = new Map<string, number>();
    run('mutation', mutationProperty(undefined, seen), 4_000);
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.ok((seen.get('decoded') ?? 0) > 0, 'some mutants still decode (past the header checks)');
    assert.ok(seen.size >= 12, `reasons reached: ${[...seen.keys()].join(',')}`);
  });

  test('auth: any single-byte change of an authenticated DDE/RGI/MPIT/CDN is refused by a receiver it was meant for', () => {
    run('auth', authSingleByteProperty(), 2_000);
  });

  test('node: arbitrary sequences (valid, replayed, mutated, forged, floods, re-keying) never throw, count each message, hold the caps, empty after the timeouts', (t) => {
    const stats = newStats();
    run('node', nodeProperty(stats), 400, 100);
    t.diagnostic(`${stats.inputs} inputs, ${stats.injected} messages injected, ${stats.accepted} accepted; rejections ${JSON.stringify(Object.fromEntries(stats.rejected))}`);
    assert.ok(stats.accepted > 0 && stats.rejected.size >= 8, 'the sequences reach past the first checks');
  });

  // ------------------------------------------------ known not to hold today (findings; see the report in bench/fuzz.ts)

  test('codec: encode() refuses whatever the wire cannot carry with a DprpWireError, and whatever it encodes decode() takes back', () => {
    run('encode-strict', encodeStrictProperty(), 2_000);
  });

  test('node: flows made for a non-member are capped (maxUnauthFlows, refusals counted) and gone unauthIdleTimeoutMs after the last', () => {
    run('flows-cap', unauthenticatedFlowsCappedProperty(), 200, 50);
  });

  // ------------------------------------------------ the properties can fail

  test('a codec that reads the source port from the wrong offset fails the round trip', (t) => {
    t.diagnostic(mustFail(roundTripProperty(mutantCodec('sportFromDport'))));
  });

  test('a codec that reads a record without a bounds check fails the mutation property (the catch-all would have hidden it as bad_field)', (t) => {
    t.diagnostic(mustFail(mutationProperty(mutantCodec('recordBoundsUnchecked')), 20_000));
  });

  test('the auth property finds the one byte of a DDE no MAC covers (candDepth) when not told it is exempt', (t) => {
    // DDEs only (the byte is in a DDE): one run in ~200 hits it, where one in ~800 of all types did, which
    // a loaded CI machine did not reach within the time limit.
    t.diagnostic(mustFail(authSingleByteProperty(undefined, () => [2, 3], authenticatedArb.filter((m) => m.type === 1)), 100_000));
  });
});
