/** `gscip pit add|del`: static PIT entries (operator-installed). */
import { withPitWhy } from '../../maps/vocabulary.js';
import type { Argv, CommandModule } from 'yargs';
import { monotonicNs, reverseCid } from '../../maps/accessors.js';
import { Action, PitState, Role } from '../../maps/abi.js';
import { DIRS, ENTRY_ACTION_NAMES } from '../../maps/vocabulary.js';
import type { Cid, PitVal } from '../../maps/codecs.js';
import { cidString, parseActionArg, parseCidArgs, parseU32Arg, UsageError, type CidArgs } from '../args.js';
import { guarded, print, toJson } from '../output.js';
import { withInstance, withMaps, type InstanceArgs } from '../instance-args.js';

export function cidOptions<T>(y: Argv<T>): Argv<T & CidArgs> {
  return y
    .option('dir', { type: 'string', demandOption: true, describe: DIRS.names.join(' | ') })
    .option('proto', { type: 'string', demandOption: true, describe: 'tcp | udp' })
    .option('src', { type: 'string', demandOption: true, describe: 'source IPv4 (as on the wire at this interface)' })
    .option('sport', { type: 'string', demandOption: true, describe: 'source port' })
    .option('dst', { type: 'string', demandOption: true, describe: 'destination IPv4' })
    .option('dport', { type: 'string', demandOption: true, describe: 'destination port' }) as unknown as Argv<T & CidArgs>;
}

interface AddArgs extends InstanceArgs, CidArgs { action: string; group?: string; 'key-version'?: string; 'prev-key-version'?: string; both: boolean }

/** Build the PIT value from CLI args (exported for tests). */
export function pitValueFromArgs(a: { action: unknown; group?: unknown; 'key-version'?: unknown; 'prev-key-version'?: unknown }): PitVal {
  const action = parseActionArg(a.action);
  const crypto = action === Action.ENCRYPT || action === Action.DECRYPT;
  if (crypto && (a.group === undefined || a['key-version'] === undefined)) throw new UsageError('--group and --key-version are required for encrypt/decrypt');
  const group = a.group === undefined ? 0 : parseU32Arg(a.group, '--group');
  const keyVersion = a['key-version'] === undefined ? 0 : parseU32Arg(a['key-version'], '--key-version');
  if (crypto && group === 0) throw new UsageError('--group: 0 means no group; encrypt/decrypt need a group');
  const prev = a['prev-key-version'] === undefined ? 0 : parseU32Arg(a['prev-key-version'], '--prev-key-version');
  if (prev !== 0 && action !== Action.DECRYPT) throw new UsageError('--prev-key-version: only for decrypt entries (accepted during a key rotation)');
  const now = monotonicNs();
  // An operator's pass or drop says so in `gscip maps dump pit` (why: policy).
  const flags = action === Action.PASS || action === Action.DROP ? withPitWhy(0, 'policy') : 0;
  return { action, state: PitState.STATIC, role: Role.NONE, flags, group_id: group, key_version: keyVersion, prev_key_version: prev, created_ns: now, last_seen_ns: now };
}

const add: CommandModule<object, AddArgs> = {
  command: 'add',
  describe: 'add or replace a static PIT entry',
  builder: (y) => cidOptions(withInstance(y))
    .option('action', { type: 'string', demandOption: true, describe: ENTRY_ACTION_NAMES.join(' | ') })
    .option('group', { type: 'string', describe: 'group id (encrypt/decrypt)' })
    .option('key-version', { type: 'string', describe: 'key version (encrypt/decrypt)' })
    .option('prev-key-version', { type: 'string', describe: 'decrypt: previous key version still accepted during a rotation' })
    .option('both', { type: 'boolean', default: false, describe: 'also add the reverse flow in the other direction (same action)' }) as never,
  handler: guarded((a: AddArgs) => {
    const cid = parseCidArgs(a);
    const val = pitValueFromArgs(a);
    const entries: Array<[Cid, PitVal]> = [[cid, val]];
    if (a.both) entries.push([reverseCid(cid), val]);
    return withMaps(a, (m) => {
      m.pit.setBatch(entries);
      if (a.json) print(toJson(entries.map(([k, v]) => ({ cid: k, value: v }))));
      else for (const [k] of entries) print(`pit: ${DIRS.label(k.dir)} ${cidString(k)} -> ${a.action}`);
    });
  }),
};

interface DelArgs extends InstanceArgs, CidArgs { both: boolean }

const del: CommandModule<object, DelArgs> = {
  command: 'del',
  describe: 'delete a PIT entry',
  builder: (y) => cidOptions(withInstance(y)).option('both', { type: 'boolean', default: false, describe: 'also delete the reverse flow' }) as never,
  handler: guarded((a: DelArgs) => {
    const cid = parseCidArgs(a);
    const keys = a.both ? [cid, reverseCid(cid)] : [cid];
    return withMaps(a, (m) => {
      let missing = 0;
      for (const k of keys) {
        // its per-flow key (PCCOM, gscip_flow_keys) goes with it; an earlier build's pins have no such map
        if (m.pit.delete(k)) { m.flowKeys.delete(k); print(`pit: deleted ${DIRS.label(k.dir)} ${cidString(k)}`); }
        else { process.stderr.write(`pit: no entry ${DIRS.label(k.dir)} ${cidString(k)}\n`); missing++; }
      }
      if (missing) process.exitCode = 4;
    });
  }),
};

export const pitCommand: CommandModule = {
  command: 'pit <command>',
  describe: 'static PIT entries',
  builder: (y) => y.command(add as CommandModule).command(del as CommandModule).demandCommand(1),
  handler: () => undefined,
};
