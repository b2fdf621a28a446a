/**
 * A GSRA site in namespaces, shared by test/netns/gsra-directory.test.ts and
 * `make demo-gsra`: the directory (a real slapd, ldaps on 127.0.0.1 in the
 * router's namespace), the GMS (`gscip gms serve --directory`, on GGR:7443),
 * the GSRA router (enrolled by token; two agent instances: outside with nat
 * + gsra-router and the GMS client, inside with nat), an IN with a TCP sink,
 * and the EN's namespace (no agent: test/lib/gsra-en.ts plays its GSRA side).
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR 192.0.2.1 | PGR 100.64.1.1) --in0/l0-- in (IN1 100.64.1.10)
 *
 * `close()` removes everything (namespaces, processes, pins, files, slapd),
 * also when start() fails half-way.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Topology, waitFor } from './netns.js';
import { GscipRunner } from './agent-process.js';
import { enScript } from './gsra-en.js';
import { GROUPS, PEOPLE, TestSlapd } from './slapd.js';
import { exited } from '../netns/pccom-topology.js';
import { DnsServer } from '../netns/dns-server.js';

export const SITE = { GEN: '192.0.2.20', GGR: '192.0.2.1', PGR: '100.64.1.1', IN1: '100.64.1.10', IN2: '100.64.1.20' } as const;
const MAIN = resolve(__dirname, '../../controlplane/cli/main.js');
const DIST = resolve(__dirname, '../..');

const SINK = (outFile: string, port: number): string => `
const net = require('net'), fs = require('fs'), dgram = require('dgram');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { console.log('udp peer ' + r.address + ':' + r.port); u.send(Buffer.concat([Buffer.from('echo: '), m]), r.port, r.address); });
u.bind(${port + 100}, '0.0.0.0');
let n = 0, last = 0, k = 0;
net.createServer((c) => { const id = ++k; const out = fs.createWriteStream(${JSON.stringify(outFile)} + '.' + id); const peer = c.remoteAddress + ':' + c.remotePort; console.log('peer ' + peer + ' conn ' + id); c.on('data', (d) => { n += d.length; last = Date.now(); out.write(d); }); c.on('error', () => {}); c.on('end', () => { out.end(); console.log('end ' + peer); }); })
  .listen(${port}, '0.0.0.0', () => console.log('ready'));
setInterval(() => console.log('bytes ' + n + ' last ' + last), 100);
setTimeout(() => process.exit(3), 600000).unref();`;

/**
 * The EN - router - IN core of a GSRA site (the addresses of SITE; IN2 on the
 * IN as well with in2), the router forwarding. Hosts en, router and in must
 * exist. Shared by GsraSite and the GSRA namespace tests.
 */
export function linkGsraCore(t: Topology, o: { in2?: boolean } = {}): void {
  t.link('en', 'e0', 'router', 'out0');
  t.link('router', 'in0', 'in', 'l0');
  t.addr('en', 'e0', `${SITE.GEN}/24`);
  t.addr('router', 'out0', `${SITE.GGR}/24`);
  t.addr('router', 'in0', `${SITE.PGR}/24`);
  t.addr('in', 'l0', `${SITE.IN1}/24`);
  if (o.in2) t.addr('in', 'l0', `${SITE.IN2}/24`);
  t.forwarding('router');
}

/**
 * The router's inside instance (`gsra-in` on in0): NAT with external PGR and
 * an inside prefix nobody uses (the GSRA router writes its sessions).
 */
export function gsraInsideConfig(): string {
  return JSON.stringify({ interfaces: [{ name: 'in0' }], nat: { external: SITE.PGR, inside: ['100.127.255.252/30'], ports: { first: 21000, last: 21999 }, sweepMs: 1000 } });
}

export class GsraSite {
  readonly t: Topology;
  g!: GscipRunner;
  slapd: TestSlapd | null = null;
  gmsOut = '';
  sinkOut = '';
  fingerprint = '';
  gmsDir = ''; routerDir = ''; enDir = ''; sinkFile = ''; statusFile = '';

  constructor(prefix: string) { this.t = new Topology(prefix); }

  /** Everything up: users `users` (uid -> password) in the directory group staff (GSCIP group 1). */
  dns: DnsServer | null = null;
  resolvConf = '';

