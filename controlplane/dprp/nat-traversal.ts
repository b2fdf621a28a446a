/**
 * DPRP across a NAT nobody configured for GSCIP (issue 11 item 1; docs/dprp.md
 * "Across NATs and firewalls"). The control messages cross it as UDP (the
 * handler's transport); a GE that sees a DDE come from another address than
 * the start GE it names says so in its record (NAT_SEEN). This module is what
 * the start GE then decides: whether the flow's PCCOM packets would cross a
 * checksum-verifying NAT. A keyed checksum is a wrong checksum to conntrack
 * (nf_conntrack_checksum=1, the Linux default): such a packet is INVALID,
 * not translated, and would leave the NAT with its private source. Only
 * PCCOM's wire-valid forms carry a valid ordinary checksum (docs/pccom.md):
 * TCP's (K in the urgent pointer), and UDP's (K's bits in the IP ID, per-flow
 * keys only), which a start GE and a GE past the NAT send only across a NAT
 * (udpWireAcrossNat: its membership check is weaker than the keyed form's).
 */
import { decide, refusedOutcome, type Outcome, type PathGe } from './decide.js';
import { natSeenOf, PCCOM_CAP_FLOW_KEYS, PCCOM_CAP_UDP_WIRE, PCCOM_CAP_WIRE_CSUM, pccomCapsOf } from './spec-options.js';
import type { DprpConfig } from './node-deps.js';
import type { Flow, GeRecord } from './wire.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** The NAT address the first record naming one saw (a NAT between the start GE and that GE), or null. */
export function natOnPath(records: readonly GeRecord[]): string | null {
  for (const r of records) {
    const a = natSeenOf(r);
    if (a) return a;
  }
  return null;
}

/**
 * Whether a UDP flow across a NAT goes in the UDP wire-valid form between this
 * GE and `caps` (the other encrypting GE's PCCOM_CAPS): it must take the form
 * and per-flow keys (the form's counter); this build takes both.
 */
export function udpWireAcrossNat(flow: Flow, natSeen: boolean, caps: number): boolean {
  const need = PCCOM_CAP_UDP_WIRE | PCCOM_CAP_FLOW_KEYS;
  return natSeen && flow.proto === IPPROTO_UDP && (caps & need) === need;
}

/** Whether the flow's PCCOM packets to `peer` carry valid ordinary checksums (a wire-valid form), with a NAT on the path. */
export function pccomIsWireValid(flow: Flow, peer: GeRecord | undefined): boolean {
  const caps = pccomCapsOf(peer);
  return (flow.proto === IPPROTO_TCP && (caps & PCCOM_CAP_WIRE_CSUM) !== 0) || udpWireAcrossNat(flow, true, caps);
}

/**
 * `out` with a NAT on the path: unchanged unless it encrypts a flow whose
 * PCCOM form would not cross a checksum-verifying NAT (and the configuration
 * does not say the NATs do not verify); then decided as if no group were
 * shared, so OP plaintext and CL refused, why nat_checksum; encryption
 * required to the destination: refused.
 */
export function withNatPolicy(out: Outcome, path: readonly PathGe[], flow: Flow, peer: GeRecord | undefined,
  cfg: Pick<DprpConfig, 'pccomAcrossNat'>, required: boolean): Outcome {
  if (out.verdict !== 'encrypted' || cfg.pccomAcrossNat === 'any' || pccomIsWireValid(flow, peer)) return out;
  const addrs = path.map((g) => g.addr);
  const alone = decide(path.map((g, i) => (i === 0 ? g : { ...g, keys: [] })));
  if (required || alone.verdict === 'refused') return refusedOutcome(addrs, alone.verdict === 'refused' ? alone.refusedBy : addrs[0], 'nat_checksum');
  return { verdict: 'plaintext', why: 'nat_checksum', actions: alone.actions };
}
