/**
 * The GSRA router on the real datapath (namespaces): a remote user's EN
 * reaches an internal server (IN) through the router, which the IN sees as
 * its peer; an IN of another group is refused and nothing of the refused
 * flows reaches the inside network.
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (IN1 100.64.1.10, IN2 100.64.1.20)
 *   enh 100.64.9.2 --e0/h0-- hr (home router, nftables masquerade, GHR 198.51.100.30) --h1/out1-- router (198.51.100.1)
 *
 * The router runs two agent instances: `gsra-out` on out0 (parts nat and
 * gsra-router; NAT external GGR) and `gsra-in` on in0 (part nat; NAT external
 * PGR, no real inside prefix). The IN has no route to the Internet side: it
 * can only answer the router. The EN runs no agent here: a script in its
 * namespace plays the EN's GSRA session (controlplane/gsra/en-session.ts)
 * over UDP 7253, then connects to GGR:t from port s (what the EN's VAT
 * rewrite of VIN:d will do once NAT-f's VAT lands). Users and INs come from
 * the router's static config (the GMS delivery path is tested in
 * test/gsra/directory-enroll.test.ts). Not here: PCCOM on the Internet leg.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Topology, waitFor, waitReady } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { ipv4Records, readPcapFile } from '../../controlplane/lab/pcap.js';
import { exited, sha256 } from './pccom-topology.js';
import { enScript } from '../lib/gsra-en.js';
import { gsraInsideConfig, linkGsraCore } from '../lib/gsra-site.js';
import { Capture } from '../lib/capture.js';

const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : null;
const GEN = '192.0.2.20';
const GGR = '192.0.2.1';
const PGR = '100.64.1.1';
const IN1 = '100.64.1.10';
const IN2 = '100.64.1.20';
const PEN = '100.64.9.2';
const GHR = '198.51.100.30';
const BYTES = 4 << 20;
const ATTEMPTS = 1000;

const SINK = (outFile: string, port: number): string => `
const net = require('net'), fs = require('fs'), dgram = require('dgram');
let k = 0;
const srv = net.createServer((c) => {
  const n = ++k; const out = fs.createWriteStream(${JSON.stringify(outFile)} + '.' + n);
  console.log('peer ' + c.remoteAddress + ':' + c.remotePort + ' conn ' + n);
  c.pipe(out); c.on('error', () => {}); c.on('end', () => out.end(() => console.log('done ' + n)));
});
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { console.log('udp peer ' + r.address + ':' + r.port); u.send('echo: ' + m, r.port, r.address); });
u.bind(${port + 100}, ${JSON.stringify(IN1)});
srv.listen(${port}, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(3), 110000).unref();`;

describe('GSRA router: EN -> router -> IN (namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let keyHex: string;
  let sink: ReturnType<Topology['spawn']>;
  let sinkOut = '';
  let sinkFile: string;
  let statusFile: string;
  let statusDirMode = 0;

  before(async () => {
    t = new Topology('gsra');
    try {
      t.addHost('en'); t.addHost('router'); t.addHost('in'); t.addHost('hr'); t.addHost('enh');
      t.link('enh', 'e0', 'hr', 'h0');
      t.link('hr', 'h1', 'router', 'out1');
      t.addr('enh', 'e0', `${PEN}/24`);
      t.addr('hr', 'h0', '100.64.9.1/24');
      t.addr('hr', 'h1', `${GHR}/24`);
      t.addr('router', 'out1', '198.51.100.1/24');
      t.route('enh', 'default', '100.64.9.1');
      t.route('hr', '192.0.2.0/24', '198.51.100.1');
      t.forwarding('hr');
      // The home router the EN does not control: plain nftables masquerade.
      t.exec('hr', 'nft', ['add', 'table', 'ip', 'home']);
      t.exec('hr', 'nft', ['add', 'chain', 'ip', 'home', 'post', '{ type nat hook postrouting priority 100 ; }']);
      t.exec('hr', 'nft', ['add', 'rule', 'ip', 'home', 'post', 'oifname', 'h1', 'masquerade']);
      linkGsraCore(t, { in2: true });
      g = new GscipRunner(t, 'gsra-out');
      keyHex = randomBytes(32).toString('hex');
      const keyFile = t.scratchPath(`/tmp/${t.prefix}-alice.key`);
      writeFileSync(keyFile, keyHex, { mode: 0o600 });
      const inCfg = t.scratchPath(`/tmp/${t.prefix}-in.json`);
      writeFileSync(inCfg, gsraInsideConfig());
      statusFile = t.scratchPath(`/tmp/${t.prefix}-gsra-status.json`);
      statusDirMode = statSync(dirname(statusFile)).mode & 0o7777;
      const outCfg = t.scratchPath(`/tmp/${t.prefix}-out.json`);
      writeFileSync(outCfg, JSON.stringify({
        interfaces: [{ name: 'out0' }, { name: 'out1' }],
        nat: { external: GGR, inside: ['100.64.1.0/24'], ports: { first: 21000, last: 21999 }, sweepMs: 1000 },
        gsra: {
          ggr: GGR, pgr: PGR, insidePinDir: `${g.pinRoot}/gsra-in`, ports: { first: 40000, last: 40999 },
          servers: [{ name: 'in1.corp.example.net', address: IN1, groups: [1] }, { name: 'in2.corp.example.net', address: IN2, groups: [2] }],
          users: [{ userId: 'alice', groups: [1], keyFile }], statusFile, tickMs: 200, legEncryption: 'none', // the scripted EN has no PIT
        },
      }));
      await g.startAgent('router', ['--config', inCfg, '--iface', 'in0', '--miss', 'pass', '--handler', 'nat', '--metrics', '127.0.0.1:9465'], 'gsra-in');
      await g.startAgent('router', ['--config', outCfg, '--iface', 'out0', '--iface', 'out1', '--miss', 'pass', '--handler', 'nat', '--handler', 'gsra-router', '--metrics', '127.0.0.1:9464'], 'gsra-out');
      sinkFile = t.scratchPath(`/tmp/${t.prefix}-sink`);
      sink = t.spawn('in', 'node', ['-e', SINK(sinkFile, 5201)]);
      await waitReady(sink, 'IN server', (d) => { sinkOut += d; });
    } catch (e) { g?.cleanup(); t.cleanupSync(); throw e; }
  });
  after(() => { sink?.kill(); g?.cleanup(); t?.cleanupSync(); });

  const runEn = async (job: Record<string, unknown>): Promise<Record<string, any>> => {
    const p = t.spawn('en', process.execPath, ['-e', enScript(keyHex, job, { gen: GEN, ggr: GGR })]);
    let so = '';
    p.stdout?.setEncoding('utf8');
    p.stdout?.on('data', (d: string) => { so += d; });
    await exited(p, 110_000);
    return JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
  };

  test('admitted by name: 4 MiB TCP byte-exact, the IN sees the router (PGR:t) as its peer', async () => {
    const data = randomBytes(BYTES);
    const inp = t.scratchPath(`/tmp/${t.prefix}-in-data`);
    writeFileSync(inp, data);
    try {
      const r = await runEn({ kind: 'tcp', name: 'in1.corp.example.net', s: 51000, d: 5201, file: inp });
      assert.equal(r.admit?.state, 'done', JSON.stringify(r));
      await waitFor('the IN got the stream', () => sinkOut.includes('done 1'), 20_000);
      const peer = /peer (\S+):(\d+) conn 1/.exec(sinkOut)!;
      assert.equal(peer[1], PGR, 'the IN saw the router as its peer');
      assert.equal(Number(peer[2]), r.admit.t, 'from the reserved port t');
      const got = existsSync(`${sinkFile}.1`) ? readFileSync(`${sinkFile}.1`) : Buffer.alloc(0);
      assert.equal(got.length, BYTES);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally { rmSync(inp, { force: true }); }
  });

  test('EN behind a home router doing nftables masquerade: BIND learns GHR:m, 4 MiB TCP byte-exact', async () => {
    const data = randomBytes(BYTES);
    const inp = t.scratchPath(`/tmp/${t.prefix}-in-data-hr`);
    writeFileSync(inp, data);
    const before = sinkOut.length;
    try {
      const p = t.spawn('enh', process.execPath, ['-e', enScript(keyHex, { kind: 'tcp', name: 'in1.corp.example.net', s: 54000, d: 5201, file: inp, scriptMs: 20000 }, { gen: PEN, ggr: GGR, behindNat: true })], { env: { ...process.env, GSRA_EN_DEBUG: '1' } });
      let so = '', se = '';
      p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { so += d; });
      p.stderr?.setEncoding('utf8'); p.stderr?.on('data', (d: string) => { se += d; });
      await exited(p, 60_000);
      if (!so.trim()) assert.fail(`the EN script said nothing; stderr: ${se}`);
      if (!so.includes('"done"')) {
        const m = t.exec('router', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
        process.stderr.write(`DEBUG ${m.split('\n').filter((l) => /nat_|gsra_requests/.test(l) && !l.startsWith('#') && !/ 0$/.test(l)).join('\n')}\n`);
        process.stderr.write(`DEBUG ${g.ok('router', ['maps', 'dump', 'nat', ...g.instanceArgs('gsra-out')])}\n${g.ok('router', ['maps', 'dump', 'nat', ...g.instanceArgs('gsra-in')])}\n`);
        process.stderr.write(`DEBUG ${t.exec('hr', 'conntrack', ['-L'], { allowFail: true } as never).stdout}\n`);
      }
      const r = JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
      assert.equal(r.admit?.state, 'done', `${JSON.stringify(r)} ${se}`);
      assert.equal(r.admit.seen.addr, GHR, 'the router saw the home router\'s address');
      await waitFor('the IN got the second stream', () => sinkOut.slice(before).includes('done 2'), 20_000);
      assert.match(sinkOut.slice(before), new RegExp(`peer ${PGR.replace(/\./g, '\\.')}:${r.admit.t} conn 2`));
      const got = readFileSync(`${sinkFile}.2`);
      assert.equal(sha256(got), sha256(data), 'byte-exact');
    } finally { rmSync(inp, { force: true }); }
  });

  test('UDP: admitted, the echo comes back from GGR:t', async () => {
    const r = await runEn({ kind: 'udp', name: 'in1.corp.example.net', s: 53000, d: 5301 });
    assert.equal(r.admit?.state, 'done', JSON.stringify(r));
    assert.equal(r.echo, `echo: ping through gsra from ${GGR}:${r.admit.t}`);
    assert.match(sinkOut, new RegExp(`udp peer ${PGR.replace(/\./g, '\\.')}:${r.admit.t}`));
  });

  test('gscip gsra status: alice active, her mappings {GEN:s<->GGR:t} <=> {PGR:t<->PIN:d}; no key shown', async () => {
    await new Promise((res) => setTimeout(res, 500)); // a tick
    const st = JSON.parse(g.ok('router', ['gsra', 'status', '--file', statusFile, '--json'])) as { users: Array<{ userId: string; mappings: number }>; mappings: Array<{ en: string; inside: string; t: number; userId: string }> };
    assert.deepEqual(st.users.map((u) => u.userId), ['alice']);
    assert.ok(st.users[0].mappings >= 3, `alice's mappings: ${st.users[0].mappings}`);
    assert.ok(st.mappings.some((m) => m.en === `${GEN}:51000` && m.inside === `${IN1}:5201` && m.userId === 'alice'));
    assert.ok(st.mappings.some((m) => m.en.startsWith(`${GHR}:`)), 'the home-router EN is listed by its translated end');
    const text = g.ok('router', ['gsra', 'status', '--file', statusFile]);
    assert.match(text, /users: 1 admissible, 1 active/);
    assert.match(text, new RegExp(`${GEN.replace(/\./g, '\\.')}:51000 +${GGR.replace(/\./g, '\\.')}:\\d+ / ${PGR.replace(/\./g, '\\.')}:\\d+ +${IN1.replace(/\./g, '\\.')}:5201`));
    assert.ok(!readFileSync(statusFile, 'utf8').includes(keyHex), 'no key in the state file');
    assert.equal((statSync(dirname(statusFile)).mode & 0o7777).toString(8), statusDirMode.toString(8), 'the state file\'s directory (here /tmp) keeps its mode');
  });

  test(`an IN of another group: ${ATTEMPTS} attempts refused (no_shared_group, counted), answered at once, no packet of them inside`, async () => {
    const pcap = t.scratchPath(`/tmp/${t.prefix}-inside.pcap`);
    const cap = await Capture.start(t, { host: 'in', iface: 'l0', file: pcap, snaplen: 96, filter: 'ip' });
    let r: Record<string, any>;
    try {
      r = await runEn({ kind: 'refuse', name: 'in2.corp.example.net', d: 5201, n: ATTEMPTS });
    } finally {
      await new Promise((res) => setTimeout(res, 300));
      await cap.stop(3000);
    }
    process.stderr.write(`refusals ${JSON.stringify(r!)}\n`);
    assert.deepEqual(r!.reasons, { no_shared_group: ATTEMPTS }, 'every AUTH refused with its reason, none timed out');
    assert.deepEqual(r!.connects, { ECONNREFUSED: ATTEMPTS }, 'the application\'s own attempts fail at once: nothing maps them');
    const recs = ipv4Records(readPcapFile(cap.pcap()));
    rmSync(pcap, { force: true });
    const leaked = recs.filter((x) => x.dst === IN2 || x.src === IN2 || (x.sport >= 30000 && x.sport < 30000 + ATTEMPTS) || (x.dport >= 40000 && x.dport <= 40999));
    assert.equal(leaked.length, 0, `no packet of a refused flow inside (${recs.length} packets captured in all)`);
    const metrics = t.exec('router', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
    assert.match(metrics, new RegExp(`gscip_gsra_refusals_total\\{reason="no_shared_group"\\} ${ATTEMPTS}`));
    assert.match(metrics, /gscip_gsra_admissions_total [2-9]/);
  });
});
