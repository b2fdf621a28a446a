/** `gscip xlat add|del`: static translation entries (key = pre-translation view). */
import type { CommandModule } from 'yargs';
import { monotonicNs } from '../../maps/accessors.js';
import { DIRS, XLAT_KINDS } from '../../maps/vocabulary.js';
import type { XlatVal } from '../../maps/codecs.js';
import { cidString, parseCidArgs, parseIPv4Arg, parsePortArg, UsageError, type CidArgs } from '../args.js';
import { guarded, print, toJson } from '../output.js';
import { withInstance, withMaps, type InstanceArgs } from '../instance-args.js';
import { cidOptions } from './pit.js';

interface AddArgs extends InstanceArgs, CidArgs { 'to-src'?: string; 'to-dst'?: string; 'to-sport'?: string; 'to-dport'?: string; kind: string }

const add: CommandModule<object, AddArgs> = {
  command: 'add',
  describe: 'translate a flow: egress key = what the stack sent, ingress key = what arrived; unspecified --to-* fields stay unchanged',
  builder: (y) => cidOptions(withInstance(y))
    .option('to-src', { type: 'string' }).option('to-sport', { type: 'string' })
    .option('to-dst', { type: 'string' }).option('to-dport', { type: 'string' })
    .option('kind', { type: 'string', default: 'static', describe: `${XLAT_KINDS.names.join(' | ')} (visibility only)` }) as never,
  handler: guarded((a: AddArgs) => {
    const cid = parseCidArgs(a);
    let kind: number;
    try { kind = XLAT_KINDS.parse(a.kind, '--kind'); } catch (e) { throw new UsageError((e as Error).message); }
    const v: XlatVal = {
      saddr: a['to-src'] !== undefined ? parseIPv4Arg(a['to-src'], '--to-src') : cid.saddr,
      daddr: a['to-dst'] !== undefined ? parseIPv4Arg(a['to-dst'], '--to-dst') : cid.daddr,
      sport: a['to-sport'] !== undefined ? parsePortArg(a['to-sport'], '--to-sport') : cid.sport,
      dport: a['to-dport'] !== undefined ? parsePortArg(a['to-dport'], '--to-dport') : cid.dport,
      kind, created_ns: monotonicNs(),
    };
    if (v.saddr === cid.saddr && v.daddr === cid.daddr && v.sport === cid.sport && v.dport === cid.dport) {
      throw new UsageError('--to-src/--to-dst/--to-sport/--to-dport: at least one must change the flow');
    }
    return withMaps(a, (m) => {
      m.xlat.set(cid, v);
      if (a.json) print(toJson({ cid, value: v }));
      else print(`xlat: ${DIRS.label(cid.dir)} ${cidString(cid)} => ${v.saddr}:${v.sport} > ${v.daddr}:${v.dport}`);
    });
  }),
};

const del: CommandModule<object, InstanceArgs & CidArgs> = {
  command: 'del',
  describe: 'delete a translation entry',
  builder: (y) => cidOptions(withInstance(y)) as never,
  handler: guarded((a: InstanceArgs & CidArgs) => {
    const cid = parseCidArgs(a);
    return withMaps(a, (m) => {
      if (m.xlat.delete(cid)) print(`xlat: deleted ${cidString(cid)}`);
      else { process.stderr.write(`xlat: no entry ${cidString(cid)}\n`); process.exitCode = 4; }
    });
  }),
};

export const xlatCommand: CommandModule = {
  command: 'xlat <command>',
  describe: 'static translation entries',
  builder: (y) => y.command(add as CommandModule).command(del as CommandModule).demandCommand(1),
  handler: () => undefined,
};
