/**
 * The GNAT following its outside interface's address (`nat.follow`,
 * docs/natf.md "When the external address changes"): rtnetlink address
 * events in (the lines `ip -o -4 monitor address` prints, parsed by Mobile
 * PPC's monitor), the change of the external address out, in either order of
 * the events, never to an inside or special address; the sessions on the old
 * address flushed with their own port claims only (fake maps); the ACT's names
 * published again with the new address, retried until NOERROR, the published
 * names file rewritten (fake sender); and the config naming its problems.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMonitorLine, type MonitorEvent } from '../../controlplane/mobility/move-events.js';
import { ExternalFollower, usableExternal } from '../../controlplane/natf/external-follow.js';
import { flushExternal } from '../../controlplane/natf/nat-flush.js';
import { ActDdns, type SendUpdate } from '../../controlplane/natf/act-ddns.js';
import { parseDeliveredAct } from '../../controlplane/natf/act.js';
import { natConfigSchema, parseInsidePrefix } from '../../controlplane/natf/nat-config.js';
import { NAT_F_IN, NAT_F_SYN_OUT } from '../../controlplane/maps/abi.js';
import type { Cid, NatPortKey, NatVal } from '../../controlplane/maps/codecs.js';
import { ConfigError, parseAgentConfig } from '../../controlplane/config/agent-config.js';
import { tempDir } from '../gms/helpers.js';
import { JsonKeyMap } from '../lib/json-key-map.js';
import { actDdnsFiles } from '../lib/act-ddns-fixture.js';

const INSIDE = [parseInsidePrefix('100.64.1.0/24')];
const ev = (line: string): MonitorEvent => {
  const e = parseMonitorLine(line);
  assert.ok(e, line);
  return e;
};
const add = (dev: string, addr: string, len = 24): MonitorEvent => ev(`3: ${dev}    inet ${addr}/${len} scope global ${dev}\\       valid_lft forever preferred_lft forever`);
const del = (dev: string, addr: string, len = 24): MonitorEvent => ev(`Deleted 3: ${dev}    inet ${addr}/${len} scope global ${dev}\\       valid_lft forever preferred_lft forever`);

test('follow: the new address first, then the old one removed (a DHCP renewal to another address): one change, when the old one goes', { timeout: 5000 }, () => {
  const f = new ExternalFollower('out0', '192.0.2.2', INSIDE, [{ dev: 'out0', addr: '192.0.2.2' }, { dev: 'in0', addr: '100.64.1.1' }]);
  assert.equal(f.check(), null, 'the configured address is on the interface');
  assert.equal(f.on(add('out0', '192.0.2.22')), null, 'a second address alone changes nothing');
  assert.deepEqual(f.on(del('out0', '192.0.2.2')), { from: '192.0.2.2', to: '192.0.2.22' });
  assert.equal(f.external, '192.0.2.22');
  assert.equal(f.on(add('out0', '192.0.2.2')), null, 'the old address back next to the new one: the new one stays');
});

test('follow: the old address removed first: the change waits for the next usable address, which is never inside, link-local or virtual', { timeout: 5000 }, () => {
  const f = new ExternalFollower('out0', '192.0.2.2', INSIDE, [{ dev: 'out0', addr: '192.0.2.2' }]);
  assert.equal(f.on(del('out0', '192.0.2.2')), null, 'no address: nothing to take yet');
  assert.equal(f.on(add('out0', '169.254.7.7', 16)), null, 'link-local (a DHCP client\'s fallback) is not taken');
  assert.equal(f.on(add('out0', '100.64.1.99')), null, 'an address inside an inside prefix is not taken');
  assert.equal(f.on(add('out0', '198.18.0.5')), null, 'a virtual address is not taken');
  assert.equal(f.on(add('eth9', '203.0.113.9')), null, 'another interface is not followed');
  assert.deepEqual(f.on(add('out0', '203.0.113.7')), { from: '192.0.2.2', to: '203.0.113.7' });
  assert.equal(f.on(add('out0', '203.0.113.8')), null);
  assert.deepEqual(f.on(del('out0', '203.0.113.7')), { from: '203.0.113.7', to: '203.0.113.8' }, 'and again from there');
  assert.equal(usableExternal('192.0.2.2', INSIDE), true);
  assert.equal(usableExternal('127.0.0.1', INSIDE), false);
});

test('follow at start: an address the interface got while no agent ran is taken at once', { timeout: 5000 }, () => {
  const f = new ExternalFollower('out0', '192.0.2.2', INSIDE, [{ dev: 'out0', addr: '192.0.2.30' }]);
  assert.deepEqual(f.check(), { from: '192.0.2.2', to: '192.0.2.30' });
  assert.equal(f.check(), null);
  const none = new ExternalFollower('out0', '192.0.2.2', INSIDE, []);
  assert.equal(none.check(), null, 'no address on the interface: the configured one is kept');
});


test('the sessions on the old external address are flushed with their own port claims; the others stay', { timeout: 5000 }, () => {
  const sessions = new JsonKeyMap<Cid, NatVal>();
  const ports = new JsonKeyMap<NatPortKey, Cid>();
  const key = (sport: number, proto: number): Cid => ({ saddr: '100.64.1.10', daddr: '192.0.2.1', sport, dport: 80, proto, dir: 1 });
  const val = (ext: string, port: number, flags: number): NatVal => ({ ext_addr: ext, ext_port: port, origin: 0, flags, created_ns: 1n, last_seen_ns: 1n });
  sessions.set(key(1, 6), val('192.0.2.2', 20001, NAT_F_SYN_OUT | NAT_F_IN)); ports.set({ port: 20001, proto: 6 }, key(1, 6));
  sessions.set(key(2, 17), val('192.0.2.2', 20002, NAT_F_IN)); ports.set({ port: 20002, proto: 17 }, key(2, 17));
  // a session already on the new address, and a claim of the old one's port taken by it since
  sessions.set(key(3, 6), val('192.0.2.22', 20003, NAT_F_SYN_OUT | NAT_F_IN)); ports.set({ port: 20003, proto: 6 }, key(3, 6));
  sessions.set(key(4, 6), val('192.0.2.2', 20003, NAT_F_SYN_OUT));
  const n = flushExternal({ sessions, ports }, '192.0.2.2');
  assert.deepEqual(n, { udp: 1, tcp_established: 1, tcp_transitory: 1 });
  assert.deepEqual([...sessions.entries()].map(([k]) => k.sport), [3]);
  assert.deepEqual([...ports.entries()].map(([k]) => k.port), [20003], 'the claim of the session on the new address stays');
});

test('DDNS: after a change of the external address every published name is sent again with the new one (republished), retried until NOERROR, the names file rewritten', { timeout: 5000 }, async (t) => {
  const { dir, stateFile, cfg } = actDdnsFiles(t, 'act-ddns-follow');
  const sent: string[] = [];
  let refuse = '';
  const send: SendUpdate = async (r) => {
    sent.push(`${r.withdraw ? 'withdraw' : 'publish'} ${r.name} ${r.addr}`);
    return { rcode: r.name === refuse ? 'SERVFAIL' : 'NOERROR', tsigError: 'NOERROR', signed: true };
  };
  const act = parseDeliveredAct([
    { name: 'bob.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [10] },
    { name: 'carol.example.net', address: '100.64.1.11', outsideAccess: 'allow', groups: [10] },
    { name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'deny', groups: [10] },
  ]);
  const d = new ActDdns(cfg, '192.0.2.2', { send, stateFile });
  await d.publish(act);
  assert.deepEqual(sent.splice(0), ['publish bob.example.net 192.0.2.2', 'publish carol.example.net 192.0.2.2']);
  assert.deepEqual(await d.publish(act), [], 'nothing to send while the address stays');
  d.setExternal('192.0.2.22');
  refuse = 'carol.example.net';
  assert.deepEqual(await d.publish(act), [{ name: 'bob.example.net', result: 'NOERROR', action: 'republished' }, { name: 'carol.example.net', result: 'SERVFAIL', action: 'republished' }]);
  refuse = '';
  assert.deepEqual(await d.publish(act), [{ name: 'carol.example.net', result: 'NOERROR', action: 'republished' }], 'the failed one again');
  assert.deepEqual(sent, ['publish bob.example.net 192.0.2.22', 'publish carol.example.net 192.0.2.22', 'publish carol.example.net 192.0.2.22']);
  assert.deepEqual(await d.publish(act), []);
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { names: Record<string, string> };
  assert.deepEqual(state.names, { 'bob.example.net': '192.0.2.22', 'carol.example.net': '192.0.2.22' });
});

test('nat.follow in the config: a boolean, off by default; refused on a GSRA router; each problem names the field', { timeout: 5000 }, () => {
  const nat = { external: '192.0.2.2', inside: ['100.64.1.0/24'] };
  assert.equal(natConfigSchema.parse(nat).follow, false);
  assert.equal(natConfigSchema.parse({ ...nat, follow: true }).follow, true);
  const base = { interfaces: [{ name: 'out0' }], handlers: ['nat'] };
  assert.throws(() => parseAgentConfig({ ...base, nat: { ...nat, follow: 'yes' } }), (e: unknown) => e instanceof ConfigError && /nat\.follow/.test(e.message));
  assert.throws(() => parseAgentConfig({ interfaces: [{ name: 'out0' }], handlers: ['nat', 'gsra-router'], nat: { ...nat, follow: true }, gsra: { ggr: '192.0.2.2', pgr: '100.64.1.1', insidePinDir: '/sys/fs/bpf/gscip/x' } }),
    (e: unknown) => e instanceof ConfigError && /nat\.follow: a GSRA router's NAT address is gsra\.ggr/.test(e.message));
});
