/**
 * The operator's commands, run as separate processes against a `gms serve`
 * child: apply (dry run, idempotent, bad file), token issue, agent enroll
 * (reused token refused), rotate, ls, load-report. Also checks that neither
 * the server's log nor `ls keys` ever contains a group key or a token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fetchGeState } from '../../controlplane/gms/client.js';
import { tempDir, waitFor } from './helpers.js';

const ROOT = resolve(__dirname, '../../..');
const FIG6 = join(ROOT, 'deploy/examples/fig6-network.yaml');
// The product's entry point (controlplane/cli/main.ts), as an operator runs it.
const MAIN = join(ROOT, 'dist/controlplane/cli/main.js');

function gscip(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000, cwd: ROOT, input, env: { ...process.env, GSCIP_LOG_LEVEL: 'info' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('gscip gms / agent enroll commands end to end', async (t) => {
  const gmsDir = tempDir('cli');
  const agentDir = tempDir('cli-agent');
  const agent2 = tempDir('cli-agent2');
  t.after(() => { gmsDir.remove(); agentDir.remove(); agent2.remove(); });
  const srv = spawn(process.execPath, [MAIN, 'gms', 'serve', '--data-dir', gmsDir.path, '--listen', '127.0.0.1:0'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GSCIP_LOG_LEVEL: 'debug' }, // log everything there is to log
  });
  let log = '';
  srv.stdout.setEncoding('utf8').on('data', (c: string) => { log += c; });
  srv.stderr.setEncoding('utf8').on('data', (c: string) => { log += c; });
  t.after(() => { if (srv.exitCode === null) srv.kill('SIGKILL'); });
  await waitFor('GMS listening', () => /CA fingerprint/.test(log), 10_000);
  const url = /GMS listening on (https:\/\/\S+)/.exec(log)![1];
  const fp = /CA fingerprint \(give to agents\): ([0-9a-f]{64})/.exec(log)![1];
  const dd = ['--data-dir', gmsDir.path];

  let r = gscip(['gms', 'apply', '-f', FIG6, '--dry-run', ...dd]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^\(dry run\) /);
  assert.match(r.out, /8 to add, 0 to change, 0 to remove/);
  assert.equal(gscip(['gms', 'ls', 'ges', ...dd]).out.trim(), '(none)');

  r = gscip(['gms', 'apply', '-f', FIG6, ...dd]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /group 3: key version 1/);
  assert.match(gscip(['gms', 'apply', '-f', FIG6, ...dd]).out, /no changes/);

  const bad = join(gmsDir.path, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: gscip/v1\nkind: Network\ngroups: [{id: 1}]\nges:\n  - {userId: a, type: GES, mode: XX, groups: [1]}\n');
  r = gscip(['gms', 'apply', '-f', bad, ...dd]);
  assert.equal(r.code, 1);
  assert.match(r.err, /ges\[0\]\.mode:/);
  assert.match(gscip(['gms', 'ls', 'ges', ...dd]).out, /ges2-manager/, 'bad file changed nothing');

  r = gscip(['gms', 'token', 'issue', '--ge', 'ges1-staff', ...dd]);
  assert.equal(r.code, 0, r.err);
  const token = r.out.trim();
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);

  const tokenFile = join(gmsDir.path, 'token.txt');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  r = gscip(['agent', 'enroll', '--gms', url, '--token-file', tokenFile, '--ca-fingerprint', fp, '--data-dir', agentDir.path]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /enrolled as ges1-staff/);
  r = gscip(['agent', 'enroll', '--gms', url, '--token-file', '/dev/stdin', '--ca-fingerprint', fp, '--data-dir', agent2.path], token);
  assert.equal(r.code, 1);
  assert.match(r.err, /token_used/);
  r = gscip(['agent', 'enroll', '--gms', url, '--ca-fingerprint', fp, '--data-dir', agent2.path]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /token or token-file/);

  r = gscip(['gms', 'rotate', '--group', '1', ...dd]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /group 1: key version 2/);
  r = gscip(['gms', 'ls', 'keys', ...dd]);
  assert.match(r.out, /^group\s+version\s+cipher\s+state/);
  assert.match(r.out, /\n1\s+1\s+chacha20\s+grace/);
  assert.match(r.out, /\n1\s+2\s+chacha20\s+current/);
  r = gscip(['gms', 'ls', 'groups', ...dd]);
  assert.match(r.out, /gea-server/);
  assert.match(r.out, /^id\s+name\s+rotation\s+cipher\s+members/);
  assert.match(r.out, /\n3\s+group-3\s+0 3 \* \* \* UTC 3600\s+chacha20\s+gea-server,ges3-manager/);
  r = gscip(['gms', 'load-report', '-f', FIG6]);
  assert.match(r.out, /= 38 items/);
  assert.match(r.out, /IPsec\/IKE 174/);

  // Secrets never printed by ls or logged by the server.
  const keys = (await fetchGeState(agentDir.path)).keys;
  assert.ok(keys.length >= 2);
  const lsAll = ['ges', 'groups', 'keys'].map((w) => gscip(['gms', 'ls', w, '--json', ...dd]).out).join('');
  for (const k of keys) {
    for (const form of [k.key, Buffer.from(k.key, 'base64').toString('hex')]) {
      assert.equal(lsAll.includes(form), false, 'key material in ls output');
      assert.equal(log.includes(form), false, 'key material in the GMS log');
    }
  }
  assert.equal(log.includes(token), false, 'token in the GMS log');
  assert.match(log, /"msg":"GE enrolled"/, 'the log was captured');
  assert.match(log, /"msg":"group key rotated"/);

  srv.kill('SIGTERM');
  await waitFor('serve exits on SIGTERM', () => srv.exitCode !== null, 5000);
  assert.equal(srv.exitCode, 0);
});
