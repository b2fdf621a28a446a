/**
 * Control messages of a type DPRP does not speak, on their way to another
 * host (docs/dprp.md "Control messages of other parts in transit"). Every
 * control message crossing a guarded interface is punted and dropped by the
 * fast path (bpf/lib/control.h), so a GE on the path that does not run the
 * part owning a message type (a DPRP-only GE, or one of an earlier release,
 * on the new path of a Mobile PPC move: its CU, code 8) would swallow it.
 * Such a message is forwarded unchanged instead, as a router forwards an IP
 * packet it does not need to understand: TTL decremented, header checksum
 * fixed, nothing else touched (its authentication, if any, is its owner's).
 *
 * Not forwarded, each counted: a message addressed to this host (or to a
 * broadcast or special address: never a reflector), TTL exhausted, and beyond
 * a per-source token bucket (so a GE is no faster relay of unknown messages
 * than of DPRP's own). A CL GE forwards them too: it relays DDEs it cannot
 * authenticate the same way, and the bucket bounds what either carries.
 * Pure apart from the caller's clock.
 */
import { specialAddress } from './addr-guard.js';
import { inetChecksum } from './ipv4.js';
import { RateLimiter, type RateLimit } from './rate-limit.js';
import { MSG_TYPE_NAMES } from './wire.js';
import { HOLD_CODE } from './hold.js';

/** Why a foreign control message was not forwarded (gscip_dprp_foreign_control_total{outcome}). */
export type ForeignRefusal = 'to_this_host' | 'special_address' | 'ttl_exceeded' | 'limited' | 'malformed';

export const FOREIGN_OUTCOMES = ['forwarded', 'to_this_host', 'special_address', 'ttl_exceeded', 'limited', 'malformed'] as const;

/** True when DPRP itself speaks control messages of this ICMP code (DDE, RGI, MPIT, CDN, HOLD). */
export function isDprpCode(code: number): boolean {
  return code === HOLD_CODE || code in MSG_TYPE_NAMES;
}

/** The packet to send on for `ip` (a copy: TTL - 1, header checksum fixed), or why not. */
export function forwardedCopy(ip: Buffer): Buffer | 'ttl_exceeded' | 'malformed' {
  if (ip.length < 20 || ip[0] >> 4 !== 4) return 'malformed';
  const ihl = (ip[0] & 0x0f) * 4;
  const total = ip.readUInt16BE(2);
  if (ihl < 20 || total < ihl || total > ip.length) return 'malformed';
  if (ip[8] <= 1) return 'ttl_exceeded';
  const out = Buffer.from(ip.subarray(0, total));
  out[8] -= 1;
  out.writeUInt16BE(0, 10);
  out.writeUInt16BE(inetChecksum(out, 0, ihl), 10);
  return out;
}

export class ForeignControlRelay {
  private readonly limiter: RateLimiter;

  constructor(limit: RateLimit, private readonly isOwnOrBroadcast: (addr: string) => boolean) {
    this.limiter = new RateLimiter(limit);
  }

  /** The packet to forward for the message `ip` from src to dst, or why it is not forwarded. */
  decide(ip: Buffer, src: string, dst: string, nowMs: number): Buffer | ForeignRefusal {
    if (specialAddress(dst) !== null || specialAddress(src) !== null) return 'special_address';
    if (this.isOwnOrBroadcast(dst)) return 'to_this_host';
    const copy = forwardedCopy(ip);
    if (typeof copy === 'string') return copy;
    const v = this.limiter.take(src, nowMs);
    return v === 'ok' ? copy : 'limited';
  }
}
