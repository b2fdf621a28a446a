/**
 * `gscip selftest` end to end: preflight, build the scratch network, start
 * this installation's agents, install keys, capture the transit namespace,
 * run every check, judge them on the capture, remove everything, and say
 * what (if anything) is left. Never throws: a failure anywhere becomes failed
 * checks with the reason, and cleanup always runs.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TCPDUMP_MISSING, TransitCapture, findExecutable, type CaptureResult } from './capture.js';
import { CHECKS, GROUP, V_MISSING, V_SHARED, V_WRONG, notRun, type CheckId, type CheckResult, type Verdict } from './checks.js';
import { SelftestNet } from './scenario.js';

export interface SelftestOptions {
  bpfObject: string;
  /** The CLI whose `agent run` and `keys set` are exercised (default: this installation's). */
  cliMain?: string;
  budgetMs: number;
  faults: CheckId[];
}

export interface SelftestReport {
  ok: boolean;
  passed: number;
  total: number;
  elapsedMs: number;
  budgetMs: number;
  overBudget: boolean;
  prefix: string | null;
  bpfObject: string;
  cli: string;
  faults: CheckId[];
  checks: CheckResult[];
  capture: { packets: number; kernelDrops: number; problem: string | null } | null;
  cleanup: { removed: string[]; left: string[] };
}

export const DEFAULT_CLI_MAIN = resolve(__dirname, '../cli/main.js');

/** Why the selftest cannot start here, or null. */
function preflight(o: SelftestOptions, cliMain: string): string | null {
  if (process.geteuid?.() !== 0) return 'gscip selftest needs root (it creates network namespaces and loads BPF programs)';
  if (!existsSync(o.bpfObject)) return `the datapath object ${o.bpfObject} does not exist (build it with make bpf, or give --bpf-object)`;
  if (!existsSync(cliMain)) return `the gscip CLI ${cliMain} does not exist (build it with make ts)`;
  if (!findExecutable('tcpdump')) return TCPDUMP_MISSING;
  if (!findExecutable('ip')) return 'ip (iproute2) not found: it builds the scratch namespaces';
  return null;
}

export async function runSelftest(o: SelftestOptions): Promise<SelftestReport> {
  const t0 = Date.now();
  const cliMain = o.cliMain ?? DEFAULT_CLI_MAIN;
  const remainingMs = (): number => Math.max(0, o.budgetMs - (Date.now() - t0));
  const verdicts: Verdict[] = [];
  let capture: CaptureResult | null = null;
  let net: SelftestNet | null = null;
  let cleanup = { removed: [] as string[], left: [] as string[] };

  const refusal = preflight(o, cliMain);
  if (refusal) {
    for (const def of CHECKS) verdicts.push(notRun(def, refusal));
  } else {
    let setupError: string | null = null;
    let cap: TransitCapture | null = null;
    try {
      net = new SelftestNet({ bpfObject: o.bpfObject, cliMain });
      net.build();
      await net.startAgents(Math.min(15_000, remainingMs()));
      const shared = randomBytes(32);
      await net.setKeys([
        { end: 'a', group: GROUP, version: V_SHARED, key: shared },
        { end: 'b', group: GROUP, version: V_SHARED, key: shared },
        { end: 'a', group: GROUP, version: V_WRONG, key: randomBytes(32) },
        { end: 'b', group: GROUP, version: V_WRONG, key: randomBytes(32) },
        { end: 'b', group: GROUP, version: V_MISSING, key: randomBytes(32) },
      ], Math.min(10_000, remainingMs()));
      cap = await TransitCapture.start(net.topo, 'r', `${net.tmp}/transit.pcap`);
    } catch (e) {
      setupError = `setup failed: ${(e as Error).message}`;
    }
    for (const def of CHECKS) {
      if (setupError || !net) { verdicts.push(notRun(def, setupError ?? 'setup failed')); continue; }
      if (remainingMs() < 1000) { verdicts.push(notRun(def, `the ${o.budgetMs / 1000} s budget ran out`)); continue; }
      try {
        const v = await def.run({ net, fault: o.faults.includes(def.id), remainingMs });
        const dead = net.deadAgents();
        verdicts.push(dead.length ? withProblems(v, dead) : v);
      } catch (e) {
        verdicts.push(notRun(def, `it broke: ${(e as Error).message}`));
      }
    }
    if (cap) { try { capture = await cap.stop(); } catch (e) { capture = { problem: `capture failed: ${(e as Error).message}`, records: [], raw: [], captured: 0, kernelDrops: 0 }; } }
    try { if (net) cleanup = net.cleanup(); } catch (e) { cleanup.left.push(`cleanup failed: ${(e as Error).message}`); }
  }

  const empty: CaptureResult = { problem: 'no capture', records: [], raw: [], captured: 0, kernelDrops: 0 };
  const checks = verdicts.map((v) => v(capture ?? empty));
  const passed = checks.filter((c) => c.pass).length;
  const elapsedMs = Date.now() - t0;
  return {
    ok: passed === checks.length && cleanup.left.length === 0,
    passed, total: checks.length, elapsedMs, budgetMs: o.budgetMs, overBudget: elapsedMs > o.budgetMs,
    prefix: net?.prefix ?? null, bpfObject: o.bpfObject, cli: cliMain, faults: o.faults, checks,
    capture: capture ? { packets: capture.raw.length, kernelDrops: capture.kernelDrops, problem: capture.problem } : null,
    cleanup,
  };
}

function withProblems(v: Verdict, extra: string[]): Verdict {
  return (cap) => {
    const r = v(cap);
    return { ...r, pass: false, problems: [...r.problems, ...extra], summary: `${extra.join('; ')} (${r.summary})` };
  };
}
