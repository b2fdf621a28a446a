/**
 * One pass of NAT expiry over the GNAT's maps (docs/natf.md "Timeouts"):
 * expired sessions go, the session first and then its port claim (so a port
 * is never free while a session still rewrites to it); a claim whose session
 * is gone is removed only when it was already orphaned at the previous pass
 * (the fast path claims a port a moment before it writes the session).
 * Over injected maps and clock: test/unit/nat-expiry.test.ts drives it with
 * fake maps and a fake clock.
 */
import type { Cid, NatPortKey, NatVal } from '../maps/codecs.js';
import { natExpired, natState, NAT_STATES, type NatState } from './nat-expiry.js';
import type { NatTimeouts } from './nat-config.js';

/** The parts of a BpfMap a sweep uses (BpfMap satisfies it; tests use Maps). */
export interface SweepMap<K, V> {
  entries(): Iterable<[K, V]>;
  get(k: K): V | undefined;
  delete(k: K): boolean | void;
}
export interface SweepMaps {
  sessions: SweepMap<Cid, NatVal>;
  ports: SweepMap<NatPortKey, Cid>;
}

export interface NatSweepResult {
  /** Sessions removed this pass, by state. */
  expired: Record<NatState, number>;
  /** Sessions left, by state (occupancy). */
  sessions: Record<NatState, number>;
  /** Port claims left, by protocol name (tcp, udp; icmp: echo identifiers). */
  ports: { tcp: number; udp: number; icmp: number };
  /** Orphan claims removed this pass. */
  orphans: number;
}

const sameCid = (a: Cid, b: Cid): boolean =>
  a.saddr === b.saddr && a.daddr === b.daddr && a.sport === b.sport && a.dport === b.dport && a.proto === b.proto && a.dir === b.dir;
const portId = (k: NatPortKey): string => `${k.proto}/${k.port}`;

/** Removes the session `k` and its port claim when the claim is its own (never another session's). */
export function removeSession(maps: SweepMaps, k: Cid, v: { ext_port: number }): void {
  maps.sessions.delete(k);
  const pk: NatPortKey = { port: v.ext_port, proto: k.proto };
  const owner = maps.ports.get(pk);
  if (owner && sameCid(owner, k)) maps.ports.delete(pk);
}

export class NatSweeper {
  private orphanSeen = new Set<string>();

  constructor(private readonly maps: SweepMaps, private readonly timeouts: NatTimeouts) {}

  sweep(nowNs: bigint): NatSweepResult {
    const zero = (): Record<NatState, number> => Object.fromEntries(NAT_STATES.map((s) => [s, 0])) as Record<NatState, number>;
    const r: NatSweepResult = { expired: zero(), sessions: zero(), ports: { tcp: 0, udp: 0, icmp: 0 }, orphans: 0 };
    for (const [k, v] of [...this.maps.sessions.entries()]) {
      const state = natState(k.proto, v.flags);
      if (!natExpired(k.proto, v, nowNs, this.timeouts)) { r.sessions[state]++; continue; }
      removeSession(this.maps, k, v);
      r.expired[state]++;
    }
    const orphans = new Set<string>();
    for (const [pk, owner] of [...this.maps.ports.entries()]) {
      const s = this.maps.sessions.get(owner);
      if (s && s.ext_port === pk.port) {
        if (pk.proto === 6) r.ports.tcp++; else if (pk.proto === 1) r.ports.icmp++; else r.ports.udp++;
        continue;
      }
      const id = portId(pk);
      if (this.orphanSeen.has(id)) { this.maps.ports.delete(pk); r.orphans++; } else orphans.add(id);
    }
    this.orphanSeen = orphans;
    return r;
  }
}
