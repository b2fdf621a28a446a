/**
 * GMS down: an agent restarted while the GMS is unreachable installs the keys
 * it cached on disk, keeps retrying with backoff, and catches up when the GMS
 * is back (which itself restarts from its SQLite file with the same keys).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { agentGmsStatus, formatAgentGmsStatus } from '../../controlplane/gms/agent-status.js';
import type { GmsClientStatus } from '../../controlplane/gms/client.js';
import { join } from 'node:path';
import { enrollGe, FIG6, MemorySink, startAgent, startGms, tempDir, waitFor } from './helpers.js';

test('agent restart while the GMS is down keeps the cached keys, then catches up', async (t) => {
  const gmsDir = tempDir('rst');
  const agentDir = tempDir('rst-agent');
  t.after(() => { gmsDir.remove(); agentDir.remove(); });
  let { server, admin } = await startGms(gmsDir.path);
  t.after(() => server.close());
  await admin.apply(FIG6, false);
  await enrollGe(server, admin, 'ges2-manager', agentDir.path);

  const sink1 = new MemorySink();
  const h1 = await startAgent(agentDir.path, sink1);
  await waitFor('first keys', () => sink1.ids().join() === '1/1,2/1');
  const keysBefore = new Map(sink1.keys);
  assert.equal(statSync(join(agentDir.path, 'cache', 'state.json')).mode & 0o777, 0o600);
  assert.equal(statSync(join(agentDir.path, 'cache')).mode & 0o777, 0o700);

  const port = Number(new URL(server.url).port);
  await server.close();
  await h1.stop();

  assert.equal(agentGmsStatus(agentDir.path).hasOwnProperty('enrolled'), false);
  assert.equal((agentGmsStatus(agentDir.path) as GmsClientStatus).state, 'stopped', 'status after the agent stopped');

  // Agent restarts while the GMS is down, adopting a key map (pinned maps) that
  // still holds an entry from long ago: the cache decides what stays.
  const sink2 = new MemorySink();
  sink2.keys.set('7/3', Buffer.alloc(32, 7));
  sink2.keys.set('1/1', Buffer.alloc(32, 1)); // stale bytes for a wanted version: rewritten
  const h2 = await startAgent(agentDir.path, sink2);
  t.after(() => h2.stop());
  assert.deepEqual(sink2.ids(), ['1/1', '2/1'], 'cached keys installed before any contact with the GMS, leftover 7/3 deleted');
  for (const [id, k] of keysBefore) assert.deepEqual(sink2.keys.get(id), k, `${id} same bytes`);
  await waitFor('agent notices the GMS is down', () => h2.status().state === 'disconnected' && h2.status().reconnects >= 2, 3000);
  assert.deepEqual(sink2.ids(), ['1/1', '2/1'], 'still holding keys while the GMS is down');

  // GMS back on the same port, from its database file.
  ({ server, admin } = await startGms(gmsDir.path, { port }));
  t.after(() => server.close());
  await waitFor('reconnected', () => h2.status().state === 'connected', 3000);
  const live = agentGmsStatus(agentDir.path) as GmsClientStatus; // what `gscip agent status` shows from another process
  assert.equal(live.state, 'connected');
  assert.equal(live.userId, 'ges2-manager');
  assert.deepEqual(live.keys.map((k) => `${k.group}/${k.version}:${k.state}`), ['1/1:current', '2/1:current']);
  assert.match(formatAgentGmsStatus(live), /identity: ges2-manager type=GES mode=OP groups=\[1,2\]/);
  assert.doesNotMatch(readFileSync(join(agentDir.path, 'status.json'), 'utf8'), new RegExp(keysBefore.get('1/1')!.toString('base64').replace(/[+/]/g, '.')));
  for (const [id, k] of keysBefore) assert.deepEqual(sink2.keys.get(id), k, `${id} unchanged after GMS restart (persisted)`);
  await admin.rotate(2);
  await waitFor('rotation after reconnect', () => sink2.keys.has('2/2'), 2000);
});
