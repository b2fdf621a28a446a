/**
 * `gscip keys set|del|ls`: group keys in the fast path. The key comes from a
 * file or stdin (64 hex digits or 32 raw bytes), never from the command line
 * (it would land in shell history and ps). `ls` never prints key material.
 */
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { monotonicNs } from '../../maps/accessors.js';
import { KEY_F_NONE, KEY_F_ROUNDS_12, KEY_F_ROUNDS_8 } from '../../maps/abi.js';
import { parseKeyMaterial, parseU32Arg, UsageError } from '../args.js';
import { guarded, print } from '../output.js';
import { withInstance, withMaps, type InstanceArgs } from '../instance-args.js';
import { dumpKeys } from './maps.js';

interface SetArgs extends InstanceArgs { group: string; version: string; 'key-file'?: string; rounds: number }

const ROUNDS_FLAG: Record<number, number> = { 20: KEY_F_NONE, 12: KEY_F_ROUNDS_12, 8: KEY_F_ROUNDS_8 };

const set: CommandModule<object, SetArgs> = {
  command: 'set',
  describe: 'install a group key version (key from --key-file or stdin)',
  builder: (y) => withInstance(y)
    .option('group', { type: 'string', demandOption: true })
    .option('version', { type: 'string', demandOption: true })
    .option('key-file', { type: 'string', describe: 'file with 64 hex digits or 32 raw bytes; default: stdin' })
    .option('rounds', { type: 'number', default: 20, describe: 'PCCOM cipher rounds: 20 (ChaCha20), 12 or 8' }) as never,
  handler: guarded((a: SetArgs) => {
    const group = parseU32Arg(a.group, '--group');
    const version = parseU32Arg(a.version, '--version');
    const flags = ROUNDS_FLAG[a.rounds];
    if (flags === undefined) throw new UsageError(`--rounds: '${a.rounds}' must be 20, 12 or 8`);
    const src = a['key-file'] ?? 'stdin';
    const raw = readFileSync(a['key-file'] ?? 0);
    const key = parseKeyMaterial(raw, a['key-file'] ? `--key-file ${src}` : 'stdin');
    return withMaps(a, (m) => {
      m.keys.set({ group_id: group, version }, { key, flags, installed_ns: monotonicNs() });
      key.fill(0);
      print(`keys: group ${group} version ${version} installed (ChaCha${a.rounds})`);
    });
  }),
};

const del: CommandModule<object, InstanceArgs & { group: string; version: string }> = {
  command: 'del',
  describe: 'remove a group key version',
  builder: (y) => withInstance(y).option('group', { type: 'string', demandOption: true }).option('version', { type: 'string', demandOption: true }) as never,
  handler: guarded((a: InstanceArgs & { group: string; version: string }) => {
    const id = { group_id: parseU32Arg(a.group, '--group'), version: parseU32Arg(a.version, '--version') };
    return withMaps(a, (m) => {
      if (m.keys.delete(id)) print(`keys: group ${id.group_id} version ${id.version} removed`);
      else { process.stderr.write(`keys: no key group ${id.group_id} version ${id.version}\n`); process.exitCode = 4; }
    });
  }),
};

const ls: CommandModule<object, InstanceArgs> = {
  command: 'ls',
  describe: 'list installed key versions (never the keys)',
  builder: (y) => withInstance(y) as never,
  handler: guarded((a: InstanceArgs) => withMaps(a, (m) => print(dumpKeys(m, a.json)))),
};

export const keysCommand: CommandModule = {
  command: 'keys <command>',
  describe: 'group keys in the fast path',
  builder: (y) => y.command(set as CommandModule).command(del as CommandModule).command(ls as CommandModule).demandCommand(1),
  handler: () => undefined,
};
