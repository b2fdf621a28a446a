/**
 * A GSRA site whose EN runs the real agent (the gsra-en part), shared by the
 * namespace tests of the EN part (gsra-en, gsra-en-home-nat, gsra-ftp,
 * gsra-ftp-resize) and bench/gsra-en-path: the EN's BIND 9 and resolv.conf,
 * the three agents (the router's inside `gsra-in` with nat, its outside
 * `gsra-out` with nat + gsra-router, the EN's `en` with dprp + natf +
 * gsra-en) and the group key on both ends of the Internet leg (the GMS
 * delivers it in production; the directory path is test/lib/gsra-site.ts).
 *
 *   en 192.0.2.20 --e0/out0-- router (GGR | PGR) --in0/l0-- in      (linkGsraCore)
 *   en 203.0.113.20 --d0/dns0-- dns 203.0.113.53 (BIND 9)           (startEnDns)
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Topology } from './netns.js';
import type { GscipRunner } from './agent-process.js';
import { DnsServer } from '../netns/dns-server.js';
import { gsraInsideConfig, SITE } from './gsra-site.js';

export const EN_DNS_ADDR = '203.0.113.53';

/**
 * BIND 9 on a `dns` host linked to the EN (d0/dns0), answering `names`
 * (label -> address), and a resolv.conf naming it in `dir`. Host `dns` must exist.
 */
export async function startEnDns(t: Topology, dir: string, names: Record<string, string>, enHost = 'en'): Promise<{ dns: DnsServer; resolvConf: string }> {
  t.link(enHost, 'd0', 'dns', 'dns0');
  t.addr(enHost, 'd0', '203.0.113.20/24');
  t.addr('dns', 'dns0', `${EN_DNS_ADDR}/24`);
  const dns = new DnsServer(t, 'dns', EN_DNS_ADDR, names);
  await dns.start();
  const resolvConf = `${dir}/resolv.conf`;
  writeFileSync(resolvConf, `nameserver ${EN_DNS_ADDR}\noptions timeout:2 attempts:2\n`);
  return { dns, resolvConf };
}

export interface GsraServer { name: string; address: string; groups: number[]; ports?: number[] }

export interface GsraEnAgentsOptions {
  /** Scratch directory for the configs and alice's key file. */
  dir: string;
  servers: GsraServer[];
  /** The EN's namespace (default en). */
  enHost?: string;
  /** Extra fields of the router's `gsra` section (legEncryption, ports, maxEntries, tickMs: default 200). */
  gsra?: Record<string, unknown>;
  /** Extra fields of the EN's `gsraEn` section; null: the EN runs without the gsra-en part. */
  gsraEn?: Record<string, unknown> | null;
  /** Metrics listen addresses (default: router 127.0.0.1:9465, EN 127.0.0.1:9464). */
  routerMetrics?: string;
  enMetrics?: string;
  /** The group key (hex) set on the EN and the router; null: none set. */
  groupKey: string | null;
}

/** Writes the three configs, starts the agents and sets the group key; the user's key file and a restart of the EN's agent. */
export async function startGsraEnAgents(g: GscipRunner, o: GsraEnAgentsOptions): Promise<{ keyFile: string; restartEn: (signal: NodeJS.Signals) => Promise<void> }> {
  const { GGR, PGR } = SITE;
  const enHost = o.enHost ?? 'en';
  const keyFile = `${o.dir}/alice.key`;
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const inCfg = `${o.dir}/in.json`;
  writeFileSync(inCfg, gsraInsideConfig());
  const outCfg = `${o.dir}/out.json`;
  writeFileSync(outCfg, JSON.stringify({
    interfaces: [{ name: 'out0' }],
    nat: { external: GGR, inside: ['100.64.1.0/24'], ports: { first: 21000, last: 21999 }, sweepMs: 1000 },
    gsra: {
      ggr: GGR, pgr: PGR, insidePinDir: `${g.pinRoot}/gsra-in`, ports: { first: 40000, last: 40999 }, tickMs: 200,
      servers: o.servers, users: [{ userId: 'alice', groups: [1], keyFile }], ...(o.gsra ?? {}),
    },
  }));
  const part = o.gsraEn !== null;
  const enCfg = `${o.dir}/en.json`;
  writeFileSync(enCfg, JSON.stringify({
    interfaces: [{ name: 'e0' }, { name: 'd0', miss: { ingress: 'pass', egress: 'pass' } }],
    handlers: ['dprp', 'natf', ...(part ? ['gsra-en'] : [])],
    ge: { type: 'GES', mode: 'OP' },
    natf: { gnats: [], pool: '198.18.0.0/16', sweepMs: 500 },
    ...(part ? { gsraEn: { routers: [GGR], group: 1, userId: 'alice', keyFile, sweepMs: 500, ...(o.gsraEn ?? {}) } } : {}),
  }));
  await g.startAgent('router', ['--config', inCfg, '--iface', 'in0', '--miss', 'pass', '--handler', 'nat', '--metrics', 'none'], 'gsra-in');
  await g.startAgent('router', ['--config', outCfg, '--iface', 'out0', '--miss', 'pass', '--handler', 'nat', '--handler', 'gsra-router', '--metrics', o.routerMetrics ?? '127.0.0.1:9465'], 'gsra-out');
  const enArgs = ['--config', enCfg, '--metrics', o.enMetrics ?? '127.0.0.1:9464'];
  let en = await g.startAgent(enHost, enArgs, 'en');
  if (o.groupKey !== null) {
    g.ok(enHost, ['keys', 'set', '--group', '1', '--version', '1', ...g.instanceArgs('en')], `${o.groupKey}\n`);
    g.ok('router', ['keys', 'set', '--group', '1', '--version', '1', ...g.instanceArgs('gsra-out')], `${o.groupKey}\n`);
  }
  return { keyFile, restartEn: async (signal) => { await en.stop(signal); en = await g.startAgent(enHost, enArgs, 'en'); } };
}

/**
 * The IN's server: TCP 5201 writes each connection to `outFile`.N and says
 * `peer A:P conn N` / `done N`; UDP 5301 echoes `echo: ` + the datagram. Exits after `exitMs`.
 */
export function gsraInSink(outFile: string, exitMs: number): string {
  return `
const net = require('net'), fs = require('fs'), dgram = require('dgram');
let k = 0;
const srv = net.createServer((c) => {
  const n = ++k; const out = fs.createWriteStream(${JSON.stringify(outFile)} + '.' + n);
  console.log('peer ' + c.remoteAddress + ':' + c.remotePort + ' conn ' + n);
  c.pipe(out); c.on('error', () => {}); c.on('end', () => out.end(() => console.log('done ' + n)));
});
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { console.log('udp peer ' + r.address + ':' + r.port); u.send(Buffer.concat([Buffer.from('echo: '), m]), r.port, r.address); });
u.bind(5301, '0.0.0.0');
srv.listen(5201, '0.0.0.0', () => console.log('ready'));
setTimeout(() => process.exit(3), ${exitMs}).unref();`;
}
