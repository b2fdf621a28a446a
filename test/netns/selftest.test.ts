/**
 * `gscip selftest` run the way an operator runs it: the real CLI as a
 * subprocess. Every check must pass within its 30 s budget and leave nothing
 * behind (no namespace with its prefix, no pin or run directory, no temp
 * directory, no process, no scratch manifest); with every check deliberately
 * misconfigured (--inject-fault), every check must fail, the protected flows
 * as leaks, and the exit code must say so. The selftest only creates
 * namespaces of its own; this file creates none.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { scratchDir } from '../../controlplane/lab/scratch-guard.js';
import { CHECK_IDS } from '../../controlplane/selftest/checks.js';
import type { SelftestReport } from '../../controlplane/selftest/run.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const skip = bpfUnavailable();

interface Run { code: number | null; out: string; err: string; pid: number }

/** `gscip ARGS` as a subprocess, killed at the deadline. */
function gscip(args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); done({ code, out, err, pid: child.pid ?? -1 }); });
  });
}

/** Everything a selftest run could leave, by its prefix and pid (checked independently of its own report). */
function leftovers(prefix: string, pid: number): string[] {
  const left: string[] = [];
  for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : []) if (n.startsWith(`${prefix}-`)) left.push(`namespace ${n}`);
  for (const p of [`/sys/fs/bpf/gscip-test-${prefix}`, `/run/gscip-test-${prefix}`, `/tmp/gscip-selftest-${prefix}`]) if (existsSync(p)) left.push(p);
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes(prefix)) left.push(`process ${d}: ${cmd.split('\0').join(' ').slice(0, 100)}`);
  }
  for (const m of existsSync(scratchDir()) ? readdirSync(scratchDir()) : []) if (m.startsWith(`${pid}-`)) left.push(`scratch manifest ${m}`);
  return left;
}

async function assertNothingLeft(prefix: string | null, pid: number): Promise<void> {
  assert.match(String(prefix), /^gsselft[0-9a-f]{6}$/, 'the report names its namespace prefix');
  // The scratch watcher removes its manifest once the selftest has exited: give it a moment.
  await waitFor('the selftest\'s scratch state to be gone', () => leftovers(prefix!, pid).length === 0, 5000, 50)
    .catch(() => assert.deepEqual(leftovers(prefix!, pid), [], 'nothing left behind'));
}

