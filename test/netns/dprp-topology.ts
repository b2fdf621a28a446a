/**
 * DPRP namespace topology, shared by test/netns/dprp.test.ts and bench/dprp.ts:
 *
 *   a (va 192.0.2.1) --- (ra 192.0.2.254) r (rb 203.0.113.254) --- (vb 203.0.113.2) b
 *
 * r is a plain router (no GSCIP). a and b are GESs running the real agent with
 * the DprpHandler (test/netns/dprp-ge.ts). Everything created is per run:
 * namespaces (test/lib/netns.ts), pin dir /sys/fs/bpf/gscip-test-<prefix>,
 * run dir /run/gscip-test-<prefix>; cleanup() removes all of it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor } from '../lib/netns.js';
import { Capture } from '../lib/capture.js';
import { openPinnedMaps } from '../../controlplane/agent/datapath.js';
import type { GscipMaps } from '../../controlplane/maps/gscip-maps.js';
import type { DprpConfig } from '../../controlplane/dprp/node.js';
import type { GeTypeName, ModeName } from '../../controlplane/dprp/wire.js';
import { READY, type GeSpec } from './dprp-ge.js';

export const A = '192.0.2.1';
export const R_A = '192.0.2.254';
export const R_B = '203.0.113.254';
export const B = '203.0.113.2';

const DIST = resolve(__dirname, '../..');

export interface GeOptions {
  type?: GeTypeName;
  mode?: ModeName;
  keys: Array<[number, number, Buffer]>;
  dprp?: Partial<DprpConfig>;
  /** Extra node flags for the GE process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Run DPRP with the test-only probe part (dprp-ge.ts GeSpec.probe). */
  probe?: boolean;
  /** Serve /metrics on 127.0.0.1:9464 in the GE's namespace (dprp-ge.ts GeSpec.metrics). */
  metrics?: boolean;
  /** Run DPRP and Mobile PPC composed by the agent (dprp-ge.ts GeSpec.mobility). */
  mobility?: boolean;
  /** The agent config's `mobility` section (dprp-ge.ts GeSpec.mobilityConfig). */
  mobilityConfig?: Record<string, unknown>;
  /** Destinations the GE requires encryption to (dprp-ge.ts GeSpec.requireEncryption). */
  requireEncryption?: string[];
  /** Extra environment of the GE process (e.g. GSCIP_RING_WAIT, GSCIP_DPRP_DUMP_DIR). */
  env?: Record<string, string>;
  /** Run the GE process on this CPU only (taskset): the two agents of a bench off each other's core. */
  cpu?: number;
}

/** GE agent processes (test/netns/dprp-ge.ts) in the hosts of a Topology; per-run pin and run dirs. */
export class GeProcesses {
  readonly pinRoot: string;
  readonly runDir: string;
  private readonly ges = new Map<string, ChildProcess>();
  private readonly outputs = new Map<string, () => string>();

  constructor(readonly topo: Topology) {
    this.pinRoot = topo.scratchPinRoot();
    this.runDir = topo.scratchRunDir();
  }

  /**
   * Starts the GE agent (with DPRP) in `host` guarding `ifaces`. One retry if
   * the process dies before it is ready (seen rarely while other suites rebuild
   * or load BPF objects on the same machine); the error keeps its output.
   */
  async start(host: string, ifaces: string[], o: GeOptions): Promise<void> {
    try {
      await this.startOnce(host, ifaces, o);
    } catch (e) {
      if (!/exited/.test((e as Error).message)) throw e;
      process.stderr.write(`GE agent in ${host} died before ready, retrying once: ${(e as Error).message.slice(0, 500)}\n`);
      await this.startOnce(host, ifaces, o);
    }
  }

