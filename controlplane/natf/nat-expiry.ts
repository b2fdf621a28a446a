/**
 * When a NAT session ends (docs/natf.md "Timeouts"): its state from what the
 * fast path recorded (gscip_nat_val.flags) and the idle timeout of that state.
 * Pure, no clock of its own: the caller passes `now` on the fast path's clock
 * (CLOCK_MONOTONIC, ns), so tests drive it with a fake one.
 */
import { NAT_F_FIN_IN, NAT_F_FIN_OUT, NAT_F_IN, NAT_F_RST, NAT_F_SYN_OUT } from '../maps/abi.js';
import type { NatVal } from '../maps/codecs.js';
import type { NatTimeouts } from './nat-config.js';

const IPPROTO_TCP = 6;

/**
 * udp: any UDP session. tcp_established: the inside host's SYN was answered
 * from outside and neither an RST nor both FINs were seen (one FIN: still
 * established, half-closed). tcp_transitory: a SYN not yet answered, a
 * session picked up without a SYN, both FINs, or an RST (RFC 6146 3.5.2).
 */
export type NatState = 'udp' | 'tcp_established' | 'tcp_transitory';
export const NAT_STATES: readonly NatState[] = ['udp', 'tcp_established', 'tcp_transitory'];

export function natState(proto: number, flags: number): NatState {
  if (proto !== IPPROTO_TCP) return 'udp';
  if (flags & NAT_F_RST) return 'tcp_transitory';
  if ((flags & NAT_F_FIN_OUT) && (flags & NAT_F_FIN_IN)) return 'tcp_transitory';
  if ((flags & NAT_F_SYN_OUT) && (flags & NAT_F_IN)) return 'tcp_established';
  return 'tcp_transitory';
}

export function natTimeoutS(state: NatState, t: NatTimeouts): number {
  return state === 'udp' ? t.udpS : state === 'tcp_established' ? t.tcpEstablishedS : t.tcpTransitoryS;
}

/** Expired: idle (since last_seen_ns, or created_ns if never seen) at least its state's timeout. */
export function natExpired(proto: number, v: NatVal, nowNs: bigint, t: NatTimeouts): boolean {
  const seen = v.last_seen_ns > v.created_ns ? v.last_seen_ns : v.created_ns;
  if (nowNs <= seen) return false;
  return nowNs - seen >= BigInt(natTimeoutS(natState(proto, v.flags), t)) * 1_000_000_000n;
}
