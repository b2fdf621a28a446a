/**
 * `gscip agent run|stop|status|detach` (+ `enroll` from agent-gms.ts).
 */
import type { Argv, CommandModule } from 'yargs';
import { readStats } from '../../maps/accessors.js';
import { Agent, detachInstance } from '../../agent/agent.js';
import { attachedPrograms, hasClsact } from '../../agent/datapath.js';
import { lockHeld, netnsInode, readState } from '../../agent/instance.js';
import { applyIpv6Flags, applyMissFlags, applyStagesFlag, parseAgentConfig, readConfigFile, ConfigError, type AgentConfigInput } from '../../config/agent-config.js';
import { logger } from '../../log/logger.js';
import { UsageError } from '../args.js';
import { guarded, print, table, toJson, EXIT } from '../output.js';
import { pathsOf, withInstance, withMaps, type InstanceArgs } from '../instance-args.js';
import { agentGmsCommands, agentGmsStatus, formatAgentGmsStatus } from './agent-gms.js';

interface RunArgs {
  config?: string; iface?: string[]; instance?: string; miss?: string[]; metrics?: string; handler?: string[]; 'bpf-object'?: string;
  'pin-root'?: string; 'run-dir'?: string; 'detach-on-exit'?: boolean; 'gms-data-dir'?: string; 'stash-ttl-ms'?: number;
  'stash-per-flow'?: number; 'stash-total'?: number; 'punt-rate'?: number; 'punt-burst'?: number; 'pit-max-entries'?: number;
  'ge-type'?: string; 'ge-mode'?: string; stages?: string; ipv6?: string[];
}

const GE_TYPE_FLAG = ['GES', 'GEN', 'GEA', 'GNAT', 'GSRA'] as const;
const GE_MODE_FLAG = ['OP', 'CL'] as const;

/** --ge-type/--ge-mode: both or neither, each from its list (the message names the flag). */
function geFromFlags(a: RunArgs): { type: (typeof GE_TYPE_FLAG)[number]; mode: (typeof GE_MODE_FLAG)[number] } | undefined {
  const t = a['ge-type'];
  const m = a['ge-mode'];
  if (t === undefined && m === undefined) return undefined;
  if (t === undefined) throw new ConfigError('--ge-mode: give --ge-type too (GES, GEN, GEA, GNAT or GSRA)', []);
  if (m === undefined) throw new ConfigError('--ge-type: give --ge-mode too (OP or CL)', []);
  const type = t.toUpperCase();
  const mode = m.toUpperCase();
  if (!(GE_TYPE_FLAG as readonly string[]).includes(type)) throw new ConfigError(`--ge-type: must be GES, GEN, GEA, GNAT or GSRA (got '${t}')`, []);
  if (!(GE_MODE_FLAG as readonly string[]).includes(mode)) throw new ConfigError(`--ge-mode: must be OP or CL (got '${m}')`, []);
  return { type: type as (typeof GE_TYPE_FLAG)[number], mode: mode as (typeof GE_MODE_FLAG)[number] };
}

