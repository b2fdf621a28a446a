/**
 * Writes the DPRP stage profile (stage-profile.ts) of this agent process where
 * a bench can read it: with GSCIP_DPRP_DUMP_DIR set, each SIGUSR2 writes
 * <dir>/<pid>-<n>.json (the stages timed since the previous one, and the
 * negotiation and drop counters by reason), then starts over. The stages are
 * timed only with GSCIP_DPRP_STAGES=1 too (else counters only: no timing cost).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  agentStashDroppedTotal, dprpMessagesRejectedTotal, dprpNegotiationsCompletedTotal, dprpNegotiationsFailedTotal,
  dprpNegotiationsStartedTotal, dprpSendsSuppressedTotal,
} from '../metrics/metrics.js';
import { stageProfile, type DprpStage, type StageSummary } from './stage-profile.js';

export interface StageDump {
  pid: number;
  /** The GE's own address (set when its DPRP engine started). */
  self: string | null;
  stages: Record<DprpStage, StageSummary>;
  /** Counters since the process started, by label values (what completed, failed, was dropped). */
  counters: Record<string, Record<string, number>>;
}

async function counterValues(): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const c of [dprpNegotiationsStartedTotal, dprpNegotiationsCompletedTotal, dprpNegotiationsFailedTotal, dprpMessagesRejectedTotal, dprpSendsSuppressedTotal, agentStashDroppedTotal]) {
    const m = await c.get();
    const by: Record<string, number> = {};
    for (const v of m.values) by[Object.values(v.labels).join(',') || 'all'] = v.value;
    out[m.name] = by;
  }
  return out;
}

let installed = false;

/**
 * With GSCIP_DPRP_DUMP_DIR set: SIGUSR2 writes the dump (and the stages are
 * timed with GSCIP_DPRP_STAGES=1). Returns whether stages are timed.
 */
export function stageDumpFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const dir = env.GSCIP_DPRP_DUMP_DIR;
  if (!dir || installed) return stageProfile.on;
  installed = true;
  stageProfile.on = env.GSCIP_DPRP_STAGES === '1';
  let seq = 0;
  process.on('SIGUSR2', () => {
    const stages = stageProfile.summary();
    stageProfile.reset();
    const file = join(dir, `${process.pid}-${seq++}.json`);
    void counterValues().then((counters) => {
      const dump: StageDump = { pid: process.pid, self: stageProfile.self, stages, counters };
      writeFileSync(`${file}.tmp`, JSON.stringify(dump));
      renameSync(`${file}.tmp`, file);
    });
  });
  return stageProfile.on;
}
