/**
 * A GE process for DPRP namespace tests and benchmarks: runs the real agent
 * (pinned maps, TC attach, punt reader, release) with the DprpHandler, group
 * keys written straight into gscip_keys (what the GMS client would do), in the
 * network namespace it is started in (`ip netns exec NS node dprp-ge.js JSON`).
 * Prints DPRP-GE-READY once attached; stops (detach + unpin) on SIGTERM/SIGINT.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { mallocInfo } from '../../controlplane/bpf/libc.js';
import { writeFileSync } from 'node:fs';
import { Agent } from '../../controlplane/agent/agent.js';
import { parseAgentConfig } from '../../controlplane/config/agent-config.js';
import { DprpHandler, udpRekeyAtFromEnv } from '../../controlplane/dprp/handler.js';
import type { DprpConfig } from '../../controlplane/dprp/node.js';
import type { GeTypeName, ModeName } from '../../controlplane/dprp/wire.js';
import { logger } from '../../controlplane/log/logger.js';
import { monotonicNs } from '../../controlplane/agent/punt-dispatch.js';
import { registerPart } from '../../controlplane/agent/handlers/index.js';
import { probePart } from '../lib/probe-part.js';

export interface GeSpec {
  instance: string;
  pinRoot: string;
  runDir: string;
  ifaces: string[];
  type: GeTypeName;
  mode: ModeName;
  /** [group, version, key hex] */
  keys: Array<[number, number, string]>;
  dprp?: Partial<DprpConfig>;
  /**
   * Load DPRP and the test-only probe part through the agent's composition
   * (config handlers [dprp, probe], not an embedded DprpHandler; `dprp` is then
   * not applied), print each probe event as `PROBE-EVENT <json>`, and serve
   * /metrics on 127.0.0.1:9464 inside the namespace.
   */
  probe?: boolean;
  /** Serve /metrics on 127.0.0.1:9464 inside the namespace (without the probe part; `dprp` applied). */
  metrics?: boolean;
  /**
   * Load DPRP and Mobile PPC through the agent's composition (handlers [dprp,
   * mobile-ppc]; `dprp` not applied) and serve /metrics on 127.0.0.1:9464.
   */
  mobility?: boolean;
  /** The agent config's `mobility` section (e.g. ddns), with `mobility`. */
  mobilityConfig?: Record<string, unknown>;
  /** Destinations this GE requires encryption to (config `requireEncryption`). */
  requireEncryption?: string[];
}

export const PROBE_EVENT = 'PROBE-EVENT';

export const READY = 'DPRP-GE-READY';

async function main(): Promise<void> {
  process.on('exit', (code) => process.stderr.write(`dprp-ge: exit ${code}\n`));
  const spec = JSON.parse(process.argv[2]) as GeSpec;
  const log = logger('dprp-ge').child({ instance: spec.instance });
  const cfg = parseAgentConfig({
    instance: spec.instance, pinRoot: spec.pinRoot, runDir: spec.runDir, metrics: null, detachOnExit: true,
    // A test may run the GEs on another build of the datapath (e.g. to show a test fails without a fix).
    ...(process.env.GSCIP_TEST_BPF_OBJECT ? { bpfObject: process.env.GSCIP_TEST_BPF_OBJECT } : {}),
    interfaces: spec.ifaces.map((name) => ({ name, miss: { ingress: 'punt', egress: 'punt' } })),
    stash: { perFlowPackets: 8, totalPackets: 65536, ttlMs: 3000 },
    punt: { ratePps: 200000, burst: 20000 },
    ...(spec.metrics ? { metrics: '127.0.0.1:9464' } : {}),
    ...(spec.probe ? { handlers: ['dprp', 'probe'], ge: { type: spec.type, mode: spec.mode }, metrics: '127.0.0.1:9464' } : {}),
    ...(spec.mobility ? { handlers: ['dprp', 'mobile-ppc'], ge: { type: spec.type, mode: spec.mode }, metrics: '127.0.0.1:9464', ...(spec.mobilityConfig ? { mobility: spec.mobilityConfig } : {}) } : {}),
  }, 'dprp-ge');
  if (spec.probe) registerPart(probePart((e) => process.stdout.write(`${PROBE_EVENT} ${JSON.stringify(e)}\n`)));
  const required = spec.requireEncryption ?? [];
  const handlers = spec.probe || spec.mobility ? [] : [new DprpHandler({
    self: { type: spec.type, mode: spec.mode }, config: spec.dprp, log: log.child({ component: 'dprp' }), requireEncryption: () => required,
    ...udpRekeyAtFromEnv(process.env.GSCIP_PCCOM_UDP_REKEY_AT),
  })];
  const agent = await Agent.start(cfg, { handlers, log });
  // A bench's view of where the agent's memory is (bench/dprp-flood GSCIP_BENCH_SMAPS): V8's spaces, external, every N ms.
  const heapLogMs = Number(process.env.GSCIP_TEST_HEAP_LOG_MS ?? 0);
  if (heapLogMs > 0) {
    const mb = (x: number) => Math.round(x / 104857.6) / 10;
    setInterval(() => {
      const mu = process.memoryUsage();
      const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name.replace('_space', ''), `${mb(s.space_used_size)}/${mb(s.physical_space_size)}`]));
      const ma = mallocInfo();
      log.info({ rssMb: mb(mu.rss), heapUsedMb: mb(mu.heapUsed), heapTotalMb: mb(mu.heapTotal), externalMb: mb(mu.external), arrayBuffersMb: mb(mu.arrayBuffers), spaces, malloc: { inUseMb: mb(ma.inUse), freeMb: mb(ma.free), mmappedMb: mb(ma.mmapped), arenaMb: mb(ma.arena) } }, 'heap figures');
    }, heapLogMs).unref();
  }
  for (const [group, version, hex] of spec.keys) {
    agent.maps.keys.set({ group_id: group, version }, { key: Buffer.from(hex, 'hex'), flags: 0, installed_ns: monotonicNs() });
  }
  // Optional CPU profile of the running GE (started after load: the profiler's
  // signals would interrupt the BPF verifier with EAGAIN).
  const profPath = process.env.GSCIP_DPRP_PROFILE ? `${process.env.GSCIP_DPRP_PROFILE}-${spec.instance}.cpuprofile` : null;
  const session = profPath ? new (await import('node:inspector')).Session() : null;
  if (session) {
    session.connect();
    await new Promise<void>((r) => session.post('Profiler.enable', () => session.post('Profiler.start', () => r())));
  }
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (session && profPath) {
      await new Promise<void>((r) => session.post('Profiler.stop', (_e, res) => {
        writeFileSync(profPath, JSON.stringify((res as { profile: unknown }).profile));
        r();
      }));
    }
    await agent.stop({ unpin: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => { process.stderr.write('dprp-ge: SIGTERM\n'); void stop(); });
  process.on('SIGINT', () => { process.stderr.write('dprp-ge: SIGINT\n'); void stop(); });
  process.stdout.write(`${READY}\n`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`dprp-ge: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
