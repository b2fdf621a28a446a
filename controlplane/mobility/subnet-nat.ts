/**
 * A GEN whose subnet moves with it (docs/mobility.md "A GEN's outside address
 * changes"): its Terms' flows leave source-NATed to its outside address, so
 * that address is what every peer sees and what Mobile PPC moves. The NAT rule
 * is Mobile PPC's own (`mobility.subnetNat`), an nftables `snat to` the current
 * outside address, re-pointed on each move:
 *  - established Terms' flows keep their conntrack entries, NATed to the old
 *    address; the GEN's CIT puts the new address on the wire (as for a GES's
 *    own sockets) and the peers translate back;
 *  - flows opened after the move are NATed to the new address directly.
 * Not `masquerade`: the kernel drops every conntrack entry masqueraded to an
 * address when that address is deleted, which resets the Terms' connections
 * (the namespace test shows it with GSCIP_TEST_MPPC_MASQUERADE=1).
 *
 *   table ip gscip_mobility_<dev> { chain post { type nat hook postrouting priority srcnat;
 *     oifname "<dev>" ip saddr { <inside> } snat to <outside address> } }
 */
import { spawnSync } from 'node:child_process';

/** The nftables table of `dev` (names: letters, digits, underscore). */
export function natTableName(dev: string): string {
  return `gscip_mobility_${dev.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** The nft script that (re)defines the table in one transaction. */
export function natScript(dev: string, inside: readonly string[], addr: string): string {
  const t = natTableName(dev);
  return [
    `table ip ${t} {}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain post {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${dev}" ip saddr { ${inside.join(', ')} } snat to ${addr}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class SubnetNat {
  private current: string | null = null;

  constructor(private readonly dev: string, private readonly inside: readonly string[], private readonly onError: (what: string, err: string) => void) {}

  /** The outside address now: new flows from the inside are NATed to it. */
  point(addr: string): void {
    if (addr === this.current) return;
    const r = spawnSync('nft', ['-f', '-'], { input: natScript(this.dev, this.inside, addr), encoding: 'utf8', timeout: 5000 });
    if (r.status !== 0) return this.onError(`snat ${this.inside.join(',')} to ${addr}`, (r.stderr ?? r.error?.message ?? '').trim());
    this.current = addr;
  }

  remove(): void {
    if (this.current === null) return;
    spawnSync('nft', ['delete', 'table', 'ip', natTableName(this.dev)], { encoding: 'utf8', timeout: 5000 });
    this.current = null;
  }
}
