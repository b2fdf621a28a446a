/**
 * GMS part of `gscip agent status`: identity, groups, key versions and ages,
 * GMS connection state. From a running client if there is one, else from the
 * agent's data dir (identity + cached delivery) with state "not running".
 */
import { isEnrolled, loadCache, loadIdentity, readStatusFile } from './agent-files.js';
import type { GmsClientHandle, GmsClientStatus } from './client.js';
import { DEFAULT_CIPHER } from './model.js';

export function agentGmsStatus(dataDir: string, running?: GmsClientHandle | null): GmsClientStatus | { enrolled: false } {
  if (running) return running.status();
  if (!isEnrolled(dataDir)) return { enrolled: false };
  const live = readStatusFile(dataDir);
  if (live && pidAlive(live.pid)) {
    const st = live.status as GmsClientStatus;
    if (st.state !== 'stopped') {
      const dt = Math.round((Date.now() - live.writtenAt) / 1000);
      return { ...st, keys: st.keys.map((k) => ({ ...k, ageSeconds: k.ageSeconds + dt })) };
    }
  }
  const id = loadIdentity(dataDir);
  const d = loadCache(dataDir);
  const now = Date.now();
  return {
    userId: id.userId, gms: id.url, gmsUrls: id.urls, state: 'stopped', type: d?.type ?? null, mode: d?.mode ?? null, groups: d?.groups ?? [],
    keys: (d?.keys ?? []).filter((k) => k.expiresAt === null || k.expiresAt > now).map((k) => ({
      group: k.group, version: k.version, cipher: k.cipher ?? DEFAULT_CIPHER, ageSeconds: Math.round((now - k.createdAt) / 1000),
      state: k.expiresAt === null ? 'current' as const : 'grace' as const,
      expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
    })),
    lastUpdateAt: d ? new Date(d.issuedAt).toISOString() : null, lastError: null, reconnects: 0,
  };
}

export function formatAgentGmsStatus(s: ReturnType<typeof agentGmsStatus>): string {
  if ('enrolled' in s) return 'GMS: not enrolled (gscip agent enroll --gms URL --token T --ca-fingerprint F --data-dir D)';
  const lines = [
    `identity: ${s.userId} type=${s.type ?? '?'} mode=${s.mode ?? '?'} groups=[${s.groups.join(',')}]`,
    `GMS: ${s.gms} state=${s.state}${s.lastError ? ` (last error: ${s.lastError})` : ''} reconnects=${s.reconnects} last update ${s.lastUpdateAt ?? 'never'}`,
  ];
  for (const k of s.keys) lines.push(`  key group ${k.group} v${k.version} ${k.cipher ?? DEFAULT_CIPHER} ${k.state} age ${k.ageSeconds}s${k.expiresAt ? ` until ${k.expiresAt}` : ''}`);
  return lines.join('\n');
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
