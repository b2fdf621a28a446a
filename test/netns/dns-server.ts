/**
 * A BIND 9 `named` for tests, started inside a test namespace with a zone
 * example.net whose names are updated with RFC 2136 + TSIG: one key per
 * name, each key's update-policy granting only its own name's A record
 * (docs/mobility.md "DDNS"). Listens on one address of that namespace only;
 * its files live under a per-run scratch directory; stop() (and the
 * topology's cleanup, even on SIGKILL) ends it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type Topology } from '../lib/netns.js';
import { exited } from './pccom-topology.js';

export const ZONE = 'example.net';

export interface DnsKey { keyName: string; host: string; secret: Buffer }

export class DnsServer {
  private child: ChildProcess | null = null;
  private out = '';
  readonly dir: string;
  readonly keys = new Map<string, DnsKey>();

  /**
   * `hosts`: name (left of the zone) -> initial A ('' = no record yet); each gets a key `ge-<name>`,
   * unless `keyOwner` names another owner for it: then that owner's key `ge-<owner>` may change it
   * (a GNAT publishing the names of its ACT with one key).
   */
  constructor(private readonly topo: Topology, readonly host: string, readonly addr: string, hosts: Record<string, string>,
    keyOwner: Record<string, string> = {}) {
    this.dir = topo.scratchPath(`/tmp/gscip-test-${topo.prefix}-named`);
    const owner = (h: string): string => keyOwner[h] ?? h;
    for (const h of Object.keys(hosts)) if (!this.keys.has(owner(h))) this.keys.set(owner(h), { keyName: `ge-${owner(h)}`, host: owner(h), secret: randomBytes(32) });
    mkdirSync(this.dir, { recursive: true });
    const keys = [...this.keys.values()].map((k) => `key "${k.keyName}" { algorithm hmac-sha256; secret "${k.secret.toString('base64')}"; };`).join('\n');
    const grants = Object.keys(hosts).map((h) => `grant ge-${owner(h)} name ${h}.${ZONE}. A;`).join(' ');
    writeFileSync(`${this.dir}/named.conf`, `
options { directory "${this.dir}"; pid-file "${this.dir}/named.pid"; session-keyfile "${this.dir}/session.key";
  listen-on port 53 { ${addr}; }; listen-on-v6 { none; }; recursion no; allow-query { any; }; notify no; };
controls { };
${keys}
zone "${ZONE}" { type primary; file "${this.dir}/${ZONE}.db"; update-policy { ${grants} }; };
`);
    writeFileSync(`${this.dir}/${ZONE}.db`, `$TTL 60
@ IN SOA ns1.${ZONE}. hostmaster.${ZONE}. 1 60 60 600 60
@ IN NS ns1
ns1 IN A ${addr}
${Object.entries(hosts).filter(([, a]) => a).map(([h, a]) => `${h} IN A ${a}`).join('\n')}
`);
  }

  async start(): Promise<void> {
    this.child = this.topo.spawn(this.host, 'named', ['-g', '-4', '-c', `${this.dir}/named.conf`]);
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (d: string) => { this.out += d; if (this.out.length > 1e5) this.out = this.out.slice(-5e4); });
    await waitFor('named running', () => {
      if (this.child!.exitCode !== null) throw new Error(`named exited ${this.child!.exitCode}: ${this.out.slice(-2000)}`);
      return /running/.test(this.out);
    }, 15_000, 50);
  }

  /** `dig +short NAME A` from `from` (a host of the topology). */
  lookup(from: string, name: string): string {
    return this.topo.exec(from, 'dig', [`@${this.addr}`, '+short', '+time=2', '+tries=2', `${name}.${ZONE}`, 'A'], { allowFail: true }).stdout.trim();
  }

  log(): string {
    return this.out;
  }

  async stop(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGTERM');
    await exited(this.child, 5000);
    this.child = null;
  }
}
