/**
 * Scratch state never outlives its owner: a process that built namespaces
 * and pins and then spins in a synchronous loop (no JS handler can run) is
 * ended by a SIGTERM to its process group, or SIGKILLed alone, and in both
 * cases its namespaces and pin directory are gone within seconds.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { waitFor } from '../lib/netns.js';

const OWNER = resolve(__dirname, '../fixtures/spinning-owner.js');

async function startOwner(): Promise<{ pid: number; prefix: string; pins: string; exited: () => boolean }> {
  const child = spawn(process.execPath, [OWNER, '60000'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let out = '';
  let exited = false;
  child.on('exit', () => { exited = true; });
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const m = await waitFor('owner to build its scratch state', () => /ready (\S+) (\S+)/.exec(out), 20_000, 50);
  return { pid: child.pid!, prefix: m![1], pins: m![2], exited: () => exited };
}

const gone = (prefix: string, pins: string): boolean =>
  !existsSync(`/run/netns/${prefix}-a`) && !existsSync(`/run/netns/${prefix}-b`) && !existsSync(pins);

describe('scratch guard', { skip: process.getuid?.() !== 0 ? 'needs root' : false, timeout: 90_000 }, () => {
  test('SIGTERM to the group of a spinning owner: it ends and its namespaces and pins are removed', async () => {
    const o = await startOwner();
    assert.ok(existsSync(`/run/netns/${o.prefix}-a`) && existsSync(`${o.pins}/inner`), 'the owner built its state');
    process.kill(-o.pid, 'SIGTERM');
    await waitFor('owner to end', o.exited, 5000, 50);
    await waitFor('namespaces and pins removed', () => gone(o.prefix, o.pins), 10_000, 100);
  });

  test('SIGKILL of the owner alone: its namespaces and pins are removed', async () => {
    const o = await startOwner();
    process.kill(o.pid, 'SIGKILL');
    await waitFor('owner to end', o.exited, 5000, 50);
    await waitFor('namespaces and pins removed', () => gone(o.prefix, o.pins), 10_000, 100);
  });
});
