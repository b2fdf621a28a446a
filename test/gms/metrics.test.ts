/** The GMS metrics as Prometheus would scrape them: enrolled/connected GEs, rotations by cause, key age per group. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registry } from '../../controlplane/metrics/metrics.js';
import { enrollGe, FIG6, MemorySink, startAgent, startGms, tempDir, waitFor } from './helpers.js';

const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `${series} missing from:\n${text}`);
  return Number(line.split(' ')[1]);
};

test('gscip_gms_* metrics follow enrollment, connection and rotations', async (t) => {
  const dir = tempDir('metrics');
  const ag = tempDir('metrics-agent');
  t.after(() => { dir.remove(); ag.remove(); });
  const { server, admin } = await startGms(dir.path);
  t.after(() => server.close());
  await admin.apply(FIG6, false);
  let m = await registry.metrics();
  assert.equal(value(m, 'gscip_gms_ges_enrolled'), 0);
  assert.equal(value(m, 'gscip_gms_rotations_total{reason="group_created"}'), 3);

  await enrollGe(server, admin, 'gea-server', ag.path);
  const sink = new MemorySink();
  const h = await startAgent(ag.path, sink);
  t.after(() => h.stop());
  await waitFor('connected', () => server.connectedCount() === 1);
  await new Promise((r) => setTimeout(r, 1100));
  await admin.rotate(2);
  await admin.rotate(2);
  m = await registry.metrics();
  assert.equal(value(m, 'gscip_gms_ges_enrolled'), 1);
  assert.equal(value(m, 'gscip_gms_ges_connected'), 1);
  assert.equal(value(m, 'gscip_gms_rotations_total{reason="demand"}'), 2);
  assert.equal(value(m, 'gscip_gms_enrollments_total{result="ok"}'), 1);
  assert.ok(value(m, 'gscip_gms_key_age_seconds{group="3"}') >= 1, 'group 3 key is over a second old');
  assert.ok(value(m, 'gscip_gms_key_age_seconds{group="2"}') < 1, 'group 2 was just rotated');
});
