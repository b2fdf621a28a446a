/**
 * DPRP the way an operator runs it: `gscip agent run --handler dprp` on each
 * GES (GE type and mode from --ge-type / --ge-mode), a group key put in
 * with `gscip keys set`, then the first TCP connection between the two hosts
 * is negotiated and encrypted, and `gscip maps dump pit --json` shows each
 * side's entries with action, group, key version, role, state and age.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { B, DprpTopo, echoServer, MARKER, RouterCapture, runClients, waitReady } from './dprp-topology.js';

const unavailable = bpfUnavailable();
const CLI = resolve(__dirname, '../../controlplane/cli/main.js');
const PORT = 7201;

describe('DPRP through the gscip CLI (namespaces)', { skip: unavailable ?? false }, () => {
  let p: DprpTopo;
  let tmp: string;
  const agents: ChildProcess[] = [];
  const common = (host: string) => ['--instance', `cli-${host}`, '--pin-root', p.ges.pinRoot, '--run-dir', p.ges.runDir];
  const gscip = (host: string, args: string[], input?: string) => execFileSync('nsenter', [`--net=/run/netns/${p.topo.ns(host)}`, 'node', CLI, ...args], {
    encoding: 'utf8', timeout: 15_000, input, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, GSCIP_LOG_LEVEL: 'warn' },
  });

  before(async () => {
    p = new DprpTopo('dpcli');
    tmp = mkdtempSync(join(tmpdir(), 'gscip-dprp-cli-'));
    await waitReady(echoServer(p.topo, 'b', 'tcp', PORT), 'tcp echo');
  });
  after(async () => {
    for (const a of agents) {
      if (a.exitCode === null && a.signalCode === null) {
        a.kill('SIGTERM');
        await new Promise<void>((r) => { const t = setTimeout(() => { a.kill('SIGKILL'); r(); }, 5000); a.once('exit', () => { clearTimeout(t); r(); }); });
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    p?.cleanupSync();
  });

  test('agent run --handler dprp without --ge-type/--ge-mode (and no GMS) refuses to start, naming the flags', () => {
    let out = '';
    let code: number | null = 0;
    try {
      execFileSync('nsenter', [`--net=/run/netns/${p.topo.ns('a')}`, 'node', CLI, 'agent', 'run', '-i', 'va', '--handler', 'dprp',
        '--metrics', 'none', '--detach-on-exit', ...common('a')], {
        encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, GSCIP_GE_TYPE: undefined, GSCIP_GE_MODE: undefined, GSCIP_LOG_LEVEL: 'warn' },
      });
    } catch (e) {
      const x = e as { status: number | null; stderr: string; stdout: string };
      code = x.status;
      out = `${x.stdout}${x.stderr}`;
    }
    assert.notEqual(code, 0, 'the agent must not run without knowing its type and mode');
    assert.match(out, /--ge-type/);
    // and it left nothing attached: the next agent starts cleanly (checked by the next test)
    assert.equal(execFileSync('nsenter', [`--net=/run/netns/${p.topo.ns('a')}`, 'tc', 'filter', 'show', 'dev', 'va', 'ingress'], { encoding: 'utf8' }).trim(), '');
  });

  test('agent run --handler dprp + keys set: the first connect is negotiated and encrypted; maps dump pit shows it', async () => {
    const keyFile = join(tmp, 'gk1');
    writeFileSync(keyFile, randomBytes(32).toString('hex'));
    for (const [host, dev] of [['a', 'va'], ['b', 'vb']] as const) {
      const a = spawn('nsenter', [`--net=/run/netns/${p.topo.ns(host)}`, 'node', CLI, 'agent', 'run', '-i', dev, '--handler', 'dprp',
        '--ge-type', 'GES', '--ge-mode', 'OP', '--metrics', 'none', '--detach-on-exit', ...common(host)], {
        stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GSCIP_GE_TYPE: undefined, GSCIP_GE_MODE: undefined, GSCIP_LOG_LEVEL: 'warn' },
      });
      agents.push(a);
      let err = '';
      a.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
      await waitFor(`agent in ${host}`, () => {
        if (a.exitCode !== null) throw new Error(`agent exited ${a.exitCode}: ${err.slice(-1500)}`);
        try { gscip(host, ['keys', 'ls', ...common(host)]); return true; } catch { return false; }
      }, 15_000, 100);
      gscip(host, ['keys', 'set', '--group', '1', '--version', '1', '--key-file', keyFile, ...common(host)]);
    }
    await new Promise((r) => setTimeout(r, 1200)); // the DPRP handler re-reads the key map every second

    const cap = await RouterCapture.start(p.topo);
    const r = await runClients(p.topo, 'a', 'tcp', B, PORT, 1, 36000, `${MARKER}-cli`);
    const frames = await cap.stop();
    assert.ok(r.ok, r.error);
    assert.equal(r.reply, `${MARKER}-cli`.toUpperCase());
    assert.equal(frames.filter((f) => f.includes(`${MARKER}-cli`)).length, 0, 'no plaintext on the wire');

    for (const [host, role] of [['a', 'start'], ['b', 'end']] as const) {
      const rows = JSON.parse(gscip(host, ['maps', 'dump', 'pit', '--json', ...common(host)])) as Array<Record<string, unknown>>;
      const mine = rows.filter((x) => x.sport === 36000 || x.dport === 36000);
      assert.equal(mine.length, 2, `${host}: ${JSON.stringify(rows)}`);
      for (const x of mine) {
        assert.ok(x.action === 'encrypt' || x.action === 'decrypt', String(x.action));
        assert.equal(x.state, 'confirmed');
        assert.equal(String(x.role).toLowerCase(), role);
        assert.equal(x.group, 1);
        assert.equal(x.keyVersion, 1);
        assert.ok(x.createdNs !== undefined);
      }
    }
  });
});
