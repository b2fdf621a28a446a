/**
 * A GES behind a NAT nobody configured for GSCIP, shared by
 * test/netns/dprp-nat.test.ts and bench/dprp-nat.ts:
 *
 *   a (va A) --- (nin) n (nout 203.0.113.254) --- (vb 203.0.113.2) b
 *
 * With `nat` (the default): a is private (100.64.1.10) and n an ordinary
 * Linux NAT: nftables masquerade out of `nout`, default conntrack settings
 * (nf_conntrack_checksum=1: it verifies L4 checksums), forwarding drops
 * `ct state invalid`, and a counted rule drops anything with a private source
 * leaving `nout` (a real NAT's upstream drops those; a leak then shows in the
 * counter). Without: a is global (198.51.100.10) and n a plain router with
 * the same "drop invalid" forwarding filter: the same path, no NAT. Both ways
 * a and b run host firewalls dropping `ct state invalid` both ways, and
 * checksums are computed in software on every link, so conntrack really
 * verifies them (on veth they are otherwise trusted, CHECKSUM_PARTIAL).
 * `second`: a second private host a2 (100.64.2.10, link va2 - nin2) behind
 * the same NAT. Everything is per run (test/lib/netns.ts); cleanupSync()
 * removes it.
 */
import { GeTopology } from './dprp-topology.js';

export const A_PRIV = '100.64.1.10';
export const A_GLOBAL = '198.51.100.10';
export const A2_PRIV = '100.64.2.10';
export const N_OUT = '203.0.113.254';
export const B = '203.0.113.2';

const NAT_RULES = `
table ip gscip_nat {
  chain nat_post { type nat hook postrouting priority srcnat; oifname "nout" masquerade; }
  chain forward_filter { type filter hook forward priority filter; policy accept; ct state invalid counter drop; }
  chain leak_guard { type filter hook postrouting priority 300; oifname "nout" ip saddr 100.64.0.0/10 counter drop; }
}`;
const ROUTER_RULES = `
table ip gscip_router {
  chain forward_filter { type filter hook forward priority filter; policy accept; ct state invalid counter drop; }
}`;
export const HOST_FIREWALL = `
table inet hostfw {
  chain input_filter { type filter hook input priority filter; policy accept; ct state invalid counter drop; }
  chain output_filter { type filter hook output priority filter; policy accept; ct state invalid counter drop; }
}`;

export function isPrivate(addr: string): boolean {
  const [a, b] = addr.split('.').map(Number);
  return a === 100 && b >= 64 && b < 128;
}

export class NatTopo extends GeTopology {
  /** a's address: private behind the NAT, or global without it. */
  readonly a: string;

  constructor(tag: string, readonly o: { nat?: boolean; second?: boolean } = {}) {
    super(tag);
    const nat = o.nat ?? true;
    this.a = nat ? A_PRIV : A_GLOBAL;
    const t = this.topo;
    try {
      t.addHost('a'); t.addHost('n'); t.addHost('b');
      t.link('a', 'va', 'n', 'nin');
      t.link('n', 'nout', 'b', 'vb');
      t.addr('a', 'va', `${this.a}/24`);
      t.addr('n', 'nin', nat ? '100.64.1.1/24' : '198.51.100.1/24');
      t.addr('n', 'nout', `${N_OUT}/24`);
      t.addr('b', 'vb', `${B}/24`);
      t.route('a', 'default', nat ? '100.64.1.1' : '198.51.100.1');
      if (o.second) {
        if (!nat) throw new Error('NatTopo: a second private host needs the NAT');
        t.addHost('a2');
        t.link('a2', 'va2', 'n', 'nin2');
        t.addr('a2', 'va2', `${A2_PRIV}/24`);
        t.addr('n', 'nin2', '100.64.2.1/24');
        t.route('a2', 'default', '100.64.2.1');
      }
      if (!nat) t.route('b', '198.51.100.0/24', N_OUT);
      t.forwarding('n');
      const links: Array<[string, string]> = [['a', 'va'], ['n', 'nin'], ['n', 'nout'], ['b', 'vb'], ...(o.second ? [['a2', 'va2'], ['n', 'nin2']] as Array<[string, string]> : [])];
      for (const [host, dev] of links) {
        // Software checksums (conntrack verifies them), and every wire packet seen by PCCOM.
        t.exec(host, 'ethtool', ['-K', dev, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      }
      t.exec('n', 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_checksum=1']);
      t.exec('n', 'nft', ['-f', '-'], { input: nat ? NAT_RULES : ROUTER_RULES });
      for (const h of ['a', 'b', ...(o.second ? ['a2'] : [])]) t.exec(h, 'nft', ['-f', '-'], { input: HOST_FIREWALL });
    } catch (e) {
      this.cleanupSync();
      throw e;
    }
  }

  /** The packet count of the nft rule in `host`'s ruleset whose text contains `needle` (0 if none). */
  nftCounter(host: string, needle: string): number {
    const out = this.topo.exec(host, 'nft', ['list', 'ruleset']).stdout;
    const line = out.split('\n').find((l) => l.includes(needle) && l.includes('counter'));
    const m = line ? /counter packets (\d+)/.exec(line) : null;
    return m ? Number(m[1]) : 0;
  }

}
