/**
 * Doctor output: a table for people (fixes listed under it), JSON for
 * scripts, and the exit code. Pure.
 */
import { allHold, countByStatus, type Check } from './checks.js';

export const DOCTOR_EXIT = { ALL_HOLD: 0, SOME_FAILED: 1 } as const;

export interface DoctorReport {
  /** True when no check failed. */
  ok: boolean;
  summary: Record<Check['status'], number>;
  checks: Check[];
}

export function doctorReport(checks: Check[]): DoctorReport {
  return { ok: allHold(checks), summary: countByStatus(checks), checks };
}

export function doctorExitCode(r: DoctorReport): number {
  return r.ok ? DOCTOR_EXIT.ALL_HOLD : DOCTOR_EXIT.SOME_FAILED;
}

const MARK: Record<Check['status'], string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

/** Wrap text at `width` on spaces; a word longer than the width stays whole. */
function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) { out.push(line); line = w; } else line = line ? `${line} ${w}` : w;
  }
  if (line || !out.length) out.push(line);
  return out;
}

/**
 * STATUS  CHECK  DETAIL, the detail wrapped to `width` columns; then one
 * numbered fix per warning or failure, then the verdict line.
 */
export function formatDoctorReport(r: DoctorReport, width = 100): string {
  const titleW = Math.max(5, ...r.checks.map((c) => c.title.length));
  const detailW = Math.max(30, width - titleW - 10);
  const lines = [`${'STATUS'.padEnd(6)}  ${'CHECK'.padEnd(titleW)}  DETAIL`];
  const fixes: string[] = [];
  for (const c of r.checks) {
    const d = wrap(c.detail, detailW);
    let ref = '';
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) { fixes.push(`[${fixes.length + 1}] ${c.title}: ${c.fix}`); ref = ` [${fixes.length}]`; }
    d[d.length - 1] += ref;
    lines.push(`${MARK[c.status].padEnd(6)}  ${c.title.padEnd(titleW)}  ${d[0]}`.trimEnd());
    for (const more of d.slice(1)) lines.push(`${''.padEnd(6)}  ${''.padEnd(titleW)}  ${more}`);
  }
  if (fixes.length) lines.push('', 'to fix:', ...fixes.flatMap((f) => wrap(f, width - 4).map((l, i) => (i ? `    ${l}` : `  ${l}`))));
  const s = r.summary;
  lines.push('', `${r.ok ? 'all checks hold' : `${s.fail} check${s.fail === 1 ? '' : 's'} failed`} (${s.ok} ok, ${s.warn} warning${s.warn === 1 ? '' : 's'}, ${s.fail} failed, ${s.skip} skipped)`);
  return lines.join('\n');
}

/** One message for a refusal (the agent's start): each failed check with its fix. */
export function formatFailures(checks: readonly Check[]): string {
  return checks.filter((c) => c.status === 'fail').map((c) => `  - ${c.title}: ${c.detail}${c.fix ? `; fix: ${c.fix}` : ''}`).join('\n');
}
