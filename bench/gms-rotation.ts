/**
 * bench/gms-rotation: how long one group-key rotation takes to reach N
 * subscribed agents (default 1,000; target: all within 2 s), and the GMS's
 * memory at that scale.
 *
 * The GMS runs in a child process (so its RSS is its own); the N simulated
 * agents run in this process, each a real agent-side client: its own key pair
 * and certificate (enrolled with a one-time token), its own mutual-TLS
 * server-sent-events stream, a KeySink that timestamps the arrival of each
 * key. Everything on 127.0.0.1.
 *
 * The agents' data dirs (key cache, status file, both fsynced) go on tmpfs
 * (/dev/shm) when it exists: on real machines each agent writes its own disk
 * in parallel, here 1,000 of them would queue on one disk inside one event
 * loop and the figure would measure that queue, not the GMS. The GMS's own
 * database stays on disk.
 *
 *   node dist/bench/gms-rotation.js [--agents 1000] [--rotations 3]
 * Writes bench/results/gms-rotation.json.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { intArg } from './args.js';

process.env.GSCIP_LOG_LEVEL ??= 'warn';

interface ChildMsg { kind: 'ready'; url: string; fingerprint: string } 
interface StatMsg { kind: 'stats'; rssBytes: number; heapUsedBytes: number; connected: number }

async function childMain(dataDir: string): Promise<void> {
  const { GmsServer } = await import('../controlplane/gms/server.js');
  const s = await GmsServer.start({ dataDir, host: '127.0.0.1', port: 0 });
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'stats') {
      const mu = process.memoryUsage();
      process.send!({ kind: 'stats', rssBytes: mu.rss, heapUsedBytes: mu.heapUsed, connected: s.connectedCount() } satisfies StatMsg);
    } else if (m.kind === 'stop') {
      void s.close().then(() => process.exit(0));
    }
  });
  process.send!({ kind: 'ready', url: s.url, fingerprint: s.ca.fingerprint() } satisfies ChildMsg);
}

const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;

async function main(): Promise<void> {
  const N = intArg('agents', 1000);
  const load0 = loadavg();
  const ROT = intArg('rotations', 3);
  const { GmsAdminClient } = await import('../controlplane/gms/admin-client.js');
  const { enroll, startGmsClient } = await import('../controlplane/gms/client.js');
  const root = mkdtempSync(join(tmpdir(), 'gscip-bench-gms-'));
  const gmsDir = join(root, 'gms');
  const child = fork(__filename, ['--child', gmsDir], { env: { ...process.env, GSCIP_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const handles: Array<{ stop(): Promise<void> }> = [];
  let agentRootToRemove: string | null = null;
  const cleanup = async (): Promise<void> => {
    await Promise.all(handles.map((h) => h.stop().catch(() => undefined)));
    if (child.exitCode === null) { child.send({ kind: 'stop' }); await new Promise((r) => { child.once('exit', r); setTimeout(() => { child.kill('SIGKILL'); r(null); }, 5000); }); }
    rmSync(root, { recursive: true, force: true });
    if (agentRootToRemove) rmSync(agentRootToRemove, { recursive: true, force: true });
  };
  try {
    const ready = await new Promise<ChildMsg>((res, rej) => { child.once('message', (m) => res(m as ChildMsg)); child.once('exit', (c) => rej(new Error(`GMS child exited ${c}`))); });
    const stats = (): Promise<StatMsg> => new Promise((res) => { child.once('message', (m) => res(m as StatMsg)); child.send({ kind: 'stats' }); });
    const rssIdle = await stats();
    const admin = GmsAdminClient.fromDataDir(gmsDir);
    const ids = Array.from({ length: N }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
    const groups = Array.from({ length: 10 }, (_, i) => ({ id: i + 1 }));
    await admin.apply({ apiVersion: 'gscip/v1', kind: 'Network', groups,
      ges: ids.map((userId, i) => ({ userId, type: 'GES', mode: 'OP', groups: [1, 2 + (i % 9)] })) }, false);

    // Enroll every agent (real tokens, CSRs and certificates), 20 at a time.
    const tEnroll = Date.now();
    const agentRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/gscip-bench-agents-') : join(root, 'agents');
    agentRootToRemove = agentRoot;
    const dirs = ids.map((id) => join(agentRoot, id));
    for (let i = 0; i < N; i += 20) {
      await Promise.all(ids.slice(i, i + 20).map(async (id, j) => {
        const t = await admin.issueToken(id, 3600);
        await enroll({ gmsUrl: ready.url, token: t.token, caFingerprint: ready.fingerprint, dataDir: dirs[i + j] });
      }));
    }
    const enrollS = (Date.now() - tEnroll) / 1000;

    // Subscribe every agent; each sink records when it receives group 1's key of a given version.
    const arrivals = new Map<number, number[]>(); // version -> arrival times
    const tConnect = Date.now();
    for (let i = 0; i < N; i += 50) {
      await Promise.all(dirs.slice(i, i + 50).map(async (d) => {
        handles.push(await startGmsClient({ dataDir: d, backoff: { baseMs: 200, maxMs: 5000 }, idleTimeoutMs: 60_000 }, {
          set: (g, v) => { if (g === 1) { const a = arrivals.get(v) ?? []; a.push(Date.now()); arrivals.set(v, a); } },
          del: () => undefined,
        }));
      }));
    }
    const deadline = Date.now() + 60_000;
    let st = await stats();
    while (st.connected < N || (arrivals.get(1)?.length ?? 0) < N) {
      if (Date.now() > deadline) throw new Error(`only ${st.connected}/${N} agents connected after 60 s`);
      await new Promise((r) => setTimeout(r, 100));
      st = await stats();
    }
    const connectS = (Date.now() - tConnect) / 1000;
    const rssConnected = st;

    const runs: Array<{ version: number; all_ms: number; p50_ms: number; p99_ms: number; reached: number }> = [];
    for (let r = 0; r < ROT; r++) {
      await new Promise((res) => setTimeout(res, 500));
      const t0 = Date.now();
      const { version } = await admin.rotate(1);
      const until = Date.now() + 30_000;
      while ((arrivals.get(version)?.length ?? 0) < N && Date.now() < until) await new Promise((res) => setTimeout(res, 5));
      const lat = (arrivals.get(version) ?? []).map((t) => t - t0);
      runs.push({ version, reached: lat.length, all_ms: lat.length === N ? Math.max(...lat) : -1, p50_ms: pct(lat, 50), p99_ms: pct(lat, 99) });
    }
    const rssAfter = await stats();

    const worst = Math.max(...runs.map((r) => (r.all_ms < 0 ? Infinity : r.all_ms)));
    console.log(`GMS rotation fan-out: ${N} subscribed agents on 127.0.0.1 (mutual TLS + SSE), ${cpus().length} CPUs ${cpus()[0]?.model ?? ''}`);
    console.log(`load average before: ${load0.map((x) => x.toFixed(2)).join(' ')}, after: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (other work on the machine shows up here); agent dirs on ${agentRoot.startsWith('/dev/shm') ? 'tmpfs' : 'disk'}`);
    console.log(`setup: enrolled ${N} agents in ${enrollS.toFixed(1)} s, all subscribed in ${connectS.toFixed(1)} s`);
    console.log('rotation  version  reached  p50 ms  p99 ms  all ms');
    runs.forEach((r, i) => console.log(`${String(i + 1).padEnd(9)} ${String(r.version).padEnd(8)} ${String(r.reached).padEnd(8)} ${String(r.p50_ms).padEnd(7)} ${String(r.p99_ms).padEnd(7)} ${r.all_ms < 0 ? 'INCOMPLETE' : r.all_ms}`));
    console.log(`GMS RSS: idle ${mib(rssIdle.rssBytes)} MiB, ${N} agents connected ${mib(rssConnected.rssBytes)} MiB, after rotations ${mib(rssAfter.rssBytes)} MiB (heap used ${mib(rssAfter.heapUsedBytes)} MiB)`);
    console.log(`target: all ${N} within 2000 ms -> ${worst <= 2000 ? 'MET' : 'MISSED'} (worst ${Number.isFinite(worst) ? worst : 'incomplete'} ms)`);
    const out = resolve(__dirname, __dirname.includes('/dist/') ? '../../bench/results' : 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(resolve(out, 'gms-rotation.json'), JSON.stringify({
      bench: 'gms-rotation', date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model,
      load_average_before: load0, load_average_after: loadavg(),
      agents: N, enroll_seconds: enrollS, subscribe_seconds: connectS, rotations: runs, target_ms: 2000, target_met: worst <= 2000,
      gms_rss_mib: { idle: mib(rssIdle.rssBytes), connected: mib(rssConnected.rssBytes), after_rotations: mib(rssAfter.rssBytes) },
    }, null, 2) + '\n');
    console.log(`wrote ${resolve(out, 'gms-rotation.json')}`);
  } finally {
    await cleanup();
  }
}

if (process.argv[2] === '--child') void childMain(process.argv[3]);
else main().catch((e) => { console.error(e); process.exitCode = 1; });