  /**
   * `o.enAgent`: the EN runs a real agent later (startEnAgent): the router's
   * Internet leg is PCCOM (else plaintext for the scripted EN), and a BIND 9 on
   * the EN's side (dns 203.0.113.53, link d0) answers in1/in2.corp.example.net with GGR.
   */
  async start(users: Record<string, string>, o: { enAgent?: boolean } = {}): Promise<void> {
    const { t } = this;
    const { GGR, PGR, IN1, IN2 } = SITE;
    try {
      t.addHost('en'); t.addHost('router'); t.addHost('in');
      linkGsraCore(t);
      if (o.enAgent) {
        t.addHost('dns');
        t.link('en', 'd0', 'dns', 'dns0');
        t.addr('en', 'd0', '203.0.113.20/24');
        t.addr('dns', 'dns0', '203.0.113.53/24');
        this.dns = new DnsServer(t, 'dns', '203.0.113.53', { 'in1.corp': GGR, 'in2.corp': GGR });
        await this.dns.start();
        this.resolvConf = t.scratchPath(`/tmp/${t.prefix}-resolv.conf`);
        writeFileSync(this.resolvConf, 'nameserver 203.0.113.53\noptions timeout:2 attempts:2\n');
      }
      this.slapd = await TestSlapd.start(Object.entries(users).map(([uid, password]) => ({ uid, password })), { staff: Object.keys(users) }, { netns: t.ns('router') });
      this.gmsDir = t.scratchPath(`/tmp/${t.prefix}-gms`);
      this.routerDir = t.scratchPath(`/tmp/${t.prefix}-router-agent`);
      this.enDir = t.scratchPath(`/tmp/${t.prefix}-en-agent`);
      this.statusFile = t.scratchPath(`/tmp/${t.prefix}-gsra-status.json`);
      const dirFile = t.scratchPath(`/tmp/${t.prefix}-directory.json`);
      writeFileSync(dirFile, JSON.stringify({
        apiVersion: 'gscip/v1', kind: 'Directory', url: this.slapd.url, caFile: this.slapd.caFile,
        users: { base: PEOPLE, attribute: 'uid' }, groups: [{ dn: `cn=staff,${GROUPS}`, gscipGroups: [1] }], syncSeconds: 1,
      }));
      const netFile = t.scratchPath(`/tmp/${t.prefix}-network.json`);
      writeFileSync(netFile, JSON.stringify({
        apiVersion: 'gscip/v1', kind: 'Network', groups: [{ id: 1, name: 'staff' }, { id: 2, name: 'finance' }],
        // external: GGR, delivered to every GE as a GSRA router's address (the EN agent needs no list of its own)
        ges: [{ userId: 'gsra-router', type: 'GSRA', mode: 'CL', groups: [1, 2], external: GGR, act: [
          { name: 'in1.corp.example.net', address: IN1, outsideAccess: 'allow', groups: [1] },
          { name: 'in2.corp.example.net', address: IN2, outsideAccess: 'allow', groups: [2] },
        ] }],
      }));
      const gms = t.spawn('router', process.execPath, [MAIN, 'gms', 'serve', '--data-dir', this.gmsDir, '--listen', `${GGR}:7443`, '--directory', dirFile]);
      gms.stdout?.setEncoding('utf8'); gms.stdout?.on('data', (d: string) => { this.gmsOut += d; });
      gms.stderr?.setEncoding('utf8'); gms.stderr?.on('data', (d: string) => { if (this.gmsOut.length < 50_000) this.gmsOut += d; });
      await waitFor('GMS', () => /CA fingerprint[^:]*: (\S+)/.test(this.gmsOut), 20_000);
      this.fingerprint = /CA fingerprint[^:]*: (\S+)/.exec(this.gmsOut)![1];
      this.g = new GscipRunner(t, 'gsra-out');
      const g = this.g;
      g.ok('router', ['gms', 'apply', '-f', netFile, '--data-dir', this.gmsDir]);
      const token = g.ok('router', ['gms', 'token', 'issue', '--ge', 'gsra-router', '--data-dir', this.gmsDir]).trim();
      g.ok('router', ['agent', 'enroll', '--gms', `https://${GGR}:7443`, '--token-file', '/dev/stdin', '--ca-fingerprint', this.fingerprint, '--data-dir', this.routerDir], token);
      const inCfg = t.scratchPath(`/tmp/${t.prefix}-in.json`);
      writeFileSync(inCfg, gsraInsideConfig());
      const outCfg = t.scratchPath(`/tmp/${t.prefix}-out.json`);
      writeFileSync(outCfg, JSON.stringify({
        interfaces: [{ name: 'out0' }], gms: { dataDir: this.routerDir },
        nat: { external: GGR, inside: ['100.64.1.0/24'], ports: { first: 21000, last: 21999 }, sweepMs: 1000 },
        gsra: { ggr: GGR, pgr: PGR, insidePinDir: `${g.pinRoot}/gsra-in`, ports: { first: 40000, last: 40999 }, tickMs: 200, statusFile: this.statusFile, ...(o.enAgent ? {} : { legEncryption: 'none' /* the scripted EN (test/lib/gsra-en.ts) has no PIT */ }) },
      }));
      await g.startAgent('router', ['--config', inCfg, '--iface', 'in0', '--miss', 'pass', '--handler', 'nat', '--metrics', '127.0.0.1:9465'], 'gsra-in');
      await g.startAgent('router', ['--config', outCfg, '--iface', 'out0', '--miss', 'pass', '--handler', 'nat', '--handler', 'gsra-router', '--metrics', '127.0.0.1:9464'], 'gsra-out');
      this.sinkFile = t.scratchPath(`/tmp/${t.prefix}-sink`);
      const sink = t.spawn('in', 'node', ['-e', SINK(this.sinkFile, 5201)]);
      sink.stdout?.setEncoding('utf8'); sink.stdout?.on('data', (d: string) => { this.sinkOut = (this.sinkOut + d).slice(-20_000); });
      await waitFor('IN server', () => this.sinkOut.includes('ready'), 5000);
    } catch (e) { await this.close(); throw e; }
  }

