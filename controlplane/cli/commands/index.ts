/**
 * Every top-level `gscip` command module; controlplane/cli/main.ts registers
 * them in this order. Add yours here (under the shared lock).
 */
import type { CommandModule } from 'yargs';
import { gmsCommand } from './gms.js';

export const commands: CommandModule[] = [
  gmsCommand,
];

// `gscip agent enroll` lives in ./agent-gms.ts as agentGmsCommands: the agent
// command registers them as its subcommands (it also calls agentGmsStatus()).
