/** CLI: argument parsers name the bad argument; the binary's exit codes; tables. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseCidArgs, parseKeyMaterial, parseActionArg, parseU32Arg, UsageError } from '../../controlplane/cli/args.js';
import { pitValueFromArgs } from '../../controlplane/cli/commands/pit.js';
import { pitWhyOf } from '../../controlplane/maps/vocabulary.js';
import { table } from '../../controlplane/cli/output.js';
import { Action, Dir } from '../../controlplane/maps/abi.js';

const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');

function gscip(args: string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', input, timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('CID arguments are parsed and each bad one is named', () => {
  const ok = { src: '192.0.2.1', dst: '192.0.2.2', sport: '1000', dport: '80', proto: 'TCP', dir: 'egress' };
  assert.deepEqual(parseCidArgs(ok), { saddr: '192.0.2.1', daddr: '192.0.2.2', sport: 1000, dport: 80, proto: 6, dir: Dir.EGRESS });
  assert.throws(() => parseCidArgs({ ...ok, src: '192.0.2' }), /--src: '192.0.2' is not an IPv4 address/);
  assert.throws(() => parseCidArgs({ ...ok, dport: '65536' }), /--dport: '65536' is not a port/);
  assert.throws(() => parseCidArgs({ ...ok, proto: 'icmp' }), /--proto: 'icmp' must be tcp or udp/);
  assert.throws(() => parseCidArgs({ ...ok, dir: 'up' }), /--dir: 'up' must be ingress or egress/);
  assert.throws(() => parseActionArg('none'), UsageError);
  assert.equal(parseU32Arg('0x10', '--group'), 16);
  assert.throws(() => parseU32Arg('-1', '--group'), /--group: '-1'/);
});

test('PIT values: encrypt/decrypt need a group and a key version', () => {
  assert.equal(pitValueFromArgs({ action: 'drop' }).action, Action.DROP);
  assert.equal(pitWhyOf(pitValueFromArgs({ action: 'pass' }).flags), 'policy', 'an operator entry says why');
  assert.equal(pitWhyOf(pitValueFromArgs({ action: 'encrypt', group: '5', 'key-version': '1' }).flags), 'none');
  assert.throws(() => pitValueFromArgs({ action: 'encrypt', group: '5' }), /--group and --key-version are required/);
  assert.throws(() => pitValueFromArgs({ action: 'decrypt', group: '0', 'key-version': '1' }), /--group: 0 means no group/);
  const v = pitValueFromArgs({ action: 'encrypt', group: '7', 'key-version': '3' });
  assert.equal(v.group_id, 7);
  assert.equal(v.key_version, 3);
  assert.equal(pitValueFromArgs({ action: 'decrypt', group: '7', 'key-version': '4', 'prev-key-version': '3' }).prev_key_version, 3);
  assert.throws(() => pitValueFromArgs({ action: 'encrypt', group: '7', 'key-version': '4', 'prev-key-version': '3' }), /--prev-key-version: only for decrypt/);
});

test('key material: 64 hex digits or 32 raw bytes, nothing else', () => {
  const hex = 'ab'.repeat(32);
  assert.deepEqual(parseKeyMaterial(Buffer.from(`${hex}\n`), 'stdin'), Buffer.alloc(32, 0xab));
  assert.deepEqual(parseKeyMaterial(Buffer.alloc(32, 0x01), 'f'), Buffer.alloc(32, 0x01));
  assert.throws(() => parseKeyMaterial(Buffer.from('abcd'), 'stdin'), /stdin: expected 64 hex digits, got 4/);
  assert.throws(() => parseKeyMaterial(Buffer.alloc(31, 0xff), '--key-file k'), /--key-file k: expected 64 hex digits or 32 raw bytes/);
});

test('table aligns columns', () => {
  assert.equal(table(['A', 'LONGER'], [['xyz', 1], ['q', 22]]), 'A    LONGER\nxyz  1\nq    22');
});

test('the binary: usage errors exit 2 naming the argument, missing instance exits 4', (t) => {
  const pins = mkdtempSync(join(tmpdir(), 'gscip-cli-'));
  t.after(() => rmSync(pins, { recursive: true, force: true }));
  let r = gscip(['pit', 'add', '--dir', 'egress']);
  assert.equal(r.code, 2);
  assert.match(r.err, /Missing required arguments: proto, src, sport, dst, dport, action/);
  r = gscip(['pit', 'add', '--dir', 'sideways', '--proto', 'tcp', '--src', '192.0.2.1', '--sport', '1', '--dst', '192.0.2.2', '--dport', '2', '--action', 'pass', '--pin-root', pins]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--dir: 'sideways' must be ingress or egress/);
  r = gscip(['maps', 'dump', 'pit', '--instance', 'absent', '--pin-root', pins]);
  assert.equal(r.code, 4);
  assert.match(r.err, /no pinned maps in .*\/absent/);
  r = gscip(['agent', 'run', '--iface', 'eth0', '--miss', 'eth9:pass', '--pin-root', pins]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--miss eth9:pass: interface 'eth9' is not one of --iface/);
  r = gscip(['bogus']);
  assert.equal(r.code, 2);
  r = gscip(['keys', 'set', '--group', '1', '--version', '1', '--pin-root', pins], 'nothex');
  assert.equal(r.code, 2);
  assert.match(r.err, /stdin: expected 64 hex digits or 32 raw bytes/);
  assert.doesNotMatch(r.err + r.out, /nothex/, 'key input is never echoed');
  r = gscip(['keys', 'set', '--group', '1', '--version', '1', '--rounds', '10', '--pin-root', pins], 'ab'.repeat(32));
  assert.equal(r.code, 2);
  assert.match(r.err, /--rounds: '10' must be 20, 12 or 8/);
});
