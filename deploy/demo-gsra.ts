/**
 * `make demo-gsra`: GSRA live on this machine (namespaces, per-run prefix).
 *
 * A site with an OpenLDAP directory (slapd, ldaps only), a GMS reading it
 * (`gscip gms serve --directory`), a GSRA router (two agent instances, the
 * NAT stage), an internal server IN1 (nothing installed), BIND 9 answering
 * the INs' names with the router's address, and a remote user's laptop (EN)
 * running the GSCIP agent (parts dprp, natf, gsra-en) on what its GMS
 * delivers. It shows: a wrong password refused; enrollment with the
 * directory password; an unmodified application on the EN (the system
 * resolver, then TCP) reaching in1.corp.example.net by name through the
 * router, byte-exact, the IN seeing the router as its peer, ciphertext only
 * on the Internet leg; an IN of another group refused at once
 * (EHOSTUNREACH); `gscip gsra status`, `gscip gms ls users` and the NAT
 * tables; alice removed from the directory group mid-stream: the IN stops
 * receiving within 5 s and her next connection is refused.
 *
 * Exit 0 only if every step did what it says. Everything is removed on exit,
 * failure or Ctrl-C; the whole run is capped at DEMO_LIMIT_MS.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { waitFor } from '../test/lib/netns.js';
import { slapdUnavailable } from '../test/lib/slapd.js';
import { runResolverApp, type ResolverJob } from '../test/lib/resolver-app.js';
import { GsraSite, SITE } from '../test/lib/gsra-site.js';
import { Capture } from '../test/lib/capture.js';

const DEMO_LIMIT_MS = 150_000;
const PASSWORD = 'Alice-demo-pw-7c1e';
const MARKER = Buffer.from('GSRA-DEMO-PLAINTEXT-MARKER-2b7f');
let stepNo = 0;
const T0 = Date.now();
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
function step(title: string, ...lines: string[]): void {
  process.stdout.write(`\n${bold(`== ${++stepNo}. ${title}`)}  [t=${((Date.now() - T0) / 1000).toFixed(1)} s]\n`);
  for (const l of lines) process.stdout.write(`   ${l}\n`);
}
// (log lines, JSON, are left out: the demo shows what the operator reads)
const say = (s: string): void => { process.stdout.write(s.trimEnd().split('\n').filter((l) => !l.startsWith('{"level"')).map((l) => `   ${l}`).join('\n') + '\n'); };
function check(ok: boolean, what: string): void {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) throw new Error(`demo: ${what}`);
}

async function main(site: GsraSite): Promise<number> {
  step('The site', `en ${SITE.GEN} (the laptop, GSCIP agent) -- router (GGR ${SITE.GGR} | PGR ${SITE.PGR}) -- in (IN1 ${SITE.IN1})`,
    'directory: slapd with alice in cn=staff (-> GSCIP group 1); in1.corp.example.net is group 1, in2 group 2; BIND answers both with GGR');
  await site.start({ alice: PASSWORD, bob: 'Bob-demo-pw' }, { enAgent: true });
  const app = (job: ResolverJob): Promise<Record<string, any>> => runResolverApp(site.t, 'en', site.resolvConf, job);

  step('A wrong password', 'gscip agent enroll --ldap-user alice --password-file (wrong)');
  const bad = site.enroll('alice', 'not-her-password');
  say(bad.err.trim());
  check(bad.code !== 0 && /bad_credentials/.test(bad.err), 'refused: bad_credentials');

  step('Enrollment with the directory password', 'the GMS binds to the directory as alice over TLS; her groups give her GSCIP groups, her GSRA key and the routers\' addresses');
  const ok = site.enroll('alice', PASSWORD);
  say(ok.out.trim());
  check(ok.code === 0, 'enrolled');
  await waitFor('router list', () => { try { return JSON.parse(readFileSync(`${site.routerDir}/cache/state.json`, 'utf8')).remoteUsers?.some((u: { userId: string }) => u.userId === 'alice'); } catch { return false; } }, 10_000);
  say(site.g.ok('router', ['gms', 'ls', 'users', '--data-dir', site.gmsDir]));
  await site.startEnAgent();
  await waitFor('the EN holds its delivery', () => { try { return Boolean(JSON.parse(readFileSync(`${site.enDir}/cache/state.json`, 'utf8')).gsraUserKey); } catch { return false; } }, 10_000);
  await new Promise((r) => setTimeout(r, 1500)); // group keys into the maps, a router tick
  say(`the EN's agent runs on its delivery: user alice, group 1, routers ${JSON.stringify(JSON.parse(readFileSync(`${site.enDir}/cache/state.json`, 'utf8')).gsraRouters)}`);

  step('alice\'s application -> in1.corp.example.net by name', 'the EN\'s agent gives the name a virtual address (VIN), holds the SYN, AUTH {group 1, in1} -> t, MAP -> the router translates {GEN:s<->GGR:t} <=> {PGR:t<->IN1:d}; PCCOM on the Internet leg');
  const data = randomBytes(1 << 20);
  for (let o = 0; o + MARKER.length < data.length; o += 1000) MARKER.copy(data, o);
  const inp = site.t.scratchPath(`/tmp/${site.t.prefix}-demo-data`);
  writeFileSync(inp, data);
  const pcap = site.t.scratchPath(`/tmp/${site.t.prefix}-demo-internet.pcap`);
  const cap = await Capture.start(site.t, { host: 'router', iface: 'out0', file: pcap, count: 300, filter: 'tcp and portrange 40000-40999' });
  let r: Record<string, any>;
  try { r = await app({ kind: 'tcp', name: 'in1.corp.example.net', file: inp }); } finally { await cap.stop(5000); }
  say(`the application resolved in1.corp.example.net to ${r.addr} and sent 1 MiB (${r.ms} ms)`);
  check(/^198\.1[89]\./.test(String(r.addr)) && r.error === undefined, 'a virtual address, sent without error');
  await waitFor('IN got it', () => (existsSync(`${site.sinkFile}.1`) ? readFileSync(`${site.sinkFile}.1`).length : 0) >= data.length, 20_000);
  check(Buffer.compare(readFileSync(`${site.sinkFile}.1`), data) === 0, '1 MiB arrived byte-exact');
  const peer = /peer (\S+):(\d+) conn 1/.exec(site.sinkOut);
  check(peer?.[1] === SITE.PGR, `the IN saw ${peer?.[1]}:${peer?.[2]} (the router) as its peer`);
  const leg = cap.pcap();
  check(leg.length > 100_000 && !leg.includes(MARKER), `the Internet leg: ${leg.length} bytes captured, no plaintext marker`);

  step('An IN of another group', 'AUTH {group 1, in2} -> REFUSE no_shared_group, MAC\'d: the application fails at once');
  const ref = await app({ kind: 'connect', name: 'in2.corp.example.net' });
  say(JSON.stringify(ref));
  check(ref.error === 'EHOSTUNREACH' && ref.ms < 3000, `refused at once (${ref.error} after ${ref.ms} ms)`);

  step('What the router and the EN hold');
  say(site.g.ok('router', ['gsra', 'status', '--file', site.statusFile]));
  say(site.g.ok('router', ['maps', 'dump', 'nat', ...site.g.instanceArgs('gsra-out')]));
  say(site.g.ok('en', ['maps', 'dump', 'vat', ...site.g.instanceArgs('en')]));

  step('alice removed from cn=staff while a stream runs', 'the GMS notices within 1 s and pushes; the router cuts her mappings; the EN\'s next admission is refused');
  const stream = app({ kind: 'stream', name: 'in1.corp.example.net', maxMs: 12_000 });
  await waitFor('stream', () => / conn 2/.test(site.sinkOut), 10_000);
  await new Promise((res) => setTimeout(res, 1000));
  const t0 = Date.now();
  site.slapd!.removeMember('staff', 'alice');
  await waitFor('the IN stops receiving', () => site.lastByteAt() > 0 && Date.now() - site.lastByteAt() > 1500, 10_000).catch(() => undefined);
  const cutAt = site.lastByteAt();
  say(`the IN's last byte ${cutAt - t0} ms after the removal`);
  check(cutAt - t0 <= 5000, 'cut within 5 s');
  const out = await stream;
  say(`the application's stream: ${out.end}`);
  const after = await app({ kind: 'connect', name: 'in1.corp.example.net' });
  check(after.error !== undefined && after.ms < 3000, `the next connection refused at once (${after.error} after ${after.ms} ms)`);
  say(site.g.ok('router', ['gms', 'ls', 'users', '--data-dir', site.gmsDir]));
  step('Done', 'the EN is the GSCIP agent on its GMS delivery; FTP passive mode and the EN behind a home NAT are in the tests (docs/gsra.md)');
  return 0;
}

if (require.main === module) {
  const why = process.getuid?.() !== 0 ? 'run as root (namespaces, bpf)' : slapdUnavailable();
  if (why) { console.error(`demo-gsra: ${why}`); process.exit(1); }
  const site = new GsraSite(`dgsra${randomBytes(2).toString('hex')}`);
  let closing = false;
  const finish = (code: number): void => { if (closing) return; closing = true; void site.close().finally(() => process.exit(code)); };
  const limit = setTimeout(() => { console.error(`demo-gsra: gave up after ${DEMO_LIMIT_MS / 1000} s`); finish(1); }, DEMO_LIMIT_MS);
  limit.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { console.error(`demo-gsra: ${sig}, cleaning up`); finish(130); });
  main(site).then((c) => finish(c), (e: unknown) => { console.error((e as Error).message); finish(1); });
}