  private async startOnce(host: string, ifaces: string[], o: GeOptions): Promise<void> {
    const spec: GeSpec = {
      instance: `dprp-${host}`, pinRoot: this.pinRoot, runDir: this.runDir, ifaces,
      type: o.type ?? 'GES', mode: o.mode ?? 'OP', keys: o.keys.map(([g, v, k]) => [g, v, k.toString('hex')]), dprp: o.dprp,
      ...(o.probe ? { probe: true } : {}),
      ...(o.metrics ? { metrics: true } : {}),
      ...(o.mobility ? { mobility: true } : {}),
      ...(o.mobilityConfig ? { mobilityConfig: o.mobilityConfig } : {}),
      ...(o.requireEncryption ? { requireEncryption: o.requireEncryption } : {}),
    };
    // nsenter, not `ip netns exec`: the latter remounts /sys and hides bpffs.
    const argv = [`--net=/run/netns/${this.topo.ns(host)}`, 'node', ...(o.nodeArgs ?? []), resolve(DIST, 'test/netns/dprp-ge.js'), JSON.stringify(spec)];
    // taskset execs nsenter, which execs node: the child's pid stays the agent's.
    const child = spawn(o.cpu === undefined ? 'nsenter' : 'taskset', o.cpu === undefined ? argv : ['-c', String(o.cpu), 'nsenter', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GSCIP_LOG_LEVEL: process.env.GSCIP_LOG_LEVEL ?? 'warn', ...(o.env ?? {}) },
    });
    this.ges.set(host, child);
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => { out += d; if (out.length > 1e6) out = out.slice(-5e5); });
    child.stderr?.on('data', (d: string) => { out += d; });
    this.outputs.set(host, () => out);
    await waitFor(`GE agent in ${host}`, () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`GE agent in ${host} exited (${child.exitCode ?? child.signalCode}): ${out.slice(-2000)}`);
      }
      return out.includes(READY);
    }, 15_000);
  }

  /** The pid of a host's GE process (nsenter execs node: the agent itself), or null. */
  pid(host: string): number | null {
    return this.ges.get(host)?.pid ?? null;
  }

  /** What a host's GE process has printed so far (stdout and stderr, the last ~0.5 MB). */
  output(host: string): string {
    return this.outputs.get(host)?.() ?? '';
  }

  /** The pinned maps of a host's GE (close them after use). */
  maps(host: string): GscipMaps {
    return openPinnedMaps(`${this.pinRoot}/dprp-${host}`);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.ges].map(async ([host, child]) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise<void>((r) => {
          const timer = setTimeout(() => { child.kill('SIGKILL'); r(); }, 5000);
          child.once('exit', () => { clearTimeout(timer); r(); });
        });
      }
      this.ges.delete(host);
    }));
  }

  killAllSync(): void {
    for (const c of this.ges.values()) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    this.ges.clear();
    // Pins of a killed agent: remove the whole per-run tree.
    if (existsSync(this.pinRoot)) sh('rm', ['-rf', this.pinRoot], { allowFail: true });
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** Namespaces with GE agents in them: what every such test topology shares (stop the agents, remove it all). */
export class GeTopology {
  readonly topo: Topology;
  readonly ges: GeProcesses;

  constructor(tag: string) {
    this.topo = new Topology(tag);
    this.ges = new GeProcesses(this.topo);
  }

  async stopGes(): Promise<void> {
    await this.ges.stopAll();
  }

  cleanupSync(): void {
    this.ges.killAllSync();
    this.topo.cleanupSync();
  }

  async cleanup(): Promise<void> {
    await this.ges.stopAll();
    this.cleanupSync();
  }
}

export class DprpTopo extends GeTopology {
  constructor(tag: string) {
    super(tag);
    try {
      const t = this.topo;
      t.addHost('a'); t.addHost('r'); t.addHost('b');
      t.link('a', 'va', 'r', 'ra');
      t.link('r', 'rb', 'b', 'vb');
      t.addr('a', 'va', `${A}/24`);
      t.addr('r', 'ra', `${R_A}/24`);
      t.addr('r', 'rb', `${R_B}/24`);
      t.addr('b', 'vb', `${B}/24`);
      t.route('a', 'default', R_A);
      t.route('b', 'default', R_B);
      t.forwarding('r');
      // PCCOM must see every wire packet on the encrypting interface (docs/pccom.md).
      for (const [host, dev] of [['a', 'va'], ['r', 'ra'], ['r', 'rb'], ['b', 'vb']] as const) {
        t.exec(host, 'ethtool', ['-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      }
    } catch (e) {
      this.cleanupSync();
      throw e;
    }
  }

  startGe(host: 'a' | 'b', iface: string, o: GeOptions): Promise<void> {
    return this.ges.start(host, [iface], o);
  }

  maps(host: 'a' | 'b'): GscipMaps {
    return this.ges.maps(host);
  }

  /** TCP RetransSegs of a host (/proc/net/snmp is per network namespace). */
  retransSegs(host: string): number {
    return retransSegs(this.topo, host);
  }
}

/** TCP RetransSegs of a host (/proc/net/snmp is per network namespace). */
export function retransSegs(t: Topology, host: string): number {
  const lines = t.exec(host, 'cat', ['/proc/net/snmp']).stdout.trim().split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/);
    const vals = lines[i + 1].split(/\s+/);
    if (names[0] === 'Tcp:') return Number(vals[names.indexOf('RetransSegs')]);
  }
  throw new Error('no Tcp line in /proc/net/snmp');
}

/* ---------------- applications (node one-liners inside the namespaces) ---------------- */

export const MARKER = 'GSCIP-DPRP-PLAINTEXT-MARKER';

/** An echo server on b (TCP or UDP) that answers each message with its upper-cased text. */
export function echoServer(t: Topology, host: string, proto: 'tcp' | 'udp', port: number): ChildProcess {
  const js = proto === 'tcp'
    ? `require('net').createServer((c) => { c.on('data', (d) => c.write(d.toString().toUpperCase())); c.on('error', () => {}); })
        .listen(${port}, '0.0.0.0', () => console.log('ready'));`
    : `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(m.toString().toUpperCase(), r.port, r.address));
       s.bind(${port}, () => console.log('ready'));`;
  return t.spawn(host, 'node', ['-e', js]);
}

export { waitReady } from '../lib/netns.js';

export interface ClientResult { ok: boolean; reply: string; connectMs: number[]; totalMs: number; error?: string }

/**
 * From `host`: `n` fresh connections (TCP) or sockets (UDP) to dst:port, one
 * after another, each from its own source port starting at `cport`; each sends
 * one message and waits for the echo. Prints one JSON line.
 */
export async function runClients(t: Topology, host: string, proto: 'tcp' | 'udp', dst: string, port: number, n: number, cport: number, msg: string, timeoutMs = 20_000): Promise<ClientResult> {
  const js = proto === 'tcp' ? `
const net = require('net'); const res = { ok: true, reply: '', connectMs: [] }; const t0 = process.hrtime.bigint();
let i = 0;
const one = () => {
  if (i === ${n}) { res.totalMs = Number(process.hrtime.bigint() - t0) / 1e6; console.log(JSON.stringify(res)); process.exit(0); }
  const s0 = process.hrtime.bigint();
  const s = net.connect({ host: ${JSON.stringify(dst)}, port: ${port}, localPort: ${cport} + i });
  s.setNoDelay(true);
  s.on('connect', () => { res.connectMs.push(Number(process.hrtime.bigint() - s0) / 1e6); s.write(${JSON.stringify(msg)}); });
  s.on('data', (d) => { res.reply = d.toString(); s.destroy(); i++; setImmediate(one); });
  s.on('error', (e) => { res.ok = false; res.error = e.message; console.log(JSON.stringify(res)); process.exit(2); });
};
one();` : `
const dgram = require('dgram'); const res = { ok: true, reply: '', connectMs: [] }; const t0 = process.hrtime.bigint();
let i = 0;
const one = () => {
  if (i === ${n}) { res.totalMs = Number(process.hrtime.bigint() - t0) / 1e6; console.log(JSON.stringify(res)); process.exit(0); }
  const s = dgram.createSocket('udp4'); const s0 = process.hrtime.bigint();
  s.bind(${cport} + i, () => s.send(${JSON.stringify(msg)}, ${port}, ${JSON.stringify(dst)}));
  s.on('message', (d) => { res.connectMs.push(Number(process.hrtime.bigint() - s0) / 1e6); res.reply = d.toString(); s.close(); i++; setImmediate(one); });
};
one();`;
  const child = t.spawn(host, 'node', ['-e', js]);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => { out += d; });
  child.stderr?.on('data', (d: string) => { err += d; });
  const code = await new Promise<number | null>((r) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); r(null); }, timeoutMs);
    child.once('exit', (c) => { clearTimeout(timer); r(c); });
  });
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ClientResult;
  } catch {
    return { ok: false, reply: '', connectMs: [], totalMs: 0, error: `client exited ${code}: ${err.slice(-500)}` };
  }
}

