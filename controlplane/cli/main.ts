#!/usr/bin/env node
/**
 * `gscip`: the operator CLI. Every top-level command comes from
 * ./commands/index.ts. Exit codes: 0 ok, 1 error, 2 bad usage/config,
 * 3 conflict (another agent), 4 not found.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';
import { EXIT } from './output.js';

export async function main(argv: string[]): Promise<void> {
  let y = yargs(argv).scriptName('gscip').version(false).strict().recommendCommands().wrap(Math.min(120, process.stdout.columns || 100));
  for (const c of commands) y = y.command(c);
  await y
    .demandCommand(1, 'give a command (gscip --help)')
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`error: ${msg}\n(run with --help for usage)\n`);
      process.exit(EXIT.USAGE);
    })
    .help()
    .parseAsync();
}

if (require.main === module) {
  main(hideBin(process.argv)).catch((e: unknown) => {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exitCode = EXIT.ERROR;
  });
}
