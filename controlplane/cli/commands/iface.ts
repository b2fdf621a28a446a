/** `gscip iface set IFNAME --miss ...`: change what a protected interface does with PIT misses, live. */
import type { CommandModule } from 'yargs';
import { ifNameToIndex } from '../../bpf/libc.js';
import { IFACE_F_PROTECTED } from '../../maps/abi.js';
import { MISS_ACTIONS } from '../../maps/vocabulary.js';
import { UsageError } from '../args.js';
import { guarded, print } from '../output.js';
import { withInstance, withMaps, type InstanceArgs } from '../instance-args.js';

interface SetArgs extends InstanceArgs { name: string; miss?: string; 'miss-ingress'?: string; 'miss-egress'?: string }

function miss(v: string | undefined, arg: string): number | undefined {
  if (v === undefined) return undefined;
  try { return MISS_ACTIONS.parse(v, arg); } catch (e) { throw new UsageError((e as Error).message); }
}

const set: CommandModule<object, SetArgs> = {
  command: 'set <name>',
  describe: `set the PIT miss action of an interface (${MISS_ACTIONS.names.join(' | ')}), both or one direction`,
  builder: (y) => withInstance(y)
    .positional('name', { type: 'string', describe: 'interface name (in this network namespace)' })
    .option('miss', { type: 'string', describe: 'both directions' })
    .option('miss-ingress', { type: 'string' })
    .option('miss-egress', { type: 'string' }) as never,
  handler: guarded((a: SetArgs) => {
    const both = miss(a.miss, '--miss');
    const ing = miss(a['miss-ingress'], '--miss-ingress') ?? both;
    const egr = miss(a['miss-egress'], '--miss-egress') ?? both;
    if (ing === undefined && egr === undefined) throw new UsageError('--miss, --miss-ingress or --miss-egress: give at least one');
    let ifindex: number;
    try { ifindex = ifNameToIndex(a.name); } catch { throw new UsageError(`${a.name}: no such interface in this network namespace`); }
    return withMaps(a, (m) => {
      const cur = m.iface.get(ifindex);
      if (!cur) throw new UsageError(`${a.name}: not protected by instance '${a.instance}' (start the agent on it first)`);
      const next = { miss_action: [ing ?? cur.miss_action[0], egr ?? cur.miss_action[1]], flags: cur.flags | IFACE_F_PROTECTED };
      m.iface.set(ifindex, next, 'exist');
      print(`iface ${a.name}: miss ingress=${MISS_ACTIONS.label(next.miss_action[0])} egress=${MISS_ACTIONS.label(next.miss_action[1])}`);
    });
  }),
};

export const ifaceCommand: CommandModule = {
  command: 'iface <command>',
  describe: 'per-interface settings',
  builder: (y) => y.command(set as CommandModule).demandCommand(1),
  handler: () => undefined,
};
