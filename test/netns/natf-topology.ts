/**
 * NAT-f in namespaces, shared by test/netns/natf-name.test.ts (and the
 * other natf-*.test.ts; natf-outbound uses alice as the global GES) and
 * bench/natf-connect.ts: alice on the global side reaches bob, a private host
 * behind the GNAT, by name.
 *
 *   dns 198.51.100.53 --dns0/d0-- alice 192.0.2.1 --eth0/out0-- gnat (192.0.2.2 | 100.64.1.1) --in0/p0-- bob 100.64.1.10
 *                                                        \--eth0 also reaches glob 192.0.2.3 (a global host, for the baseline)
 *
 * alice is a GES (OP) running `dprp` + `natf`; the DNS stage intercepts the
 * answers of a real BIND 9 (`bob` and `dave` -> 192.0.2.2, the GNAT's global
 * address; `glob` -> 192.0.2.3) on `d0`, whose misses pass (no DPRP toward
 * the resolver). alice's resolver is the namespace's own resolv.conf
 * (/etc/netns/NS/resolv.conf, which `ip netns exec` mounts): unmodified
 * applications (getent, curl, dig) use it. The GNAT (CL) runs `dprp` + `nat`
 * on its outside interface with the ACT in its config: bob allowed to group
 * 10, dave denied. bob is a plain Term. `glob` is a global GES (OP) in the
 * same group, behind a second link of the GNAT's segment: the baseline of a
 * direct, negotiated and encrypted first connect. Both GEs share group 10.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Topology } from '../lib/netns.js';
import { GscipRunner, type AgentProc } from '../lib/agent-process.js';
import { DnsServer } from './dns-server.js';

export const ALICE = '192.0.2.1';
export const GNAT_OUT = '192.0.2.2';
export const GLOB = '192.0.2.3';
/** The second GNAT (overlapping private networks: its private host is 100.64.1.10 too). */
export const GNAT2_OUT = '192.0.2.4';
export const GNAT_IN = '100.64.1.1';
export const BOB = '100.64.1.10';
export const DNS_ADDR = '198.51.100.53';
export const ALICE_DNS_SIDE = '198.51.100.1';
export const HTTP_PORT = 8080;
/** genInside: P-GEN, a GEN inside the GNAT's network (its outside 100.64.1.2 on the GNAT's in0), and bob behind it. */
export const PGEN = '100.64.1.2';
export const PGEN_IN = '100.64.2.1';
export const BOB_BEHIND_GEN = '100.64.2.10';
/** cascade: C-BOB, a global GES behind the GNAT's second inside link (not translated), the plain-DPRP baseline of the same path. */
export const GNAT_CASCADE_IN = '203.0.113.129';
export const CBOB = '203.0.113.130';
export const GROUP_KEY = randomBytes(32).toString('hex');

export interface NatfTopoOptions {
  /** The GNAT's NAT table size (a small one shows the refusal of a full table). */
  maxSessions?: number;
  /** alice's virtual pool (a /30 shows the refusal of an exhausted pool). */
  pool?: string;
  /** A second GNAT (192.0.2.4, link eth2 from alice) whose private host `erin` is 100.64.1.10 as well (name erin.example.net). */
  second?: boolean;
  /**
   * bob is a GE itself (a GES, CL, with group 10's key, guarding p0), and the
   * GNAT's ACT says so (`ge: true`): the GNAT relays the negotiation inward and
   * PCCOM runs alice <-> bob end to end (docs/natf.md "A private GE behind the GNAT").
   */
  bobGe?: boolean;
  /**
   * The GNAT publishes its ACT's names in the test's BIND 9 itself (RFC 2136 +
   * TSIG, key ge-gnat for bob and carol, over a link of its own to the DNS
   * host: gnat u0 203.0.113.2 -- dns dns1 203.0.113.53, unguarded) and follows
   * its outside interface's address (`nat.follow`).
   */
  gnatDdns?: boolean;
  /** More GNAT addresses alice knows from her config (natf.gnats). */
  aliceGnats?: string[];
  /**
   * bob (a plain Term, at 100.64.2.10) sits behind P-GEN, a CL GEN of group 10
   * (guarding its outside g0, 100.64.1.2, on the GNAT's in0), and the GNAT's
   * ACT names it (`via`): the GNAT relays the negotiation to P-GEN, which
   * answers as bob's end GE; PCCOM runs alice <-> P-GEN (docs/natf.md "A GEN
   * inside the GNAT's network").
   *
   *   gnat in0 100.64.1.1 --/g0 100.64.1.2-- pgen --i0 100.64.2.1/p0-- bob 100.64.2.10
   */
  genInside?: boolean;
  /**
   * A global GES `cbob` (203.0.113.130) behind a second inside link of the
   * GNAT, outside its NAT's `inside` prefixes: alice -> cbob is a plain DPRP
   * cascade through the GNAT as an ordinary GEN (three GEs, the GNAT's agent
   * relaying all four messages), the same path as a private GE's negotiation
   * without NAT-f (bench/natf-connect.ts --ge compares the two).
   *
   *   gnat in1 203.0.113.129/25 -- cbob p0 203.0.113.130/25
   */
  cascade?: boolean;
}

