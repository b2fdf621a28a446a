/** The `stages` config and the `--stages` flag: default every stage, a list turns the rest off, unknown names refused. Pure. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyStagesFlag, ConfigError, parseAgentConfig } from '../../controlplane/config/agent-config.js';
import { agentConfigFromArgs } from '../../controlplane/cli/commands/agent.js';

test('stages default to every stage but NAT (as before they could be switched); a nat section turns NAT on', { timeout: 5000 }, () => {
  assert.deepEqual(parseAgentConfig({ interfaces: [{ name: 'eth0' }] }).stages, { xlat: true, pccom: true, nat: false, dns: false, ftp: false });
  assert.deepEqual(parseAgentConfig({ interfaces: [{ name: 'eth0' }], stages: { xlat: false } }).stages, { xlat: false, pccom: true, nat: false, dns: false, ftp: false });
  assert.throws(() => parseAgentConfig({ interfaces: [{ name: 'eth0' }], stages: { cit: true } } as never), ConfigError);
  const nat = { external: '192.0.2.2', inside: ['100.64.1.0/24'] };
  assert.equal(parseAgentConfig({ interfaces: [{ name: 'eth0' }], handlers: ['nat'], nat }).stages.nat, true);
});

test('--stages LIST: listed on, others off; none; unknown names refused', { timeout: 5000 }, () => {
  assert.deepEqual(applyStagesFlag('pccom'), { xlat: false, pccom: true });
  assert.deepEqual(applyStagesFlag('xlat, pccom'), { xlat: true, pccom: true });
  assert.deepEqual(applyStagesFlag('none'), { xlat: false, pccom: false });
  assert.deepEqual(applyStagesFlag('xlat,nat'), { xlat: true, pccom: false, nat: true });
  assert.throws(() => applyStagesFlag('xlat,cit'), /unknown stage cit/);
  assert.throws(() => applyStagesFlag(''), ConfigError);
  assert.deepEqual(agentConfigFromArgs({ iface: ['eth0'], stages: 'pccom' } as never).stages, { xlat: false, pccom: true, nat: false, dns: false, ftp: false });
});

test('a natf section turns the DNS stage on; it needs the natf and dprp parts; a pool outside 198.18.0.0/15 is refused', { timeout: 5000 }, () => {
  const base = { interfaces: [{ name: 'eth0' }], ge: { type: 'GES', mode: 'OP' } } as const;
  assert.equal(parseAgentConfig({ ...base, handlers: ['dprp', 'natf'], natf: { gnats: ['192.0.2.2'] } }).stages.dns, true);
  assert.equal(parseAgentConfig({ ...base, handlers: ['dprp'] }).stages.dns, false);
  assert.throws(() => parseAgentConfig({ ...base, handlers: ['dprp'], natf: {} }), /natf: needs the natf and dprp parts/);
  assert.throws(() => parseAgentConfig({ ...base, handlers: ['dprp', 'natf'], natf: { pool: '10.0.0.0/16' } }), /natf\.pool: '10\.0\.0\.0\/16' is not inside 198\.18\.0\.0\/15/);
  assert.deepEqual(applyStagesFlag('xlat,dns'), { xlat: true, pccom: false, dns: true });
});

test('GSRA turns the FTP stage on (router `gsra`, EN `gsraEn`), unless ftpPassive is false', { timeout: 5000 }, () => {
  const en = { interfaces: [{ name: 'eth0' }], ge: { type: 'GES', mode: 'OP' }, handlers: ['dprp', 'natf', 'gsra-en'], natf: { pool: '198.18.0.0/16' } } as const;
  assert.equal(parseAgentConfig({ ...en, gsraEn: { routers: ['192.0.2.1'], group: 1 } }).stages.ftp, true);
  assert.equal(parseAgentConfig({ ...en, gsraEn: { routers: ['192.0.2.1'], group: 1, ftpPassive: false } }).stages.ftp, false);
  const nat = { external: '192.0.2.1', inside: ['100.64.1.0/24'] };
  const router = { interfaces: [{ name: 'out0' }], handlers: ['nat', 'gsra-router'], nat } as const;
  assert.equal(parseAgentConfig({ ...router, gsra: { ggr: '192.0.2.1', pgr: '100.64.1.1', insidePinDir: '/sys/fs/bpf/gscip/x' } }).stages.ftp, true);
  assert.equal(parseAgentConfig({ ...router, gsra: { ggr: '192.0.2.1', pgr: '100.64.1.1', insidePinDir: '/sys/fs/bpf/gscip/x', ftpPassive: false } }).stages.ftp, false);
  assert.deepEqual(applyStagesFlag('xlat,ftp'), { xlat: true, pccom: false, ftp: true });
});
