/**
 * Every top-level `gscip` command module; controlplane/cli/main.ts registers
 * them in this order. Add yours here (under the shared lock).
 */
import type { CommandModule } from 'yargs';
import { agentCommand } from './agent.js';
import { doctorCommand } from './doctor.js';
import { gmsCommand } from './gms.js';
import { gsraCommand } from './gsra.js';
import { ifaceCommand } from './iface.js';
import { keysCommand } from './keys.js';
import { mapsCommand } from './maps.js';
import { pitCommand } from './pit.js';
import { selftestCommand } from './selftest.js';
import { xlatCommand } from './xlat.js';

export const commands: CommandModule[] = [
  agentCommand,
  mapsCommand,
  pitCommand,
  xlatCommand,
  keysCommand,
  ifaceCommand,
  gmsCommand,
  gsraCommand,
  doctorCommand as CommandModule,
  selftestCommand as CommandModule,
];

// `gscip agent enroll` lives in ./agent-gms.ts as agentGmsCommands: the agent
// command (./agent.ts) registers them as its subcommands (it also calls agentGmsStatus()).
