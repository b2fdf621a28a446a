/**
 * GSRA end to end with the EN's own agent and the user directory
 * (namespaces, real slapd, real GMS, BIND 9; the site is
 * test/lib/gsra-site.ts with `enAgent`): alice enrolls her laptop with her
 * directory password; the EN's agent (parts dprp, natf, gsra-en) takes her
 * user ID, GSRA key and group key from its GMS delivery, and an unmodified
 * application (system resolver) reaches in1.corp.example.net through the
 * router, whose address the EN learnt from the GMS too (gsraRouters; its
 * config names none): 2 MiB TCP byte-exact, the Internet leg encrypted (no plaintext
 * marker in a capture on the router's outside interface), a UDP echo; in2
 * (another group) fails at once with EHOSTUNREACH.
 */
import { runResolverApp, type ResolverJob } from '../lib/resolver-app.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { sh, waitFor } from '../lib/netns.js';
import { sha256 } from './pccom-topology.js';
import { slapdUnavailable } from '../lib/slapd.js';
import { GsraSite, SITE } from '../lib/gsra-site.js';
import { Capture } from '../lib/capture.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : slapdUnavailable() ?? (NAMED ? null : 'needs BIND 9 (named, dig)');
const PASSWORD = 'Alice-directory-pw-7d1e';
const MARKER = Buffer.from('GSRA-PLAINTEXT-MARKER-d41c');


describe('GSRA with the EN agent and the directory (namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let s: GsraSite;
  before(async () => {
    s = new GsraSite('gsraed');
    await s.start({ alice: PASSWORD }, { enAgent: true });
    const r = s.enroll('alice', PASSWORD);
    assert.equal(r.code, 0, r.err);
    await waitFor('the router learnt alice from the GMS', () => {
      try { return JSON.parse(readFileSync(`${s.routerDir}/cache/state.json`, 'utf8')).remoteUsers?.some((u: { userId: string }) => u.userId === 'alice'); } catch { return false; }
    }, 10_000);
    await s.startEnAgent();
    await waitFor('the EN holds its delivery', () => {
      try { return Boolean(JSON.parse(readFileSync(`${s.enDir}/cache/state.json`, 'utf8')).gsraUserKey); } catch { return false; }
    }, 10_000).catch((e) => { const pit = s.g.cli('en', ['maps', 'dump', 'pit', ...s.g.instanceArgs('en')]);
      const st = s.g.cli('en', ['agent', 'status', ...s.g.instanceArgs('en')]);
      throw new Error(`${(e as Error).message}; EN agent: ${(s.enAgent as any)?.stdout.slice(-6000)} ${s.enAgent?.stderr.slice(-3000)}\nPIT: ${pit.out}${pit.err}\nSTATUS: ${st.out}${st.err}`); });
    await new Promise((res) => setTimeout(res, 1500)); // group keys into the maps, a router tick
  });
  after(async () => { await s?.close(); });

  const app = (job: ResolverJob): Promise<Record<string, any>> => runResolverApp(s.t, 'en', s.resolvConf, job);

  test('enrolled by LDAP password, the EN agent admits an unmodified application by name: 2 MiB byte-exact, leg encrypted', async () => {
    const data = randomBytes(2 << 20);
    for (let o = 0; o + MARKER.length < data.length; o += 1000) MARKER.copy(data, o);
    const inp = s.t.scratchPath(`/tmp/${s.t.prefix}-data`);
    writeFileSync(inp, data);
    const pcap = s.t.scratchPath(`/tmp/${s.t.prefix}-internet.pcap`);
    const cap = await Capture.start(s.t, { host: 'router', iface: 'out0', file: pcap, count: 300, filter: 'tcp and portrange 40000-40999' });
    let r: Record<string, any>;
    try { r = await app({ kind: 'tcp', name: 'in1.corp.example.net', file: inp }); } finally { await cap.stop(5000); }
    assert.match(String(r.addr), /^198\.19\./, JSON.stringify(r));
    assert.equal(r.error, undefined, JSON.stringify(r));
    // The EN's config names no router: GGR came from the GMS (the GSRA GE's `external`, delivered as gsraRouters).
    assert.deepEqual(JSON.parse(readFileSync(`${s.enDir}/cache/state.json`, 'utf8')).gsraRouters, [SITE.GGR]);
    await waitFor('the IN got 2 MiB', () => (existsSync(`${s.sinkFile}.1`) ? readFileSync(`${s.sinkFile}.1`).length : 0) >= data.length, 20_000);
    assert.equal(sha256(readFileSync(`${s.sinkFile}.1`)), sha256(data), 'byte-exact');
    assert.match(s.sinkOut, new RegExp(`peer ${SITE.PGR.replace(/\./g, '\\.')}:4\\d{4}`));
    const internet = cap.pcap();
    assert.ok(internet.length > 100_000, `captured the leg (${internet.length} bytes)`);
    assert.ok(!internet.includes(MARKER), 'no plaintext on the Internet leg');
  });

  test('the CL agent\'s own GMS connection (GGR:7443, through its guarded e0) is passed, exactly that endpoint, with why own_gms and counted', async () => {
    const pit = s.g.ok('en', ['maps', 'dump', 'pit', ...s.g.instanceArgs('en')]);
    const own = pit.split('\n').filter((l) => /\bown_gms\b/.test(l));
    assert.ok(own.length >= 4, `four pass entries (both directions, both hooks) for the GMS connection:\n${pit}`);
    for (const l of own) {
      assert.match(l, /\bpass\b/, l);
      assert.ok(l.includes(SITE.GGR) && /\b7443\b/.test(l), `only the GMS endpoint: ${l}`);
    }
    // The EN agent's metrics listen on loopback in its namespace.
    const m = sh('nsenter', [`--net=/run/netns/${s.t.ns('en')}`, process.execPath, '-e',
      "fetch('http://127.0.0.1:9466/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"]).stdout;
    const n = Number(/^gscip_dprp_own_gms_flows_total (\d+)/m.exec(m)?.[1] ?? 0);
    assert.ok(n >= 1, `counted: gscip_dprp_own_gms_flows_total ${n}`);
  });

  test('UDP by name: a datagram echoed by the IN through the router (which the IN sees as its peer)', async () => {
    const payload = randomBytes(48);
    const r = await app({ kind: 'udp', name: 'in1.corp.example.net', payload: payload.toString('hex') });
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.echo, Buffer.concat([Buffer.from('echo: '), payload]).toString('hex'), 'the echo, byte-exact');
    assert.match(s.sinkOut, new RegExp(`udp peer ${SITE.PGR.replace(/\./g, '\\.')}:4\\d{4}`), 'from the router\'s PGR:t');
  });

  test('in2 (another group): EHOSTUNREACH at once', async () => {
    const r = await app({ kind: 'connect', name: 'in2.corp.example.net' });
    assert.equal(r.error, 'EHOSTUNREACH', JSON.stringify(r));
    assert.ok(r.ms < 3000, `prompt: ${r.ms} ms`);
  });
});