export class NatfTopo {
  readonly t: Topology;
  readonly g: GscipRunner;
  readonly dns: DnsServer;
  readonly dir: string;
  alice: AgentProc | null = null;
  /** alice's resolv.conf: applications run in a private mount namespace with it over /etc/resolv.conf (appExec). */
  readonly resolvConf: string;
  gnat: AgentProc | null = null;
  /** bob's agent (bobGe only). */
  bob: AgentProc | null = null;
  /** cbob's agent (cascade only). */
  cbob: AgentProc | null = null;
  /** P-GEN's agent (genInside only). */
  pgen: AgentProc | null = null;
  /** bob's address: BOB, or BOB_BEHIND_GEN with genInside. */
  get bobAddr(): string { return this.o.genInside ? BOB_BEHIND_GEN : BOB; }

  constructor(tag: string, readonly o: NatfTopoOptions = {}) {
    this.t = new Topology(tag);
    const t = this.t;
    try {
      for (const h of ['alice', 'gnat', 'bob', 'dns', 'glob', ...(o.genInside ? ['pgen'] : []), ...(o.cascade ? ['cbob'] : [])]) t.addHost(h);
      t.link('alice', 'eth0', 'gnat', 'out0');
      if (o.genInside) {
        t.link('gnat', 'in0', 'pgen', 'g0');
        t.link('pgen', 'i0', 'bob', 'p0');
      } else t.link('gnat', 'in0', 'bob', 'p0');
      t.link('alice', 'd0', 'dns', 'dns0');
      t.link('alice', 'eth1', 'glob', 'g0');
      t.addr('alice', 'eth0', `${ALICE}/32`);
      t.addr('gnat', 'out0', `${GNAT_OUT}/32`);
      t.exec('alice', 'ip', ['route', 'add', `${GNAT_OUT}/32`, 'dev', 'eth0', 'src', ALICE]);
      t.exec('gnat', 'ip', ['route', 'add', `${ALICE}/32`, 'dev', 'out0']);
      t.addr('alice', 'eth1', `${ALICE}/32`);
      t.addr('glob', 'g0', `${GLOB}/32`);
      t.exec('alice', 'ip', ['route', 'add', `${GLOB}/32`, 'dev', 'eth1', 'src', ALICE]);
      t.exec('glob', 'ip', ['route', 'add', `${ALICE}/32`, 'dev', 'g0']);
      t.addr('gnat', 'in0', `${GNAT_IN}/24`);
      if (o.genInside) {
        t.addr('pgen', 'g0', `${PGEN}/24`);
        t.addr('pgen', 'i0', `${PGEN_IN}/24`);
        t.route('pgen', 'default', GNAT_IN);
        t.addr('bob', 'p0', `${BOB_BEHIND_GEN}/24`);
        t.route('bob', 'default', PGEN_IN);
        t.exec('gnat', 'ip', ['route', 'add', '100.64.2.0/24', 'via', PGEN, 'dev', 'in0']);
        t.forwarding('pgen');
      } else {
        t.addr('bob', 'p0', `${BOB}/24`);
        t.route('bob', 'default', GNAT_IN);
      }
      t.addr('alice', 'd0', `${ALICE_DNS_SIDE}/24`);
      t.addr('dns', 'dns0', `${DNS_ADDR}/24`);
      t.forwarding('gnat');
      if (o.second) {
        t.addHost('gnat2'); t.addHost('erin');
        t.link('alice', 'eth2', 'gnat2', 'out0');
        t.link('gnat2', 'in0', 'erin', 'p0');
        t.addr('alice', 'eth2', `${ALICE}/32`);
        t.addr('gnat2', 'out0', `${GNAT2_OUT}/32`);
        t.exec('alice', 'ip', ['route', 'add', `${GNAT2_OUT}/32`, 'dev', 'eth2', 'src', ALICE]);
        t.exec('gnat2', 'ip', ['route', 'add', `${ALICE}/32`, 'dev', 'out0']);
        t.addr('gnat2', 'in0', `${GNAT_IN}/24`);
        t.addr('erin', 'p0', `${BOB}/24`);
        t.route('erin', 'default', GNAT_IN);
        t.forwarding('gnat2');
      }
      if (o.cascade) {
        t.link('gnat', 'in1', 'cbob', 'p0');
        t.addr('gnat', 'in1', `${GNAT_CASCADE_IN}/25`);
        t.addr('cbob', 'p0', `${CBOB}/25`);
        t.route('cbob', 'default', GNAT_CASCADE_IN);
        t.exec('alice', 'ip', ['route', 'add', `${CBOB}/32`, 'via', GNAT_OUT, 'dev', 'eth0', 'onlink', 'src', ALICE]);
      }
      if (o.gnatDdns) {
        t.link('gnat', 'u0', 'dns', 'dns1');
        t.addr('gnat', 'u0', '203.0.113.2/24');
        t.addr('dns', 'dns1', '203.0.113.53/24');
        t.exec('gnat', 'ip', ['route', 'add', `${DNS_ADDR}/32`, 'dev', 'u0']);
      }
      this.dns = new DnsServer(t, 'dns', DNS_ADDR, { bob: GNAT_OUT, dave: GNAT_OUT, carol: GNAT_OUT, frank: GNAT_OUT, gina: GNAT_OUT, hank: GNAT_OUT, glob: GLOB, ...(o.second ? { erin: GNAT2_OUT } : {}) },
        o.gnatDdns ? { bob: 'gnat', carol: 'gnat' } : {});
      this.g = new GscipRunner(t, 'natf');
      this.dir = t.scratchPath(`/tmp/gscip-test-${t.prefix}-natf`);
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.resolvConf = `${this.dir}/resolv.conf`;
      writeFileSync(this.resolvConf, `nameserver ${DNS_ADDR}\noptions timeout:2 attempts:2\n`);
    } catch (e) { this.cleanupSync(); throw e; }
  }

