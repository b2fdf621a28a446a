/**
 * GSRA end to end with the user directory (namespaces, real slapd, real GMS;
 * the site is test/lib/gsra-site.ts): a remote user enrolls their laptop
 * with the user ID and password the directory holds, and reaches an IN of
 * their group through the GSRA router, which learns who it may admit (and
 * their keys) and its INs (its ACT) from the GMS; a wrong password is
 * refused; removing the user from the directory group cuts a live TCP
 * stream within 5 s and refuses the next admission. Not here: PCCOM on the
 * Internet leg (the EN runs no agent; see docs/gsra.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { waitFor } from '../lib/netns.js';
import { sha256 } from './pccom-topology.js';
import { enScript } from '../lib/gsra-en.js';
import { slapdUnavailable } from '../lib/slapd.js';
import { GsraSite, SITE } from '../lib/gsra-site.js';

const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : slapdUnavailable();
const PASSWORD = 'Alice-directory-pw-51c2';
const { GEN, GGR, PGR } = SITE;

describe('GSRA with the directory: enrolled by LDAP credentials, admitted by the router, revoked (namespaces)', { skip: unavailable ?? false, timeout: 240_000 }, () => {
  let s: GsraSite;
  before(async () => { s = new GsraSite('gsrad'); await s.start({ alice: PASSWORD, bob: 'Bob-pw-x' }); });
  after(async () => { await s?.close(); });

  test('a wrong password is refused (bad_credentials), nothing enrolled', () => {
    const r = s.enroll('alice', 'not-the-password');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /bad_credentials/);
    assert.ok(!existsSync(`${s.enDir}/identity/agent.crt`));
  });

  test('enrolled with the directory password, alice reaches IN1 by name through the router: 2 MiB TCP byte-exact', async () => {
    const r = s.enroll('alice', PASSWORD);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /enrolled as alice/);
    const key = s.userKeyHex();
    assert.equal(key.length, 64, 'the GMS delivered alice her GSRA key');
    await waitFor('the router learnt alice from the GMS', () => {
      try { return JSON.parse(readFileSync(`${s.routerDir}/cache/state.json`, 'utf8')).remoteUsers?.some((u: { userId: string }) => u.userId === 'alice'); } catch { return false; }
    }, 10_000);
    await new Promise((res) => setTimeout(res, 400)); // a router tick
    const data = randomBytes(2 << 20);
    const inp = s.t.scratchPath(`/tmp/${s.t.prefix}-data`);
    writeFileSync(inp, data);
    const out = await s.runEn(key, { kind: 'tcp', name: 'in1.corp.example.net', s: 51000, d: 5201, file: inp });
    assert.equal(out.admit?.state, 'done', JSON.stringify(out));
    await waitFor('the IN got 2 MiB', () => (existsSync(`${s.sinkFile}.1`) ? readFileSync(`${s.sinkFile}.1`).length : 0) >= data.length, 20_000);
    assert.equal(sha256(readFileSync(`${s.sinkFile}.1`)), sha256(data), 'byte-exact');
    assert.match(s.sinkOut, new RegExp(`peer ${PGR.replace(/\./g, '\\.')}:${out.admit.t}`));
  });

  test('removed from the directory group during a live TCP stream: cut within 5 s, the next admission refused', async () => {
    const key = s.userKeyHex();
    const p = s.t.spawn('en', process.execPath, ['-e', enScript(key, { kind: 'stream', name: 'in1.corp.example.net', s: 52000, d: 5201, maxMs: 20_000 }, { gen: GEN, ggr: GGR })]);
    let so = '';
    p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { so += d; });
    await waitFor('the stream flows', () => / conn 2/.test(s.sinkOut), 10_000);
    await new Promise((res) => setTimeout(res, 1000));
    assert.ok(Date.now() - s.lastByteAt() < 1000, 'bytes were arriving just before the change');
    const t0 = Date.now();
    s.slapd!.removeMember('staff', 'alice');
    await new Promise<void>((res) => { if (p.exitCode !== null) res(); else p.once('exit', () => res()); });
    const out = JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
    await new Promise((res) => setTimeout(res, 300));
    const stoppedAfter = s.lastByteAt() - t0;
    process.stderr.write(`stream: ${JSON.stringify(out)}; last byte at the IN ${stoppedAfter} ms after the directory change; EN saw ${out.end} after ${out.endAt - t0} ms\n`);
    assert.notEqual(out.end, 'still_open', 'the stream was cut');
    assert.ok(stoppedAfter <= 5000, `bytes reached the IN until ${stoppedAfter} ms after the change`);
    assert.ok(out.endAt - t0 <= 5000, `the EN's connection ended ${out.endAt - t0} ms after the change`);
    assert.equal(out.after?.state, 'failed');
    assert.equal(out.after?.failure, 'unknown_user', 'refused, with a MAC the EN trusts, at once');
  });
});
