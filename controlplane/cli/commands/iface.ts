/** `gscip iface set IFNAME --miss ... --ipv6 ...`: change what a protected interface does with PIT misses and with IPv6, live. */
import type { CommandModule } from 'yargs';
import { ifNameToIndex } from '../../bpf/libc.js';
import { IFACE_F_PROTECTED, IPV6_POLICY_BY_NAME, ipv6PolicyName, type Ipv6PolicyName } from '../../maps/abi.js';
import { ipv6PolicyOf } from '../../maps/codecs.js';
import { MISS_ACTIONS } from '../../maps/vocabulary.js';
import { UsageError } from '../args.js';
import { guarded, print } from '../output.js';
import { withInstance, withMaps, type InstanceArgs } from '../instance-args.js';

interface SetArgs extends InstanceArgs { name: string; miss?: string; 'miss-ingress'?: string; 'miss-egress'?: string; ipv6?: string }

function miss(v: string | undefined, arg: string): number | undefined {
  if (v === undefined) return undefined;
  try { return MISS_ACTIONS.parse(v, arg); } catch (e) { throw new UsageError((e as Error).message); }
}

const set: CommandModule<object, SetArgs> = {
  command: 'set <name>',
  describe: `set the PIT miss action of an interface (${MISS_ACTIONS.names.join(' | ')}), both or one direction, and its IPv6 policy (pass | drop | nd-only)`,
  builder: (y) => withInstance(y)
    .positional('name', { type: 'string', describe: 'interface name (in this network namespace)' })
    .option('miss', { type: 'string', describe: 'both directions' })
    .option('miss-ingress', { type: 'string' })
    .option('miss-egress', { type: 'string' })
    .option('ipv6', { type: 'string', describe: 'IPv6 policy, both directions: pass | drop | nd-only (ND and link-local only)' }) as never,
  handler: guarded((a: SetArgs) => {
    const both = miss(a.miss, '--miss');
    const ing = miss(a['miss-ingress'], '--miss-ingress') ?? both;
    const egr = miss(a['miss-egress'], '--miss-egress') ?? both;
    let ipv6: number | undefined;
    if (a.ipv6 !== undefined) {
      if (!Object.hasOwn(IPV6_POLICY_BY_NAME, a.ipv6)) throw new UsageError(`--ipv6: unknown value '${a.ipv6}' (expected one of ${Object.keys(IPV6_POLICY_BY_NAME).join(', ')})`);
      ipv6 = IPV6_POLICY_BY_NAME[a.ipv6 as Ipv6PolicyName];
    }
    if (ing === undefined && egr === undefined && ipv6 === undefined) throw new UsageError('--miss, --miss-ingress, --miss-egress or --ipv6: give at least one');
    let ifindex: number;
    try { ifindex = ifNameToIndex(a.name); } catch { throw new UsageError(`${a.name}: no such interface in this network namespace`); }
    return withMaps(a, (m) => {
      const cur = m.iface.get(ifindex);
      if (!cur) throw new UsageError(`${a.name}: not protected by instance '${a.instance}' (start the agent on it first)`);
      const next = { miss_action: [ing ?? cur.miss_action[0], egr ?? cur.miss_action[1]], flags: cur.flags | IFACE_F_PROTECTED, ipv6_policy: ipv6 ?? ipv6PolicyOf(cur) };
      m.iface.set(ifindex, next, 'exist');
      print(`iface ${a.name}: miss ingress=${MISS_ACTIONS.label(next.miss_action[0])} egress=${MISS_ACTIONS.label(next.miss_action[1])} ipv6=${ipv6PolicyName(next.ipv6_policy)}`);
    });
  }),
};

export const ifaceCommand: CommandModule = {
  command: 'iface <command>',
  describe: 'per-interface settings',
  builder: (y) => y.command(set as CommandModule).demandCommand(1),
  handler: () => undefined,
};
