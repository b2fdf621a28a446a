/**
 * Where an agent's "encryption required" destinations come from: its
 * configuration (`requireEncryption`) and, with a GMS client, the network
 * definition's `policy.requireEncryption` as last delivered (the data dir's
 * cached delivery, which the GMS client rewrites on every change; re-read
 * only when the file changed). The DPRP handler calls the source on its
 * housekeeping tick, so a change in the GMS reaches the fast path's decisions
 * within a few seconds, without a restart.
 */
import { statSync } from 'node:fs';
import { loadCache, agentFilePaths } from '../gms/agent-files.js';

export function requiredEncryptionSource(configured: readonly string[], gmsDataDir: string | null): () => readonly string[] {
  let mtimeMs = -1;
  let fromGms: readonly string[] = [];
  let merged: readonly string[] = [...new Set(configured)];
  return () => {
    if (!gmsDataDir) return merged;
    let m = 0;
    try { m = statSync(agentFilePaths(gmsDataDir).cache).mtimeMs; } catch { m = 0; }
    if (m !== mtimeMs) {
      mtimeMs = m;
      try { fromGms = loadCache(gmsDataDir)?.requireEncryption ?? []; } catch { /* keep the last list: an unreadable cache is the GMS client's to report */ }
      merged = [...new Set([...configured, ...fromGms])];
    }
    return merged;
  };
}
