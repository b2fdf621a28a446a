import type { ChildProcess } from 'node:child_process';
import { waitFor } from '../../controlplane/lab/topology.js';
/** The scratch topologies live in the product (gscip selftest uses them too); tests import them from here. */
export * from '../../controlplane/lab/topology.js';

/**
 * Wait (5 s at most) until child's stdout says `ready`; onData, when given,
 * sees all its stdout (so the caller keeps what the child prints later).
 */
export async function waitReady(child: ChildProcess, what: string, onData?: (d: string) => void): Promise<void> {
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => { buf += d; onData?.(d); });
  await waitFor(what, () => buf.includes('ready'), 5000);
}
