/**
 * The seed 002 Fig. 6 enterprise network in per-run namespaces, for the
 * demo (deploy/demo-fig6.ts). Same data plane as test/netns/dprp-fig6.test.ts,
 * plus an out-of-band management network on which the GMS runs, so every
 * agent reaches its GMS without crossing a GSCIP-protected interface:
 *
 *            GES1 (OP, GK1)   GES2 (OP, GK1+GK2)   GES3 (OP, GK3)
 *                 \                 |                  /
 *                  +------------ LAN switch ----------+   192.0.2.0/24
 *                 /                                    \
 *   GEN (CL, GK1) 192.0.2.1                  GEA (CL, GK2+GK3) 192.0.2.20
 *        | 198.51.100.1                            | 203.0.113.1
 *      Term 198.51.100.10 (plain host)          server 203.0.113.10 (plain host)
 *
 *   management: every GE's mgmt0 (100.64.0.11..15) -- bridge -- GMS 100.64.0.1
 *
 * Deviation (as in the test): the GEA is a router in front of the server,
 * not a bridge; DPRP sees the same thing.
 */
import { Topology } from '../test/lib/netns.js';

export const GE_HOSTS = ['GEN', 'GES1', 'GES2', 'GES3', 'GEA'] as const;
export type GeHost = typeof GE_HOSTS[number];

/** GE host -> its user ID in deploy/examples/fig6-network.yaml. */
export const USER_ID: Record<GeHost, string> = {
  GEN: 'gen-dept', GES1: 'ges1-staff', GES2: 'ges2-manager', GES3: 'ges3-manager', GEA: 'gea-server',
};

export const LAN_ADDR: Record<GeHost, string> = {
  GEN: '192.0.2.1', GES1: '192.0.2.11', GES2: '192.0.2.12', GES3: '192.0.2.13', GEA: '192.0.2.20',
};

/** Every end host of the acceptance matrix, its address and the GE that protects it. */
export const HOSTS = {
  GES1: { addr: '192.0.2.11', protector: 'GES1' },
  GES2: { addr: '192.0.2.12', protector: 'GES2' },
  GES3: { addr: '192.0.2.13', protector: 'GES3' },
  Term: { addr: '198.51.100.10', protector: 'GEN' },
  server: { addr: '203.0.113.10', protector: 'GEA' },
} as const satisfies Record<string, { addr: string; protector: GeHost }>;
export type EndHost = keyof typeof HOSTS;

/** What the SPEC expects of a pair (section 3). */
export type Want = { kind: 'enc'; group: number } | { kind: 'plain' } | { kind: 'discard' };
/** SPEC section 3, the project's acceptance matrix (the demo and test/netns/dprp-fig6.test.ts both run it). */
export const MATRIX: Array<[EndHost, EndHost, Want]> = [
  ['GES1', 'Term', { kind: 'enc', group: 1 }],
  ['GES1', 'GES2', { kind: 'enc', group: 1 }],
  ['GES2', 'server', { kind: 'enc', group: 2 }],
  ['GES3', 'server', { kind: 'enc', group: 3 }],
  ['GES1', 'server', { kind: 'discard' }],
  ['GES3', 'Term', { kind: 'discard' }],
  ['GES1', 'GES3', { kind: 'plain' }],
];

export const GMS_ADDR = '100.64.0.1';
const MGMT_ADDR: Record<GeHost, string> = {
  GEN: '100.64.0.11', GES1: '100.64.0.12', GES2: '100.64.0.13', GES3: '100.64.0.14', GEA: '100.64.0.15',
};

/**
 * Builds the namespaces, links, addresses and routes. Throws (after cleaning up) on any failure.
 * `management: false` leaves out the management network (a test whose GMS runs in-process).
 */
export function buildFig6(tag: string, opts: { management?: boolean } = {}): Topology {
  const management = opts.management ?? true;
  const t = new Topology(tag);
  try {
    for (const h of ['sw', ...(management ? ['mgmt'] : []), ...GE_HOSTS, 'Term', 'server']) t.addHost(h);
    for (const [h, br] of (management ? [['sw', 'br0'], ['mgmt', 'mbr0']] : [['sw', 'br0']]) as Array<[string, string]>) {
      t.exec(h, 'ip', ['link', 'add', br, 'type', 'bridge']);
      t.exec(h, 'ip', ['link', 'set', br, 'up']);
    }
    if (management) t.addr('mgmt', 'mbr0', `${GMS_ADDR}/24`);
    for (const h of GE_HOSTS) {
      t.link(h, 'lan0', 'sw', `p${h}`);
      t.exec('sw', 'ip', ['link', 'set', `p${h}`, 'master', 'br0']);
      t.addr(h, 'lan0', `${LAN_ADDR[h]}/24`);
      if (!management) continue;
      t.link(h, 'mgmt0', 'mgmt', `m${h}`);
      t.exec('mgmt', 'ip', ['link', 'set', `m${h}`, 'master', 'mbr0']);
      t.addr(h, 'mgmt0', `${MGMT_ADDR[h]}/24`);
    }
    t.link('GEN', 'in0', 'Term', 'eth0');
    t.addr('GEN', 'in0', '198.51.100.1/24');
    t.addr('Term', 'eth0', '198.51.100.10/24');
    t.route('Term', 'default', '198.51.100.1');
    t.link('GEA', 'in0', 'server', 'eth0');
    t.addr('GEA', 'in0', '203.0.113.1/24');
    t.addr('server', 'eth0', '203.0.113.10/24');
    t.route('server', 'default', '203.0.113.1');
    t.forwarding('GEN');
    t.forwarding('GEA');
    for (const h of ['GES1', 'GES2', 'GES3']) {
      t.route(h, '198.51.100.0/24', LAN_ADDR.GEN);
      t.route(h, '203.0.113.0/24', LAN_ADDR.GEA);
    }
    t.route('GEN', '203.0.113.0/24', LAN_ADDR.GEA);
    t.route('GEA', '198.51.100.0/24', LAN_ADDR.GEN);
    // As in the Fig. 6 test: no offloads, so every capture sees wire-sized packets.
    const devs: Array<[string, string]> = [...GE_HOSTS.map((h) => [h, 'lan0'] as [string, string]), ['GEN', 'in0'], ['GEA', 'in0'],
      ['Term', 'eth0'], ['server', 'eth0'], ...GE_HOSTS.map((h) => ['sw', `p${h}`] as [string, string])];
    for (const [h, d] of devs) t.exec(h, 'ethtool', ['-K', d, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
    return t;
  } catch (e) {
    t.cleanupSync();
    throw e;
  }
}
