/**
 * One doctor check's result, and the rule that turns a list of them into a
 * verdict. Pure: host-checks.ts, instance-checks.ts and gms-checks.ts make
 * them, report.ts renders them.
 *
 *   ok    the property holds
 *   warn  it holds only partly, or cannot be known from here; does not fail
 *   fail  it does not hold: the fast path does not work, or not as deployed
 *   skip  not asked for, or meaningless because an earlier check failed
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  /** Stable, dotted: `host.btf`, `instance.attached.eth0` (scripts match on it). */
  id: string;
  title: string;
  status: CheckStatus;
  /** What was found, in one line an operator can act on. */
  detail: string;
  /** The command or change that makes it hold (fail and warn only). */
  fix?: string;
}

export function ok(id: string, title: string, detail: string): Check { return { id, title, status: 'ok', detail }; }
export function warn(id: string, title: string, detail: string, fix?: string): Check { return fix ? { id, title, status: 'warn', detail, fix } : { id, title, status: 'warn', detail }; }
export function failed(id: string, title: string, detail: string, fix?: string): Check { return fix ? { id, title, status: 'fail', detail, fix } : { id, title, status: 'fail', detail }; }
export function skip(id: string, title: string, detail: string): Check { return { id, title, status: 'skip', detail }; }

/** Run one check; an exception becomes a fail naming it (a check never takes the others down with it). */
export async function guard(id: string, title: string, fn: () => Check | Check[] | Promise<Check | Check[]>): Promise<Check[]> {
  try {
    const r = await fn();
    return Array.isArray(r) ? r : [r];
  } catch (e) {
    return [failed(id, title, `the check itself failed: ${(e as Error).message}`)];
  }
}

/** True when nothing failed (warnings and skips do not fail). */
export function allHold(checks: readonly Check[]): boolean {
  return !checks.some((c) => c.status === 'fail');
}

export function countByStatus(checks: readonly Check[]): Record<CheckStatus, number> {
  const n: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of checks) n[c.status]++;
  return n;
}
