/**
 * Writes the GNAT's NAT configuration into gscip_nat_cfg (the agent calls it
 * after load and before attach) and warns when the external port range
 * overlaps the range the GNAT's own connections take their source ports
 * from (net.ipv4.ip_local_port_range): such a port, once claimed, would carry
 * a session's inbound traffic instead of the GNAT's own.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { GscipMaps } from '../maps/gscip-maps.js';
import { natCfgOf, portRangesOverlap, type NatConfig } from './nat-config.js';

export function localPortRange(path = '/proc/sys/net/ipv4/ip_local_port_range'): { first: number; last: number } | null {
  try {
    const [first, last] = readFileSync(path, 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(first) && Number.isInteger(last) ? { first, last } : null;
  } catch { return null; }
}

export function configureNat(maps: GscipMaps, nat: NatConfig | null, log: Logger): void {
  if (!nat) return;  // the NAT stage is not loaded: gscip_nat_cfg is never read
  if (!maps.nat) throw new Error('nat: this BPF object has no NAT maps (gscip_nat_cfg): it predates NAT');
  maps.nat.cfg.set(0, natCfgOf(nat));
  const local = localPortRange();
  if (local && portRangesOverlap(nat.ports, local)) {
    log.warn({ natPorts: nat.ports, ipLocalPortRange: local },
      'nat.ports overlaps net.ipv4.ip_local_port_range: a port the NAT claims cannot serve this GE\'s own connections; move one of them');
  }
  log.info({ external: nat.external, inside: nat.inside, ports: nat.ports, maxSessions: nat.maxSessions }, 'NAT configured');
}
