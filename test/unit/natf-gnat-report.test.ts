/**
 * Every GE learns a GNAT's new external address (docs/natf.md "When the
 * external address changes"): the GNAT reports it (ExternalReporter: at once,
 * again each tick until every replica said ok, then every refresh; fake
 * sender and clock); the GMS keeps one report per GNAT, lets an unrefreshed
 * one lapse (GnatReports, fake clock) and, on a real GMS on loopback, puts it in place of the GNAT's file address
 * to the `gnats` every GE is delivered and pushes it to a subscribed GE; a GE
 * that is not a GNAT, and an address that is not a usable global one, are
 * refused with their codes; a restarted GMS delivers a report at once (kept
 * in its SQLite database; PostgreSQL: test/gms/gnat-reports-pg.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExternalReporter } from '../../controlplane/natf/external-report.js';
import { GnatReports } from '../../controlplane/gms/gnat-reports.js';
import { fetchGeState, reportExternal } from '../../controlplane/gms/client.js';
import { loadCache } from '../../controlplane/gms/agent-files.js';
import { enrollGe, MemorySink, startAgent, startGms, tempDir, waitFor } from '../gms/helpers.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('reporter: sent at once, again each tick until every replica said ok, then only after the refresh; a new address at once', { timeout: 5000 }, async () => {
  let now = 0;
  const sent: string[] = [];
  let answer = ['ok', 'error'];
  const results: string[] = [];
  const r = new ExternalReporter(async (a) => { sent.push(a); return answer.map((x, i) => ({ url: `https://gms${i}`, result: x })); }, () => now, (x) => results.push(`${x.url} ${x.result}`), 60_000);
  r.tick();
  assert.deepEqual(sent, [], 'nothing to report before an address is set');
  r.set('192.0.2.2');
  r.tick();
  await settle();
  assert.deepEqual(sent, ['192.0.2.2'], 'one in flight at a time');
  assert.deepEqual(results.splice(0), ['https://gms0 ok', 'https://gms1 error']);
  now = 1000; r.tick(); await settle();
  assert.deepEqual(sent, ['192.0.2.2', '192.0.2.2'], 'a replica did not answer: again at the next tick');
  answer = ['ok', 'ok'];
  now = 2000; r.tick(); await settle();
  now = 3000; r.tick(); await settle();
  assert.equal(sent.length, 3, 'every replica said ok: not again before the refresh');
  now = 2000 + 60_000; r.tick(); await settle();
  assert.equal(sent.length, 4, 'refreshed');
  r.set('192.0.2.22'); await settle();
  assert.deepEqual(sent.slice(4), ['192.0.2.22'], 'a change is reported at once');
});

test('GMS reports: one address per GNAT, the file\'s list with the reported ones, a report not refreshed lapses', { timeout: 5000 }, () => {
  const g = new GnatReports(600_000);
  assert.equal(g.report('gnat-home', '192.0.2.22', 0), true);
  assert.equal(g.report('gnat-home', '192.0.2.22', 1000), false, 'the same address again changes nothing');
  assert.deepEqual(g.gnats(['192.0.2.2', '192.0.2.4'], 1000), ['192.0.2.2', '192.0.2.22', '192.0.2.4']);
  assert.equal(g.report('gnat-home', '192.0.2.23', 2000), true);
  assert.deepEqual(g.list(2000), ['192.0.2.23'], 'the new report replaces the previous one');
  assert.deepEqual(g.list(2000 + 600_001), [], 'lapsed');
  assert.deepEqual(g.gnats(undefined, 2000 + 600_001), []);
});

test('GMS on loopback: a GNAT\'s report reaches every GE\'s gnats (fetched and pushed); a GES, and a special address, are refused', { timeout: 30_000 }, async (t) => {
  const gmsDir = tempDir('gnat-report');
  const gnatDir = tempDir('gnat-report-gnat');
  const aliceDir = tempDir('gnat-report-alice');
  let stopClient: () => Promise<void> = async () => undefined;
  let closeServer: () => Promise<void> = async () => undefined;
  // One hook, in order: the client and the server stop before their directories go.
  t.after(async () => { await stopClient(); await closeServer(); gmsDir.remove(); gnatDir.remove(); aliceDir.remove(); });
  const { server, admin } = await startGms(gmsDir.path);
  closeServer = () => server.close();
  await admin.apply({
    apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 10, name: 'home' }],
    ges: [
      { userId: 'gnat-home', type: 'GNAT', mode: 'CL', groups: [10], external: '192.0.2.2' },
      { userId: 'ges-alice', type: 'GES', mode: 'OP', groups: [10] },
    ],
  }, false);
  await enrollGe(server, admin, 'gnat-home', gnatDir.path);
  await enrollGe(server, admin, 'ges-alice', aliceDir.path);
  const client = await startAgent(aliceDir.path, new MemorySink());
  stopClient = () => client.stop();
  await waitFor('alice\'s first delivery', () => (loadCache(aliceDir.path) as { gnats?: string[] } | null)?.gnats?.length === 1);
  assert.deepEqual((await fetchGeState(aliceDir.path)).gnats, ['192.0.2.2']);

  assert.deepEqual(await reportExternal(gnatDir.path, '192.0.2.22'), [{ url: server.url.replace(/\/$/, ''), result: 'ok' }]);
  assert.deepEqual((await fetchGeState(aliceDir.path)).gnats, ['192.0.2.22'], 'fetched: the report replaces the GNAT\'s own file address');
  await waitFor('the new list pushed to alice', () => (loadCache(aliceDir.path) as { gnats?: string[] } | null)?.gnats?.join() === '192.0.2.22');

  assert.deepEqual((await reportExternal(aliceDir.path, '192.0.2.9')).map((r) => r.result), ['not_a_gnat'], 'a GES reports nothing');
  assert.deepEqual((await reportExternal(gnatDir.path, '127.0.0.1')).map((r) => r.result), ['bad_request']);
  assert.deepEqual((await reportExternal(gnatDir.path, '100.64.1.1/24')).map((r) => r.result), ['bad_request']);
  assert.deepEqual((await fetchGeState(aliceDir.path)).gnats, ['192.0.2.22'], 'refused reports change nothing');
});

test('a reporting GNAT\'s own file address leaves the list its report replaces; one another GNAT still names stays; a lapsed report gives it back', () => {
  const g = new GnatReports(1000);
  const file = ['192.0.2.2', '192.0.2.5', '198.51.100.7'];
  const owners = { gnat1: '192.0.2.2', gnat2: '192.0.2.5', gnat3: '198.51.100.7', gnat4: '198.51.100.7' };
  assert.deepEqual(g.gnats(file, 0, owners), file, 'no report: the file');
  g.report('gnat1', '192.0.2.22', 0);
  assert.deepEqual(g.gnats(file, 10, owners), ['192.0.2.22', '192.0.2.5', '198.51.100.7'], 'gnat1 moved: its old address goes');
  g.report('gnat3', '203.0.113.9', 10);
  assert.deepEqual(g.gnats(file, 20, owners), ['192.0.2.22', '192.0.2.5', '198.51.100.7', '203.0.113.9'], 'gnat4 still names gnat3\'s old address: it stays');
  assert.deepEqual(g.gnats(file, 20), ['192.0.2.2', '192.0.2.22', '192.0.2.5', '198.51.100.7', '203.0.113.9'], 'a policy without owners (applied before they existed): reports only add');
  assert.deepEqual(g.gnats(file, 2000, owners), file, 'both reports lapsed: the file again');
});

test('reports loaded from the store count from their own time: a lapsed one stays lapsed, a newer one in memory is kept', () => {
  const g = new GnatReports(1000);
  g.report('gnat2', '192.0.2.25', 5000);
  g.load([{ userId: 'gnat1', addr: '192.0.2.22', atMs: 4500 }, { userId: 'gnat2', addr: '192.0.2.24', atMs: 4000 }, { userId: 'gnat3', addr: '192.0.2.23', atMs: 3000 }]);
  assert.deepEqual(g.list(5000), ['192.0.2.22', '192.0.2.25'], 'gnat3\'s report lapsed at 4000; gnat2\'s own newer report kept');
  assert.deepEqual(g.list(5600), ['192.0.2.25'], 'gnat1\'s lapses 1000 ms after it was made, not after the load');
});

test('GMS on loopback, restarted: a GNAT\'s report is delivered at once from its database, before the GNAT reports again', { timeout: 30_000 }, async (t) => {
  const gmsDir = tempDir('gnat-report-restart');
  const gnatDir = tempDir('gnat-report-restart-gnat');
  const aliceDir = tempDir('gnat-report-restart-alice');
  let closeServer: () => Promise<void> = async () => undefined;
  t.after(async () => { await closeServer(); gmsDir.remove(); gnatDir.remove(); aliceDir.remove(); });
  const first = await startGms(gmsDir.path);
  closeServer = () => first.server.close();
  await first.admin.apply({
    apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 10, name: 'home' }],
    ges: [
      { userId: 'gnat-home', type: 'GNAT', mode: 'CL', groups: [10], external: '192.0.2.2' },
      { userId: 'ges-alice', type: 'GES', mode: 'OP', groups: [10] },
    ],
  }, false);
  await enrollGe(first.server, first.admin, 'gnat-home', gnatDir.path);
  await enrollGe(first.server, first.admin, 'ges-alice', aliceDir.path);
  assert.deepEqual((await reportExternal(gnatDir.path, '192.0.2.22')).map((r) => r.result), ['ok']);
  assert.deepEqual((await fetchGeState(aliceDir.path)).gnats, ['192.0.2.22']);
  const port = Number(new URL(first.server.url).port);
  await first.server.close();
  closeServer = async () => undefined;
  const again = await startGms(gmsDir.path, { port });
  closeServer = () => again.server.close();
  assert.deepEqual((await fetchGeState(aliceDir.path)).gnats, ['192.0.2.22'], 'the restarted GMS still puts the reported address in place of the file\'s');
});