  async start(): Promise<void> {
    await this.dns.start();
    const gnatCfg = `${this.dir}/gnat.json`;
    let ddns = {};
    if (this.o.gnatDdns) {
      writeFileSync(`${this.dir}/gnat.key`, this.dns.keys.get('gnat')!.secret.toString('base64'), { mode: 0o600 });
      ddns = { follow: true, ddns: { server: DNS_ADDR, zone: 'example.net', keyName: 'ge-gnat', keyFile: `${this.dir}/gnat.key` } };
    }
    writeFileSync(gnatCfg, JSON.stringify({
      interfaces: [{ name: 'out0' }],
      handlers: ['dprp', 'nat'],
      ge: { type: 'GNAT', mode: 'CL' },
      nat: {
        external: GNAT_OUT, inside: ['100.64.1.0/24', ...(this.o.genInside ? ['100.64.2.0/24'] : [])], sweepMs: 500, ...(this.o.maxSessions ? { maxSessions: this.o.maxSessions } : {}), ...ddns,
        act: [
          { name: 'bob.example.net', address: this.bobAddr, outsideAccess: 'allow', groups: [10], ...(this.o.bobGe ? { ge: true } : {}), ...(this.o.genInside ? { via: PGEN } : {}) },
          { name: 'carol.example.net', address: '100.64.1.11', outsideAccess: 'allow', groups: [11] },
          { name: 'dave.example.net', address: '100.64.1.12', outsideAccess: 'deny', groups: [10] },
        ],
      },
    }));
    const aliceCfg = `${this.dir}/alice.json`;
    writeFileSync(aliceCfg, JSON.stringify({
      interfaces: [{ name: 'eth0' }, { name: 'eth1' }, ...(this.o.second ? [{ name: 'eth2' }] : []), { name: 'd0', miss: { ingress: 'pass', egress: 'pass' } }],
      handlers: ['dprp', 'natf'],
      ge: { type: 'GES', mode: 'OP' },
      natf: { gnats: [GNAT_OUT, ...(this.o.second ? [GNAT2_OUT] : []), ...(this.o.aliceGnats ?? [])], sweepMs: 500, ...(this.o.pool ? { pool: this.o.pool } : {}) },
    }));
    const globCfg = `${this.dir}/glob.json`;
    writeFileSync(globCfg, JSON.stringify({ interfaces: [{ name: 'g0' }], handlers: ['dprp'], ge: { type: 'GES', mode: 'OP' } }));
    this.gnat = await this.g.startAgent('gnat', ['--config', gnatCfg, '--metrics', '127.0.0.1:9464'], 'gnat');
    const hosts: Array<[string, string]> = [['gnat', 'gnat'], ['alice', 'alice'], ['glob', 'glob']];
    if (this.o.bobGe) { this.bob = await this.startClDprp('bob', 'p0', 'GES'); hosts.push(['bob', 'bob']); }
    if (this.o.cascade) { this.cbob = await this.startClDprp('cbob', 'p0', 'GES'); hosts.push(['cbob', 'cbob']); }
    if (this.o.genInside) { this.pgen = await this.startClDprp('pgen', 'g0', 'GEN'); hosts.push(['pgen', 'pgen']); }
    if (this.o.second) {
      const g2 = `${this.dir}/gnat2.json`;
      writeFileSync(g2, JSON.stringify({
        interfaces: [{ name: 'out0' }], handlers: ['dprp', 'nat'], ge: { type: 'GNAT', mode: 'CL' },
        nat: { external: GNAT2_OUT, inside: ['100.64.1.0/24'], sweepMs: 500, act: [{ name: 'erin.example.net', address: BOB, outsideAccess: 'allow', groups: [10] }] },
      }));
      await this.g.startAgent('gnat2', ['--config', g2, '--metrics', '127.0.0.1:9464'], 'gnat2');
      hosts.push(['gnat2', 'gnat2']);
    }
    this.alice = await this.g.startAgent('alice', ['--config', aliceCfg, '--metrics', '127.0.0.1:9464'], 'alice');
    this.aliceArgs = ['--config', aliceCfg, '--metrics', '127.0.0.1:9464'];
    await this.g.startAgent('glob', ['--config', globCfg, '--metrics', 'none'], 'glob');
    for (const [host, inst] of hosts) {
      this.g.ok(host, ['keys', 'set', '--group', '10', '--version', '1', ...this.g.instanceArgs(inst)], `${GROUP_KEY}\n`);
    }
    // DPRP reads the key ring each housekeeping tick (1 s).
    await new Promise((r) => setTimeout(r, 1300));
  }