/** Merge: schema defaults < config file < flags given on the command line. Exported for tests. */
export function agentConfigFromArgs(a: RunArgs): ReturnType<typeof parseAgentConfig> {
  const base: Record<string, unknown> = a.config ? readConfigFile(a.config) : {};
  const o: AgentConfigInput & Record<string, unknown> = { ...(base as object) } as AgentConfigInput & Record<string, unknown>;
  if (a.instance !== undefined) o.instance = a.instance;
  if (a['bpf-object'] !== undefined) o.bpfObject = a['bpf-object'];
  if (a['pin-root'] !== undefined) o.pinRoot = a['pin-root'];
  if (a['run-dir'] !== undefined) o.runDir = a['run-dir'];
  if (a.metrics !== undefined) o.metrics = a.metrics === 'none' ? null : a.metrics;
  if (a.handler?.length) o.handlers = a.handler;
  if (a['detach-on-exit'] !== undefined) o.detachOnExit = a['detach-on-exit'];
  if (a['gms-data-dir'] !== undefined) o.gms = { dataDir: a['gms-data-dir'] };
  const ge = geFromFlags(a);
  if (ge) o.ge = ge;
  const stash = { ...((base.stash as object) ?? {}) } as Record<string, unknown>;
  if (a['stash-ttl-ms'] !== undefined) stash.ttlMs = a['stash-ttl-ms'];
  if (a['stash-per-flow'] !== undefined) stash.perFlowPackets = a['stash-per-flow'];
  if (a['stash-total'] !== undefined) stash.totalPackets = a['stash-total'];
  if (Object.keys(stash).length) o.stash = stash as AgentConfigInput['stash'];
  const punt = { ...((base.punt as object) ?? {}) } as Record<string, unknown>;
  if (a['punt-rate'] !== undefined) punt.ratePps = a['punt-rate'];
  if (a['punt-burst'] !== undefined) punt.burst = a['punt-burst'];
  if (Object.keys(punt).length) o.punt = punt as AgentConfigInput['punt'];
  if (a.stages !== undefined) o.stages = applyStagesFlag(a.stages);
  if (a['pit-max-entries'] !== undefined) o.maxEntries = { ...((base.maxEntries as object) ?? {}), pit: a['pit-max-entries'] };
  if (a.iface?.length) {
    o.interfaces = applyMissFlags(a.iface, a.miss ?? []);
  } else if (a.miss?.length) {
    const names = Array.isArray(base.interfaces) ? (base.interfaces as Array<{ name?: unknown }>).map((i) => String(i.name)) : [];
    if (!names.length) throw new ConfigError('--miss: no interfaces (give --iface or a config file with interfaces)', []);
    o.interfaces = applyMissFlags(names, a.miss);
  }
  if (a.iface?.length || a.miss?.length) {
    // keep each interface's `ipv6` from the config file when flags rebuilt the list
    const fromFile = Array.isArray(base.interfaces) ? (base.interfaces as Array<{ name?: unknown; ipv6?: unknown }>) : [];
    for (const i of o.interfaces as Array<{ name: string; ipv6?: unknown }>) {
      const f = fromFile.find((x) => x.name === i.name);
      if (f?.ipv6 !== undefined && i.ipv6 === undefined) i.ipv6 = f.ipv6;
    }
  }
  if (a.ipv6?.length) {
    const list = (o.interfaces ?? (Array.isArray(base.interfaces) ? base.interfaces.map((x: object) => ({ ...x })) : [])) as Array<{ name: string; ipv6?: never }>;
    if (!list.length) throw new ConfigError('--ipv6: no interfaces (give --iface or a config file with interfaces)', []);
    o.interfaces = applyIpv6Flags(list, a.ipv6) as AgentConfigInput['interfaces'];
  }
  return parseAgentConfig(o, a.config ? `config (${a.config} + flags)` : 'flags');
}

