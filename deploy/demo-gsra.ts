/**
 * `make demo-gsra`: GSRA live on this machine (namespaces, per-run prefix).
 *
 * A site with an OpenLDAP directory (slapd, ldaps only), a GMS reading it
 * (`gscip gms serve --directory`), a GSRA router (two agent instances, the
 * NAT stage) and an internal server IN1 (nothing installed); a remote user's
 * laptop outside (EN, no agent: test/lib/gsra-en.ts plays its GSRA side). It
 * shows: a wrong password refused; enrollment with the directory password;
 * the router admitting alice to IN1 and the IN seeing the router as its
 * peer; an IN of another group refused at once; `gscip gsra status`,
 * `gscip gms ls users`, `gscip maps dump nat` on both router instances;
 * alice removed from the directory group mid-stream: the stream cut, the
 * next attempt refused. Not shown because not built: PCCOM on the Internet
 * leg, the EN's VAT (DNS via NAT-f), FTP passive mode (docs/gsra.md).
 *
 * Exit 0 only if every step did what it says. Everything is removed on exit,
 * failure or Ctrl-C; the whole run is capped at DEMO_LIMIT_MS.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { waitFor } from '../test/lib/netns.js';
import { slapdUnavailable } from '../test/lib/slapd.js';
import { enScript } from '../test/lib/gsra-en.js';
import { GsraSite, SITE } from '../test/lib/gsra-site.js';

const DEMO_LIMIT_MS = 120_000;
const PASSWORD = 'Alice-demo-pw-7c1e';
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
  step('The site', `en ${SITE.GEN} -- router (GGR ${SITE.GGR} | PGR ${SITE.PGR}) -- in (IN1 ${SITE.IN1})`,
    'directory: slapd with alice in cn=staff (-> GSCIP group 1); in1.corp.example.net is group 1, in2 group 2');
  await site.start({ alice: PASSWORD, bob: 'Bob-demo-pw' });

  step('A wrong password', 'gscip agent enroll --ldap-user alice --password-file (wrong)');
  const bad = site.enroll('alice', 'not-her-password');
  say(bad.err.trim());
  check(bad.code !== 0 && /bad_credentials/.test(bad.err), 'refused: bad_credentials');

  step('Enrollment with the directory password', 'the GMS binds to the directory as alice over TLS; her groups give her GSCIP groups');
  const ok = site.enroll('alice', PASSWORD);
  say(ok.out.trim());
  check(ok.code === 0, 'enrolled');
  const key = site.userKeyHex();
  await waitFor('router list', () => { try { return JSON.parse(readFileSync(`${site.routerDir}/cache/state.json`, 'utf8')).remoteUsers?.some((u: { userId: string }) => u.userId === 'alice'); } catch { return false; } }, 10_000);
  await new Promise((r) => setTimeout(r, 400));
  say(site.g.ok('router', ['gms', 'ls', 'users', '--data-dir', site.gmsDir]));

  step('alice -> in1.corp.example.net through the router', 'AUTH {group 1, in1} -> t; MAP -> the router writes {GEN:s<->GGR:t} <=> {PGR:t<->PIN:d} in its NAT stage');
  const data = randomBytes(1 << 20);
  const inp = site.t.scratchPath(`/tmp/${site.t.prefix}-demo-data`);
  writeFileSync(inp, data);
  const r = await site.runEn(key, { kind: 'tcp', name: 'in1.corp.example.net', s: 51000, d: 5201, file: inp });
  say(`admission: ${JSON.stringify(r.admit)}`);
  await waitFor('IN got it', () => { try { return readFileSync(`${site.sinkFile}.1`).length >= data.length; } catch { return false; } }, 20_000);
  check(Buffer.compare(readFileSync(`${site.sinkFile}.1`), data) === 0, '1 MiB arrived byte-exact');
  check(new RegExp(`peer ${SITE.PGR.replace(/\./g, '\\.')}:${r.admit.t}`).test(site.sinkOut), `the IN saw ${SITE.PGR}:${r.admit.t} (the router) as its peer`);

  step('An IN of another group', 'AUTH {group 1, in2} -> REFUSE no_shared_group, MAC\'d: the EN fails at once');
  const ref = await site.runEn(key, { kind: 'refuse', name: 'in2.corp.example.net', d: 5201, n: 5 });
  say(JSON.stringify(ref));
  check(ref.reasons?.no_shared_group === 5, '5 of 5 refused with their reason');

  step('What the router holds');
  say(site.g.ok('router', ['gsra', 'status', '--file', site.statusFile]));
  say(site.g.ok('router', ['maps', 'dump', 'nat', ...site.g.instanceArgs('gsra-out')]));
  say(site.g.ok('router', ['maps', 'dump', 'nat', ...site.g.instanceArgs('gsra-in')]));

  step('alice removed from cn=staff while a stream runs', 'the GMS notices within 1 s, pushes; the router cuts her mappings');
  const p = site.t.spawn('en', process.execPath, ['-e', enScript(key, { kind: 'stream', name: 'in1.corp.example.net', s: 52000, d: 5201, maxMs: 15_000 }, { gen: SITE.GEN, ggr: SITE.GGR })]);
  let so = '';
  p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { so += d; });
  await waitFor('stream', () => / conn 2/.test(site.sinkOut), 10_000);
  await new Promise((res) => setTimeout(res, 1000));
  const t0 = Date.now();
  site.slapd!.removeMember('staff', 'alice');
  await new Promise<void>((res) => { if (p.exitCode !== null) res(); else p.once('exit', () => res()); });
  const out = JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
  say(`the EN's stream ended: ${out.end} after ${out.endAt - t0} ms; next admission: ${out.after?.failure}`);
  check(out.end !== 'still_open' && out.endAt - t0 <= 5000, 'cut within 5 s');
  check(out.after?.failure === 'unknown_user', 'the next attempt refused');
  say(site.g.ok('router', ['gms', 'ls', 'users', '--data-dir', site.gmsDir]));
  step('Done', 'not shown here (the EN is a script; built and tested with the EN agent, docs/gsra.md): PCCOM on the Internet leg, the EN\'s VAT and DNS (NAT-f), the EN behind a home NAT, FTP passive mode');
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
