/**
 * Mobile PPC namespace topology (test/netns/mobility.test.ts, bench/mobility.ts):
 *
 *   a (va 203.0.113.1) --- rc --+-- r1 (198.51.100.1) --s1--+
 *                               |                           sw (bridge) --sb-- (vb) b
 *                               +-- r2 (192.0.2.1)    --s2--+
 *
 * a is the stationary GES; b the mobile GES, first on r1's subnet
 * (198.51.100.10), then moved to r2's (192.0.2.10) the way DHCP after a
 * re-plug does it: the new address and default route come, the old address
 * goes, and r1's port on the switch goes down (the old path is gone). rc,
 * r1, r2 are plain routers. Both GEs run the agent with DPRP + Mobile PPC.
 *
 * With `aMoves` a is mobile too (both ends move at once, mobility-both.test.ts):
 *
 *   a (va) --sa-- swa --sa1-- ra1 (203.0.113.1/26)  --+
 *                     --sa2-- ra2 (203.0.113.65/26) --+-- rc ... (as above)
 *
 * a starts at 203.0.113.10/26 behind ra1 and moves to 203.0.113.74/26 behind
 * ra2; rc holds 203.0.113.254/32 on lo (the DNS server's address).
 *
 * `startGe('r2', ...)` makes r2 a GEN too (its agent guards u2, its outside
 * toward rc): b's new path then crosses a GE that was not on the old one
 * (mobility-path.test.ts).
 *
 * With `termBehindB` b is a GEN with a Term t on its inside (100.64.9.0/24,
 * source-NATed by b to its outside address: mobility-gen.test.ts):
 *
 *   t (vt 100.64.9.2) --- (in 100.64.9.1) b (vb) ... (as above)
 */
import { GeTopology, type GeOptions } from './dprp-topology.js';

export const A = '203.0.113.1';
export const B_OLD = '198.51.100.10';
export const B_NEW = '192.0.2.10';
export const R1 = '198.51.100.1';
export const R2 = '192.0.2.1';
/** a's addresses when it moves too (`aMoves`). */
export const A_OLD = '203.0.113.10';
export const A_NEW = '203.0.113.74';
export const RA1 = '203.0.113.1';
export const RA2 = '203.0.113.65';
export const RC_LO = '203.0.113.254';
/** The Term behind b and b's inside (`termBehindB`). */
export const T = '100.64.9.2';
export const INSIDE = '100.64.9.0/24';

