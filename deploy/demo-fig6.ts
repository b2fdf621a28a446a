/**
 * `make demo`: the seed 002 Fig. 6 enterprise network, live on this machine.
 *
 * Everything an operator would do, through the real `gscip` CLI: a GMS
 * (`gms serve`) on a management network, `gms apply -f
 * deploy/examples/fig6-network.yaml`, one-time tokens, `agent enroll`, then
 * `agent run --handler dprp --gms-data-dir` on each GE (GEN, GES1-3, GEA),
 * which receives its group keys from the GMS. Then every pair of the SPEC's
 * acceptance matrix (both directions) runs a real TCP exchange while the LAN
 * and the GEN-Term link are captured, and a table compares what was expected
 * with what the application got, what was on the wire and what the start
 * GE's PIT decided. Then `maps dump pit` of two GEs, a key rotation of group 1
 * reaching the agents and the next flow, and a few /metrics lines.
 *
 * Exit 0 only if every check matched. Namespaces (per-run prefix), bpffs pins,
 * processes and temp dirs are removed on exit, failure or Ctrl-C; every wait
 * is bounded and the whole run is capped at DEMO_LIMIT_MS. DEMO_DEBUG=1 prints
 * the stack of a failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Topology } from '../test/lib/netns.js';
import { waitFor } from '../test/lib/netns.js';
import { GscipRunner, type AgentProc } from '../test/lib/agent-process.js';
import { defaultObjectPath } from '../test/lib/bpf-harness.js';
import { echoServer, MARKER, RouterCapture, runClients, waitReady, type ClientResult } from '../test/netns/dprp-topology.js';
import { buildFig6, GE_HOSTS, GMS_ADDR, HOSTS, MATRIX, USER_ID, type EndHost, type GeHost, type Want } from './fig6-network.js';
import { tcpFlowOnWire, verdictOf, type FlowOnWire, type WireVerdict } from './wire-flows.js';

const DIST = resolve(__dirname, '..');
const ROOT = resolve(DIST, '..');
const MAIN = resolve(DIST, 'controlplane/cli/main.js');
const NETWORK_YAML = resolve(ROOT, 'deploy/examples/fig6-network.yaml');
const DEMO_LIMIT_MS = 110_000;
const PORT = 7001;


const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let stepNo = 0;
const T0 = Date.now();
function step(title: string, ...narrative: string[]): void {
  process.stdout.write(`\n${bold(`== ${++stepNo}. ${title}`)}  [t=${((Date.now() - T0) / 1000).toFixed(1)} s]\n`);
  for (const l of narrative) process.stdout.write(`   ${l}\n`);
}
const indent = (s: string, n = 3): string => s.trimEnd().split('\n').map((l) => (l ? ' '.repeat(n) + l : l)).join('\n') + '\n';
const say = (s: string): void => { process.stdout.write(indent(s)); };

interface PitRow { dir: string; src: string; sport: number; dst: string; dport: number; action: string; state: string; group: number; keyVersion: number; prevKeyVersion: number }

class Demo {
  readonly t: Topology;
  readonly g: GscipRunner;
  readonly tmp: string;
  private readonly agents = new Map<GeHost, AgentProc>();
  gmsUrl = '';
  private gmsFp = '';
  private readonly gmsDir: string;
  private cport = 40000 + Math.floor(Math.random() * 20000);

  constructor() {
    this.tmp = mkdtempSync(join(tmpdir(), 'gscip-demo-fig6-'));
    process.on('exit', () => this.cleanupSync());
    this.t = buildFig6('demo6');
    this.g = new GscipRunner(this.t, 'fig6');
    this.gmsDir = join(this.tmp, 'gms');
  }

  instance(h: GeHost): string[] { return this.g.instanceArgs(`fig6-${h}`); }
  agentDir(h: GeHost): string { return join(this.tmp, `agent-${h}`); }

  /** Removes every namespace, process, pin, run dir and temp dir of this run (also from the exit hook). */
  cleanupSync(): void {
    this.g?.cleanup();
    this.t?.cleanupSync();
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
  }

  async startGms(): Promise<void> {
    const gms = this.t.spawn('mgmt', process.execPath, [MAIN, 'gms', 'serve', '--data-dir', this.gmsDir, '--listen', `${GMS_ADDR}:0`]);
    let out = '';
    gms.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    gms.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    this.gmsUrl = (await waitFor('GMS to listen', () => {
      if (gms.exitCode !== null) throw new Error(`gms serve exited ${gms.exitCode}: ${out}`);
      return /GMS listening on (https:\/\/\S+)/.exec(out);
    }, 20_000, 50))![1];
    this.gmsFp = (await waitFor('GMS CA fingerprint', () => /CA fingerprint[^:]*: (\S+)/.exec(out), 5000, 50))![1];
  }

  /**
   * `gscip ARGS` in `host`, must succeed. In this shared checkout another engineer's tsc may be rewriting
   * dist/ at that moment (seen as "x is not iterable" / "Cannot find module"): up to two retries for that only.
   */
  async ok(host: string, args: string[], input?: string): Promise<string> {
    for (let i = 0; ; i++) {
      const r = this.g.cli(host, args, input);
      if (r.code === 0) return r.out;
      const halfBuilt = /is not iterable|is not a function|Cannot find module|SyntaxError|Unexpected end of input/.test(r.err);
      if (!halfBuilt || i === 2) throw new Error(`gscip ${args.join(' ')} (in ${host}) exited ${r.code}: ${r.err.trim()}`);
      say(`(gscip ${args[0]} ${args[1] ?? ''}: dist/ looked half-built, retrying: ${r.err.trim().split('\n')[0]})`);
      await new Promise((res) => setTimeout(res, 1500));
    }
  }

  gmsAdmin(args: string[]): Promise<string> {
    return this.ok('mgmt', [...args, '--data-dir', this.gmsDir]);
  }

  /** Token from the GMS, `agent enroll` inside the GE's namespace, then the GE info the GMS delivers to it. */
  async enroll(h: GeHost): Promise<{ type: string; mode: string; groups: number[] }> {
    const token = (await this.gmsAdmin(['gms', 'token', 'issue', '--ge', USER_ID[h], '--ttl', '300'])).trim();
    const out = await this.ok(h, ['agent', 'enroll', '--gms', this.gmsUrl, '--token-file', '/dev/stdin', '--ca-fingerprint', this.gmsFp,
      '--data-dir', this.agentDir(h)], `${token}\n`);
    say(out.trim());
    const js = `require(${JSON.stringify(resolve(DIST, 'controlplane/gms/client.js'))}).fetchGeState(process.argv[1])
      .then((d) => console.log(JSON.stringify({ type: d.type, mode: d.mode, groups: d.groups })), (e) => { console.error(e.message); process.exit(1); })`;
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.t.ns(h)}`, process.execPath, '-e', js, this.agentDir(h)], { encoding: 'utf8', timeout: 15_000 });
    if (r.status !== 0) throw new Error(`${h}: fetching its GE info from the GMS failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { type: string; mode: string; groups: number[] };
  }

  /** The agent takes its GE type and mode from the GMS (--gms-data-dir): nothing else about the GE is given. */
  async startAgent(h: GeHost): Promise<void> {
    const args = ['--iface', 'lan0', '--miss', 'punt', '--handler', 'dprp', '--metrics', '127.0.0.1:9464', '--detach-on-exit',
      '--gms-data-dir', this.agentDir(h)];
    try {
      this.agents.set(h, await this.g.startAgent(h, args, `fig6-${h}`));
    } catch (e) {
      // Rarely an agent dies while another process loads BPF objects on this machine: one retry, as the tests do.
      if (!/exited/.test((e as Error).message)) throw e;
      say(`${h}: agent died before attaching, retrying once: ${(e as Error).message.split('\n').slice(0, 3).join(' ').slice(0, 300)}`);
      this.agents.set(h, await this.g.startAgent(h, args, `fig6-${h}`));
    }
  }

  async keys(h: GeHost): Promise<Array<{ group: number; version: number }>> {
    return JSON.parse(await this.ok(h, ['keys', 'ls', '--json', ...this.instance(h)])) as Array<{ group: number; version: number }>;
  }

  async pit(h: GeHost): Promise<PitRow[]> {
    return JSON.parse(await this.ok(h, ['maps', 'dump', 'pit', '--json', ...this.instance(h)])) as PitRow[];
  }

  nextPort(): number { return this.cport++; }

  async stopAgents(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop('SIGTERM', 8000)));
  }
}

