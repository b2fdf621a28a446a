/**
 * `make demo-gsra` (deploy/demo-gsra.ts) as a user runs it: nothing else
 * would notice if a change broke it. Its verdict is its exit status (every
 * step checks what it shows) and the steps' `ok` lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { slapdUnavailable } from '../lib/slapd.js';
import { sh } from '../lib/netns.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const unavailable = bpfUnavailable() ?? slapdUnavailable() ?? (NAMED ? null : 'needs BIND 9 (named, dig)');

test('make demo-gsra: directory login, the EN agent by name through the router, refusal, revocation', { skip: unavailable ?? false, timeout: 200_000 }, () => {
  const demo = resolve(__dirname, '../../deploy/demo-gsra.js');
  const r = spawnSync(process.execPath, [demo], { encoding: 'utf8', timeout: 190_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `demo-gsra exited ${r.status} (${r.signal ?? 'no signal'}):\n${out.slice(-4000)}`);
  for (const line of ['refused: bad_credentials', 'enrolled', '1 MiB arrived byte-exact', 'no plaintext marker', 'refused at once (EHOSTUNREACH', 'cut within 5 s', 'the next connection refused at once']) {
    assert.ok(out.split('\n').some((l) => /^\s*ok {3}/.test(l) && l.includes(line)), `the demo says: ok ... ${line}\n${out.slice(-3000)}`);
  }
  assert.doesNotMatch(out, /^\s*FAIL /m);
});
