/**
 * GMS parts of `gscip agent`: `enroll` (a subcommand the agent command
 * registers) and the status function `gscip agent status` calls.
 */
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { enroll } from '../../gms/client.js';
export { agentGmsStatus, formatAgentGmsStatus } from '../../gms/agent-status.js';
export { startGmsClient, type KeySink, type GmsClientHandle, type GmsClientStatus } from '../../gms/client.js';

export const agentEnrollCommand: CommandModule<object, { gms: string[]; token?: string; 'token-file'?: string; 'ldap-user'?: string; 'password-file'?: string; 'ca-fingerprint'?: string; 'ca-file'?: string; 'data-dir': string }> = {
  command: 'enroll',
  describe: 'enroll this GE with the GMS once (one-time token, or a directory user ID and password); afterwards it uses mutual TLS only',
  builder: (y) => y
    .option('gms', { type: 'string', array: true, demandOption: true, describe: 'GMS URL, https://HOST:PORT; repeat for every replica (enrolls at the first, fails over to the others)' })
    .option('token', { type: 'string', describe: 'one-time enrollment token (gscip gms token issue); visible in the process list, prefer --token-file' })
    .option('token-file', { type: 'string', describe: 'file holding the token (/dev/stdin to pipe it)' })
    .option('ldap-user', { type: 'string', describe: 'a remote user\'s directory user ID (GSRA): the GMS checks it and the password against its LDAP directory' })
    .option('password-file', { type: 'string', describe: 'file holding that user\'s password (/dev/stdin to pipe it); never given on the command line' })
    .option('ca-fingerprint', { type: 'string', describe: 'SHA-256 fingerprint of the GMS CA (printed by gms serve)' })
    .option('ca-file', { type: 'string', describe: 'the GMS CA certificate (PEM), instead of or besides the fingerprint' })
    .option('data-dir', { type: 'string', demandOption: true, describe: 'agent state directory (created 0700)' })
    .check((a) => {
      if (!a['ca-fingerprint'] && !a['ca-file']) throw new Error('ca-fingerprint or ca-file: one is required to trust the GMS');
      const ways = [a.token, a['token-file'], a['ldap-user']].filter((x) => x !== undefined).length;
      if (ways !== 1) throw new Error('token or token-file (or ldap-user with password-file): give exactly one');
      if ((a['ldap-user'] === undefined) !== (a['password-file'] === undefined)) throw new Error('password-file: required with ldap-user, and only with it');
      return true;
    }) as never,
  handler: async (a) => {
    try {
      // fd 0 directly: /dev/stdin cannot be re-opened when standard input is a socket.
      const readSecret = (f: string): string => readFileSync(f === '/dev/stdin' ? 0 : f, 'utf8').replace(/\r?\n$/, '');
      const token = a.token ?? (a['token-file'] !== undefined ? readSecret(a['token-file']).trim() : undefined);
      const password = a['password-file'] !== undefined ? readSecret(a['password-file']) : undefined;
      const r = await enroll({
        gmsUrl: a.gms[0], moreGmsUrls: a.gms.slice(1), token, ldapUser: a['ldap-user'], password, caFingerprint: a['ca-fingerprint'],
        caPem: a['ca-file'] ? readFileSync(a['ca-file'], 'utf8') : undefined, dataDir: a['data-dir'],
      });
      process.stdout.write(`enrolled as ${r.userId} (GMS CA ${r.caFingerprint})\n`);
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  },
};

/** Subcommands for B's `gscip agent` command to register (`agent enroll`). */
export const agentGmsCommands: CommandModule[] = [agentEnrollCommand as CommandModule];
