/**
 * `make demo`, part 2: Mobile PPC live. A host moves to another subnet in the
 * middle of a transfer and the transfer completes (issue 12 item 8).
 *
 *   a (203.0.113.1) --- rc --+-- r1 (198.51.100.0/24) --+
 *                            |                          switch --- b
 *                            +-- r2 (192.0.2.0/24)    --+
 *
 * a and b are GESs of one group running the agent with DPRP and Mobile PPC
 * (test/netns/mobility-topology.ts); rc, r1, r2 are plain routers; BIND 9 on
 * rc serves example.net. b sends 8 MiB to a over TCP while a UDP pinger runs;
 * once 1 MiB has arrived b is re-plugged into r2's subnet the way DHCP does
 * it (new address and route, old address gone, r1's port down). The agent
 * sees the move from rtnetlink, sends its CU, both ends write their CIT, b's
 * name is updated in BIND 9 (RFC 2136 + TSIG). Printed: the transfer's
 * SHA-256 on both sides, the handover time, `gscip maps dump cit` on both
 * ends, what `dig` answers for b, and whether the plaintext marker was ever
 * on the new path.
 *
 * Exit 0 only if every check held. Namespaces (per-run prefix), pins,
 * processes and temp files are removed on exit, failure or Ctrl-C; every wait
 * is bounded and the run is capped at DEMO_LIMIT_MS.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { sh } from '../test/lib/netns.js';
import { startEchoServer } from '../test/lib/net-apps.js';
import { MARKER } from '../test/netns/pccom-topology.js';
import { A, B_NEW, B_OLD, MobilityTopo } from '../test/netns/mobility-topology.js';
import { capture, count, PINGER, Pinger, transferAcrossMove, UDP_PORT } from '../test/netns/mobility-apps.js';
import { DnsServer } from '../test/netns/dns-server.js';

const DIST = resolve(__dirname, '..');
const MAIN = resolve(DIST, 'controlplane/cli/main.js');
const DEMO_LIMIT_MS = 120_000;
const BYTES = 8 << 20;
const DNS_ADDR = '203.0.113.254';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const T0 = Date.now();
let stepNo = 0;
function step(title: string, ...narrative: string[]): void {
  process.stdout.write(`\n${bold(`== ${++stepNo}. ${title}`)}  [t=${((Date.now() - T0) / 1000).toFixed(1)} s]\n`);
  for (const l of narrative) process.stdout.write(`   ${l}\n`);
}
const say = (s: string): void => { process.stdout.write(s.trimEnd().split('\n').map((l) => `   ${l}`).join('\n') + '\n'); };

const failures: string[] = [];
function check(ok: boolean, what: string): void {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

/** `gscip maps dump cit` of a host's GE instance, through the real CLI. */
function dumpCit(p: MobilityTopo, host: 'a' | 'b'): string {
  const r = spawnSync(process.execPath, [MAIN, 'maps', 'dump', 'cit', '--pin-root', p.ges.pinRoot, '--run-dir', p.ges.runDir, '--instance', `dprp-${host}`], { encoding: 'utf8', timeout: 15_000 });
  if (r.status !== 0) throw new Error(`gscip maps dump cit (${host}) exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const named = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
  step('topology (per-run network namespaces): a, b, plain routers rc, r1, r2 and a switch', 'b starts on r1\'s subnet as ' + B_OLD + '; r2\'s subnet (' + B_NEW + ') is one re-plug away');
  const p = new MobilityTopo('demomv');
  const stop = (): void => { p.cleanupSync(); };
  process.on('exit', stop);
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => { stop(); process.exit(130); });
  let dns: DnsServer | null = null;
  try {
    step('BIND 9 on rc (example.net, one TSIG key per name), agents with DPRP + Mobile PPC on a and b (group 1)');
    const key = randomBytes(32);
    let mobilityConfig: Record<string, unknown> | undefined;
    if (named) {
      dns = new DnsServer(p.topo, 'rc', DNS_ADDR, { b: B_OLD });
      await dns.start();
      const k = dns.keys.get('b')!;
      writeFileSync(`${dns.dir}/ge-b.key`, k.secret.toString('base64'), { mode: 0o600 });
      mobilityConfig = { ddns: { server: DNS_ADDR, zone: 'example.net', name: 'b.example.net', keyName: k.keyName, keyFile: `${dns.dir}/ge-b.key` } };
      say(`dig b.example.net @${DNS_ADDR} -> ${dns.lookup('rc', 'b')}`);
    } else {
      say('(BIND 9 not installed: the DDNS step is skipped; `make deps` installs it)');
    }
    await p.startGe('a', { keys: [[1, 1, key]], metrics: true });
    await p.startGe('b', { keys: [[1, 1, key]], mobilityConfig, metrics: true });
    await startEchoServer(p.topo, 'a', A, 7301, UDP_PORT, DEMO_LIMIT_MS);
    const pinger = new Pinger(p.topo.spawn('b', 'node', ['-e', PINGER(A, B_OLD)]));
    await pinger.more(5, 10_000);
    say('UDP pinger b -> a running (every 20 ms, socket bound to b\'s first address)');

    step(`b sends ${BYTES >> 20} MiB to a over TCP (PCCOM on); after 1 MiB, b is re-plugged into r2's subnet`,
      'new address and default route first, the old address removed, r1\'s switch port down: the old path is gone');
    const newPath = await capture(p, 'r2', 'lan', 'tcp or udp or icmp');
    const t = Date.now();
    let moved = 0;
    try {
      await transferAcrossMove(p, 'b', A, BYTES, () => { moved = Date.now(); p.moveToR2(); });
      check(true, `transfer complete, byte-exact (SHA-256 equal on both ends), no socket error on either end (${((Date.now() - t) / 1000).toFixed(1)} s, moved at +${((moved - t) / 1000).toFixed(1)} s)`);
    } catch (e) {
      check(false, `transfer across the move: ${(e as Error).message}`);
    }
    const cap = await newPath.stop();
    check(cap.length > 1 << 20 && count(cap, MARKER) === 0, `the new path (r2's LAN) carried the rest of it (${(cap.length / 1048576).toFixed(1)} MiB captured), plaintext marker seen ${count(cap, MARKER)} times`);
    const echoes = await pinger.more(10, 10_000).catch(() => [] as string[]);
    check(echoes.length >= 10 && echoes.every((e) => e.startsWith(`peer=${B_OLD}:41000|u`)), `UDP goes on after the move; a's application still sees b as ${B_OLD}:41000 (${echoes.length} echoes)`);

    step('what the ends hold: `gscip maps dump cit` on a (stationary) and on b (mover)');
    say(dumpCit(p, 'a'));
    say(dumpCit(p, 'b'));
    const handover = p.metric('b', 'gscip_mobility_handover_seconds_sum');
    const moves = p.metric('b', 'gscip_mobility_handover_seconds_count');
    check(moves >= 1, `b's handover (move seen -> CU answered): ${moves >= 1 ? `${((handover / moves) * 1000).toFixed(1)} ms` : 'none'} (gscip_mobility_handover_seconds)`);
    check(p.metric('a', 'gscip_mobility_flows_moved_total{end="stationary"}') >= 2, `a moved ${p.metric('a', 'gscip_mobility_flows_moved_total{end="stationary"}')} flows (gscip_mobility_flows_moved_total)`);

    if (dns) {
      step('DDNS: b\'s agent updated its name in BIND 9 (RFC 2136, TSIG)');
      let got = '';
      for (let i = 0; i < 75 && got !== B_NEW; i++) { got = dns.lookup('rc', 'b'); if (got !== B_NEW) await new Promise((r) => setTimeout(r, 200)); }
      check(got === B_NEW, `dig b.example.net @${DNS_ADDR} -> ${got} (new connections go to the new address)`);
    }
  } finally {
    step('stop the agents, remove namespaces, pins and temp files');
    await dns?.stop().catch(() => undefined);
    await p.cleanup();
  }
}

const limit = setTimeout(() => { process.stderr.write(`demo-move: over ${DEMO_LIMIT_MS / 1000} s, giving up\n`); process.exit(2); }, DEMO_LIMIT_MS);
main().then(() => {
  clearTimeout(limit);
  const secs = ((Date.now() - T0) / 1000).toFixed(1);
  if (failures.length) { process.stdout.write(`\ndemo-move FAILED: ${failures.join('; ')}; ${secs} s\n`); process.exit(1); }
  process.stdout.write(`\ndemo-move OK: the transfer survived the move; ${secs} s\n`);
  process.exit(0);
}, (e: Error) => {
  process.stderr.write(`demo-move failed: ${process.env.DEMO_DEBUG ? e.stack : e.message}\n`);
  process.exit(1);
});
