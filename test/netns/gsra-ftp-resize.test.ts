/**
 * GSRA FTP passive mode when the 227 cannot keep its length (docs/gsra.md
 * "FTP passive mode", the sequence delta), end to end. vsftpd's reply has
 * room in its text; this server's has none: a tiny FTP server written here
 * (Node net, only on IN1 inside the test's `in` namespace) answers PASV with
 * `227 (100,64,1,10,p1,p2)` and nothing else, so the EN's rewrite to the VIN
 * (198,19,...) makes the reply longer and the control connection's sequence
 * numbers must move for the rest of its life.
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (tiny FTP on 100.64.1.10:21)
 *   en 203.0.113.20 --d0/dns0-- dns 203.0.113.53 (BIND 9: ftp.example.net A GGR)
 *
 * curl on the EN fetches two 3 MiB files on ONE control connection (two URLs:
 * USER, PASV, RETR a, then PASV, RETR b, then QUIT), told to use the reply's
 * address: each 227 grows and is rewritten to the VIN, curl connects to VIN:p
 * (a second and a third admission), both files byte-exact by hash, the 150,
 * 226, second 227 and the 221 after QUIT all arrive through the delta (seq
 * moved by the fast path, the client's acks moved back). The delta's entry
 * goes with the control connection's VAT flow (idle expiry).
 *
 * Shown failing without the change: GSRA_FTP_RESIZE_TEST_NO_RESIZE=1
 * (gsraEn.ftpResize false, the behaviour before: the 227 passes unmodified,
 * counted no_room, curl connects to 100.64.1.10 and fails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Topology, waitFor, sh } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { exited } from './pccom-topology.js';
import { DnsServer } from './dns-server.js';
import { linkGsraCore, SITE } from '../lib/gsra-site.js';
import { startEnDns, startGsraEnAgents } from '../lib/gsra-en-site.js';
import { Capture } from '../lib/capture.js';

const HAVE = sh('sh', ['-c', 'command -v named && command -v dig && command -v curl && command -v bpftool'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !HAVE ? 'needs BIND 9 (named, dig), curl and bpftool' : null;
const { GGR, PGR, IN1 } = SITE;
const BYTES = 3 << 20;
const GROUP_KEY = randomBytes(32).toString('hex');
const MARKER = Buffer.from('GSRA-FTP-RESIZE-MARKER-7d02');
const NO_RESIZE = !!process.env.GSRA_FTP_RESIZE_TEST_NO_RESIZE;

/** The tiny FTP server: argv host root. A 227 with no text at all; EPSV refused so the client uses PASV. Bounded: exits after 240 s. */
const SERVER = `
const net = require('net'), fs = require('fs'), path = require('path');
const [host, root] = process.argv.slice(1);
let nextPort = 50100;
net.createServer((c) => {
  let buf = '', pasv = null;
  const reply = (s) => { console.log('> ' + s); c.write(s + '\\r\\n'); };
  c.on('error', () => {});
  reply('220 tiny');
  c.on('data', (d) => {
    buf += d.toString('latin1');
    for (let i; (i = buf.indexOf('\\r\\n')) >= 0;) {
      const line = buf.slice(0, i); buf = buf.slice(i + 2);
      console.log('< ' + line);
      const sp = line.indexOf(' ');
      const cmd = (sp < 0 ? line : line.slice(0, sp)).toUpperCase(), arg = sp < 0 ? '' : line.slice(sp + 1);
      const file = path.join(root, path.basename(arg));
      if (cmd === 'USER') reply('331 ok');
      else if (cmd === 'PASS') reply('230 ok');
      else if (cmd === 'PWD') reply('257 "/"');
      else if (cmd === 'CWD') reply('250 ok');
      else if (cmd === 'TYPE') reply('200 ok');
      else if (cmd === 'SIZE') { try { reply('213 ' + fs.statSync(file).size); } catch { reply('550 no'); } }
      else if (cmd === 'PASV') {
        const port = nextPort++, srv = net.createServer();
        pasv = new Promise((res) => srv.once('connection', (dc) => { srv.close(); res(dc); }));
        srv.listen(port, host, () => reply('227 (' + host.split('.').join(',') + ',' + (port >> 8) + ',' + (port & 255) + ')'));
      } else if (cmd === 'RETR') {
        const p = pasv; pasv = null;
        if (!p || !fs.existsSync(file)) { reply('550 no'); continue; }
        reply('150 ok');
        p.then((dc) => { dc.on('error', () => {}); dc.on('close', () => reply('226 done')); fs.createReadStream(file).pipe(dc); });
      } else if (cmd === 'QUIT') { reply('221 bye'); c.end(); }
      else reply('502 no');
    }
  });
}).listen(21, host, () => console.log('listening'));
setTimeout(() => process.exit(3), 240000).unref();
`;

