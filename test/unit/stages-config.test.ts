/** The `stages` config and the `--stages` flag: default every stage, a list turns the rest off, unknown names refused. Pure. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyStagesFlag, ConfigError, parseAgentConfig } from '../../controlplane/config/agent-config.js';
import { agentConfigFromArgs } from '../../controlplane/cli/commands/agent.js';

test('stages default to every stage (as before they could be switched)', { timeout: 5000 }, () => {
  assert.deepEqual(parseAgentConfig({ interfaces: [{ name: 'eth0' }] }).stages, { xlat: true, pccom: true });
  assert.deepEqual(parseAgentConfig({ interfaces: [{ name: 'eth0' }], stages: { xlat: false } }).stages, { xlat: false, pccom: true });
  assert.throws(() => parseAgentConfig({ interfaces: [{ name: 'eth0' }], stages: { nat: true } } as never), ConfigError);
});

test('--stages LIST: listed on, others off; none; unknown names refused', { timeout: 5000 }, () => {
  assert.deepEqual(applyStagesFlag('pccom'), { xlat: false, pccom: true });
  assert.deepEqual(applyStagesFlag('xlat, pccom'), { xlat: true, pccom: true });
  assert.deepEqual(applyStagesFlag('none'), { xlat: false, pccom: false });
  assert.throws(() => applyStagesFlag('xlat,nat'), /unknown stage nat/);
  assert.throws(() => applyStagesFlag(''), ConfigError);
  assert.deepEqual(agentConfigFromArgs({ iface: ['eth0'], stages: 'pccom' } as never).stages, { xlat: false, pccom: true });
});
