/**
 * A fresh host has no bpffs mounted (no systemd mount unit runs there). These
 * cases run the real `gscip` inside a private mount namespace where
 * /sys/fs/bpf is unmounted first, so whatever this machine has mounted, the
 * product sees a fresh host:
 *  - `gscip agent run` mounts bpffs itself, says so, pins there, and a real
 *    first flow (punted, installed, released) is echoed byte-exact, with its
 *    PIT entries in the pinned map;
 *  - a reading command (`gscip maps dump`) does not mount: it exits 4 and
 *    says bpffs is not mounted;
 *  - `ip netns exec` (which hides the host's bpffs) still works, with a
 *    warning naming nsenter.
 */
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Topology, waitFor } from '../lib/netns.js';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { AgentProc, GscipRunner } from '../lib/agent-process.js';
import { echoOnce, startEchoServer } from '../lib/net-apps.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const A = '192.0.2.1';
const B = '192.0.2.2';
const PORT = 7300;

/** sh -c script: a private mount namespace without bpffs on /sys/fs/bpf, then exec "$@". */
const FRESH_MOUNTS = 'umount /sys/fs/bpf 2>/dev/null; umount /sys/fs/bpf 2>/dev/null; ' +
  'echo "fresh-host: /sys/fs/bpf is $(stat -f -c %T /sys/fs/bpf)" >&2; exec "$@"';

function freshHost(cmd: string[]): string[] {
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', FRESH_MOUNTS, 'sh', ...cmd];
}

const skip = bpfUnavailable();

describe('fresh host: no bpffs mounted', { skip: skip ?? false, timeout: 120_000 }, () => {
  let topo: Topology;
  let g: GscipRunner;
  let agent: AgentProc | null = null;

  before(async () => {
    topo = new Topology('fresh');
    g = new GscipRunner(topo, 'fresh');
    topo.addHost('a');
    topo.addHost('b');
    topo.link('a', 'eth0', 'b', 'eth0');
    topo.addr('a', 'eth0', `${A}/24`);
    topo.addr('b', 'eth0', `${B}/24`);
    await startEchoServer(topo, 'b', B, PORT, PORT + 1);
  });

  after(async () => {
    await agent?.stop('SIGKILL');
    g?.cleanup();
    topo?.cleanupSync();
  });

  test('the agent mounts bpffs itself, pins there, and a first flow is punted, installed and echoed', async () => {
    agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'punt', '--handler', 'install-pass', '--metrics', 'none'], undefined, { via: freshHost, logLevel: 'info' });
    const a = agent;
    assert.match(a.stderr, /fresh-host: \/sys\/fs\/bpf is sysfs/, 'the agent started without bpffs');
    assert.match(a.stdout, /mounted bpffs on \/sys\/fs\/bpf \(it was not mounted\)/, 'the agent says it mounted bpffs');

    // A real first flow: the SYN misses, is punted, the handler installs PASS, the packet is released.
    const msg = `fresh-host-${Date.now()}`;
    const r = echoOnce(topo, 'a', 'tcp', B, PORT, 43000, msg, 10_000);
    assert.equal(r.error, undefined);
    assert.equal(r.reply, `peer=${A}:43000|${msg}`, 'echoed through the freshly mounted fast path');

    // The PIT entries live in the agent's own bpffs: read them from inside its mount namespace.
    const dump = spawnSync('nsenter', [`--mount=/proc/${a.pid}/ns/mnt`, `--net=/run/netns/${topo.ns('a')}`, process.execPath, MAIN, 'maps', 'dump', 'pit', '--json', ...g.instanceArgs()], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(dump.status, 0, dump.stderr);
    const pit = JSON.parse(dump.stdout) as Array<{ sport: number; dport: number; action: string }>;
    const flow = pit.filter((e) => ((e.sport === 43000 && e.dport === PORT) || (e.sport === PORT && e.dport === 43000)) && e.action === 'pass');
    assert.ok(flow.length >= 2, `PIT holds PASS entries for both directions of the flow: ${dump.stdout}`);
  });

  test('a reading command does not mount bpffs: exit 4, naming why there are no pins', () => {
    const cmd = freshHost([process.execPath, MAIN, 'maps', 'dump', 'pit', ...g.instanceArgs()]);
    const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /no pinned maps in .*is not on bpffs \(not mounted\)/);
  });

  test('`ip netns exec` hides the host\'s bpffs: the agent runs on a private bpffs and warns, naming nsenter', async () => {
    await agent?.stop('SIGTERM');
    agent = null;
    // `nsenter --net=/run/netns/NS node ...` -> `ip netns exec NS node ...`
    agent = await g.startAgent('a', ['--iface', 'eth0', '--miss', 'pass', '--metrics', 'none'], undefined,
      { via: (cmd) => ['ip', 'netns', 'exec', topo.ns('a'), ...cmd.slice(2)], logLevel: 'info' });
    const a = agent;
    assert.match(a.stdout, /mounted bpffs on \/sys\/fs\/bpf/);
    // The warning follows the mount in the log, not necessarily before the agent reports ready (a loaded CI run read too early).
    await waitFor('the agent\'s warning naming nsenter', () => /nsenter --net=\/run\/netns\/NAME/.test(a.stdout), 5000, 50);
  });
});
