import pino from 'pino';

/** The one logger factory: every module takes a child with its component name. */
export type Logger = pino.Logger;

const root: Logger = pino({
  level: process.env.GSCIP_LOG_LEVEL ?? 'info',
  base: { svc: 'gscip' },
  // Key material must never reach the logs, whatever a caller passes.
  redact: { paths: ['key', '*.key', 'keys[*].key', 'token', '*.token', 'privateKey', '*.privateKey'], censor: '[redacted]' },
});

export function logger(component: string): Logger {
  return root.child({ component });
}