describe('GSRA FTP passive mode, a 227 that must grow: the sequence delta (namespaces, a tiny FTP server)', { skip: unavailable ?? false, timeout: 300_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let dnsSrv: DnsServer;
  let ftpd: ReturnType<Topology['spawn']>;
  let ftpdOut = '';
  let dir = '';
  let resolvConf = '';
  const files: Record<string, Buffer> = {};

  before(async () => {
    t = new Topology('gsraftr');
    try {
      t.addHost('en'); t.addHost('router'); t.addHost('in'); t.addHost('dns');
      linkGsraCore(t);
      g = new GscipRunner(t, 'gsra-out');
      dir = t.scratchPath(`/tmp/gscip-test-${t.prefix}-gsraftr`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      ({ dns: dnsSrv, resolvConf } = await startEnDns(t, dir, { ftp: GGR }));
      const root = `${dir}/ftproot`;
      mkdirSync(root, { recursive: true });
      for (const n of ['a.bin', 'b.bin']) {
        const d = randomBytes(BYTES);
        for (let o = 0; o + MARKER.length < BYTES; o += 1000) MARKER.copy(d, o);
        files[n] = d;
        writeFileSync(`${root}/${n}`, d);
      }
      await startGsraEnAgents(g, {
        dir, groupKey: GROUP_KEY,
        servers: [{ name: 'ftp.example.net', address: IN1, groups: [1], ports: [21] }],
        gsraEn: { idleS: 5, ...(NO_RESIZE ? { ftpResize: false } : {}) },
      });
      ftpd = t.spawn('in', 'node', ['-e', SERVER, IN1, root]);
      ftpd.stdout?.on('data', (d) => { ftpdOut += String(d); });
      ftpd.stderr?.on('data', (d) => { ftpdOut += String(d); });
      await waitFor('the tiny FTP server listening on IN1:21', () => /listening/.test(ftpdOut) || ftpd.exitCode !== null, 10_000);
      assert.equal(ftpd.exitCode, null, `the FTP server exited: ${ftpdOut}`);
    } catch (e) { ftpd?.kill(); await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); throw e; }
  });
  after(async () => { ftpd?.kill(); if (ftpd) await exited(ftpd, 5000); await dnsSrv?.stop().catch(() => undefined); g?.cleanup(); t?.cleanupSync(); });

  const metrics = (host: string, port: number): string =>
    t.exec(host, 'node', ['-e', `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))`]).stdout;
  const counter = (m: string, name: string, label: string): number => {
    const r = new RegExp(`^${name}\\{(?:result|reason)="${label}"\\} (\\d+)`, 'm').exec(m);
    return r ? Number(r[1]) : 0;
  };
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  /** The EN's gscip_ftp_seq entries (bpftool on the instance's pin). */
  const seqEntries = (): number => {
    const find = (d: string): string | null => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) { const r = find(p); if (r) return r; } else if (e.name === 'gscip_ftp_seq' && p.includes('/en')) return p;
      }
      return null;
    };
    const pin = find(g.pinRoot);
    assert.ok(pin, `the EN's gscip_ftp_seq pin under ${g.pinRoot}`);
    return (JSON.parse(sh('bpftool', ['-j', 'map', 'dump', 'pinned', pin]).stdout) as unknown[]).length;
  };

  test('two PASV + RETR and QUIT on one control connection, each 227 grown to the VIN: both files byte-exact, a clean 221', async () => {
    const out = { a: `${dir}/got-a.bin`, b: `${dir}/got-b.bin` };
    const capOut = `${dir}/internet.pcap`;
    const cap = await Capture.start(t, { host: 'router', iface: 'out0', file: capOut, count: 400, filter: 'tcp' });
    // Two URLs, the second after --next (the connection is reused) with QUIT sent after its transfer (-Q -QUIT).
    const common = ['-sS', '-v', '--max-time', '60', '--ftp-pasv', '--disable-epsv', '--no-ftp-skip-pasv-ip'];
    const args = [...common, '-o', out.a, 'ftp://ftp.example.net/a.bin', '--next', ...common, '-Q', '-QUIT', '-o', out.b, 'ftp://ftp.example.net/b.bin'];
    const t0 = Date.now();
    const p = t.spawn('en', 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, 'curl', ...args]);
    let err = '';
    p.stderr?.on('data', (d) => { err += String(d); });
    try { await exited(p, 90_000); } finally { await cap.stop(5000); }
    const ms = Date.now() - t0;
    const en = metrics('en', 9464);
    const detail = `curl rc ${p.exitCode}: ${err.slice(-2500)}\nserver:\n${ftpdOut.slice(-1500)}\nEN replies: ${en.split('\n').filter((l) => l.startsWith('gscip_gsraen_ftp_replies_total')).join(' ')}`;
    assert.equal(p.exitCode, 0, detail);
    for (const n of ['a', 'b'] as const) {
      const got = existsSync(out[n]) ? readFileSync(out[n]) : Buffer.alloc(0);
      assert.equal(got.length, BYTES, `${n}.bin length`);
      assert.equal(sha(got), sha(files[`${n}.bin`]), `${n}.bin byte-exact`);
    }
    assert.equal((ftpdOut.match(/^< USER /gm) ?? []).length, 1, 'one control connection for both files');
    assert.equal((ftpdOut.match(/^> 227 \(100,64,1,10,\d+,\d+\)$/gm) ?? []).length, 2, 'the server sent two 227s with no room');
    assert.equal((err.match(/< 227 \(198,19,\d+,\d+,\d+,\d+\)/g) ?? []).length, 2, `curl read the VIN in both 227s: ${detail}`);
    assert.match(err, /< 221 bye/, 'QUIT answered: the control connection intact to its end');
    assert.ok(counter(en, 'gscip_gsraen_ftp_replies_total', 'resized') >= 2, 'both replies resized');
    const adj = /^gscip_datapath_direction_packets_total\{reason="ftp_seq_adj",kind="\w+",direction="(egress|ingress)"\} (\d+)/gm;
    const moved: Record<string, number> = {};
    for (const m of en.matchAll(adj)) moved[m[1]] = Number(m[2]);
    assert.ok((moved.ingress ?? 0) > 0 && (moved.egress ?? 0) > 0, `the fast path moved server seqs and client acks: ${JSON.stringify(moved)}`);
    assert.equal(seqEntries(), 1, 'one delta, the control connection\'s, in gscip_ftp_seq');
    const r = cap.pcap();
    assert.ok(!r.includes(MARKER) && !r.includes(Buffer.from('227 (')), 'nothing in the clear on the Internet leg');
    console.error(`# resize: 2 x 3 MiB on one control connection in ${ms} ms; fast-path moves ${JSON.stringify(moved)}`);
  });

  test('the delta goes with the control connection (its VAT flow idles out)', async () => {
    await waitFor('the EN\'s gscip_ftp_seq empty after the control connection\'s flow expired', () => seqEntries() === 0, 20_000);
  });
});
