/**
 * When is the next key rotation due (per-group cron schedule) and when does a
 * superseded key leave its grace period. Pure time arithmetic; the server owns
 * the single timer.
 */
import { Cron } from 'croner';
import type { GroupDef } from './model.js';

/**
 * Next scheduled rotation of a group after its last rotation. A time in the
 * past means a rotation was missed (e.g. the GMS was down at 03:00): rotate now.
 */
export function nextRotation(g: GroupDef, lastRotationAt: number): number {
  const c = new Cron(g.rotation.schedule, { timezone: g.rotation.timezone, paused: true });
  const n = c.nextRun(new Date(lastRotationAt));
  if (!n) throw new Error(`group ${g.id}: schedule "${g.rotation.schedule}" never fires`);
  return n.getTime();
}

/** setTimeout takes at most 2^31-1 ms; wake up at least hourly and recompute. */
export const MAX_TIMER_MS = 3_600_000;

export function timerDelay(dueAt: number, now: number): number {
  return Math.max(0, Math.min(MAX_TIMER_MS, dueAt - now));
}
