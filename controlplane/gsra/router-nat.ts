/**
 * A GSRA router's translation in the NAT stage it shares with the GNAT
 * (bpf/lib/nat.h; docs/natf.md), nothing of its own in BPF:
 *
 *     {GEN:s <-> GGR:t}  <=>  {PGR:t <-> PIN:d}
 *
 * is two sessions with the same port t claimed on both sides, in the NAT
 * maps of the router's two agent instances:
 *
 *   outside instance (interface with GGR; NAT external GGR, inside = the IN
 *   network): an `inbound` session PIN:d -> GEN:s with external GGR:t, as
 *   natf/inbound.ts writes one (fixed port here: t was promised in AUTH_OK).
 *   Ingress GEN:s -> GGR:t (after PCCOM decrypts) becomes GEN:s -> PIN:d,
 *   from GEN:s only; egress PIN:d -> GEN:s becomes GGR:t -> GEN:s (then
 *   PCCOM encrypts).
 *
 *   inside instance (interface with PGR; NAT external PGR): a `gsra` session
 *   GEN:s -> PIN:d with external PGR:t. Egress GEN:s -> PIN:d becomes
 *   PGR:t -> PIN:d (the one place the NAT stage translates a source that is
 *   not inside: only for a session of origin gsra, which only this writes);
 *   ingress PIN:d -> PGR:t becomes PIN:d -> GEN:s.
 *
 * So the IN sees the router as its peer and answers it; the site's gateway
 * is not involved. Port claims with BPF_NOEXIST like every other writer of
 * these maps; a failed second half undoes the first.
 */
import { BpfError } from '../bpf/errors.js';
import { Dir, NatOrigin } from '../maps/abi.js';
import type { Cid, NatPortKey, NatVal } from '../maps/codecs.js';
import type { InboundMaps } from '../natf/inbound.js';
import type { Mapping } from './admission.js';

export interface RouterAddresses { ggr: string; pgr: string }

export type NatWrite = { ok: true } | { ok: false; reason: 'port_taken' | 'table_full' };

const errno = (e: unknown): string | null => (e instanceof BpfError ? e.code : null);

export function outsideSession(m: Mapping): Cid {
  return { saddr: m.inside.addr, sport: m.inside.port, daddr: m.en.addr, dport: m.en.port, proto: m.proto, dir: Dir.EGRESS };
}
export function insideSession(m: Mapping): Cid {
  return { saddr: m.en.addr, sport: m.en.port, daddr: m.inside.addr, dport: m.inside.port, proto: m.proto, dir: Dir.EGRESS };
}

export class GsraRouterNat {
  constructor(
    private readonly outside: InboundMaps,
    private readonly inside: InboundMaps,
    private readonly addrs: RouterAddresses,
    private readonly nowNs: () => bigint,
  ) {}

  /** Both halves of `m`, or neither. */
  install(m: Mapping): NatWrite {
    const a = claim(this.outside, outsideSession(m), { port: m.t, proto: m.proto }, this.val(this.addrs.ggr, m.t, NatOrigin.INBOUND));
    if (!a.ok) return a;
    const b = claim(this.inside, insideSession(m), { port: m.t, proto: m.proto }, this.val(this.addrs.pgr, m.t, NatOrigin.GSRA));
    if (!b.ok) { release(this.outside, outsideSession(m), { port: m.t, proto: m.proto }); return b; }
    return { ok: true };
  }

  /** Removes both halves (a flow cut, closed or expired): its packets stop being translated at once. */
  remove(m: Mapping): void {
    release(this.inside, insideSession(m), { port: m.t, proto: m.proto });
    release(this.outside, outsideSession(m), { port: m.t, proto: m.proto });
  }

  private val(ext: string, port: number, origin: number): NatVal {
    const now = this.nowNs();
    return { ext_addr: ext, ext_port: port, origin, flags: 0, created_ns: now, last_seen_ns: now };
  }
}

function claim(maps: InboundMaps, key: Cid, pk: NatPortKey, v: NatVal): NatWrite {
  try { maps.ports.set(pk, key, 'noexist'); } catch (e) {
    if (errno(e) === 'EEXIST') return { ok: false, reason: 'port_taken' };
    if (errno(e) === 'E2BIG') return { ok: false, reason: 'table_full' };
    throw e;
  }
  try { maps.sessions.set(key, v, 'noexist'); } catch (e) {
    maps.ports.delete(pk);
    if (errno(e) === 'EEXIST') return { ok: false, reason: 'port_taken' };
    if (errno(e) === 'E2BIG') return { ok: false, reason: 'table_full' };
    throw e;
  }
  return { ok: true };
}

/** Session first, then its claim (a port is never free while a session still rewrites to it: nat-sweep's order). */
function release(maps: InboundMaps, key: Cid, pk: NatPortKey): void {
  maps.sessions.delete(key);
  maps.ports.delete(pk);
}