/** A GE's /metrics text (GeOptions.metrics: served on 127.0.0.1:9464 inside its namespace). */
export function metricsText(t: Topology, host: string): string {
  const js = "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((t) => process.stdout.write(t)).catch((e) => { console.error(e); process.exit(1); })";
  return t.exec(host, 'node', ['-e', js]).stdout;
}

/** A capture on r's interface toward a: TCP/UDP payloads and GSCIP control messages (a Capture, ../lib/capture.ts). */
export class RouterCapture {
  readonly file: string;
  private constructor(private readonly t: Topology, private readonly iface: string, private readonly host: string, private readonly cap: Capture) {
    this.file = cap.file;
  }
  static async start(t: Topology, iface = 'ra', host = 'r'): Promise<RouterCapture> {
    const file = `/tmp/${t.prefix}-${host}-${randomBytes(3).toString('hex')}.pcap`;
    const cap = await Capture.start(t, { host, iface, file, filter: 'tcp or udp or icmp' });
    return new RouterCapture(t, iface, host, cap);
  }
  /**
   * Stops; returns every captured frame (Ethernet; Linux cooked v1 with iface "any").
   * tcpdump stopped by SIGINT does not read what is still queued for it, and a
   * loaded machine can leave it behind by more than a poll (seen: a Fig. 6 run
   * whose plaintext datagram crossed the LAN but was not in the file). With
   * iface "any" a sentinel datagram to the namespace's own loopback, sent after
   * the traffic, is in the file only once tcpdump has read everything before
   * it; other captures wait until the file stopped growing. Throws if tcpdump
   * reports frames dropped by the kernel (Capture.pcap).
   */
  async stop(): Promise<Buffer[]> {
    if (this.iface === 'any') {
      const mark = Buffer.from(`GSCIP-CAPTURE-SENTINEL-${randomBytes(6).toString('hex')}`);
      this.t.exec(this.host, process.execPath, ['-e', `const s = require('dgram').createSocket('udp4'); s.send(Buffer.from(${JSON.stringify(mark.toString())}), 9, '127.0.0.1', () => s.close());`], { allowFail: true });
      await waitFor('the capture read up to its sentinel', () => existsSync(this.file) && readFileSync(this.file).includes(mark), 10_000, 50).catch(() => undefined);
    }
    // Let tcpdump catch up (a loaded machine delays it): wait until the file stops growing.
    let last = -1;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const size = existsSync(this.file) ? readFileSync(this.file).length : 0;
      if (size === last && i >= 2) break;
      last = size;
    }
    await this.cap.stop(3000);
    let pcap: Buffer;
    try { pcap = this.cap.pcap(); } finally { rmSync(this.file, { force: true }); }
    const frames: Buffer[] = [];
    for (let off = 24; off + 16 <= pcap.length && frames.length < 1e6;) {
      const incl = pcap.readUInt32LE(off + 8);
      frames.push(pcap.subarray(off + 16, off + 16 + incl));
      off += 16 + incl;
    }
    return frames;
  }
}

/** Sends raw IPv4 packets from `host` (a raw socket, the kernel routes them). */
export function injectFrom(t: Topology, host: string, ipPackets: Buffer[]): void {
  const libc = resolve(DIST, 'controlplane/bpf/libc.js');
  const js = `
const l = require(${JSON.stringify(libc)});
const fd = l.socket(l.AF_INET, l.SOCK_RAW, l.IPPROTO_RAW); l.setsockoptU32(fd, l.IPPROTO_IP, l.IP_HDRINCL, 1);
for (const hex of process.argv.slice(1)) {
  const p = Buffer.from(hex, 'hex'); const a = Buffer.alloc(16); a.writeUInt16LE(l.AF_INET, 0); p.copy(a, 4, 16, 20);
  l.sendto(fd, p, a);
}
l.closeFd(fd);`;
  t.exec(host, 'node', ['-e', js, ...ipPackets.map((p) => p.toString('hex'))]);
}