describe('gscip selftest', { skip: skip ?? false, timeout: 150_000 }, () => {
  test('every check passes within the 30 s budget, with evidence, and nothing is left behind', async () => {
    const r = await gscip(['selftest', '--json'], 60_000);
    assert.equal(r.code, 0, `exit 0 (stderr: ${r.err.trim()}; stdout: ${r.out.slice(0, 2000)})`);
    const rep = JSON.parse(r.out) as SelftestReport;
    assert.deepEqual(rep.checks.map((c) => c.id), [...CHECK_IDS], 'one result per check, in order');
    for (const c of rep.checks) assert.ok(c.pass, `${c.id}: ${c.summary}`);
    assert.ok(rep.ok && rep.passed === 5 && rep.total === 5);
    assert.ok(rep.elapsedMs < 30_000 && !rep.overBudget, `within budget (${rep.elapsedMs} ms)`);
    assert.equal(rep.capture?.kernelDrops, 0, 'the capture lost nothing');
    assert.equal(rep.capture?.problem, null);
    assert.deepEqual(rep.cleanup.left, []);

    const ev = Object.fromEntries(rep.checks.map((c) => [c.id, c.evidence]));
    for (const id of ['encrypted-tcp', 'encrypted-udp', 'missing-key', 'wrong-key'] as const) assert.equal(ev[id].markerHits, 0, `${id}: no marker on the wire`);
    assert.ok(Number(ev['encrypted-tcp'].transitPackets) > 0 && ev['encrypted-tcp'].byteExact === true);
    assert.ok(Number(ev['encrypted-tcp'].encryptedBytes) >= 1 << 20);
    assert.equal(ev['encrypted-udp'].received, 200);
    assert.ok(Number(ev['encrypted-udp'].transitPackets) >= 200);
    assert.equal(ev['missing-key'].sent, 50);
    assert.ok(Number(ev['missing-key'].noKeyDrops) >= 50, 'every datagram counted as no_key');
    assert.equal(ev['missing-key'].transitPackets, 0, 'none reached the wire');
    assert.equal(ev['missing-key'].delivered, 0);
    assert.ok(Number(ev['wrong-key'].badKeyedChecksums) >= 50, 'every datagram counted as bad keyed checksum');
    assert.ok(Number(ev['wrong-key'].transitPackets) >= 50, 'the encrypted datagrams did cross');
    assert.equal(ev['wrong-key'].delivered, 0);
    assert.ok(Number(ev['plaintext-pass'].markerHits) > 0, 'the capture sees plaintext');
    assert.equal(ev['plaintext-pass'].byteExact, true);

    await assertNothingLeft(rep.prefix, r.pid);
  });

  test('a misconfigured scenario fails: every injected fault fails its check, the protected flows as leaks, exit 1', async () => {
    const faults = CHECK_IDS.flatMap((id) => ['--inject-fault', id]);
    const r = await gscip(['selftest', '--json', ...faults], 60_000);
    assert.equal(r.code, 1, `exit 1 (stderr: ${r.err.trim()})`);
    const rep = JSON.parse(r.out) as SelftestReport;
    assert.equal(rep.ok, false);
    assert.deepEqual(rep.faults, [...CHECK_IDS]);
    for (const c of rep.checks) assert.equal(c.pass, false, `${c.id} fails under its fault: ${c.summary}`);
    for (const c of rep.checks.filter((x) => x.id !== 'plaintext-pass')) {
      assert.ok(Number(c.evidence.markerHits) > 0, `${c.id}: the plaintext marker was on the wire`);
      assert.match(c.problems[0], /^LEAK: the marker crossed the transit wire \d+ times$/, `${c.id} names the leak first`);
    }
    const plain = rep.checks.find((c) => c.id === 'plaintext-pass')!;
    assert.equal(plain.evidence.markerHits, 0);
    assert.match(plain.summary, /plaintext marker never appeared/);
    await assertNothingLeft(rep.prefix, r.pid);
  });

  test('human output: one PASS line per check, the cleanup line and a summary with the run time', async () => {
    const r = await gscip(['selftest'], 60_000);
    assert.equal(r.code, 0, r.out + r.err);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 7, r.out);
    for (const l of lines.slice(0, 5)) assert.match(l, /^PASS {2}\S.*: \S/);
    assert.match(lines[0], /^PASS {2}encrypted TCP: 1\.0 MiB byte-exact, 0 marker hits in \d+ transit packets/);
    assert.match(lines[5], /^cleanup: removed .*; nothing left$/);
    assert.match(lines[6], /^selftest: 5\/5 checks passed in \d+\.\d s \(budget 30 s\)/);
    const prefix = /namespaces (gsselft[0-9a-f]{6})-/.exec(lines[5])?.[1] ?? null;
    await assertNothingLeft(prefix, r.pid);
  });

  test('without tcpdump every check fails naming it, and nothing is built', async () => {
    // Hide tcpdump in a private mount namespace of this one subprocess (the host's stays as it is).
    const hide = ['/usr/sbin/tcpdump', '/sbin/tcpdump', '/usr/bin/tcpdump', '/bin/tcpdump', '/usr/local/bin/tcpdump', '/usr/local/sbin/tcpdump']
      .map((p) => `[ ! -e ${p} ] || mount --bind /dev/null ${p} || exit 9;`).join(' ');
    const r = await new Promise<Run>((done) => {
      const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${hide} exec "$0" "$@"`, process.execPath, MAIN, 'selftest', '--json'],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = ''; let err = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (code) => { clearTimeout(timer); done({ code, out, err, pid: child.pid ?? -1 }); });
    });
    assert.equal(r.code, 1, `exit 1 (stderr: ${r.err.trim()})`);
    const rep = JSON.parse(r.out) as SelftestReport;
    assert.equal(rep.prefix, null, 'no namespace was built');
    assert.equal(rep.checks.length, 5);
    for (const c of rep.checks) {
      assert.equal(c.pass, false);
      assert.match(c.summary, /^not run: tcpdump not found .*install it/);
    }
  });

  test('a bad option is refused with the fault named, exit 2, before anything is built', async () => {
    const r = await gscip(['selftest', '--inject-fault', 'nonsense'], 20_000);
    assert.equal(r.code, 2);
    assert.match(r.err, /--inject-fault: 'nonsense' is not a check \(encrypted-tcp, /);
  });
});
