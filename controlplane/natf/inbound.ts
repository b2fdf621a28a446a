/**
 * On-demand inbound mappings (SPEC section 6, step 6: "the GNAT creates the
 * NAT entry G2:Z <-> P1:Y for this peer"): the control plane writes a
 * session of origin `inbound` into the same maps the fast path allocates in,
 * with the same rules (bpf/lib/nat.h): the port is claimed with BPF_NOEXIST
 * first (NAT_PORT_TRIES random candidates; a range no larger than that
 * scanned whole from a random start), the
 * session second, and a lost race or a full table releases the claim. So an
 * inbound mapping and an outbound session never share a port, and the fast
 * path needs nothing new: the peer's packets to ext:Z are translated to P:Y
 * (filtered to that peer), P's answers go out as ext:Z.
 *
 * The extended DPRP calls it at the GNAT for a DDE naming a host (origin
 * inbound), and for an inside GE's DDE toward a global GE (origin outbound:
 * the session exists before the flow's first packet; docs/natf.md "A private
 * GE behind the GNAT"). Tests: test/bpf/nat.test.ts; rate: bench/nat-inbound.ts.
 */
import { BpfError } from '../bpf/errors.js';
import { Dir, NAT_PORT_TRIES, NatOrigin } from '../maps/abi.js';
import type { Cid, NatPortKey, NatVal } from '../maps/codecs.js';

export interface InboundRequest {
  proto: number;
  /** The private host's address and service port (P1:Y). */
  inside: { addr: string; port: number };
  /** The outside peer that may use the mapping (G1:X). */
  peer: { addr: string; port: number };
  /** The session's origin (default inbound); outbound: a flow an inside GE negotiates before its first packet (NAT-f). */
  origin?: number;
}

export type InboundResult =
  | { ok: true; extPort: number; created: boolean }
  | { ok: false; reason: 'no_port' | 'table_full' };

export interface InboundMaps {
  sessions: { get(k: Cid): NatVal | undefined; set(k: Cid, v: NatVal, mode?: 'any' | 'noexist' | 'exist'): void; delete(k: Cid): unknown };
  ports: { set(k: NatPortKey, v: Cid, mode?: 'any' | 'noexist' | 'exist'): void; delete(k: NatPortKey): unknown };
}

const errno = (e: unknown): string | null => (e instanceof BpfError ? e.code : null);

export class InboundMapper {
  constructor(
    private readonly maps: InboundMaps,
    private readonly nat: { external: string; ports: { first: number; last: number } },
    private readonly nowNs: () => bigint,
    private readonly random: () => number = Math.random,
  ) {}

  map(r: InboundRequest): InboundResult {
    const key: Cid = { saddr: r.inside.addr, daddr: r.peer.addr, sport: r.inside.port, dport: r.peer.port, proto: r.proto, dir: Dir.EGRESS };
    const had = this.maps.sessions.get(key);
    if (had) return { ok: true, extPort: had.ext_port, created: false };
    const { first, last } = this.nat.ports;
    const range = last - first + 1;
    const start = Math.floor(this.random() * range);
    let claimed: NatPortKey | null = null;
    // Random candidates (claimed ports form runs: the ports after one random start failed with most of the range free).
    const scan = range <= NAT_PORT_TRIES;
    for (let i = 0; i < (scan ? range : NAT_PORT_TRIES); i++) {
      const off = scan ? (start + i) % range : i === 0 ? start : Math.floor(this.random() * range);
      const pk: NatPortKey = { port: first + off, proto: r.proto };
      try { this.maps.ports.set(pk, key, 'noexist'); claimed = pk; break; } catch (e) {
        if (errno(e) === 'EEXIST') continue;
        if (errno(e) === 'E2BIG') return { ok: false, reason: 'table_full' };
        throw e;
      }
    }
    if (!claimed) return { ok: false, reason: 'no_port' };
    const now = this.nowNs();
    const v: NatVal = { ext_addr: this.nat.external, ext_port: claimed.port, origin: r.origin ?? NatOrigin.INBOUND, flags: 0, created_ns: now, last_seen_ns: now };
    try { this.maps.sessions.set(key, v, 'noexist'); } catch (e) {
      this.maps.ports.delete(claimed);
      if (errno(e) === 'EEXIST') {
        const won = this.maps.sessions.get(key);
        if (won) return { ok: true, extPort: won.ext_port, created: false };
      }
      if (errno(e) === 'E2BIG' || errno(e) === 'EEXIST') return { ok: false, reason: 'table_full' };
      throw e;
    }
    return { ok: true, extPort: claimed.port, created: true };
  }
}
