/**
 * A GNAT's ACT from the GMS to DDNS, with a real GMS and a real BIND 9
 * (namespaces): the network file gives GNAT gnat-home three private hosts
 * (bob and carol allowed from outside, dave denied); the GNAT's agent,
 * enrolled with the GMS, gets its ACT with its GE info and publishes the
 * allowed names with its global address (RFC 2136 + TSIG, one key whose
 * update-policy covers those names); `dig` sees bob and carol at 192.0.2.2
 * and no record for dave; the delivery names the GNAT's external address
 * (`gnats`, told to every GE for NAT-f). `gms apply` of a file allowing dave reaches the
 * GNAT through the GMS push and dave appears too; a later file without carol
 * and with bob denied withdraws both names (an UPDATE deleting each A RRset).
 * The GNAT follows its outside address (`nat.follow`): when 192.0.2.22
 * replaces 192.0.2.2 on it, dave is published again at 192.0.2.22 and the
 * GNAT reports the address to the GMS, whose push gives every GE (here the
 * GNAT's own cached delivery) a `gnats` list holding it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Topology, sh, waitFor } from '../lib/netns.js';
import { GscipRunner } from '../lib/agent-process.js';
import { DnsServer } from './dns-server.js';

const NAMED = sh('sh', ['-c', 'command -v named && command -v dig'], { allowFail: true }).code === 0;
const unavailable = process.getuid?.() !== 0 ? 'needs root (namespaces)' : !NAMED ? 'BIND 9 not installed (make deps: bind9, bind9-dnsutils)' : null;
const GNAT_OUT = '192.0.2.2';
const NEW_OUT = '192.0.2.22';
const DNS_ADDR = '192.0.2.53';

function networkYaml(daveAccess: 'allow' | 'deny', o: { bob?: 'allow' | 'deny'; carol?: boolean } = {}): string {
  return `apiVersion: gscip/v1
kind: Network
groups:
  - { id: 10, name: home }
  - { id: 11, name: friends }
ges:
  - userId: gnat-home
    type: GNAT
    mode: CL
    groups: [10, 11]
    external: ${GNAT_OUT}
    act:
      - { name: bob.example.net, address: 100.64.1.10, outsideAccess: ${o.bob ?? 'allow'} }
${o.carol === false ? '' : '      - { name: carol.example.net, address: 100.64.1.11, outsideAccess: allow, groups: [11] }\n'}      - { name: dave.example.net, address: 100.64.1.12, outsideAccess: ${daveAccess} }
  - { userId: ges-alice, type: GES, mode: OP, groups: [10] }
`;
}

describe('GNAT: ACT from the GMS, names published in DDNS (BIND 9, namespaces)', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let t: Topology;
  let g: GscipRunner;
  let dns: DnsServer;
  let dir: string;
  let gmsDir: string;

  before(async () => {
    t = new Topology('natact');
    try {
      t.addHost('gnat'); t.addHost('dns');
      t.link('gnat', 'out0', 'dns', 'd0');
      t.addr('gnat', 'out0', `${GNAT_OUT}/24`);
      t.addr('dns', 'd0', `${DNS_ADDR}/24`);
      dns = new DnsServer(t, 'dns', DNS_ADDR, { bob: '', carol: '', dave: '' }, { bob: 'gnat', carol: 'gnat', dave: 'gnat' });
      await dns.start();
      g = new GscipRunner(t, 'gnat');
      dir = t.scratchPath(`/tmp/gscip-test-${t.prefix}-act`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(`${dir}/net.yaml`, networkYaml('deny'));
      const enrolled = await g.gmsWithEnrolledGe('gnat', 'gnat-home', dir, `${dir}/net.yaml`);
      gmsDir = enrolled.gmsDir;
      writeFileSync(`${dir}/gnat.key`, dns.keys.get('gnat')!.secret.toString('base64'), { mode: 0o600 });
      writeFileSync(`${dir}/gnat.json`, JSON.stringify({
        interfaces: [{ name: 'out0' }],
        handlers: ['nat'],
        gms: { dataDir: enrolled.agentDir },
        nat: {
          external: GNAT_OUT, inside: ['100.64.1.0/24'], sweepMs: 300, follow: true,
          ddns: { server: DNS_ADDR, zone: 'example.net', keyName: 'ge-gnat', keyFile: `${dir}/gnat.key` },
        },
      }));
      await g.startAgent('gnat', ['--config', `${dir}/gnat.json`, '--miss', 'pass', '--metrics', '127.0.0.1:9464']);
    } catch (e) { await dns?.stop(); g?.cleanup(); t.cleanupSync(); throw e; }
  });
  after(async () => { await dns?.stop(); g?.cleanup(); t?.cleanupSync(); });

  test('the allowed names resolve to the GNAT\'s address; the denied one has no record', async () => {
    await waitFor('bob and carol in DNS', () => dns.lookup('gnat', 'bob') === GNAT_OUT && dns.lookup('gnat', 'carol') === GNAT_OUT, 20_000, 300);
    assert.equal(dns.lookup('gnat', 'dave'), '', 'dave (outside access denied) is not advertised');
    const m = t.exec('gnat', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
    assert.match(m, /gscip_nat_ddns_updates_total\{action="published",result="NOERROR"\} 2/);
    assert.match(m, /gscip_nat_act_entries 3/);
    // Every GE is told the GNATs' global addresses with its GE info (NAT-f's initiators virtualise answers naming them).
    const cache = JSON.parse(readFileSync(`${dir}/agent/cache/state.json`, 'utf8')) as { gnats?: string[] };
    assert.deepEqual(cache.gnats, [GNAT_OUT], 'the delivery names the GNAT\'s external address');
  });

  test('`gms apply` allowing dave reaches the GNAT by the GMS push, and dave is published', async () => {
    writeFileSync(`${dir}/net2.yaml`, networkYaml('allow'));
    const plan = g.ok('gnat', ['gms', 'apply', '--data-dir', gmsDir, '-f', `${dir}/net2.yaml`]);
    assert.match(plan, /~ ge gnat-home: act ~dave\.example\.net \(outsideAccess deny -> allow\)/);
    await waitFor('dave in DNS', () => dns.lookup('gnat', 'dave') === GNAT_OUT, 20_000, 300);
    assert.equal(dns.lookup('gnat', 'bob'), GNAT_OUT);
  });

  test('carol leaves the ACT and bob\'s outside access is denied: both are withdrawn from DNS, dave stays', async () => {
    writeFileSync(`${dir}/net3.yaml`, networkYaml('allow', { bob: 'deny', carol: false }));
    g.ok('gnat', ['gms', 'apply', '--data-dir', gmsDir, '-f', `${dir}/net3.yaml`]);
    await waitFor('bob and carol gone from DNS', () => dns.lookup('gnat', 'bob') === '' && dns.lookup('gnat', 'carol') === '', 20_000, 300);
    assert.equal(dns.lookup('gnat', 'dave'), GNAT_OUT, 'dave is still published');
    const m = t.exec('gnat', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
    assert.match(m, /gscip_nat_ddns_updates_total\{action="withdrawn",result="NOERROR"\} 2/);
  });

  test('the GNAT\'s outside address changes: dave is published again at the new one, and the GMS tells every GE the new address', async () => {
    // As systemd-networkd sets it: the second address of the subnet survives the removal of the first.
    t.exec('gnat', 'sysctl', ['-qw', 'net.ipv4.conf.out0.promote_secondaries=1']);
    t.exec('gnat', 'ip', ['addr', 'add', `${NEW_OUT}/24`, 'dev', 'out0']);
    t.exec('gnat', 'ip', ['addr', 'del', `${GNAT_OUT}/24`, 'dev', 'out0']);
    await waitFor('dave at the new address', () => dns.lookup('gnat', 'dave') === NEW_OUT, 20_000, 300);
    const cacheGnats = (): string[] => (JSON.parse(readFileSync(`${dir}/agent/cache/state.json`, 'utf8')) as { gnats?: string[] }).gnats ?? [];
    await waitFor('the GMS\'s push naming the new address', () => cacheGnats().includes(NEW_OUT), 20_000, 300);
    assert.deepEqual(cacheGnats(), [NEW_OUT], 'the report replaces the GNAT\'s own file address (docs/natf.md)');
    const m = t.exec('gnat', 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
    assert.match(m, /gscip_nat_ddns_updates_total\{action="republished",result="NOERROR"\} 1/);
    assert.match(m, /gscip_nat_external_changes_total 1\b/);
    assert.match(m, /gscip_nat_external_reports_total\{result="ok"\} [2-9]/, 'reported at start and after the change');
  });
});
