/**
 * bench/gms-replicas: the GMS on PostgreSQL with several replicas against
 * the embedded SQLite GMS, in one run, on one machine (a throw-away
 * PostgreSQL as in the tests: test/lib/postgres.ts; every GMS a `gscip gms
 * serve` process; the agents real agent-side clients with their own keys,
 * certificates and mutual-TLS SSE streams, in this process):
 *  1. enrollment rate (enrollments/s, 20 at a time): one SQLite GMS vs the
 *     PostgreSQL replicas (requests spread over them);
 *  2. rotation fan-out to N agents (default 1,000): all on the SQLite GMS
 *     (the baseline), then spread over the replicas with the rotation made
 *     through one of them (target: worst agent <= 1 s);
 *  3. failover: one replica SIGKILLed; for each agent that was on it, the
 *     time until it holds a fresh state from another replica (p50/p99/max),
 *     and how long a rotation made at the moment of the kill takes to reach
 *     every agent.
 * Agent data dirs on tmpfs (/dev/shm) when there is one (see gms-rotation.ts).
 * Needs root (the PostgreSQL server runs as the postgres user).
 *
 *   node dist/bench/gms-replicas.js [--agents 1000] [--replicas 3] [--enroll 300] [--rotations 3]
 * Writes bench/results/gms-replicas.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { intArg } from './args.js';

process.env.GSCIP_LOG_LEVEL ??= 'error';

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : -1; };

async function main(): Promise<void> {
  const N = intArg('agents', 1000);
  const R = intArg('replicas', 3, 2);
  const E = intArg('enroll', 300);
  const ROT = intArg('rotations', 3);
  const load0 = loadavg();
  const { postgresUnavailable, TestPostgres } = await import('../test/lib/postgres.js');
  const { GmsReplicaSet } = await import('../test/lib/gms-replicas.js');
  const { enroll, startGmsClient } = await import('../controlplane/gms/client.js');
  const { certFingerprint } = await import('../controlplane/gms/ca.js');
  const why = postgresUnavailable();
  if (why) throw new Error(`gms-replicas: ${why}`);

  const pgs = await TestPostgres.start();
  const lite = new GmsReplicaSet('sqlite:', 'bench-lite');
  const reps = new GmsReplicaSet(pgs.createDb('bench'), 'bench-pg');
  const agentRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/gscip-bench-rep-') : mkdtempSync('/tmp/gscip-bench-rep-');
  const handles: Array<{ stop(): Promise<void> }> = [];
  try {
    await lite.add('lite');
    for (let i = 1; i <= R; i++) await reps.add(`r${i}`);
    const fp = certFingerprint(readFileSync(join(reps.get('r1').dataDir, 'admin', 'ca.crt'), 'utf8'));
    const fpLite = certFingerprint(readFileSync(join(lite.get('lite').dataDir, 'admin', 'ca.crt'), 'utf8'));
    const ids = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(5, '0')}`);
    const net = (users: string[]) => ({ apiVersion: 'gscip/v1', kind: 'Network', groups: Array.from({ length: 10 }, (_, i) => ({ id: i + 1 })),
      ges: users.map((userId, i) => ({ userId, type: 'GES', mode: 'OP', groups: [1, 2 + (i % 9)] })) });
    const fanUsers = ids('fan', N);
    const enUsers = ids('en', E);
    await lite.admin('lite').apply(net([...fanUsers, ...enUsers]), false);
    await reps.admin('r1').apply(net([...fanUsers, ...enUsers]), false);
    const liteAdmins = [lite.admin('lite')];
    const repAdmins = reps.replicas.map((r) => reps.admin(r.id));

    // 1. Enrollment rate, tokens issued first; 20 in flight; PostgreSQL: spread over the replicas.
    const enrollAll = async (set: typeof lite, admins: typeof liteAdmins, users: string[], caFp: string, tag: string, urlsOf: (i: number) => string[]): Promise<number> => {
      const toks: string[] = [];
      for (let i = 0; i < users.length; i += 50) toks.push(...await Promise.all(users.slice(i, i + 50).map((u, j) => admins[(i + j) % admins.length].issueToken(u, 3600).then((x) => x.token))));
      const t0 = Date.now();
      for (let i = 0; i < users.length; i += 20) {
        await Promise.all(users.slice(i, i + 20).map((u, j) => {
          const urls = urlsOf(i + j);
          return enroll({ gmsUrl: urls[0], moreGmsUrls: urls.slice(1), token: toks[i + j], caFingerprint: caFp, dataDir: join(agentRoot, tag, u) });
        }));
      }
      void set;
      return users.length / ((Date.now() - t0) / 1000);
    };
    const spread = (i: number) => { const u = reps.replicas.map((r) => r.url); const k = i % u.length; return [...u.slice(k), ...u.slice(0, k)]; };
    const rateLite = await enrollAll(lite, liteAdmins, enUsers, fpLite, 'en-lite', () => [lite.get('lite').url]);
    const ratePg = await enrollAll(reps, repAdmins, enUsers, fp, 'en-pg', spread);

    // 2. Fan-out: N agents on SQLite, then N agents spread over the replicas.
    await enrollAll(lite, liteAdmins, fanUsers, fpLite, 'fan-lite', () => [lite.get('lite').url]);
    await enrollAll(reps, repAdmins, fanUsers, fp, 'fan-pg', spread);
    const fanout = async (tag: string, rotateVia: typeof liteAdmins[number]) => {
      const arrivals = new Map<number, Map<string, number>>(); // version -> user -> first arrival
      const updates = new Map<string, number[]>(); // user -> state arrival times
      const clients: Array<{ user: string; h: Awaited<ReturnType<typeof startGmsClient>> }> = [];
      for (let i = 0; i < N; i += 50) {
        await Promise.all(fanUsers.slice(i, i + 50).map(async (u) => {
          const h = await startGmsClient({ dataDir: join(agentRoot, tag, u), backoff: { baseMs: 200, maxMs: 5000 }, idleTimeoutMs: 60_000,
            onUpdate: () => { const a = updates.get(u) ?? []; a.push(Date.now()); updates.set(u, a); } }, {
            set: (g, v) => { if (g !== 1) return; const m = arrivals.get(v) ?? new Map<string, number>(); if (!m.has(u)) m.set(u, Date.now()); arrivals.set(v, m); },
            del: () => undefined,
          });
          handles.push(h);
          clients.push({ user: u, h });
        }));
      }
      const until = Date.now() + 90_000;
      while ((arrivals.get(1)?.size ?? 0) < N || clients.some((c) => c.h.status().state !== 'connected')) {
        if (Date.now() > until) throw new Error(`${tag}: only ${arrivals.get(1)?.size ?? 0}/${N} agents subscribed after 90 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const runs: Array<{ version: number; reached: number; p50_ms: number; p99_ms: number; all_ms: number }> = [];
      for (let r = 0; r < ROT; r++) {
        await new Promise((res) => setTimeout(res, 500));
        const t0 = Date.now();
        const { version } = await rotateVia.rotate(1);
        const end = Date.now() + 30_000;
        while ((arrivals.get(version)?.size ?? 0) < N && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
        const lat = [...(arrivals.get(version)?.values() ?? [])].map((t) => t - t0);
        runs.push({ version, reached: lat.length, p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), all_ms: lat.length === N ? Math.max(...lat) : -1 });
      }
      return { runs, clients, arrivals, updates };
    };
    const fLite = await fanout('fan-lite', liteAdmins[0]);
    await Promise.all(fLite.clients.map((c) => c.h.stop()));
    const fPg = await fanout('fan-pg', repAdmins[0]);
    const perReplica = new Map<string, number>();
    for (const c of fPg.clients) perReplica.set(c.h.status().gms, (perReplica.get(c.h.status().gms) ?? 0) + 1);

    // 3. Failover: SIGKILL the last replica; rotate through r1 at that moment.
    const victim = reps.replicas[reps.replicas.length - 1];
    const onVictim = fPg.clients.filter((c) => c.h.status().gms === victim.url);
    const tKill = Date.now();
    await reps.kill(victim.id);
    const { version: vFail } = await repAdmins[0].rotate(1);
    const end = Date.now() + 30_000;
    const moved = () => onVictim.filter((c) => c.h.status().state === 'connected' && c.h.status().gms !== victim.url && (fPg.updates.get(c.user) ?? []).some((t) => t > tKill));
    while ((moved().length < onVictim.length || (fPg.arrivals.get(vFail)?.size ?? 0) < N) && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    const failMs = onVictim.map((c) => ((fPg.updates.get(c.user) ?? []).find((t) => t > tKill) ?? NaN) - tKill).filter(Number.isFinite);
    const rotDuringMs = fPg.arrivals.get(vFail)?.size === N ? Math.max(...[...fPg.arrivals.get(vFail)!.values()].map((t) => t - tKill)) : -1;

    const worst = (runs: typeof fLite.runs) => Math.max(...runs.map((r) => (r.all_ms < 0 ? Infinity : r.all_ms)));
    const wLite = worst(fLite.runs);
    const wPg = worst(fPg.runs);
    const row = (r: typeof fLite.runs[number], i: number) => `${String(i + 1).padEnd(9)} ${String(r.version).padEnd(8)} ${String(r.reached).padEnd(8)} ${String(r.p50_ms).padEnd(7)} ${String(r.p99_ms).padEnd(7)} ${r.all_ms < 0 ? 'INCOMPLETE' : r.all_ms}`;
    console.log(`GMS replicas: ${R} replicas on PostgreSQL vs one SQLite GMS, ${N} mutual-TLS SSE agents, ${cpus().length} CPUs ${cpus()[0]?.model ?? ''}`);
    console.log(`load average before: ${load0.map((x) => x.toFixed(2)).join(' ')}, after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`enrollment (${E} GEs, 20 in flight): SQLite ${rateLite.toFixed(1)}/s, PostgreSQL over ${R} replicas ${ratePg.toFixed(1)}/s (ratio ${(ratePg / rateLite).toFixed(2)})`);
    console.log(`fan-out, one SQLite GMS (baseline):\nrotation  version  reached  p50 ms  p99 ms  all ms\n${fLite.runs.map(row).join('\n')}`);
    console.log(`fan-out, ${R} PostgreSQL replicas (agents per replica: ${[...perReplica.values()].join('/')}; rotation through r1):\nrotation  version  reached  p50 ms  p99 ms  all ms\n${fPg.runs.map(row).join('\n')}`);
    console.log(`worst agent: SQLite ${wLite} ms, replicas ${wPg} ms (ratio ${(wPg / wLite).toFixed(2)}); target <= 1000 ms -> ${wPg <= 1000 ? 'MET' : 'MISSED'}`);
    console.log(`failover: ${victim.id} SIGKILLed with ${onVictim.length} agents on it; fresh state from another replica: p50 ${pct(failMs, 50)} ms, p99 ${pct(failMs, 99)} ms, max ${Math.max(...failMs)} ms (${failMs.length}/${onVictim.length} moved); rotation made at the kill at all ${N} agents after ${rotDuringMs} ms`);
    const out = resolve(__dirname, __dirname.includes('/dist/') ? '../../bench/results' : 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(resolve(out, 'gms-replicas.json'), JSON.stringify({
      bench: 'gms-replicas', date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model,
      load_average_before: load0, load_average_after: loadavg(), agents: N, replicas: R,
      enroll: { ges: E, sqlite_per_s: rateLite, postgresql_per_s: ratePg },
      fanout: { sqlite: fLite.runs, postgresql: fPg.runs, agents_per_replica: Object.fromEntries(perReplica), worst_ms: { sqlite: wLite, postgresql: wPg }, target_ms: 1000, target_met: wPg <= 1000 },
      failover: { killed: victim.id, agents: onVictim.length, moved: failMs.length, p50_ms: pct(failMs, 50), p99_ms: pct(failMs, 99), max_ms: Math.max(...failMs), rotation_at_kill_all_ms: rotDuringMs },
    }, null, 2) + '\n');
    console.log(`wrote ${resolve(out, 'gms-replicas.json')}`);
  } finally {
    await Promise.all(handles.map((h) => h.stop().catch(() => undefined)));
    await lite.destroy();
    await reps.destroy();
    await pgs.destroy();
    rmSync(agentRoot, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
