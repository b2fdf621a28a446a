/**
 * When a flow's entries expire, per kind of entry (RFC 6146 gives NAT its own
 * timeouts; einat-ebpf keeps one per binding). A flow is judged as one unit:
 * its entries go together (ordered-writes.ts), never some of them, and not
 * before the longest timeout any of its entries' kinds asks for, so no part's
 * entry is forgotten early.
 *
 *   pit   idle / closed timeouts (DPRP's idleTimeoutMs / closedTimeoutMs)
 *   cit, vat, nat   filled by the parts that write those kinds; an XLAT entry
 *         of a kind with no policy is refused when written (errors.ts)
 *
 * Activity comes from the PIT entries (the fast path stamps `last_seen_ns`
 * there; XLAT values carry no such field): a flow is *closed* on an RST on
 * any entry, or a FIN seen in both directions (on an entry of the flow and on
 * one of its reverse); a half-close keeps the idle timeout. Both timeouts
 * count from the last packet on any entry.
 */
import { flowKey, type FiveTuple, type MapSlot } from './cid.js';
import { FLOW_ERROR_CODES, FlowError } from './errors.js';
import type { SlotActivity, XlatKindName } from './flow-maps.js';

export interface ExpiryPolicy {
  /** Since the last packet, for a flow not seen closing. */
  idleMs: number;
  /** Since the last packet, once the flow was seen closing. */
  closedMs: number;
}

export interface ExpiryPolicies {
  pit: ExpiryPolicy;
  xlat: Partial<Record<XlatKindName, ExpiryPolicy>>;
}

export function xlatPolicy(p: ExpiryPolicies, kind: XlatKindName): ExpiryPolicy {
  const x = p.xlat[kind];
  if (!x) throw new FlowError(FLOW_ERROR_CODES.NO_EXPIRY_POLICY, `flow table: XLAT kind '${kind}' has no expiry policy (the part writing it declares one)`);
  return x;
}

/** The timeout that applies to a flow holding XLAT entries of `kinds`: the longest any of them asks for. */
export function limitFor(p: ExpiryPolicies, kinds: Iterable<XlatKindName>, closed: boolean): number {
  const pick = (x: ExpiryPolicy) => (closed ? x.closedMs : x.idleMs);
  let limit = pick(p.pit);
  for (const k of kinds) limit = Math.max(limit, pick(xlatPolicy(p, k)));
  return limit;
}

/** The soonest any flow can expire: flows quieter than this for less time need no look at the kernel. */
export function soonest(p: ExpiryPolicies): number {
  return Math.min(p.pit.idleMs, p.pit.closedMs);
}

export interface FlowActivity {
  lastMs: number;
  closed: boolean;
}

/**
 * Folds the fast path's reports for a flow's PIT entries (oriented by `wire`,
 * its forward direction) into one: the last packet, and whether it closed.
 */
export function foldActivity(
  wire: FiveTuple, entries: readonly MapSlot[], since: number, read: ((k: MapSlot) => SlotActivity | undefined) | undefined,
): FlowActivity {
  let last = since;
  let rst = false;
  let finFwd = false;
  let finRev = false;
  const fwdKey = flowKey(wire);
  for (const e of entries) {
    const a = read?.(e);
    if (!a) continue;
    last = Math.max(last, a.lastSeenMs);
    rst = rst || a.closed;
    if (a.finSeen) {
      if (flowKey(e.flow) === fwdKey) finFwd = true;
      else finRev = true;
    }
  }
  return { lastMs: last, closed: rst || (finFwd && finRev) };
}