const run: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'run the agent in the foreground: attach to the interfaces, handle punts, serve /metrics',
  builder: (y) => y
    .option('config', { alias: 'c', type: 'string', describe: 'config file (YAML or JSON); flags override it' })
    .option('iface', { alias: 'i', type: 'string', array: true, describe: 'interface to protect (repeat)' })
    .option('instance', { type: 'string', describe: 'instance name (default: default)' })
    .option('miss', { type: 'string', array: true, describe: 'PIT miss action: ACTION | IFACE:ACTION | IFACE:ingress|egress:ACTION (punt, pass, drop)' })
    .option('ipv6', { type: 'string', array: true, describe: 'IPv6 policy: POLICY | IFACE:POLICY (pass, drop, nd-only; default nd-only on a CL element, else pass)' })
    .option('metrics', { type: 'string', describe: 'HOST:PORT for /metrics, or none (default 127.0.0.1:9464)' })
    .option('handler', { type: 'string', array: true, describe: 'punt handler (repeat), e.g. install-pass' })
    .option('bpf-object', { type: 'string', describe: 'compiled datapath (default build/bpf/gscip_tc.bpf.o)' })
    .option('pin-root', { type: 'string', describe: 'bpffs directory for pins (default /sys/fs/bpf/gscip)' })
    .option('run-dir', { type: 'string', describe: 'lock/state directory (default /run/gscip)' })
    .option('detach-on-exit', { type: 'boolean', describe: 'remove the TC filters when the agent exits' })
    .option('gms-data-dir', { type: 'string', describe: 'enrolled agent data dir: receive group keys from the GMS' })
    .option('ge-type', { type: 'string', describe: 'this GE\'s type for protocol handlers: GES|GEN|GEA|GNAT|GSRA (with --gms-data-dir the GMS defines it; must agree)' })
    .option('ge-mode', { type: 'string', describe: 'this GE\'s mode: OP|CL (with --ge-type)' })
    .option('stash-ttl-ms', { type: 'number', describe: 'how long a punted packet may wait for a decision' })
    .option('stash-per-flow', { type: 'number', describe: 'punted packets held per flow' })
    .option('stash-total', { type: 'number', describe: 'punted packets held in total' })
    .option('punt-rate', { type: 'number', describe: 'fast-path punt rate limit per CPU, packets/s (0 = default)' })
    .option('punt-burst', { type: 'number', describe: 'fast-path punt burst per CPU (0 = default)' })
    .option('pit-max-entries', { type: 'number', describe: 'PIT size (only when the PIT is created, not adopted)' })
    .option('stages', { type: 'string', describe: 'datapath stages to load: comma list of xlat,pccom,nat,dns, or none (default: xlat,pccom; nat with a nat section, dns with a natf section); the others are not in the programs' }) as never,
  handler: guarded(async (a: RunArgs) => {
    const cfg = agentConfigFromArgs(a);
    const log = logger('agent').child({ instance: cfg.instance });
    let fatal: ((e: Error) => void) | null = null;
    const agent = await Agent.start(cfg, { log, onFatal: (e) => fatal?.(e) });
    process.stderr.write(`gscip agent: instance ${cfg.instance} on ${agent.interfaces.map((i) => i.name).join(', ')}` +
      `${agent.adopted.length ? ' (adopted pinned state)' : ''}${agent.metricsUrl ? `, metrics ${agent.metricsUrl}` : ''}\n`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string): void => {
        log.info({ signal: sig }, 'stopping');
        agent.stop().then(resolve, (e: unknown) => { log.error({ err: e }, 'stop failed'); process.exitCode = EXIT.ERROR; resolve(); });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      // Exit non-zero so a supervisor restarts us (the fast path stays attached meanwhile).
      fatal = () => { process.exitCode = EXIT.ERROR; stop('fatal'); };
    });
  }),
};

interface StopArgs extends InstanceArgs { detach: boolean; unpin: boolean; 'timeout-ms': number }

