/**
 * Addresses a GE never sends a control message to (issue 11 item 4: no
 * reflection): multicast (224.0.0.0/4), reserved and limited broadcast
 * (240.0.0.0/4, 255.255.255.255 among them), loopback (127.0.0.0/8),
 * "this network" (0.0.0.0/8). Directed broadcasts and this GE's own addresses
 * depend on the host: the node asks its deps (node-deps.ts `isOwnOrBroadcast`,
 * `locality`). Pure.
 */
export type SpecialKind = 'multicast' | 'reserved' | 'loopback' | 'this_network';

/** The class of a never-a-destination IPv4 address, or null for an ordinary unicast one (or an unparsable string). */
export function specialAddress(addr: string): SpecialKind | null {
  const dot = addr.indexOf('.');
  const first = Number(dot < 0 ? addr : addr.slice(0, dot));
  if (!Number.isInteger(first)) return null;
  if (first === 0) return 'this_network';
  if (first === 127) return 'loopback';
  if (first >= 224 && first <= 239) return 'multicast';
  if (first >= 240) return 'reserved';
  return null;
}
