/**
 * GSRA FTP passive mode (docs/gsra.md "FTP passive mode"), end to end: a
 * real vsftpd on the IN (its own config file, listening only on IN1 inside
 * the test's `in` namespace) serves a 6 MiB file to curl on the EN, by name
 * through the GSRA router, in PASV and in EPSV mode, byte-exact by hash.
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (vsftpd on 100.64.1.10:21)
 *   en 203.0.113.20 --d0/dns0-- dns 203.0.113.53 (BIND 9: ftp.example.net A GGR)
 *
 * What it shows:
 *  - PASV with curl told to use the reply's address (--no-ftp-skip-pasv-ip):
 *    vsftpd answers 227 (100,64,1,10,p1,p2); the EN's FTP stage punts the
 *    decrypted reply and its agent rewrites it to (VIN,p1,p2), the same length;
 *    curl connects to VIN:p, which is a second admission (AUTH for the same IN,
 *    d = p); the router admits p only because it saw the IN announce it
 *    (its FTP stage copies 227/229 before NAT). Without the EN's rewrite curl
 *    connects to 100.64.1.10 and fails.
 *  - EPSV (curl's default): 229 (|||p|), no rewrite, the same second admission.
 *  - Both connections of both modes are PCCOM on the Internet leg (no
 *    plaintext marker of the file in the capture on the router's out0), the
 *    file in the clear inside.
 *  - The IN lists `ports: [21]`: a connection to a port its control
 *    connection did not announce is refused by the router (`not_announced`,
 *    counted) and the application fails at once (EHOSTUNREACH).
 *
 * Shown failing without each piece (env, see docs/gsra.md "Tests"):
 * GSRA_FTP_TEST_EN_NO_REWRITE=1 (gsraEn.ftpPassive false: PASV fails),
 * GSRA_FTP_TEST_ROUTER_NO_COPY=1 (gsra.ftpPassive false: both data
 * connections refused not_announced), GSRA_FTP_TEST_NO_PORTS=1 (no `ports`:
 * the unannounced port is admitted, the refusal test fails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Topology, waitFor, sh } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { exited } from './pccom-topology.js';
import { DnsServer } from './dns-server.js';
import { linkGsraCore, SITE } from '../lib/gsra-site.js';
import { startEnDns, startGsraEnAgents } from '../lib/gsra-en-site.js';
import { runResolverApp } from '../lib/resolver-app.js';
import { Capture } from '../lib/capture.js';

const HAVE = sh('sh', ['-c', 'command -v named && command -v dig && command -v vsftpd && command -v curl'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !HAVE ? 'needs BIND 9 (named, dig), vsftpd and curl' : null;
const { GGR, PGR, IN1 } = SITE;
const BYTES = 6 << 20;
const GROUP_KEY = randomBytes(32).toString('hex');
const MARKER = Buffer.from('GSRA-FTP-PLAINTEXT-MARKER-41c9');
const EN_NO_REWRITE = !!process.env.GSRA_FTP_TEST_EN_NO_REWRITE;
const ROUTER_NO_COPY = !!process.env.GSRA_FTP_TEST_ROUTER_NO_COPY;
const NO_PORTS = !!process.env.GSRA_FTP_TEST_NO_PORTS;

describe('GSRA FTP passive mode: vsftpd behind the router, curl on the EN, PASV and EPSV (namespaces)', { skip: unavailable ?? false, timeout: 300_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let dnsSrv: DnsServer;
  let ftpd: ReturnType<Topology['spawn']>;
  let ftpdOut = '';
  let dir = '';
  let resolvConf = '';
  let data: Buffer;
  let statusFile = '';

  before(async () => {
    t = new Topology('gsraftp');
    try {
      t.addHost('en'); t.addHost('router'); t.addHost('in'); t.addHost('dns');
      linkGsraCore(t);
      g = new GscipRunner(t, 'gsra-out');
      dir = t.scratchPath(`/tmp/gscip-test-${t.prefix}-gsraftp`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      ({ dns: dnsSrv, resolvConf } = await startEnDns(t, dir, { ftp: GGR }));
      // vsftpd: anonymous, read-only, its own root (0755, root's), passive ports 50000-50099, only on IN1.
      const root = `${dir}/ftproot`;
      mkdirSync(root, { recursive: true });
      chmodSync(dir, 0o711);
      chmodSync(root, 0o755);
      data = randomBytes(BYTES);
      for (let o = 0; o + MARKER.length < BYTES; o += 1000) MARKER.copy(data, o);
      writeFileSync(`${root}/big.bin`, data, { mode: 0o644 });
      const conf = `${dir}/vsftpd.conf`;
      writeFileSync(conf, [
        'listen=YES', 'listen_ipv6=NO', `listen_address=${IN1}`, 'listen_port=21', 'background=NO',
        'anonymous_enable=YES', 'no_anon_password=YES', 'local_enable=NO', 'write_enable=NO', `anon_root=${root}`,
        'pasv_enable=YES', 'pasv_min_port=50000', 'pasv_max_port=50099', 'port_enable=NO',
        'seccomp_sandbox=NO', 'xferlog_enable=NO', 'dirmessage_enable=NO', 'use_localtime=NO',
        'secure_chroot_dir=/var/run/vsftpd/empty', 'max_clients=20', 'idle_session_timeout=120', 'data_connection_timeout=60',
      ].join('\n') + '\n', { mode: 0o600 });
      statusFile = `${dir}/gsra-status.json`;
      await startGsraEnAgents(g, {
        dir, groupKey: GROUP_KEY,
        servers: [{ name: 'ftp.example.net', address: IN1, groups: [1], ...(NO_PORTS ? {} : { ports: [21] }) }],
        gsra: { statusFile, ...(ROUTER_NO_COPY ? { ftpPassive: false } : {}) },
        gsraEn: EN_NO_REWRITE ? { ftpPassive: false } : {},
      });
      ftpd = t.spawn('in', 'vsftpd', [conf]);
      ftpd.stdout?.on('data', (d) => { ftpdOut += String(d); });
      ftpd.stderr?.on('data', (d) => { ftpdOut += String(d); });
      await waitFor('vsftpd listening on IN1:21', () => /:21\b/.test(t.exec('in', 'ss', ['-ltn']).stdout) || ftpd.exitCode !== null, 10_000);
      assert.equal(ftpd.exitCode, null, `vsftpd exited: ${ftpdOut}`);
    } catch (e) { ftpd?.kill(); await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); throw e; }
  });
  after(async () => { ftpd?.kill(); if (ftpd) await exited(ftpd, 5000); await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); });

  const metrics = (host: string, port: number): string =>
    t.exec(host, 'node', ['-e', `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))`]).stdout;
  const counter = (m: string, name: string, label: string): number => {
    const r = new RegExp(`^${name}\\{result="${label}"\\} (\\d+)`, 'm').exec(m) ?? new RegExp(`^${name}\\{reason="${label}"\\} (\\d+)`, 'm').exec(m);
    return r ? Number(r[1]) : 0;
  };

  /** curl on the EN with the EN's resolv.conf (private mount namespace), the Internet leg and the inside captured. */
  async function download(mode: 'pasv' | 'epsv'): Promise<{ rc: number | null; err: string; got: Buffer; internet: Buffer; inside: Buffer; ms: number }> {
    const out = `${dir}/got-${mode}.bin`;
    const capOut = `${dir}/internet-${mode}.pcap`, capIn = `${dir}/inside-${mode}.pcap`;
    const c1 = await Capture.start(t, { host: 'router', iface: 'out0', file: capOut, count: 600, filter: 'tcp' });
    const c2 = await Capture.start(t, { host: 'in', iface: 'l0', file: capIn, count: 600, filter: 'tcp' });
    const args = ['-sS', '-v', '--max-time', '60', '--ftp-pasv', ...(mode === 'pasv' ? ['--disable-epsv', '--no-ftp-skip-pasv-ip'] : []), '-o', out, 'ftp://ftp.example.net/big.bin'];
    const t0 = Date.now();
    const p = t.spawn('en', 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, 'curl', ...args]);
    let err = '';
    p.stderr?.on('data', (d) => { err += String(d); });
    try { await exited(p, 90_000); } finally { await Promise.all([c1.stop(5000), c2.stop(5000)]); }
    return { rc: p.exitCode, err, got: existsSync(out) ? readFileSync(out) : Buffer.alloc(0), internet: c1.pcap(), inside: c2.pcap(), ms: Date.now() - t0 };
  }

  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  test('PASV: the 227 rewritten to the VIN on the EN, the data connection admitted as announced; 6 MiB byte-exact, encrypted on the Internet leg', async () => {
    const before = metrics('router', 9465);
    const r = await download('pasv');
    assert.equal(r.rc, 0, `curl failed: ${r.err.slice(-1500)}`);
    assert.equal(r.got.length, BYTES);
    assert.equal(sha(r.got), sha(data), 'byte-exact');
    assert.match(r.err, /< 227 Entering Passive Mode ?\(198,19,\d+,\d+,\d+,\d+\)/, 'curl read the VIN in the 227 (the server sent PIN)');
    assert.match(r.err, /Connecting to 198\.19\.\d+\.\d+ \(\S+\) port 500\d\d/, 'the data connection went to VIN:p');
    assert.ok(r.internet.length > 200_000, `the Internet leg capture holds the transfer (${r.internet.length} bytes)`);
    assert.ok(r.inside.includes(MARKER), 'the file in the clear inside (the IN needs nothing installed)');
    assert.ok(!r.internet.includes(MARKER), 'no plaintext of the file on the Internet leg');
    assert.ok(!r.internet.includes(Buffer.from('Entering Passive Mode')), 'the control connection is encrypted too');
    const en = metrics('en', 9464);
    assert.ok(counter(en, 'gscip_gsraen_ftp_replies_total', 'rewritten') >= 1, 'the EN rewrote the 227');
    assert.ok(counter(en, 'gscip_gsraen_flows_total', 'admitted') >= 2, 'control and data connection admitted');
    const after = metrics('router', 9465);
    assert.ok(counter(after, 'gscip_gsra_ftp_announcements_total', 'announced') > counter(before, 'gscip_gsra_ftp_announcements_total', 'announced'), 'the router saw the announcement');
    console.error(`# PASV: 6 MiB in ${r.ms} ms (curl, resolve + two admissions + transfer)`);
    const port = Number(/Connecting to 198\.19\.\d+\.\d+ \(\S+\) port (\d+)/.exec(r.err)![1]);
    await waitFor('a router tick wrote the status', () => {
      try { return (JSON.parse(readFileSync(statusFile, 'utf8')).announced ?? []).some((x: { port: number }) => x.port === port); } catch { return false; }
    }, 5000);
    const text = g.ok('router', ['gsra', 'status', '--file', statusFile]);
    assert.match(text, new RegExp(`FTP data ports announced[\\s\\S]*alice\\s+${IN1.replace(/\./g, '\\.')}\\s+${port}`), text);
    if (!NO_PORTS) assert.match(text, /ftp\.example\.net\s+100\.64\.1\.10\s+1\s+allow\s+21/, 'the IN with its ports');
  });

  test('EPSV: 229 (|||p|), the same second admission; 6 MiB byte-exact, encrypted on the Internet leg', async () => {
    const r = await download('epsv');
    assert.equal(r.rc, 0, `curl failed: ${r.err.slice(-1500)}`);
    assert.equal(r.got.length, BYTES);
    assert.equal(sha(r.got), sha(data), 'byte-exact');
    assert.ok(r.inside.includes(MARKER), 'the file in the clear inside');
    assert.ok(!r.internet.includes(MARKER), 'no plaintext of the file on the Internet leg');
    assert.ok(counter(metrics('router', 9465), 'gscip_gsra_ftp_announcements_total', 'announced') >= 2, 'the 229 announced its port too');
  });

  test('a port the control connection did not announce: refused by the router (not_announced, counted), the application fails at once', async () => {
    const before = counter(metrics('router', 9465), 'gscip_gsra_refusals_total', 'not_announced');
    const capIn = `${dir}/inside-refused.pcap`;
    const c = await Capture.start(t, { host: 'in', iface: 'l0', file: capIn, count: 50, filter: 'tcp port 50077' });
    let r: Record<string, any>;
    try { r = await runResolverApp(t, 'en', resolvConf, { kind: 'connect', name: 'ftp.example.net', port: 50077 }); } finally {
      await new Promise((res) => setTimeout(res, 300)); await c.stop(5000);
    }
    assert.equal(r.error, 'EHOSTUNREACH', JSON.stringify(r));
    assert.equal(c.pcap().length, 24, 'no packet of the refused connection reached the inside (pcap header only)');
    assert.ok(r.ms < 3000, `prompt: ${r.ms} ms`);
    assert.equal(counter(metrics('router', 9465), 'gscip_gsra_refusals_total', 'not_announced'), before + 1, 'counted with its reason');
    assert.ok(counter(metrics('en', 9464), 'gscip_gsraen_flows_total', 'not_announced') >= 1, 'the EN counts the refusal by its reason');
  });
});
