/**
 * The GE identity the agent hands to handler factories (controlplane/agent/ge-identity.ts):
 * GMS GE info first, configured flags must agree with it, flags alone, the env
 * fallback, and the DPRP factory refusing to start without any.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveGeIdentity } from '../../controlplane/agent/ge-identity.js';
import { agentConfigFromArgs } from '../../controlplane/cli/commands/agent.js';
import { ConfigError } from '../../controlplane/config/agent-config.js';
import { dprpHandlerFactory, DprpHandler } from '../../controlplane/dprp/handler.js';
import { logger } from '../../controlplane/log/logger.js';

const gms = (type: string, mode: string) => async () => ({ type, mode }) as never;

test('GMS GE info wins; flags that agree are fine, flags that disagree name the flag', async () => {
  assert.deepEqual(await resolveGeIdentity({ configured: null, loadDelivery: gms('GEN', 'CL'), env: {} }), { type: 'GEN', mode: 'CL', source: 'gms' });
  assert.deepEqual(await resolveGeIdentity({ configured: { type: 'GEN', mode: 'CL' }, loadDelivery: gms('GEN', 'CL'), env: {} }),
    { type: 'GEN', mode: 'CL', source: 'gms' });
  await assert.rejects(resolveGeIdentity({ configured: { type: 'GEN', mode: 'OP' }, loadDelivery: gms('GEN', 'CL'), env: {} }),
    (e: Error) => e instanceof ConfigError && /^--ge-mode .*OP disagrees with the GMS.*CL/.test(e.message));
  await assert.rejects(resolveGeIdentity({ configured: { type: 'GES', mode: 'CL' }, loadDelivery: gms('GEN', 'CL'), env: {} }),
    (e: Error) => /^--ge-type .*GES disagrees with the GMS.*GEN/.test(e.message));
  // the env never overrides the GMS
  assert.equal((await resolveGeIdentity({ configured: null, loadDelivery: gms('GEA', 'CL'), env: { GSCIP_GE_TYPE: 'GES', GSCIP_GE_MODE: 'OP' } }))?.type, 'GEA');
  await assert.rejects(resolveGeIdentity({ configured: null, loadDelivery: async () => { throw new Error('connect ECONNREFUSED'); }, env: {} }),
    (e: Error) => /gms\.dataDir: cannot learn .*ECONNREFUSED/.test(e.message));
  await assert.rejects(resolveGeIdentity({ configured: null, loadDelivery: gms('ROUTER', 'CL'), env: {} }), /unknown GE type\/mode/);
});

test('without a GMS: the configuration, else the env fallback (checked), else nothing', async () => {
  assert.deepEqual(await resolveGeIdentity({ configured: { type: 'GES', mode: 'OP' }, loadDelivery: null, env: { GSCIP_GE_TYPE: 'GEN', GSCIP_GE_MODE: 'CL' } }),
    { type: 'GES', mode: 'OP', source: 'config' });
  assert.deepEqual(await resolveGeIdentity({ configured: null, loadDelivery: null, env: { GSCIP_GE_TYPE: 'GEN', GSCIP_GE_MODE: 'CL' } }),
    { type: 'GEN', mode: 'CL', source: 'env' });
  await assert.rejects(resolveGeIdentity({ configured: null, loadDelivery: null, env: { GSCIP_GE_TYPE: 'GEN' } }), /^Error: GSCIP_GE_MODE|GSCIP_GE_MODE: must be OP or CL/);
  await assert.rejects(resolveGeIdentity({ configured: null, loadDelivery: null, env: { GSCIP_GE_TYPE: 'router', GSCIP_GE_MODE: 'OP' } }), /GSCIP_GE_TYPE: must be one of/);
  assert.equal(await resolveGeIdentity({ configured: null, loadDelivery: null, env: {} }), null);
});

test('--ge-type/--ge-mode: both or neither, validated, in the config as ge', () => {
  assert.deepEqual(agentConfigFromArgs({ iface: ['eth0'], 'ge-type': 'gen', 'ge-mode': 'CL' }).ge, { type: 'GEN', mode: 'CL' });
  assert.equal(agentConfigFromArgs({ iface: ['eth0'] }).ge, null);
  assert.throws(() => agentConfigFromArgs({ iface: ['eth0'], 'ge-type': 'GES' }), /^ConfigError: --ge-type: give --ge-mode too|--ge-type: give --ge-mode too/);
  assert.throws(() => agentConfigFromArgs({ iface: ['eth0'], 'ge-mode': 'OP' }), /--ge-mode: give --ge-type too/);
  assert.throws(() => agentConfigFromArgs({ iface: ['eth0'], 'ge-type': 'router', 'ge-mode': 'OP' }), /--ge-type: must be GES, GEN, GEA, GNAT or GSRA \(got 'router'\)/);
  assert.throws(() => agentConfigFromArgs({ iface: ['eth0'], 'ge-type': 'GES', 'ge-mode': 'open' }), /--ge-mode: must be OP or CL \(got 'open'\)/);
});

test('the dprp factory takes the identity from the agent and refuses without one', () => {
  const log = logger('test').child({ handler: 'dprp' });
  assert.throws(() => dprpHandlerFactory({ log, ge: null }), /dprp: this GE's type and mode are unknown: .*--gms-data-dir.*--ge-type/);
  const h = dprpHandlerFactory({ log, ge: { type: 'GEN', mode: 'CL', source: 'gms' } });
  assert.ok(h instanceof DprpHandler);
  h.close?.();
});
