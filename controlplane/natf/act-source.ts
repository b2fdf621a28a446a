/**
 * Where the agent's ACT comes from: the GMS client's cached delivery in the
 * agent data dir (rewritten on every change the GMS pushes), re-read only
 * when the file changed, as the "encryption required" list is
 * (agent/required-encryption-source.ts). A malformed ACT keeps the last good
 * one and is reported once per change.
 */
import { statSync } from 'node:fs';
import { agentFilePaths, loadCache } from '../gms/agent-files.js';
import { parseDeliveredAct, type ActEntry } from './act.js';

export interface ActSource {
  /** The current ACT and whether it changed since the previous call. */
  read(): { act: readonly ActEntry[]; changed: boolean; error?: string };
}

export function actSource(gmsDataDir: string | null): ActSource {
  let mtimeMs = -1;
  let act: readonly ActEntry[] = [];
  return {
    read() {
      if (!gmsDataDir) return { act, changed: false };
      let m = 0;
      try { m = statSync(agentFilePaths(gmsDataDir).cache).mtimeMs; } catch { m = 0; }
      if (m === mtimeMs) return { act, changed: false };
      mtimeMs = m;
      try {
        const next = parseDeliveredAct(loadCache(gmsDataDir)?.act);
        const changed = JSON.stringify(next) !== JSON.stringify(act);
        act = next;
        return { act, changed };
      } catch (e) { return { act, changed: false, error: (e as Error).message }; }
    },
  };
}
