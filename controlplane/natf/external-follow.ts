/**
 * Which address the GNAT's NAT uses on the global side when it follows its
 * outside interface (`nat.follow`, docs/natf.md "When the external address
 * changes"). Pure: rtnetlink address events in (Mobile PPC's monitor,
 * mobility/move-events.ts, whose MoveDetector keeps each interface's
 * addresses), a change of the external address out.
 *
 * The external address changes when it is no longer on the outside interface
 * and a usable address is: in either order (the new address first and the old
 * one removed after, as a DHCP client does when the lease changes, or the old
 * one removed first: then the change waits for the next usable address).
 * Usable: not inside one of the NAT's inside prefixes (an inside address is
 * never the source the global side sees), not loopback, link-local (169.254/16,
 * a DHCP client's fallback), multicast or NAT-f's virtual block 198.18.0.0/15.
 */
import { MoveDetector, type MonitorEvent } from '../mobility/move-events.js';
import type { NatPrefix } from '../maps/codecs.js';
import { prefixContains } from './nat-config.js';

export interface ExternalChange { from: string; to: string }

const NOT_EXTERNAL: readonly NatPrefix[] = [
  { addr: '0.0.0.0', mask: '255.0.0.0' },
  { addr: '127.0.0.0', mask: '255.0.0.0' },
  { addr: '169.254.0.0', mask: '255.255.0.0' },
  { addr: '198.18.0.0', mask: '255.254.0.0' },
  { addr: '224.0.0.0', mask: '240.0.0.0' },
];

/** Whether `addr` may be the NAT's external address (never an inside one, nor a special one). */
export function usableExternal(addr: string, inside: readonly NatPrefix[]): boolean {
  return ![...NOT_EXTERNAL, ...inside].some((p) => prefixContains(p, addr));
}

export class ExternalFollower {
  private readonly addrs: MoveDetector;
  private now: string;

  /** `initial`: every interface's IPv4 addresses at start (`ip -o -4 addr`, host-addresses.ts currentAddresses). */
  constructor(private readonly ifname: string, external: string, private readonly inside: readonly NatPrefix[],
    initial: ReadonlyArray<{ dev: string; addr: string }>) {
    this.addrs = new MoveDetector([ifname], initial);
    this.now = external;
  }

  /** The external address in use now. */
  get external(): string {
    return this.now;
  }

  /**
   * The change due now, if any: the external address is not on the interface
   * and a usable one is (the first in the interface's order). At start this
   * takes the address the interface got while no agent ran.
   */
  check(): ExternalChange | null {
    const on = this.addrs.current(this.ifname);
    if (on.includes(this.now)) return null;
    const to = on.find((a) => usableExternal(a, this.inside));
    if (!to) return null;
    const c = { from: this.now, to };
    this.now = to;
    return c;
  }

  /** One rtnetlink event; the change it brings, if any. */
  on(e: MonitorEvent): ExternalChange | null {
    if (e.kind !== 'addr' || e.ifname !== this.ifname) return null;
    this.addrs.on(e);
    return this.check();
  }
}
