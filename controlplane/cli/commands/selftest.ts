/**
 * `gscip selftest`: the leak self-test an operator runs on a live node. It
 * builds its own scratch namespaces, pins and agents from this installation
 * (never touching the node's interfaces or its production instance), runs
 * encrypted and plaintext flows through them, checks the transit capture and
 * the datapath's counters, prints one line per check and removes everything.
 * Exit 0 only when every check passed and nothing was left behind.
 * What each check proves: docs/selftest.md.
 */
import type { CommandModule } from 'yargs';
import { DEFAULT_BPF_OBJECT } from '../../config/agent-config.js';
import { CHECK_IDS, type CheckId } from '../../selftest/checks.js';
import { runSelftest, type SelftestReport } from '../../selftest/run.js';
import { UsageError } from '../args.js';
import { EXIT, guarded, print, toJson } from '../output.js';

interface SelftestArgs { json: boolean; 'bpf-object': string; 'budget-s': number; 'inject-fault'?: string[] }

/** The human report: one line per check, then cleanup and the summary. */
export function formatReport(r: SelftestReport): string {
  const lines = r.checks.map((c) => `${c.pass ? 'PASS' : 'FAIL'}  ${c.title}: ${c.summary}`);
  if (r.faults.length) lines.push(`(faults injected on purpose: ${r.faults.join(', ')})`);
  if (r.prefix) {
    lines.push(r.cleanup.left.length
      ? `FAIL  cleanup: still present: ${r.cleanup.left.join('; ')}`
      : `cleanup: removed ${r.cleanup.removed.join(', ')}; nothing left`);
  }
  const secs = (r.elapsedMs / 1000).toFixed(1);
  lines.push(`selftest: ${r.passed}/${r.total} checks passed in ${secs} s (budget ${r.budgetMs / 1000} s${r.overBudget ? ', OVER BUDGET' : ''}), datapath ${r.bpfObject}`);
  return lines.join('\n');
}

export const selftestCommand: CommandModule<object, SelftestArgs> = {
  command: 'selftest',
  describe: 'leak self-test in scratch namespaces: encrypted TCP/UDP carry no plaintext, a missing or wrong key drops, plaintext stays plaintext',
  builder: (y) => y
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable report' })
    .option('bpf-object', { type: 'string', default: DEFAULT_BPF_OBJECT, describe: 'datapath object the scratch agents load (default: this installation\'s)' })
    .option('budget-s', { type: 'number', default: 30, describe: 'time budget; checks not started within it fail' })
    // For the selftest's own test: misconfigure a check on purpose to show it fails.
    .option('inject-fault', { type: 'string', array: true, hidden: true }) as never,
  handler: guarded(async (a: SelftestArgs) => {
    const faults = (a['inject-fault'] ?? []).map((f) => {
      if (!(CHECK_IDS as readonly string[]).includes(f)) throw new UsageError(`--inject-fault: '${f}' is not a check (${CHECK_IDS.join(', ')})`);
      return f as CheckId;
    });
    if (!Number.isFinite(a['budget-s']) || a['budget-s'] < 5 || a['budget-s'] > 600) throw new UsageError(`--budget-s: '${a['budget-s']}' must be 5..600`);
    const r = await runSelftest({ bpfObject: a['bpf-object'], budgetMs: a['budget-s'] * 1000, faults });
    print(a.json ? toJson(r) : formatReport(r));
    process.exitCode = r.ok ? EXIT.OK : EXIT.ERROR;
  }),
};
