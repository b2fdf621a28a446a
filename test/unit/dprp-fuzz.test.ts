/**
 * Fuzzing the DPRP codec and a live node: random and mutated inputs (seeded
 * PRNG, bounded iterations and time) never throw anything but DprpWireError
 * from decode(), never throw from DprpNode.onControl(), and every rejection
 * is counted with a named reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, DprpWireError, encode, WIRE_REJECT_REASONS, type DprpMessage } from '../../controlplane/dprp/wire.js';
import { inetChecksum } from '../../controlplane/dprp/ipv4.js';
import { Sim, fig6Nodes } from './dprp-sim.js';
import { prng } from '../lib/prng.js';

/** Rewrites the ICMP checksum of `b` in place so it verifies. */
function inetChecksumFix(b: Buffer): void {
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(inetChecksum(b), 2);
}


const SEED = Number(process.env.DPRP_FUZZ_SEED ?? 0x5eed);
const ITER = 20_000;
const TIME_BUDGET_MS = 15_000;

/** Valid messages captured from a real simulated negotiation (all four types). */
function corpus(): Buffer[] {
  const sim = new Sim(fig6Nodes());
  sim.connect('GES1', 'Term');
  sim.connect('GES2', 'server');
  sim.time.run(10_000);
  return sim.wire.map((w) => w.icmp);
}

function mutate(rand: () => number, seedMsg: Buffer): Buffer {
  let b = Buffer.from(seedMsg);
  const ops = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < ops; i++) {
    const op = Math.floor(rand() * 6);
    const at = Math.floor(rand() * Math.max(1, b.length));
    if (op === 0) b[at] ^= 1 << Math.floor(rand() * 8);
    else if (op === 1) b[at] = Math.floor(rand() * 256);
    else if (op === 2) b = b.subarray(0, at);
    else if (op === 3) b = Buffer.concat([b, Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)))]);
    else if (op === 4) b[at] = [0, 1, 0xff, 16, 17][Math.floor(rand() * 5)];
    else b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(rand() * 8)))]);
  }
  // Half the time make the checksum right so the mutation reaches the parser proper.
  if (rand() < 0.5 && b.length >= 4) inetChecksumFix(b);
  return b;
}

test(`codec fuzz: random and mutated inputs (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const seeds = corpus();
  assert.equal(new Set(seeds.map((s) => s[1])).size, 4, 'corpus has all four message types');
  const reasons = new Map<string, number>();
  let decoded = 0;
  const t0 = Date.now();
  let i = 0;
  for (; i < ITER && Date.now() - t0 < TIME_BUDGET_MS; i++) {
    const input = i % 4 === 0
      ? Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)))
      : mutate(rand, seeds[Math.floor(rand() * seeds.length)]);
    try {
      const m: DprpMessage = decode(input);
      decoded++;
      // Whatever decodes must re-encode to exactly the same bytes (canonical form).
      assert.deepEqual(encode(m), input, `non-canonical decode at iteration ${i}`);
    } catch (e) {
      if (!(e instanceof DprpWireError)) throw new Error(`iteration ${i}: decode threw ${String(e)} for ${input.toString('hex')}`);
      assert.ok((WIRE_REJECT_REASONS as readonly string[]).includes(e.reason));
      reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + 1);
    }
  }
  assert.ok(i >= 1000, `ran ${i} iterations`);
  assert.ok(decoded > 0, 'some mutations still decode (the fuzzer reaches past the header checks)');
  assert.ok(reasons.size >= 10, `many distinct reasons reached: ${[...reasons.keys()].join(',')}`);
});

test(`node fuzz: a GE fed garbage and mutated control messages never throws and counts everything (seed ${SEED})`, () => {
  const rand = prng(SEED + 1);
  const sim = new Sim(fig6Nodes());
  const seeds = corpus();
  sim.connect('GES1', 'GES2');
  sim.time.run(10_000);
  const targets = ['GES1', 'GES2', 'GEN', 'GEA'];
  const before = targets.map((t) => new Map(sim.ge(t).pit));
  const counted = () => targets.reduce((n, t) => n + sim.ge(t).obs.rejections.length, 0);
  const c0 = counted();
  const N = 5_000;
  for (let i = 0; i < N; i++) {
    const input = mutate(rand, seeds[Math.floor(rand() * seeds.length)]);
    const to = targets[Math.floor(rand() * targets.length)];
    sim.inject(to, input);
  }
  sim.time.run(1_000_000);
  // Mutants of old messages carry old negotiation ids/timestamps: nothing may change.
  targets.forEach((t, k) => assert.deepEqual(sim.ge(t).pit, before[k], `${t} PIT unchanged`));
  assert.ok(counted() - c0 >= N * 0.99, `rejections counted: ${counted() - c0} of ${N}`);
});
