/**
 * GSRA end to end with the user directory (namespaces, real slapd, real GMS):
 * a remote user enrolls their laptop with the user ID and password the
 * directory holds, and reaches an IN of their group through the GSRA router,
 * which learns who it may admit (and their keys) and its INs (its ACT) from
 * the GMS; a wrong password is refused; removing the user from the directory
 * group cuts a live TCP stream within 5 s and refuses the next admission.
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (IN1 100.64.1.10)
 *
 * slapd listens on 127.0.0.1 inside the router's namespace (ldaps only); the
 * GMS (gscip gms serve --directory) on GGR:7443 there too. Not here: PCCOM on
 * the Internet leg (the EN runs no agent; see docs/gsra.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Topology, waitFor } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { exited, sha256 } from './pccom-topology.js';
import { enScript } from '../lib/gsra-en.js';
import { GROUPS, PEOPLE, slapdUnavailable, TestSlapd } from '../lib/slapd.js';

const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : slapdUnavailable();
const GEN = '192.0.2.20';
const GGR = '192.0.2.1';
const PGR = '100.64.1.1';
const IN1 = '100.64.1.10';
const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const DIST = resolve(__dirname, '../..');
const PASSWORD = 'Alice-directory-pw-51c2';

const SINK = (outFile: string, port: number): string => `
const net = require('net'), fs = require('fs');
let n = 0, last = 0, peer = '';
const out = fs.createWriteStream(${JSON.stringify(outFile)});
net.createServer((c) => { peer = c.remoteAddress + ':' + c.remotePort; console.log('peer ' + peer); c.on('data', (d) => { n += d.length; last = Date.now(); out.write(d); }); c.on('error', () => {}); c.on('end', () => console.log('end ' + peer)); })
  .listen(${port}, '0.0.0.0', () => console.log('ready'));
setInterval(() => console.log('bytes ' + n + ' last ' + last), 100);
setTimeout(() => process.exit(3), 200000).unref();`;

describe('GSRA with the directory: enrolled by LDAP credentials, admitted by the router, revoked (namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let slapd: TestSlapd;
  let gmsOut = '';
  let sinkOut = '';
  let fingerprint = '';
  let gmsDir = '', routerDir = '', enDir = '', sinkFile = '';

  before(async () => {
    t = new Topology('gsrad');
    try {
      t.addHost('en'); t.addHost('router'); t.addHost('in');
      t.link('en', 'e0', 'router', 'out0');
      t.link('router', 'in0', 'in', 'l0');
      t.addr('en', 'e0', `${GEN}/24`);
      t.addr('router', 'out0', `${GGR}/24`);
      t.addr('router', 'in0', `${PGR}/24`);
      t.addr('in', 'l0', `${IN1}/24`);
      t.forwarding('router');
      slapd = await TestSlapd.start([{ uid: 'alice', password: PASSWORD }, { uid: 'bob', password: 'Bob-pw-x' }], { staff: ['alice', 'bob'] }, { netns: t.ns('router') });
      gmsDir = t.scratchPath(`/tmp/${t.prefix}-gms`);
      routerDir = t.scratchPath(`/tmp/${t.prefix}-router-agent`);
      enDir = t.scratchPath(`/tmp/${t.prefix}-en-agent`);
      const dirFile = t.scratchPath(`/tmp/${t.prefix}-directory.json`);
      writeFileSync(dirFile, JSON.stringify({
        apiVersion: 'gscip/v1', kind: 'Directory', url: slapd.url, caFile: slapd.caFile,
        users: { base: PEOPLE, attribute: 'uid' }, groups: [{ dn: `cn=staff,${GROUPS}`, gscipGroups: [1] }], syncSeconds: 1,
      }));
      const netFile = t.scratchPath(`/tmp/${t.prefix}-network.json`);
      writeFileSync(netFile, JSON.stringify({
        apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 1 }, { id: 2 }],
        ges: [{ userId: 'gsra-router', type: 'GSRA', mode: 'CL', groups: [1, 2], act: [
          { name: 'in1.corp.example.net', address: IN1, outsideAccess: 'allow', groups: [1] },
          { name: 'in2.corp.example.net', address: '100.64.1.20', outsideAccess: 'allow', groups: [2] },
        ] }],
      }));
      const gms = t.spawn('router', process.execPath, [MAIN, 'gms', 'serve', '--data-dir', gmsDir, '--listen', `${GGR}:7443`, '--directory', dirFile]);
      gms.stdout?.setEncoding('utf8'); gms.stdout?.on('data', (d: string) => { gmsOut += d; });
      gms.stderr?.setEncoding('utf8'); gms.stderr?.on('data', (d: string) => { if (gmsOut.length < 50_000) gmsOut += d; });
      await waitFor('GMS', () => /CA fingerprint[^:]*: (\S+)/.test(gmsOut), 20_000);
      fingerprint = /CA fingerprint[^:]*: (\S+)/.exec(gmsOut)![1];
      g = new GscipRunner(t, 'gsra-out');
      g.ok('router', ['gms', 'apply', '-f', netFile, '--data-dir', gmsDir]);
      const token = g.ok('router', ['gms', 'token', 'issue', '--ge', 'gsra-router', '--data-dir', gmsDir]).trim();
      g.ok('router', ['agent', 'enroll', '--gms', `https://${GGR}:7443`, '--token-file', '/dev/stdin', '--ca-fingerprint', fingerprint, '--data-dir', routerDir], token);
      const inCfg = t.scratchPath(`/tmp/${t.prefix}-in.json`);
      writeFileSync(inCfg, JSON.stringify({ interfaces: [{ name: 'in0' }], nat: { external: PGR, inside: ['100.127.255.252/30'], ports: { first: 21000, last: 21999 }, sweepMs: 1000 } }));
      const outCfg = t.scratchPath(`/tmp/${t.prefix}-out.json`);
      writeFileSync(outCfg, JSON.stringify({
        interfaces: [{ name: 'out0' }], gms: { dataDir: routerDir },
        nat: { external: GGR, inside: ['100.64.1.0/24'], ports: { first: 21000, last: 21999 }, sweepMs: 1000 },
        gsra: { ggr: GGR, pgr: PGR, insidePinDir: `${g.pinRoot}/gsra-in`, ports: { first: 40000, last: 40999 }, tickMs: 200 },
      }));
      await g.startAgent('router', ['--config', inCfg, '--iface', 'in0', '--miss', 'pass', '--handler', 'nat', '--metrics', '127.0.0.1:9465'], 'gsra-in');
      await g.startAgent('router', ['--config', outCfg, '--iface', 'out0', '--miss', 'pass', '--handler', 'nat', '--handler', 'gsra-router', '--metrics', '127.0.0.1:9464'], 'gsra-out');
      sinkFile = t.scratchPath(`/tmp/${t.prefix}-sink`);
      const sink = t.spawn('in', 'node', ['-e', SINK(sinkFile, 5201)]);
      sink.stdout?.setEncoding('utf8'); sink.stdout?.on('data', (d: string) => { sinkOut = (sinkOut + d).slice(-20_000); });
      await waitFor('IN server', () => sinkOut.includes('ready'), 5000);
    } catch (e) { g?.cleanup(); t.cleanupSync(); await slapd?.destroy(); throw e; }
  });
  after(async () => { g?.cleanup(); t?.cleanupSync(); await slapd?.destroy(); });

  const enroll = (password: string): { code: number | null; out: string; err: string } => {
    const pf = t.scratchPath(`/tmp/${t.prefix}-pw-${randomBytes(3).toString('hex')}`);
    writeFileSync(pf, password, { mode: 0o600 });
    return g.cli('en', ['agent', 'enroll', '--gms', `https://${GGR}:7443`, '--ldap-user', 'alice', '--password-file', pf, '--ca-fingerprint', fingerprint, '--data-dir', enDir]);
  };
  const userKeyHex = (): string => t.exec('en', process.execPath, ['-e',
    `require(${JSON.stringify(`${DIST}/controlplane/gms/client.js`)}).fetchGeState(${JSON.stringify(enDir)}).then((d) => process.stdout.write(Buffer.from(d.gsraUserKey, 'base64').toString('hex')))`]).stdout.trim();
  const runEn = async (keyHex: string, job: Record<string, unknown>): Promise<Record<string, any>> => {
    const p = t.spawn('en', process.execPath, ['-e', enScript(keyHex, job, { gen: GEN, ggr: GGR })]);
    let so = '';
    p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { so += d; });
    await exited(p, 110_000);
    return JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
  };
  const lastByteAt = (): number => Number([...sinkOut.matchAll(/last (\d+)\n/g)].pop()?.[1] ?? 0);

  test('a wrong password is refused (bad_credentials), nothing enrolled', () => {
    const r = enroll('not-the-password');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /bad_credentials/);
    assert.ok(!existsSync(`${enDir}/identity/agent.crt`));
  });

  test('enrolled with the directory password, alice reaches IN1 by name through the router: 2 MiB TCP byte-exact', async () => {
    const r = enroll(PASSWORD);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /enrolled as alice/);
    const key = userKeyHex();
    assert.equal(key.length, 64, 'the GMS delivered alice her GSRA key');
    await waitFor('the router learnt alice from the GMS', () => {
      try { return JSON.parse(readFileSync(`${routerDir}/cache/state.json`, 'utf8')).remoteUsers?.some((u: { userId: string }) => u.userId === 'alice'); } catch { return false; }
    }, 10_000);
    await new Promise((res) => setTimeout(res, 400)); // a router tick
    const data = randomBytes(2 << 20);
    const inp = t.scratchPath(`/tmp/${t.prefix}-data`);
    writeFileSync(inp, data);
    const out = await runEn(key, { kind: 'tcp', name: 'in1.corp.example.net', s: 51000, d: 5201, file: inp });
    assert.equal(out.admit?.state, 'done', JSON.stringify(out));
    await waitFor('the IN got 2 MiB', () => (existsSync(sinkFile) ? readFileSync(sinkFile).length : 0) >= data.length, 20_000);
    assert.equal(sha256(readFileSync(sinkFile)), sha256(data), 'byte-exact');
    assert.match(sinkOut, new RegExp(`peer ${PGR.replace(/\./g, '\\.')}:${out.admit.t}`));
  });

  test('removed from the directory group during a live TCP stream: cut within 5 s, the next admission refused', async () => {
    const key = userKeyHex();
    const p = t.spawn('en', process.execPath, ['-e', enScript(key, { kind: 'stream', name: 'in1.corp.example.net', s: 52000, d: 5201, maxMs: 20_000 }, { gen: GEN, ggr: GGR })]);
    let so = '';
    p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { so += d; });
    await waitFor('the stream flows', () => sinkOut.includes(':40001') || /peer \S+:4000[1-9]/.test(sinkOut), 10_000);
    await new Promise((res) => setTimeout(res, 1000));
    const flowing = lastByteAt();
    assert.ok(Date.now() - flowing < 1000, 'bytes were arriving just before the change');
    const t0 = Date.now();
    slapd.removeMember('staff', 'alice');
    await exited(p, 30_000);
    const out = JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
    await new Promise((res) => setTimeout(res, 300));
    const stoppedAfter = lastByteAt() - t0;
    process.stderr.write(`stream: ${JSON.stringify(out)}; last byte at the IN ${stoppedAfter} ms after the directory change; EN saw ${out.end} after ${out.endAt - t0} ms\n`);
    assert.notEqual(out.end, 'still_open', 'the stream was cut');
    assert.ok(stoppedAfter <= 5000, `bytes reached the IN until ${stoppedAfter} ms after the change`);
    assert.ok(out.endAt - t0 <= 5000, `the EN's connection ended ${out.endAt - t0} ms after the change`);
    assert.equal(out.after?.state, 'failed');
    assert.equal(out.after?.failure, 'unknown_user', 'refused, with a MAC the EN trusts, at once');
  });
});
