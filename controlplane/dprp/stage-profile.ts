/**
 * Where a DPRP negotiation's time goes on one GE (issue 15): each stage of
 * each punt or message is timed and kept as a sample, so a bench can print
 * the p50 of every stage instead of guessing. Off unless the agent runs with
 * GSCIP_DPRP_STAGES=1 and GSCIP_DPRP_DUMP_DIR (stage-dump.ts: then SIGUSR2 writes <dir>/<pid>-<n>.json
 * and starts over); when off, each timed site costs one boolean test.
 *
 *   wake        punt submitted by the kernel -> the ring reader wakes (bpf_ktime_get_ns vs hrtime)
 *   deliver     reader wakes -> the DPRP handler has the record (consume, decode, dispatch)
 *   decode      wire decode of a control message
 *   auth        tags, MACs and seals made or checked (auth.ts)
 *   decide      the decision engine (decide.ts)
 *   map_writes  PIT writes (one batch per install)
 *   send        building and sending a control packet
 *   release     releasing stashed packets
 *   logic       the rest of a handler call (state machine, encode, metrics)
 */
import { performance } from 'node:perf_hooks';

export const DPRP_STAGES = ['wake', 'deliver', 'decode', 'auth', 'decide', 'map_writes', 'send', 'release', 'logic'] as const;
export type DprpStage = typeof DPRP_STAGES[number];
export const Stage: { readonly [K in DprpStage]: number } = Object.fromEntries(DPRP_STAGES.map((s, i) => [s, i])) as { [K in DprpStage]: number };

/** Samples kept per stage between two dumps (older ones are overwritten). */
const SAMPLE_CAP = 1 << 17;

export interface StageSummary { n: number; p50Us: number; p99Us: number; meanUs: number }

export class StageProfile {
  /** Read by every timed site: keep it a plain field. */
  on = false;
  self: string | null = null;
  private readonly samples = DPRP_STAGES.map(() => new Float64Array(SAMPLE_CAP));
  private readonly counts = new Array<number>(DPRP_STAGES.length).fill(0);
  private wokeNs = 0n;
  private callStart = 0;
  private inner = 0;
  private depth = 0;

  /** A timestamp for a sub-stage (ms, performance.now()). */
  now(): number { return performance.now(); }

  add(stage: number, us: number): void {
    const n = this.counts[stage]++;
    this.samples[stage][n % SAMPLE_CAP] = us;
  }

  /** The ring reader woke (CLOCK_MONOTONIC ns). */
  woke(ns: bigint): void { this.wokeNs = ns; }

  /** A handler call for a punt starts: wake and deliver of this record; the rest is split by the sub-stages. */
  begin(puntNs: bigint): void {
    if (this.depth++ > 0) return;
    const now = process.hrtime.bigint();
    if (this.wokeNs > 0n && this.wokeNs >= puntNs) {
      this.add(Stage.wake, Number(this.wokeNs - puntNs) / 1e3);
      this.add(Stage.deliver, Number(now - this.wokeNs) / 1e3);
    }
    this.callStart = performance.now();
    this.inner = 0;
  }

  /** A sub-stage that began at `t0` (from now()) ended. */
  sub(stage: number, t0: number): void {
    const us = (performance.now() - t0) * 1e3;
    this.add(stage, us);
    if (this.depth > 0) this.inner += us;
  }

  end(): void {
    if (this.depth === 0 || --this.depth > 0) return;
    this.add(Stage.logic, Math.max(0, (performance.now() - this.callStart) * 1e3 - this.inner));
  }

  summary(): Record<DprpStage, StageSummary> {
    const out = {} as Record<DprpStage, StageSummary>;
    DPRP_STAGES.forEach((name, i) => {
      const n = Math.min(this.counts[i], SAMPLE_CAP);
      const xs = Array.from(this.samples[i].subarray(0, n)).sort((a, b) => a - b);
      const at = (p: number): number => (n ? Math.round(xs[Math.min(n - 1, Math.floor(p * n))] * 10) / 10 : 0);
      out[name] = { n: this.counts[i], p50Us: at(0.5), p99Us: at(0.99), meanUs: n ? Math.round((xs.reduce((a, b) => a + b, 0) / n) * 10) / 10 : 0 };
    });
    return out;
  }

  reset(): void { this.counts.fill(0); }
}

/** The agent's profile (one per process: the punt path is one thread). */
export const stageProfile = new StageProfile();
