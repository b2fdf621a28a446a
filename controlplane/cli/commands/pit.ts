/** `gscip pit add|del`: static PIT entries (operator-installed). */
import { withPitWhy } from '../../maps/vocabulary.js';
import type { Argv, CommandModule } from 'yargs';
import { monotonicNs, reverseCid } from '../../maps/accessors.js';
import { Action, PIT_F_FLOW_KEY, PitState, Role } from '../../maps/abi.js';
import { flowKeyWriter } from '../../flows/kernel-flow-maps.js';
import type { FlowKeySpec, PitEntry } from '../../flows/pit-entry.js';
import { ACTIONS, DIRS, ENTRY_ACTION_NAMES } from '../../maps/vocabulary.js';
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

interface AddArgs extends InstanceArgs, CidArgs {
  action: string; group?: string; 'key-version'?: string; 'prev-key-version'?: string; both: boolean; 'flow-key-salt'?: string; 'flow-key-leg'?: string;
}

/**
 * The per-flow key of a static entry (--flow-key-salt, --flow-key-leg), or
 * undefined: without them the entry encrypts with the group key itself
 * (docs/pccom.md "UDP with the group key"). Exported for tests.
 */
export function flowKeyFromArgs(a: { action: unknown; both?: unknown; 'flow-key-salt'?: unknown; 'flow-key-leg'?: unknown }): FlowKeySpec | undefined {
  const salt = a['flow-key-salt'];
  const leg = a['flow-key-leg'];
  if (salt === undefined && leg === undefined) return undefined;
  if (salt === undefined || leg === undefined) throw new UsageError('--flow-key-salt and --flow-key-leg go together');
  const action = parseActionArg(a.action);
  if (action !== Action.ENCRYPT && action !== Action.DECRYPT) throw new UsageError('--flow-key-salt: only for encrypt/decrypt entries');
  if (a.both) throw new UsageError('--flow-key-salt: not with --both (the reverse direction is the other leg: add it on its own)');
  if (typeof salt !== 'string' || !/^[0-9a-fA-F]{16}$/.test(salt)) throw new UsageError(`--flow-key-salt: '${String(salt)}' is not 16 hex digits (8 random bytes, the same on both ends)`);
  if (leg !== 'fwd' && leg !== 'rev') throw new UsageError(`--flow-key-leg: '${String(leg)}' must be fwd or rev (the same on both ends of one direction)`);
  return { salt: salt.toLowerCase(), leg };
}

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
    .option('both', { type: 'boolean', default: false, describe: 'also add the reverse flow in the other direction (same action)' })
    .option('flow-key-salt', { type: 'string', describe: 'encrypt/decrypt: a per-flow key derived from the group key over this salt (16 hex digits, the same on both ends), instead of the group key' })
    .option('flow-key-leg', { type: 'string', describe: 'with --flow-key-salt: fwd | rev, which direction of the flow (the same on both ends of one direction)' }) as never,
  handler: guarded((a: AddArgs) => {
    const cid = parseCidArgs(a);
    const val = pitValueFromArgs(a);
    const fk = flowKeyFromArgs(a);
    if (fk) val.flags |= PIT_F_FLOW_KEY;
    const entries: Array<[Cid, PitVal]> = [[cid, val]];
    if (a.both) entries.push([reverseCid(cid), val]);
    return withMaps(a, (m) => {
      if (fk) {
        const w = flowKeyWriter(m)!;
        const e: PitEntry = {
          flow: { saddr: cid.saddr, daddr: cid.daddr, sport: cid.sport, dport: cid.dport, proto: cid.proto }, dir: DIRS.name(cid.dir) ?? 'ingress',
          action: ACTIONS.name(val.action) === 'encrypt' ? 'encrypt' : 'decrypt', group: val.group_id, version: val.key_version, state: 'confirmed', role: 'start', flowKey: fk,
          ...(val.prev_key_version ? { prevVersion: val.prev_key_version, prevFlowKey: fk } : {}),
        };
        w.install(e, cid);
        if (!m.flowKeys.get(cid)) throw new UsageError(`--flow-key-salt: group ${val.group_id} version ${val.key_version} is not in the key map: install it first (gscip keys set)`);
      }
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
