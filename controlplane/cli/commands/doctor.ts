/**
 * `gscip doctor`: what an operator runs on a host before and after deploying.
 * Host and kernel checks always; the instance (agent, attachment, pins, keys,
 * punt path) unless --host-only; the GMS with --gms-data-dir. Read-only: it
 * mounts, attaches and unpins nothing. Exit 0 only when no check failed.
 */
import type { CommandModule } from 'yargs';
import { DEFAULT_BPF_OBJECT } from '../../config/agent-config.js';
import type { Check } from '../../doctor/checks.js';
import { gmsChecks } from '../../doctor/gms-checks.js';
import { hostChecks } from '../../doctor/host-checks.js';
import { instanceChecks } from '../../doctor/instance-checks.js';
import { doctorExitCode, doctorReport, formatDoctorReport } from '../../doctor/report.js';
import { withInstance, type InstanceArgs } from '../instance-args.js';
import { guarded, print, toJson } from '../output.js';

interface DoctorArgs extends InstanceArgs { iface?: string[]; 'gms-data-dir'?: string; 'host-only': boolean; 'bpf-object': string }

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'check this host and the instance: kernel, BTF, bpffs, clsact, helpers, verifier, time, agent, attachment, pins, keys, punt path, GMS (exit 0 only when all hold)',
  builder: (y) => withInstance(y)
    .option('iface', { alias: 'i', type: 'string', array: true, describe: 'interface that should be protected (repeat; default: those in the instance\'s state file)' })
    .option('gms-data-dir', { type: 'string', describe: 'enrolled agent data dir: check the GMS CA, certificate, reachability, clock and key delivery' })
    .option('host-only', { type: 'boolean', default: false, describe: 'only the host, kernel and object checks (no instance, no GMS)' })
    .option('bpf-object', { type: 'string', default: DEFAULT_BPF_OBJECT, describe: 'the compiled fast path to check against' }) as never,
  handler: guarded(async (a: DoctorArgs) => {
    const checks: Check[] = await hostChecks({ bpfObject: a['bpf-object'], pinRoot: a['pin-root'] });
    if (!a['host-only']) {
      checks.push(...await instanceChecks({
        instance: a.instance, pinRoot: a['pin-root'], runDir: a['run-dir'], bpfObject: a['bpf-object'], ifaces: a.iface, gmsDataDir: a['gms-data-dir'],
      }));
      if (a['gms-data-dir']) checks.push(...await gmsChecks(a['gms-data-dir']));
    }
    const r = doctorReport(checks);
    print(a.json ? toJson(r) : formatDoctorReport(r, Math.min(120, process.stdout.columns || 100)));
    process.exitCode = doctorExitCode(r);
  }),
};
