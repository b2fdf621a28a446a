/**
 * `gscip gsra status --file F [--json]`: a GSRA router's admissible users
 * (active = with a mapping), its INs, reservations and mappings, from the
 * state file its part writes every tick (`gsra.statusFile`). The NAT halves
 * themselves: `gscip maps dump nat` on both router instances.
 */
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { formatRouterStatus, type GsraRouterStatus } from '../../gsra/router-status.js';

const status: CommandModule<object, { file: string; json: boolean }> = {
  command: 'status',
  describe: 'admissible and active remote users, internal servers, mappings of a GSRA router',
  builder: (y) => y
    .option('file', { type: 'string', demandOption: true, describe: 'the router part\'s gsra.statusFile' })
    .option('json', { type: 'boolean', default: false }) as never,
  handler: (a) => {
    let st: GsraRouterStatus;
    try { st = JSON.parse(readFileSync(a.file, 'utf8')) as GsraRouterStatus; } catch (e) {
      process.stderr.write(`error: file: cannot read a GSRA router state from ${a.file}: ${(e as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(a.json ? `${JSON.stringify(st, null, 2)}\n` : `${formatRouterStatus(st)}\n`);
  },
};

export const gsraCommand: CommandModule = {
  command: 'gsra <command>',
  describe: 'GSRA router state (docs/gsra.md)',
  builder: (y) => y.command(status as CommandModule).demandCommand(1),
  handler: () => undefined,
};
