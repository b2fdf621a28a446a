/**
 * The GNAT's sessions on an external address it no longer has are flushed
 * (docs/natf.md "When the external address changes"): their packets would
 * leave with a source the global side no longer routes to this GNAT, and the
 * peers' packets to it no longer arrive. Each session goes with its own port
 * claim (never another session's), as the expiry sweep removes one
 * (nat-sweep.ts). Over injected maps: test/unit/nat-external-follow.test.ts.
 */
import { natState, NAT_STATES, type NatState } from './nat-expiry.js';
import { removeSession, type SweepMaps } from './nat-sweep.js';

/** Removes every session whose external address is `addr`; the count removed, by state. */
export function flushExternal(maps: SweepMaps, addr: string): Record<NatState, number> {
  const out = Object.fromEntries(NAT_STATES.map((s) => [s, 0])) as Record<NatState, number>;
  for (const [k, v] of [...maps.sessions.entries()]) {
    if (v.ext_addr !== addr) continue;
    removeSession(maps, k, v);
    out[natState(k.proto, v.flags)]++;
  }
  return out;
}