const stop: CommandModule<object, StopArgs> = {
  command: 'stop',
  describe: 'stop the running agent (the fast path stays attached unless --detach)',
  builder: (y) => withInstance(y)
    .option('detach', { type: 'boolean', default: false, describe: 'also remove the TC filters' })
    .option('unpin', { type: 'boolean', default: false, describe: 'also remove the pinned maps (loses PIT/XLAT/keys); implies --detach' })
    .option('timeout-ms', { type: 'number', default: 15000 }) as never,
  handler: guarded(async (a: StopArgs) => {
    const p = pathsOf(a);
    const held = lockHeld(p.lockFile);
    if (held.held) {
      const pid = Number(held.by);
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`instance '${a.instance}': lock held but no pid in ${p.lockFile}`);
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + a['timeout-ms'];
      while (lockHeld(p.lockFile).held) {
        if (Date.now() > deadline) throw new Error(`agent pid ${pid} did not stop within ${a['timeout-ms']} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      print(`stopped agent pid ${pid} (instance ${a.instance})`);
    } else if (!a.detach && !a.unpin) {
      process.stderr.write(`no running agent for instance '${a.instance}'\n`);
      process.exitCode = EXIT.NOT_FOUND;
      return;
    }
    if (a.detach || a.unpin) {
      const r = detachInstance({ instance: a.instance, pinRoot: a['pin-root'], runDir: a['run-dir'] }, a.unpin);
      print(`detached ${r.interfaces.join(', ') || '(no interfaces)'}${a.unpin ? `; unpinned ${r.unpinned.length} maps` : ''}`);
    }
  }),
};

interface DetachArgs extends InstanceArgs { unpin: boolean }

const detach: CommandModule<object, DetachArgs> = {
  command: 'detach',
  describe: 'remove the TC filters of an instance whose agent is not running (and its pins with --unpin)',
  builder: (y) => withInstance(y).option('unpin', { type: 'boolean', default: false }) as never,
  handler: guarded((a: DetachArgs) => {
    const r = detachInstance({ instance: a.instance, pinRoot: a['pin-root'], runDir: a['run-dir'] }, a.unpin);
    print(`detached ${r.interfaces.join(', ') || '(no interfaces)'}${a.unpin ? `; unpinned ${r.unpinned.length} maps` : ''}`);
  }),
};

interface StatusArgs extends InstanceArgs { 'gms-data-dir'?: string }

const status: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'agent, interfaces, map occupancy, counters',
  builder: (y) => withInstance(y).option('gms-data-dir', { type: 'string', describe: 'also show GMS identity and keys' }) as never,
  handler: guarded(async (a: StatusArgs) => {
    const p = pathsOf(a);
    const st = readState(p);
    const held = lockHeld(p.lockFile);
    const sameNs = st ? st.netnsIno === netnsInode() : false;
    const ifaces = (st?.interfaces ?? []).map((i) => {
      const progs = sameNs ? (hasClsact(i.ifindex) ? attachedPrograms(i.ifindex) : { ingress: null, egress: null }) : null;
      return { ...i, attached: progs ? { ingress: progs.ingress?.id ?? null, egress: progs.egress?.id ?? null } : null };
    });
    let maps: Record<string, { entries: number; capacity: number }> | null = null;
    let counters: Array<{ name: string; kind: string; packets: bigint; bytes: bigint }> = [];
    try {
      await withMaps(a, (m) => {
        maps = Object.fromEntries([m.pit, m.xlat, m.keys, m.iface].map((x) => [x.name, { entries: x.count(), capacity: x.maxEntries }]));
        counters = readStats(m).filter((s) => s.packets > 0n);
      });
    } catch { /* no pins: reported below */ }
    const gms = a['gms-data-dir'] ? agentGmsStatus(a['gms-data-dir']) : undefined;
    const out = { instance: a.instance, running: held.held, pid: held.held ? Number(held.by) : null, pinDir: p.pinDir, metrics: st?.metrics ?? null, interfaces: ifaces, maps, counters, gms };
    if (a.json) { print(toJson(out)); return; }
    const lines = [
      `instance ${a.instance}: agent ${held.held ? `running (pid ${held.by})` : 'not running'}; pins ${maps ? p.pinDir : 'none'}`,
    ];
    if (ifaces.length) {
      lines.push(table(['IFACE', 'IFINDEX', 'INGRESS_PROG', 'EGRESS_PROG'], ifaces.map((i) => [i.name, i.ifindex,
        i.attached ? String(i.attached.ingress ?? 'detached') : '(other netns)', i.attached ? String(i.attached.egress ?? 'detached') : '(other netns)'])));
    } else lines.push('no interfaces attached');
    if (maps) lines.push(table(['MAP', 'ENTRIES', 'CAPACITY'], Object.entries(maps as Record<string, { entries: number; capacity: number }>).map(([k, v]) => [k, v.entries, v.capacity])));
    if (counters.length) lines.push(table(['COUNTER', 'KIND', 'PACKETS', 'BYTES'], counters.map((c) => [c.name, c.kind, c.packets, c.bytes])));
    if (gms) lines.push(formatAgentGmsStatus(gms));
    print(lines.join('\n\n'));
  }),
};

export const agentCommand: CommandModule = {
  command: 'agent <command>',
  describe: 'run and manage the GSCIP agent',
  builder: (y: Argv) => {
    let b = y.command(run as CommandModule).command(stop as CommandModule).command(status as CommandModule).command(detach as CommandModule);
    for (const c of agentGmsCommands) b = b.command(c);
    return b.demandCommand(1, 'agent: give a subcommand (run, stop, status, detach, enroll)');
  },
  handler: () => { throw new UsageError('agent: unknown subcommand'); },
};