interface Row {
  pair: string; expected: string; app: string; wire: string; pit: string; ok: boolean; why: string[];
}

function appOutcome(r: ClientResult, msg: string): { text: string; delivered: boolean } {
  if (r.ok && r.reply === msg.toUpperCase()) return { text: `echo intact (${r.connectMs[0]?.toFixed(1) ?? '?'} ms connect)`, delivered: true };
  if (r.ok) return { text: `reply CORRUPTED (${r.reply.length} bytes)`, delivered: false };
  return { text: r.error?.includes('exited null') || !r.error ? 'no connection (timed out)' : `failed: ${r.error.split('\n')[0].slice(0, 40)}`, delivered: false };
}

function printTable(rows: Row[]): void {
  const head = ['PAIR', 'EXPECTED', 'APPLICATION', 'ON THE WIRE (capture)', 'START GE PIT', 'RESULT'];
  const cells = rows.map((r) => [r.pair, r.expected, r.app, r.wire, r.pit, r.ok ? 'OK' : 'MISMATCH']);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]): string => c.map((x, i) => x.padEnd(w[i])).join(' | ').trimEnd();
  say([line(head), w.map((n) => '-'.repeat(n)).join('-+-'), ...cells.map(line)].join('\n'));
  for (const r of rows) if (!r.ok) say(`MISMATCH ${r.pair}: ${r.why.join('; ')}`);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) { console.error('demo: run as root (bpf, netns)'); return 1; }
  if (!existsSync(defaultObjectPath()) || !existsSync(MAIN)) { console.error('demo: build first (make build)'); return 1; }
  const t0 = Date.now();
  process.env.GSCIP_LOG_LEVEL ??= 'warn'; // every gscip child inherits it: info logs would bury the narrative
  process.stdout.write(bold('GSCIP for Linux: the seed 002 Fig. 6 enterprise network, live') + '\n');

  step('topology (per-run network namespaces)',
    'LAN 192.0.2.0/24 on a switch: GES1 .11, GES2 .12, GES3 .13, GEN .1, GEA .20',
    'GEN routes to Term 198.51.100.10 (a plain host, no GSCIP software)',
    'GEA routes to the important server 203.0.113.10 (a plain host)',
    `management network 100.64.0.0/24: the GMS on ${GMS_ADDR}, each GE's mgmt0 (not protected by GSCIP)`);
  const d = new Demo();
  say(`namespaces: ${d.t.prefix}-*; pins under ${d.g.pinRoot}`);

  step('GMS: serve, apply the network definition, load report',
    'the GMS holds the only definitions: per GE its user ID, type, mode and groups; per group a key and version');
  await d.startGms();
  say(`GMS listening on ${d.gmsUrl}`);
  say(`$ gscip gms apply -f deploy/examples/fig6-network.yaml\n${await d.gmsAdmin(['gms', 'apply', '-f', NETWORK_YAML])}`);
  const lr = d.g.cli('mgmt', ['gms', 'load-report', '-f', NETWORK_YAML]);
  say(lr.code === 0 ? lr.out : `(gms load-report unavailable: ${lr.err.trim()})`);

  step('enroll each GE with a one-time token; the GMS delivers its GE info',
    'no address of any peer is configured anywhere: only type, mode and group keys');
  const infos = new Map<GeHost, { type: string; mode: string; groups: number[] }>();
  for (const h of GE_HOSTS) {
    const info = await d.enroll(h);
    infos.set(h, info);
    say(`${h.padEnd(5)} ${USER_ID[h].padEnd(13)} type ${info.type}, mode ${info.mode}, groups ${info.groups.map((x) => `GK${x}`).join('+')}`);
  }

  step('start `gscip agent run --handler dprp --gms-data-dir ...` on every GE (TC on lan0, PIT misses punted to DPRP)',
    'each agent takes its GE type and mode from the GMS; the command line names only the interface and the enrollment dir');
  for (const h of GE_HOSTS) {
    const s0 = Date.now();
    await d.startAgent(h);
    say(`${h.padEnd(5)} agent attached (${Date.now() - s0} ms)`);
  }
  const want = new Map<GeHost, string>(GE_HOSTS.map((h) => [h, [...infos.get(h)!.groups].sort().join(',')]));
  const groupsHeld = async (h: GeHost): Promise<string> => [...new Set((await d.keys(h)).map((k) => k.group))].sort().join(',');
  for (const h of GE_HOSTS) await waitFor(`${h} to hold exactly its groups' keys from the GMS`, async () => (await groupsHeld(h)) === want.get(h), 20_000, 200);
  for (const h of GE_HOSTS) say(`${h.padEnd(5)} gscip_keys: ${(await d.keys(h)).map((k) => `GK${k.group} v${k.version}`).join(', ')}`);
  await new Promise((r) => setTimeout(r, 1200)); // the DPRP handler re-reads the key map every second

  step('the acceptance matrix: a real TCP exchange per pair, both directions',
    'each client connects, sends a marker message, the echo server answers it upper-cased;',
    'captured on the LAN switch (and on the GEN-Term link for Term flows): is the marker visible?');
  for (const h of Object.keys(HOSTS) as EndHost[]) await waitReady(echoServer(d.t, h, 'tcp', PORT), `tcp echo on ${h}`);
  // One capture per exchange (as test/netns/dprp-fig6.test.ts does): what is seen belongs to that flow only.
  const runs: Array<{ src: EndHost; dst: EndHost; want: Want; cport: number; msg: string; r: ClientResult; lan: FlowOnWire; term: FlowOnWire | null; entry: PitRow | undefined }> = [];
  let lanFrames = 0;
  for (const [x, y, w] of MATRIX) {
    for (const [src, dst] of [[x, y], [y, x]] as Array<[EndHost, EndHost]>) {
      const cport = d.nextPort();
      const msg = `${MARKER}-${src}-${dst}-${cport}`;
      const needles = [msg, msg.toUpperCase()];
      const lanCap = await RouterCapture.start(d.t, 'any', 'sw');
      const termCap = src === 'Term' || dst === 'Term' ? await RouterCapture.start(d.t, 'eth0', 'Term') : null;
      const r = await runClients(d.t, src, 'tcp', HOSTS[dst].addr, PORT, 1, cport, msg, w.kind === 'discard' ? 1500 : 8000);
      const lan = await lanCap.stop();
      lanFrames += lan.length;
      const term = termCap ? tcpFlowOnWire(await termCap.stop(), cport, PORT, needles) : null;
      // Read the start GE's entry now: a closed flow (FIN both ways) leaves the PIT
      // after the closed-flow timeout, long before the last exchange ends.
      const entry = (await d.pit(HOSTS[src].protector)).find((p) => p.dir === 'egress' && p.src === HOSTS[src].addr && p.sport === cport && p.dport === PORT);
      runs.push({ src, dst, want: w, cport, msg, r, lan: tcpFlowOnWire(lan, cport, PORT, needles), term, entry });
    }
  }

  const rows: Row[] = runs.map(({ src, dst, want: w, msg, r, lan, term, entry: e }) => {
    const why: string[] = [];
    const app = appOutcome(r, msg);
    const onLan = verdictOf(lan);
    const termFlow = term !== null;
    const onTerm: WireVerdict | null = term ? verdictOf(term) : null;
    const start = HOSTS[src].protector;
    const pit = e ? `${e.action}${e.group ? ` GK${e.group} v${e.keyVersion}` : ''} (${start})` : `none (${start})`;
    let expected: string;
    if (w.kind === 'enc') {
      expected = termFlow ? `encrypted GK${w.group} to GEN, plain to Term` : `encrypted GK${w.group}`;
      if (!app.delivered) why.push('application data did not come back intact');
      if (onLan !== 'ciphertext') why.push(`LAN shows ${onLan}, want ciphertext (flow frames ${lan.frames}, with data ${lan.dataFrames}, plaintext ${lan.plaintextFrames})`);
      if (onTerm !== null && onTerm !== 'plaintext') why.push(`GEN-Term link shows ${onTerm}, want plaintext`);
      if (e?.action !== 'encrypt' || e.group !== w.group) why.push(`start GE PIT ${pit}, want encrypt GK${w.group}`);
    } else if (w.kind === 'plain') {
      expected = 'plaintext';
      if (!app.delivered) why.push('application data did not come back intact');
      if (onLan !== 'plaintext') why.push(`LAN shows ${onLan}, want plaintext (flow frames ${lan.frames}, with data ${lan.dataFrames})`);
      if (e?.action !== 'pass') why.push(`start GE PIT ${pit}, want pass`);
    } else {
      expected = 'discarded';
      if (r.ok || r.reply !== '') why.push('the application got through');
      if (onLan !== 'no data') why.push(`LAN shows ${onLan} of the flow, want no data`);
      if (e?.action !== 'drop') why.push(`start GE PIT ${pit}, want drop`);
    }
    const wire = `LAN ${onLan}${onTerm ? `, GEN-Term ${onTerm}` : ''}`;
    return { pair: `${src} -> ${dst}`, expected, app: app.text, wire, pit, ok: why.length === 0, why };
  });
  printTable(rows);
  const matched = rows.filter((r) => r.ok).length;
  say(`${matched}/${rows.length} pairs matched the SPEC (LAN captures held ${lanFrames} frames)`);

  step('`gscip maps dump pit` on GES2 (manager, GK1+GK2) and on the GEA (CL, in front of the server)');
  for (const h of ['GES2', 'GEA'] as const) say(`$ gscip maps dump pit --instance fig6-${h}   (in ${h})\n${await d.ok(h, ['maps', 'dump', 'pit', ...d.instance(h)])}`);

  step('key rotation: `gscip gms rotate --group 1` (GEN, GES1, GES2 hold GK1)',
    'the GMS pushes the new version to every member; the agents re-key their GK1 flows and new flows use it');
  const v1 = Math.max(...(await d.keys('GES1')).filter((k) => k.group === 1).map((k) => k.version));
  const rot = (await d.gmsAdmin(['gms', 'rotate', '--group', '1'])).trim();
  say(`$ gscip gms rotate --group 1\n${rot}`);
  const v2 = Number(/key version (\d+)/.exec(rot)?.[1]);
  const r0 = Date.now();
  for (const h of ['GEN', 'GES1', 'GES2'] as const) {
    await waitFor(`GK1 v${v2} on ${h}`, async () => (await d.keys(h)).some((k) => k.group === 1 && k.version === v2), 20_000, 100);
  }
  say(`GK1 v${v1} -> v${v2} installed on GEN, GES1, GES2 within ${Date.now() - r0} ms`);
  say(`$ gscip agent status --gms-data-dir ...   (in GES1)\n${await d.ok('GES1', ['agent', 'status', '--gms-data-dir', d.agentDir('GES1'), ...d.instance('GES1')])}`);
  await new Promise((r) => setTimeout(r, 1200)); // the DPRP handler re-reads the key map every second
  const cport = d.nextPort();
  const msg = `${MARKER}-after-rotation-${cport}`;
  const cap2 = await RouterCapture.start(d.t, 'any', 'sw');
  const rr = await runClients(d.t, 'GES1', 'tcp', HOSTS.GES2.addr, PORT, 1, cport, msg, 8000);
  const afterWire = verdictOf(tcpFlowOnWire(await cap2.stop(), cport, PORT, [msg, msg.toUpperCase()]));
  const pe = (await d.pit('GES1')).find((p) => p.dir === 'egress' && p.sport === cport && p.dport === PORT);
  const rotOk = appOutcome(rr, msg).delivered && afterWire === 'ciphertext' && pe?.action === 'encrypt' && pe.group === 1 && pe.keyVersion === v2;
  const byVersion = new Map<string, number>();
  for (const p of (await d.pit('GES1')).filter((x) => x.group === 1)) {
    const k = `v${p.keyVersion}${p.prevKeyVersion ? ` (prev v${p.prevKeyVersion})` : ''}`;
    byVersion.set(k, (byVersion.get(k) ?? 0) + 1);
  }
  say(`GES1 PIT entries of GK1 by key version: ${[...byVersion].map(([k, n]) => `${k} x${n}`).join(', ') || 'none'}`);
  say(`new flow GES1 -> GES2 after the rotation: ${appOutcome(rr, msg).text}; LAN ${afterWire}; PIT ${pe ? `${pe.action} GK${pe.group} v${pe.keyVersion}` : 'none'} -> ${rotOk ? 'OK' : `MISMATCH (want encrypt GK1 v${v2})`}`);

  step('/metrics of the GEN and GES1 agents (negotiations, fast-path verdicts)');
  for (const h of ['GEN', 'GES1'] as const) {
    const js = `fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((t) => console.log(t.split('\\n')
      .filter((l) => /^gscip_(dprp_negotiations_\\w+_total|datapath_packets_total)\\{/.test(l) && !/ 0$/.test(l)).join('\\n')))`;
    const r = spawnSync('nsenter', [`--net=/run/netns/${d.t.ns(h)}`, process.execPath, '-e', js], { encoding: 'utf8', timeout: 10_000 });
    say(`${h}:\n${indent(r.stdout || r.stderr || '(nothing)', 2)}`);
  }

  step('stop the agents (detach on exit), remove namespaces, pins and temp dirs');
  await d.stopAgents();
  d.cleanupSync();
  const allOk = matched === rows.length && rotOk;
  process.stdout.write(`\n${bold(allOk ? 'demo OK' : 'demo FAILED')}: ${matched}/${rows.length} pairs matched, rotation ${rotOk ? 'OK' : 'MISMATCH'}; ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return allOk ? 0 : 1;
}

if (require.main === module) {
  const limit = setTimeout(() => { console.error(`demo: gave up after ${DEMO_LIMIT_MS / 1000} s`); process.exit(1); }, DEMO_LIMIT_MS);
  limit.unref();
  // process.exit runs the exit hooks that remove namespaces, pins and temp dirs.
  // Ctrl-C reaches the whole process group: the gscip children stop (agents detach), and whichever
  // step was running fails; either way the exit hooks clean up.
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { interrupted = true; console.error(`demo: ${sig}, cleaning up`); process.exit(130); });
  main().then((code) => process.exit(code), (e: unknown) => {
    console.error(`demo FAILED: ${(e as Error).message}`);
    if (process.env.DEMO_DEBUG) console.error((e as Error).stack);
    process.exit(interrupted ? 130 : 1);
  });
}