  /** A CL GE of `type` on `host` running only `dprp`, guarding `iface` (bob as a GE, cbob, P-GEN). */
  private async startClDprp(host: string, iface: string, type: 'GES' | 'GEN'): Promise<AgentProc> {
    const cfg = `${this.dir}/${host}.json`;
    writeFileSync(cfg, JSON.stringify({ interfaces: [{ name: iface }], handlers: ['dprp'], ge: { type, mode: 'CL' } }));
    return this.g.startAgent(host, ['--config', cfg, '--metrics', '127.0.0.1:9464'], host);
  }

  /** argv running `cmd` on `host` as a host application with alice's resolver (a private mount namespace: the machine's file is untouched). */
  private appArgv(cmd: string, args: string[]): string[] {
    return ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', this.resolvConf, cmd, ...args];
  }

  appExec(host: string, cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): ReturnType<Topology['exec']> {
    return this.t.exec(host, 'unshare', this.appArgv(cmd, args), opts);
  }

  appSpawn(host: string, cmd: string, args: string[]): ReturnType<Topology['spawn']> {
    return this.t.spawn(host, 'unshare', this.appArgv(cmd, args));
  }

  private aliceArgs: string[] = [];

  /** alice's agent stopped with `signal` (SIGKILL: a crash) and started again on its pinned state. */
  async restartAlice(signal: NodeJS.Signals): Promise<void> {
    await this.alice?.stop(signal);
    this.alice = await this.g.startAgent('alice', this.aliceArgs, 'alice');
  }

  /** What these agents counted (DPRP's rejections and failures, NAT-f's flows) and said last, for a failure's message. */
  diag(hosts: ReadonlyArray<'alice' | 'gnat' | 'bob' | 'pgen'>): string {
    return hosts.map((h) => {
      const counted = this.metrics(h).split('\n').filter((l) => /^gscip_dprp_(messages_rejected|negotiations_failed)|^gscip_natf_flows_total/.test(l)).join('\n');
      const a = this[h];
      return `--- ${h}\n${counted}\n${a?.stderr.slice(-3000) ?? ''}${a?.stdout.slice(-6000) ?? ''}`;
    }).join('\n');
  }

  metrics(host: 'alice' | 'gnat' | 'gnat2' | 'bob' | 'pgen'): string {
    return this.t.exec(host, 'node', ['-e', "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((x) => process.stdout.write(x))"]).stdout;
  }

  async stop(): Promise<void> {
    await this.dns?.stop().catch(() => undefined);
  }

  cleanupSync(): void {
    this.g?.cleanup();
    this.t.cleanupSync();
  }
}

/** A row of `gscip maps dump pit --json`, as the NAT-f tests read it. */
export interface PitRow { dir: string; proto: string; src: string; sport: number; dst: string; dport: number; action: string; version?: number; keyVersion?: number }
/** A row of `gscip maps dump nat --json`. */
export interface NatRow { proto: string; inside: string; peer: string; external: string; origin: string }
