/**
 * Every /metrics the project serves passes `promtool check metrics` (the
 * Prometheus project's own linter: naming, units, _total on counters, HELP
 * and TYPE): the agent's, after a real punted flow, and the GMS's, after a
 * network definition was applied.
 */
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner, type AgentProc } from '../lib/agent-process.js';
import { echoOnce, startEchoServer } from '../lib/net-apps.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const FIG6_NETWORK = resolve(__dirname, '../../../deploy/examples/fig6-network.yaml');
const A = '192.0.2.1';
const B = '192.0.2.2';

const FETCH = "fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.message); process.exit(1); })";

function promtool(text: string): { code: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message} (it comes with Debian's prometheus package: make deps)`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('metrics pass promtool check metrics', { skip: bpfUnavailable() ?? false, timeout: 120_000 }, () => {
  let topo: Topology;
  let g: GscipRunner;
  let agent: AgentProc | null = null;
  let dir = '';

  before(async () => {
    topo = new Topology('prom');
    g = new GscipRunner(topo, 'prom');
    dir = topo.scratchPath(mkdtempSync('/tmp/gscip-prom-'));
    topo.addHost('a');
    topo.addHost('b');
    topo.link('a', 'eth0', 'b', 'eth0');
    topo.addr('a', 'eth0', `${A}/24`);
    topo.addr('b', 'eth0', `${B}/24`);
    await startEchoServer(topo, 'b', B, 7400, 7401);
  });

  after(async () => {
    await agent?.stop('SIGKILL');
    g?.cleanup();
    topo?.cleanupSync();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the agent\'s /metrics after a punted, installed and released flow', async () => {
    agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'punt', '--handler', 'install-pass', '--metrics', '127.0.0.1:9464']);
    const r = echoOnce(topo, 'a', 'tcp', B, 7400, 43100, 'promtool', 10_000);
    assert.equal(r.error, undefined);
    const text = topo.exec('a', process.execPath, ['-e', FETCH, 'http://127.0.0.1:9464/metrics']).stdout;
    assert.match(text, /^gscip_/m, 'agent metrics were served');
    const p = promtool(text);
    assert.equal(p.code, 0, `promtool check metrics on the agent's /metrics:\n${p.out}`);
  });

  test('the GMS\'s /metrics after a network definition was applied', async () => {
    const gmsDir = join(dir, 'gms');
    const gms = topo.spawn('a', process.execPath, [MAIN, 'gms', 'serve', '--data-dir', gmsDir, '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:9465']);
    let out = '';
    gms.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    gms.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor('GMS to listen', () => /GMS listening on/.test(out), 20_000, 50);
    const apply = spawnSync('ip', ['netns', 'exec', topo.ns('a'), process.execPath, MAIN, 'gms', 'apply', '--data-dir', gmsDir, '-f', FIG6_NETWORK], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(apply.status, 0, apply.stderr);
    const text = await waitFor('GMS metrics', () => {
      const t = topo.exec('a', process.execPath, ['-e', FETCH, 'http://127.0.0.1:9465/metrics'], { allowFail: true }).stdout;
      return /gscip_gms_/.test(t) ? t : '';
    }, 10_000, 100);
    const p = promtool(text);
    assert.equal(p.code, 0, `promtool check metrics on the GMS's /metrics:\n${p.out}`);
  });
});
