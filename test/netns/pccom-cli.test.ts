/**
 * PCCOM configured the way an operator does it before DPRP exists: two
 * `gscip agent run` processes (a and b), keys installed with `gscip keys set`
 * (key on stdin), flows with `gscip pit add --action encrypt|decrypt --group
 * --key-version`. Same NAT + firewall topology as pccom.test.ts; the bytes
 * must arrive identical and no plaintext marker may cross r.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';
import {
  A, B, R_OUT, PccomTopo, TCP_PORT, UDP_PORT, TransitCapture, markedData, sha256, tcpTransfer, udpTransfer,
} from './pccom-topology.js';

const skip = bpfUnavailable();
const CPORT = 44100;
const UPORT = 44101;

test('PCCOM via the agent and the CLI: static keys and PIT entries, TCP and UDP through NAT', { skip: skip ?? false, timeout: 180_000 }, async (t) => {
  const p = new PccomTopo('pccli', { attach: false });
  const g = new GscipRunner(p.topo, 'a');
  t.after(() => { g.cleanup(); p.cleanup(); });

  const agents = [
    await g.startAgent('a', ['--iface', 'va', '--miss', 'pass', '--metrics', 'none'], 'a'),
    await g.startAgent('b', ['--iface', 'vb', '--miss', 'pass', '--metrics', 'none'], 'b'),
  ];
  t.after(async () => { for (const ag of agents) await ag.stop('SIGKILL'); });

  const keyHex = randomBytes(32).toString('hex');
  for (const h of ['a', 'b'] as const) g.ok(h, ['keys', 'set', ...g.instanceArgs(h), '--group', '3', '--version', '1'], `${keyHex}\n`);
  assert.doesNotMatch(g.ok('a', ['keys', 'ls', ...g.instanceArgs('a')]), new RegExp(keyHex.slice(0, 16)), 'keys ls never shows key material');

  const pit = (host: 'a' | 'b', dir: string, proto: string, src: string, sport: number, dst: string, dport: number, action: string, extra: string[] = []): void => {
    g.ok(host, ['pit', 'add', ...g.instanceArgs(host), '--dir', dir, '--proto', proto, '--src', src, '--sport', String(sport),
      '--dst', dst, '--dport', String(dport), '--action', action, '--group', '3', '--key-version', '1', ...extra]);
  };
  // TCP with the group key; UDP with static per-flow keys (one salt, both ends; a leg per direction)
  const salt = randomBytes(8).toString('hex');
  for (const [proto, cport, sport] of [['tcp', CPORT, TCP_PORT], ['udp', UPORT, UDP_PORT]] as const) {
    const fk = (leg: string) => (proto === 'udp' ? ['--flow-key-salt', salt, '--flow-key-leg', leg] : []);
    pit('a', 'egress', proto, A, cport, B, sport, 'encrypt', fk('fwd'));
    pit('a', 'ingress', proto, B, sport, A, cport, 'decrypt', fk('rev'));
    pit('b', 'ingress', proto, R_OUT, cport, B, sport, 'decrypt', fk('fwd'));   // b sees r's outside address (masquerade)
    pit('b', 'egress', proto, B, sport, R_OUT, cport, 'encrypt', fk('rev'));
  }
  const refused = g.cli('a', ['pit', 'add', ...g.instanceArgs('a'), '--dir', 'egress', '--proto', 'udp', '--src', A, '--sport', '1', '--dst', B, '--dport', '2',
    '--action', 'encrypt', '--group', '3', '--key-version', '9', '--flow-key-salt', salt, '--flow-key-leg', 'fwd']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.err, /not in the key map/, 'a per-flow key needs its group key: refused with a message');

  const data = markedData(4 << 20);
  const udata = markedData(200 * 1000);
  const cap = await TransitCapture.start(p.topo);
  const tr = await tcpTransfer(p.topo, data, CPORT);
  const ur = await udpTransfer(p.topo, udata, UPORT);
  const leak = await cap.stop();
  assert.ok(tr.completed, 'TCP transfer completed');
  assert.equal(sha256(tr.received), sha256(data), 'TCP bytes identical end to end');
  assert.equal(sha256(ur.received), sha256(udata), `UDP bytes identical end to end (${ur.datagrams} datagrams)`);
  assert.equal(leak.markers, 0, 'no plaintext marker crossed r');
  assert.ok(leak.bytes > 4 << 20, 'the capture saw the transfer');

  const rows = JSON.parse(g.ok('b', ['maps', 'dump', 'stats', '--json', ...g.instanceArgs('b')])) as Array<{ name: string; packets: string | number; bytes?: string | number }>;
  const count = (name: string): number => Number(rows.find((r) => r.name === name)?.packets ?? 0);
  const bytes = (name: string): number => Number(rows.find((r) => r.name === name)?.bytes ?? 0);
  // GSO/GRO stay on: one counted skb may carry many segments, so count bytes
  assert.ok(count('pit_decrypt') > 0 && bytes('pit_decrypt') >= (4 << 20) + 200 * 1000,
    `b decrypted every byte (${bytes('pit_decrypt')} bytes in ${count('pit_decrypt')} skbs)`);
  assert.equal(count('bad_keyed_csum'), 0, 'no bad keyed checksum on b');
  // the UDP flow went under its per-flow keys: a's sender counted every datagram it sent, b's receiver followed
  const fks = (h: 'a' | 'b') => JSON.parse(g.ok(h, ['maps', 'dump', 'flow-keys', '--json', ...g.instanceArgs(h)])) as Array<{ dir: string; counter: string; salt: string; leg: string }>;
  const sent = fks('a').find((r) => r.dir === 'egress')!;
  const recv = fks('b').find((r) => r.dir === 'ingress')!;
  assert.equal(sent.salt, salt);
  assert.equal(sent.leg, 'fwd');
  assert.ok(Number(sent.counter) >= (ur.datagrams ?? 1), `a's per-flow counter (${sent.counter}) covers the ${ur.datagrams} datagrams`);
  assert.equal(Number(recv.counter), Number(sent.counter) - 1, 'b accepted up to the last counter sent');
});