export class MobilityTopo extends GeTopology {
  constructor(tag: string, readonly o: { aMoves?: boolean; termBehindB?: boolean } = {}) {
    super(tag);
    try {
      const t = this.topo;
      for (const h of ['a', 'rc', 'r1', 'r2', 'sw', 'b', ...(o.aMoves ? ['ra1', 'ra2', 'swa'] : []), ...(o.termBehindB ? ['t'] : [])]) t.addHost(h);
      if (o.aMoves) this.mobileA();
      else t.link('a', 'va', 'rc', 'ra');
      t.link('rc', 'c1', 'r1', 'u1');
      t.link('rc', 'c2', 'r2', 'u2');
      t.link('r1', 'lan', 'sw', 's1');
      t.link('r2', 'lan', 'sw', 's2');
      t.link('b', 'vb', 'sw', 'sb');
      t.exec('sw', 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
      for (const p of ['s1', 's2', 'sb']) t.exec('sw', 'ip', ['link', 'set', p, 'master', 'br0']);
      t.exec('sw', 'ip', ['link', 'set', 'br0', 'up']);
      if (!o.aMoves) {
        t.addr('a', 'va', `${A}/24`);
        t.addr('rc', 'ra', '203.0.113.254/24');
        t.route('a', 'default', '203.0.113.254');
      }
      t.addr('rc', 'c1', '100.64.1.1/30');
      t.addr('r1', 'u1', '100.64.1.2/30');
      t.addr('rc', 'c2', '100.64.2.1/30');
      t.addr('r2', 'u2', '100.64.2.2/30');
      t.addr('r1', 'lan', `${R1}/24`);
      t.addr('r2', 'lan', `${R2}/24`);
      t.addr('b', 'vb', `${B_OLD}/24`);
      t.route('rc', '198.51.100.0/24', '100.64.1.2');
      t.route('rc', '192.0.2.0/24', '100.64.2.2');
      t.route('r1', 'default', '100.64.1.1');
      t.route('r2', 'default', '100.64.2.1');
      t.route('b', 'default', R1);
      for (const r of ['rc', 'r1', 'r2']) t.forwarding(r);
      if (o.termBehindB) {
        t.link('t', 'vt', 'b', 'in');
        t.addr('t', 'vt', `${T}/24`);
        t.addr('b', 'in', '100.64.9.1/24');
        t.route('t', 'default', '100.64.9.1');
        t.forwarding('b');
      }
      // PCCOM must see every wire packet on the encrypting interface (docs/pccom.md).
      const lans = o.aMoves ? [['ra1', 'lan'], ['ra2', 'lan']] : [['rc', 'ra']];
      for (const [host, dev] of [['a', 'va'], ['b', 'vb'], ['r1', 'lan'], ['r2', 'lan'], ...lans]) {
        t.exec(host, 'ethtool', ['-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      }
    } catch (e) {
      this.cleanupSync();
      throw e;
    }
  }

  /** a behind a switch with two routers' LANs (only ra1's port up), both routers on rc. */
  private mobileA(): void {
    const t = this.topo;
    t.link('a', 'va', 'swa', 'sa');
    t.link('ra1', 'lan', 'swa', 'sa1');
    t.link('ra2', 'lan', 'swa', 'sa2');
    t.link('rc', 'd1', 'ra1', 'wan');
    t.link('rc', 'd2', 'ra2', 'wan');
    t.exec('swa', 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    for (const p of ['sa', 'sa1', 'sa2']) t.exec('swa', 'ip', ['link', 'set', p, 'master', 'br0']);
    t.exec('swa', 'ip', ['link', 'set', 'br0', 'up']);
    t.exec('swa', 'ip', ['link', 'set', 'sa2', 'down']);
    t.addr('ra1', 'lan', `${RA1}/26`);
    t.addr('ra2', 'lan', `${RA2}/26`);
    t.addr('rc', 'd1', '100.64.3.1/30');
    t.addr('ra1', 'wan', '100.64.3.2/30');
    t.addr('rc', 'd2', '100.64.4.1/30');
    t.addr('ra2', 'wan', '100.64.4.2/30');
    t.exec('rc', 'ip', ['addr', 'add', `${RC_LO}/32`, 'dev', 'lo']);
    t.addr('a', 'va', `${A_OLD}/26`);
    t.route('a', 'default', RA1);
    t.route('rc', '203.0.113.0/26', '100.64.3.2');
    t.route('rc', '203.0.113.64/26', '100.64.4.2');
    t.route('ra1', 'default', '100.64.3.1');
    t.route('ra2', 'default', '100.64.4.1');
    for (const r of ['ra1', 'ra2']) t.forwarding(r);
  }

  /**
   * Both move at once (`aMoves`): both old paths are cut first, so each end's
   * CU to the other's old address is lost; then each gets its new address and
   * route and loses the old one (DHCP after a re-plug), a and b interleaved.
   */
  moveBoth(): void {
    const t = this.topo;
    t.exec('sw', 'ip', ['link', 'set', 's1', 'down']);
    t.exec('swa', 'ip', ['link', 'set', 'sa1', 'down']);
    t.exec('sw', 'ip', ['link', 'set', 's2', 'up']);
    t.exec('swa', 'ip', ['link', 'set', 'sa2', 'up']);
    t.exec('b', 'ip', ['addr', 'add', `${B_NEW}/24`, 'dev', 'vb']);
    t.exec('a', 'ip', ['addr', 'add', `${A_NEW}/26`, 'dev', 'va']);
    t.exec('b', 'ip', ['route', 'replace', 'default', 'via', R2]);
    t.exec('a', 'ip', ['route', 'replace', 'default', 'via', RA2]);
    t.exec('b', 'ip', ['addr', 'del', `${B_OLD}/24`, 'dev', 'vb']);
    t.exec('a', 'ip', ['addr', 'del', `${A_OLD}/26`, 'dev', 'va']);
  }

  startGe(host: 'a' | 'b' | 'r2', o: GeOptions): Promise<void> {
    return this.ges.start(host, [host === 'a' ? 'va' : host === 'b' ? 'vb' : 'u2'], { mobility: true, ...o });
  }

  /**
   * b moves to r2's subnet: new address and route first (DHCP), old address removed, the old path cut.
   * `batch`: b's three address commands in one `ip -batch` (applied within a millisecond, as a DHCP
   * client applies them; separate `ip netns exec` calls are ~10-40 ms apart on a loaded VM).
   */
  moveToR2(o: { batch?: boolean } = {}): void {
    const t = this.topo;
    t.exec('sw', 'ip', ['link', 'set', 's2', 'up']);
    this.onB(o.batch, [['addr', 'add', `${B_NEW}/24`, 'dev', 'vb'], ['route', 'replace', 'default', 'via', R2], ['addr', 'del', `${B_OLD}/24`, 'dev', 'vb']]);
    t.exec('sw', 'ip', ['link', 'set', 's1', 'down']);
  }

  /** b back on r1's subnet, old address first removed (a re-plug: nothing on the interface for a moment). */
  moveBackToR1(o: { batch?: boolean } = {}): void {
    const t = this.topo;
    t.exec('sw', 'ip', ['link', 'set', 's1', 'up']);
    this.onB(o.batch, [['addr', 'del', `${B_NEW}/24`, 'dev', 'vb'], ['addr', 'add', `${B_OLD}/24`, 'dev', 'vb'], ['route', 'replace', 'default', 'via', R1]]);
    t.exec('sw', 'ip', ['link', 'set', 's2', 'down']);
  }

  private onB(batch: boolean | undefined, cmds: string[][]): void {
    if (batch) this.topo.exec('b', 'ip', ['-batch', '-'], { input: `${cmds.map((c) => c.join(' ')).join('\n')}\n` });
    else for (const c of cmds) this.topo.exec('b', 'ip', c);
  }

  /** /metrics of a host's GE, fetched inside its namespace. */
  metrics(host: 'a' | 'b' | 'r2'): string {
    const js = "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((t) => process.stdout.write(t)).catch((e) => { console.error(e); process.exit(1); })";
    return this.topo.exec(host, 'node', ['-e', js]).stdout;
  }

  /** The sum of a metric's samples whose line starts with `prefix` (name plus optional labels). */
  metric(host: 'a' | 'b' | 'r2', prefix: string): number {
    return this.metrics(host).split('\n').filter((l) => l.startsWith(prefix)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  }
}
