/** Options every instance-facing command shares, and opening the instance's pinned maps. */
import type { Argv } from 'yargs';
import { openPinnedMaps } from '../agent/datapath.js';
import { instancePaths } from '../agent/instance.js';
import { DEFAULT_PIN_ROOT, DEFAULT_RUN_DIR } from '../config/agent-config.js';
import type { GscipMaps } from '../maps/gscip-maps.js';

export interface InstanceArgs { instance: string; 'pin-root': string; 'run-dir': string; json: boolean }

export function withInstance<T>(y: Argv<T>): Argv<T & InstanceArgs> {
  return y
    .option('instance', { type: 'string', default: 'default', describe: 'agent instance (pins under <pin-root>/<instance>)' })
    .option('pin-root', { type: 'string', default: DEFAULT_PIN_ROOT, describe: 'bpffs directory holding instance pins' })
    .option('run-dir', { type: 'string', default: DEFAULT_RUN_DIR, describe: 'lock and state files' })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }) as unknown as Argv<T & InstanceArgs>;
}

export function pathsOf(a: InstanceArgs): ReturnType<typeof instancePaths> {
  return instancePaths({ instance: a.instance, pinRoot: a['pin-root'], runDir: a['run-dir'] });
}

/** Run fn with the instance's maps open, closing them after. */
export async function withMaps<R>(a: InstanceArgs, fn: (m: GscipMaps) => R | Promise<R>): Promise<R> {
  const maps = openPinnedMaps(pathsOf(a).pinDir);
  try { return await fn(maps); } finally { maps.close(); }
}