  /** `gscip agent enroll --ldap-user` on the EN with `password` (from a 0600 file). */
  enroll(user: string, password: string): { code: number | null; out: string; err: string } {
    const pf = this.t.scratchPath(`/tmp/${this.t.prefix}-pw-${randomBytes(3).toString('hex')}`);
    writeFileSync(pf, password, { mode: 0o600 });
    return this.g.cli('en', ['agent', 'enroll', '--gms', `https://${SITE.GGR}:7443`, '--ldap-user', user, '--password-file', pf, '--ca-fingerprint', this.fingerprint, '--data-dir', this.enDir]);
  }

  /** The EN's GSRA user key, hex, as its GMS delivery holds it. */
  userKeyHex(): string {
    return this.t.exec('en', process.execPath, ['-e',
      `require(${JSON.stringify(`${DIST}/controlplane/gms/client.js`)}).fetchGeState(${JSON.stringify(this.enDir)}).then((d) => process.stdout.write(Buffer.from(d.gsraUserKey, 'base64').toString('hex')))`]).stdout.trim();
  }

  /** The EN's own agent (parts dprp, natf, gsra-en) on its GMS data dir: user, user key and group keys from its delivery. */
  async startEnAgent(): Promise<void> {
    const cfg = this.t.scratchPath(`/tmp/${this.t.prefix}-en.json`);
    writeFileSync(cfg, JSON.stringify({
      interfaces: [{ name: 'e0' }, { name: 'd0', miss: { ingress: 'pass', egress: 'pass' } }],
      handlers: ['dprp', 'natf', 'gsra-en'], gms: { dataDir: this.enDir },   // GEN, CL: from the GMS
      natf: { gnats: [], pool: '198.18.0.0/16', sweepMs: 500 },
      gsraEn: { group: 1, sweepMs: 500 },   // routers: the GMS delivers them (gsraRouters)
    }));
    this.enAgent = await this.g.startAgent('en', ['--config', cfg, '--metrics', '127.0.0.1:9466'], 'en', { logLevel: 'info' });
  }

  enAgent: { stderr: string } | null = null;

  /** Runs a job of the EN script to its end; its JSON line. */
  async runEn(keyHex: string, job: Record<string, unknown>): Promise<Record<string, any>> {
    const p = this.t.spawn('en', process.execPath, ['-e', enScript(keyHex, job, { gen: SITE.GEN, ggr: SITE.GGR })]);
    let so = '';
    p.stdout?.setEncoding('utf8'); p.stdout?.on('data', (d: string) => { so += d; });
    await exited(p, 110_000);
    return JSON.parse(so.trim().split('\n').pop() ?? '{}') as Record<string, any>;
  }

  /** When the IN last received a byte (ms since the epoch). */
  lastByteAt(): number { return Number([...this.sinkOut.matchAll(/last (\d+)\n/g)].pop()?.[1] ?? 0); }

  async close(): Promise<void> {
    await this.dns?.stop().catch(() => undefined);
    this.g?.cleanup();
    this.t.cleanupSync();
    await this.slapd?.destroy();
    this.slapd = null;
  }
}
