/** Agent config: defaults, file + flag precedence, and errors that name the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { applyMissFlags, ConfigError, parseAgentConfig, resolveIpv6Policy } from '../../controlplane/config/agent-config.js';
import { agentConfigFromArgs } from '../../controlplane/cli/commands/agent.js';

test('defaults fill everything but the interfaces', () => {
  const c = parseAgentConfig({ interfaces: [{ name: 'eth0' }] });
  assert.equal(c.instance, 'default');
  assert.equal(c.pinRoot, '/sys/fs/bpf/gscip');
  assert.equal(c.runDir, '/run/gscip');
  assert.equal(c.metrics, '127.0.0.1:9464');
  assert.deepEqual(c.interfaces, [{ name: 'eth0', miss: { ingress: 'punt', egress: 'punt' } }]);
  assert.deepEqual(c.stash, { perFlowPackets: 8, totalPackets: 4096, ttlMs: 3000 });
  assert.equal(c.detachOnExit, false);
  assert.deepEqual(c.handlers, []);
});

test('invalid input is rejected naming each bad field', () => {
  const bad = (v: unknown, re: RegExp): void => {
    assert.throws(() => parseAgentConfig(v), (e: unknown) => e instanceof ConfigError && re.test(e.message), `expected ${re}`);
  };
  bad({}, /interfaces: /);
  bad({ interfaces: [] }, /interfaces: at least one interface/);
  bad({ interfaces: [{ name: 'eth0', miss: { ingress: 'allow' } }] }, /interfaces\[0\]\.miss\.ingress/);
  bad({ interfaces: [{ name: 'eth0' }, { name: 'eth0' }] }, /interface is listed twice/);
  bad({ interfaces: [{ name: 'eth0' }], instance: 'a/b' }, /instance: letters, digits/);
  bad({ interfaces: [{ name: 'eth0' }], metrics: '9464' }, /metrics: expected HOST:PORT/);
  bad({ interfaces: [{ name: 'eth0' }], metrics: '127.0.0.1:70000' }, /metrics: port must be/);
  bad({ interfaces: [{ name: 'eth0' }], stash: { ttlMs: 0 } }, /stash\.ttlMs/);
  bad({ interfaces: [{ name: 'eth0' }], pinRoot: 'relative' }, /pinRoot: must be an absolute path/);
  bad({ interfaces: [{ name: 'eth0' }], bogus: 1 }, /bogus/);
  const ddns = { server: '203.0.113.254', zone: 'example.net', name: 'b.example.net', keyName: 'ge-b', keyFile: '/etc/gscip/ge-b.key' };
  bad({ interfaces: [{ name: 'eth0' }], mobility: { ddns: { ...ddns, server: 'ns1' } } }, /mobility\.ddns\.server/);
  bad({ interfaces: [{ name: 'eth0' }], mobility: { ddns: { ...ddns, keyFile: undefined } } }, /mobility\.ddns\.keyFile/);
  bad({ interfaces: [{ name: 'eth0' }], mobility: { ddns: { ...ddns, ttl: -1 } } }, /mobility\.ddns\.ttl/);
  assert.equal(parseAgentConfig({ interfaces: [{ name: 'eth0' }], mobility: { ddns } }).mobility.ddns?.port, 53);
  bad({ interfaces: [{ name: 'eth0' }], mobility: { rendezvous: { server: '203.0.113.254', names: [] } } }, /mobility\.rendezvous\.names/);
  bad({ interfaces: [{ name: 'eth0' }], mobility: { rendezvous: { server: 'ns1', names: ['a.example.net'] } } }, /mobility\.rendezvous\.server/);
  bad({ interfaces: [{ name: 'eth0' }], mobility: { subnetNat: { inside: ['100.64.9.0'] } } }, /mobility\.subnetNat\.inside\[0\]/);
  bad({ interfaces: [{ name: 'eth0' }], mobility: { subnetNat: { inside: [] } } }, /mobility\.subnetNat\.inside/);
  const m = parseAgentConfig({ interfaces: [{ name: 'eth0' }], mobility: { rendezvous: { server: '203.0.113.254', names: ['a.example.net'] }, subnetNat: { inside: ['100.64.9.0/24'] } } }).mobility;
  assert.deepEqual([m.rendezvous?.port, m.rendezvous?.refreshS, m.subnetNat?.inside], [53, 60, ['100.64.9.0/24']]);
});

test('--miss flags: all, per interface, per direction; bad ones named', () => {
  assert.deepEqual(applyMissFlags(['a', 'b'], ['pass', 'b:drop', 'a:egress:punt']), [
    { name: 'a', miss: { ingress: 'pass', egress: 'punt' } },
    { name: 'b', miss: { ingress: 'drop', egress: 'drop' } },
  ]);
  assert.throws(() => applyMissFlags(['a'], ['c:pass']), /--miss c:pass: interface 'c' is not one of --iface \(a\)/);
  assert.throws(() => applyMissFlags(['a'], ['a:sideways:pass']), /expected ACTION, IFACE:ACTION/);
  assert.throws(() => applyMissFlags(['a'], ['maybe']), /action must be punt, pass or drop \(got 'maybe'\)/);
});

test('flags override the config file, which overrides defaults', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gscip-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'agent.yaml');
  writeFileSync(f, 'instance: fromfile\nmetrics: 127.0.0.1:1000\ninterfaces:\n  - name: eth1\n    miss: { ingress: drop, egress: pass }\nstash:\n  ttlMs: 500\n');
  const fileOnly = agentConfigFromArgs({ config: f });
  assert.equal(fileOnly.instance, 'fromfile');
  assert.equal(fileOnly.stash.ttlMs, 500);
  assert.deepEqual(fileOnly.interfaces, [{ name: 'eth1', miss: { ingress: 'drop', egress: 'pass' } }]);
  const both = agentConfigFromArgs({ config: f, instance: 'flag', metrics: 'none', 'stash-per-flow': 2, miss: ['punt'] });
  assert.equal(both.instance, 'flag');
  assert.equal(both.metrics, null);
  assert.deepEqual(both.stash, { perFlowPackets: 2, totalPackets: 4096, ttlMs: 500 });
  assert.deepEqual(both.interfaces, [{ name: 'eth1', miss: { ingress: 'punt', egress: 'punt' } }]);
  writeFileSync(f, 'interfaces: [ {name: eth0} ]\nstash: { ttlMs: -1 }\n');
  assert.throws(() => agentConfigFromArgs({ config: f }), /config \(.*agent\.yaml \+ flags\): invalid: stash\.ttlMs/);
  writeFileSync(f, '{ not yaml: [');
  assert.throws(() => agentConfigFromArgs({ config: f }), /not valid YAML/);
});

test('the shipped example config is valid', () => {
  const c = agentConfigFromArgs({ config: resolve(__dirname, '../../..', 'deploy/examples/agent.yaml') });
  assert.equal(c.instance, 'edge');
  assert.deepEqual(c.handlers, ['install-pass']);
  assert.equal(c.gms, null);
});

test('interfaces[].ipv6 and --ipv6: pass | drop | nd-only, per interface or all; the default follows the GE mode', (t) => {
  assert.equal(parseAgentConfig({ interfaces: [{ name: 'eth0' }] }).interfaces[0].ipv6, undefined, 'absent: decided by the mode at start');
  assert.equal(parseAgentConfig({ interfaces: [{ name: 'eth0', ipv6: 'nd-only' }] }).interfaces[0].ipv6, 'nd-only');
  assert.throws(() => parseAgentConfig({ interfaces: [{ name: 'eth0', ipv6: 'open' }] }), /interfaces\[0\]\.ipv6/);
  const c = agentConfigFromArgs({ iface: ['eth0', 'eth1'], ipv6: ['drop', 'eth1:nd-only'] });
  assert.deepEqual(c.interfaces.map((i) => [i.name, i.ipv6]), [['eth0', 'drop'], ['eth1', 'nd-only']]);
  assert.throws(() => agentConfigFromArgs({ iface: ['eth0'], ipv6: ['eth9:drop'] }), /--ipv6 eth9:drop: interface 'eth9'/);
  assert.throws(() => agentConfigFromArgs({ iface: ['eth0'], ipv6: ['eth0:open'] }), /--ipv6 eth0:open: policy must be pass, drop or nd-only/);
  // a config file's per-interface ipv6 survives --miss, and --ipv6 overrides it
  const dir = mkdtempSync(join(tmpdir(), 'gscip-cfg-ipv6-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'agent.json');
  writeFileSync(f, JSON.stringify({ interfaces: [{ name: 'eth0', ipv6: 'drop' }, { name: 'eth1' }] }));
  assert.deepEqual(agentConfigFromArgs({ config: f, miss: ['pass'] }).interfaces.map((i) => i.ipv6), ['drop', undefined]);
  assert.deepEqual(agentConfigFromArgs({ config: f, ipv6: ['eth1:pass'] }).interfaces.map((i) => i.ipv6), ['drop', 'pass']);
  assert.equal(resolveIpv6Policy(undefined, 'CL'), 'nd-only');
  assert.equal(resolveIpv6Policy(undefined, 'OP'), 'pass');
  assert.equal(resolveIpv6Policy(undefined, null), 'pass', 'mode unknown: as before (doctor warns)');
  assert.equal(resolveIpv6Policy('pass', 'CL'), 'pass', 'the operator decides');
});
