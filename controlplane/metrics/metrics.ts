/**
 * Every Prometheus metric of GSCIP, defined in this one module (names carry
 * units: _seconds, _total). Components import the metric objects they update;
 * nothing else calls the prom-client constructors.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CounterKind } from '../maps/abi.js';
import { DIRS } from '../maps/vocabulary.js';

export const registry = new Registry();
let defaultsOn = false;
/** Process metrics (RSS, CPU, event loop) for long-running daemons; call once. */
export function enableProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: 'gscip_' });
  // prom-client names three gauges *_total, which Prometheus reserves for counters
  // (promtool check metrics fails them); the same counts stay as gscip_nodejs_active_{handles,requests,resources}.
  for (const n of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`gscip_nodejs_active_${n}_total`);
}

// ---- GMS (controlplane/gms) ----

/** Values the GMS gauges read at scrape time; set by the running GMS server. */
export interface GmsGaugeSource {
  enrolled(): number;
  connected(): number;
  /** group id -> seconds since its current key was created */
  keyAges(): Array<[number, number]>;
}
let gmsSource: GmsGaugeSource | null = null;
export function setGmsGaugeSource(s: GmsGaugeSource | null): void { gmsSource = s; }

export const gmsGesEnrolled = new Gauge({
  name: 'gscip_gms_ges_enrolled', help: 'GEs holding a valid, unrevoked GMS certificate', registers: [registry],
  collect() { this.set(gmsSource ? gmsSource.enrolled() : 0); },
});
export const gmsGesConnected = new Gauge({
  name: 'gscip_gms_ges_connected', help: 'GEs with an open subscription stream to the GMS', registers: [registry],
  collect() { this.set(gmsSource ? gmsSource.connected() : 0); },
});
export const gmsKeyAgeSeconds = new Gauge({
  name: 'gscip_gms_key_age_seconds', help: 'Age of the current key of each group', labelNames: ['group'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const [g, age] of gmsSource ? gmsSource.keyAges() : []) this.set({ group: String(g) }, age);
  },
});
export const gmsRotationsTotal = new Counter({
  name: 'gscip_gms_rotations_total', help: 'Group key rotations, by cause',
  labelNames: ['reason'] as const, // schedule | demand | member_left | group_created | cipher_changed
  registers: [registry],
});
export const gmsEnrollmentsTotal = new Counter({
  name: 'gscip_gms_enrollments_total', help: 'Enrollment attempts, by result',
  labelNames: ['result'] as const, // ok | token_unknown | token_used | token_expired | ge_removed | bad_csr | bad_credentials | no_group | name_taken | directory_unreachable | no_directory
  registers: [registry],
});
/** GSRA remote users from the directory (controlplane/gms/directory.ts). */
export const gmsDirectorySyncsTotal = new Counter({
  name: 'gscip_gms_directory_syncs_total', help: 'Directory membership reads, by result',
  labelNames: ['result'] as const, // ok | failed | stale (failed past staleSeconds: users lost their groups)
  registers: [registry],
});
export const gmsDirectoryRevocationsTotal = new Counter({
  name: 'gscip_gms_directory_revocations_total', help: 'Directory users losing access, by reason',
  labelNames: ['reason'] as const, // left_group | disabled (not an enabled user any more) | stale
  registers: [registry],
});
/** GSRA router (controlplane/gsra/): requests answered, refusals by reason, active remote users. */
export const gsraRequestsTotal = new Counter({
  name: 'gscip_gsra_requests_total', help: 'GSRA requests the router handled, by message and result',
  labelNames: ['message', 'result'] as const, // message auth|bind|map|close; result ok | a refusal reason | bad_mac | replay | stale | future | malformed
  registers: [registry],
});
export const gsraRefusalsTotal = new Counter({
  name: 'gscip_gsra_refusals_total', help: 'GSRA refusals, by reason (wire/REFUSE_REASONS and the unanswered ones)',
  labelNames: ['reason'] as const,
  registers: [registry],
});
export const gsraAdmissionsTotal = new Counter({
  name: 'gscip_gsra_admissions_total', help: 'GSRA flows mapped (admitted) by the router', registers: [registry],
});
/** GSRA's EN part (controlplane/gsra/en-handler.ts): flows to a VIN, by outcome (admitted, a refusal reason, timeout, busy), and DNS answers virtualised. */
export const gsraEnFlowsTotal = new Counter({
  name: 'gscip_gsraen_flows_total', help: 'Flows to a GSRA virtual address (VIN), by outcome: admitted, the router\'s refusal reason, timeout, busy, no_key', labelNames: ['result'] as const, registers: [registry],
});
/** GSRA FTP passive mode (docs/gsra.md "FTP passive mode"): 227 replies the EN rewrote or passed, replies the router learnt a data port from. */
export const gsraEnFtpRepliesTotal = new Counter({
  name: 'gscip_gsraen_ftp_replies_total', help: 'FTP 227 replies from a VIN\'s port 21 on the EN, by result: rewritten (same length), resized (longer, sequence delta kept), same, not_gsra, or why passed unmodified (no_room, no_numbers, bad_checksum, table_full, delta_too_large)', labelNames: ['result'] as const, registers: [registry],
});
export const gsraFtpAnnouncementsTotal = new Counter({
  name: 'gscip_gsra_ftp_announcements_total', help: 'FTP 227/229 replies an IN sent on a GSRA control connection, by result: announced (the data port admissible), no_mapping, no_port', labelNames: ['result'] as const, registers: [registry],
});
let gsraActiveSource: (() => number) | null = null;
export function setGsraActiveSource(f: (() => number) | null): void { gsraActiveSource = f; }
export const gsraActiveUsers = new Gauge({
  name: 'gscip_gsra_active_users', help: 'Remote users with at least one mapping on this GSRA router', registers: [registry],
  collect() { this.set(gsraActiveSource ? gsraActiveSource() : 0); },
});
export const gmsAuthRefusedTotal = new Counter({
  name: 'gscip_gms_auth_refused_total', help: 'Requests refused by client authentication, by reason',
  labelNames: ['reason'] as const, // no_cert | untrusted | unknown_cert | revoked | ge_removed | wrong_role
  registers: [registry],
});
export const gmsGnatReportsTotal = new Counter({
  name: 'gscip_gms_gnat_reports_total', help: 'External addresses GNATs reported (nat.follow), by result: accepted (every GE\'s gnats changed), unchanged, not_a_gnat, bad_request; not_saved (also counted: kept in memory, the database write failed)', labelNames: ['result'] as const, registers: [registry],
});
export const gmsPushesTotal = new Counter({
  name: 'gscip_gms_pushes_total', help: 'State updates pushed to subscribed GEs', registers: [registry],
});
/** Agent side (controlplane/gms/client.ts): each refused (group, version) is counted once, not at every reconciliation. */
export const gmsClientKeysRefusedTotal = new Counter({
  name: 'gscip_gms_client_keys_refused_total', help: 'Delivered group keys the agent refused to install, by reason',
  labelNames: ['reason'] as const, // unknown_cipher | bad_key
  registers: [registry],
});

// ---- Fast path and agent (controlplane/agent) ----

/** What the datapath metrics read at scrape time; set by the running agent. */
export interface DatapathMetricsSource {
  /** Every counter of gscip_counters summed over CPUs, in total and per direction; name = label from the ABI (abi.ts STATS). */
  stats(): Array<{ name: string; kind: CounterKind; packets: bigint; bytes: bigint; ingress: { packets: bigint; bytes: bigint }; egress: { packets: bigint; bytes: bigint } }>;
  /** Entries in use and capacity of each hash map. */
  occupancy(): Array<{ map: string; entries: number; capacity: number }>;
  stashPackets(): number;
}
let datapathSource: DatapathMetricsSource | null = null;
export function setDatapathMetricsSource(s: DatapathMetricsSource | null): void { datapathSource = s; }

/* Counters owned by the kernel: re-read at each scrape (reset + inc keeps counter semantics for Prometheus).
 * Label sets are bounded by the ABI: reason = a declared reason (abi.ts STATS), kind = verdict | drop | overlay,
 * direction = ingress | egress (maps/vocabulary.ts DIRS). Summing kind="verdict" and kind="drop" counts every packet once; overlays
 * (xlat, released) count a packet a second time for what happened on its way. The *_total pair without a
 * direction is the sum over both directions, kept for the dashboards that read it before directions existed. */
export const datapathPacketsTotal = new Counter({
  name: 'gscip_datapath_packets_total', help: 'Packets per fast-path reason, both directions (gscip_counters, all CPUs)',
  labelNames: ['reason', 'kind'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const s of datapathSource ? datapathSource.stats() : []) this.inc({ reason: s.name, kind: s.kind }, Number(s.packets));
  },
});
export const datapathBytesTotal = new Counter({
  name: 'gscip_datapath_bytes_total', help: 'Bytes per fast-path reason, both directions (gscip_counters, all CPUs)',
  labelNames: ['reason', 'kind'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const s of datapathSource ? datapathSource.stats() : []) this.inc({ reason: s.name, kind: s.kind }, Number(s.bytes));
  },
});
export const datapathDirectionPacketsTotal = new Counter({
  name: 'gscip_datapath_direction_packets_total', help: 'Packets per fast-path reason and direction (gscip_counters, all CPUs)',
  labelNames: ['reason', 'kind', 'direction'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const s of datapathSource ? datapathSource.stats() : []) for (const d of DIRS.names) this.inc({ reason: s.name, kind: s.kind, direction: d }, Number(s[d].packets));
  },
});
export const datapathDirectionBytesTotal = new Counter({
  name: 'gscip_datapath_direction_bytes_total', help: 'Bytes per fast-path reason and direction (gscip_counters, all CPUs)',
  labelNames: ['reason', 'kind', 'direction'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const s of datapathSource ? datapathSource.stats() : []) for (const d of DIRS.names) this.inc({ reason: s.name, kind: s.kind, direction: d }, Number(s[d].bytes));
  },
});
export const mapEntries = new Gauge({
  name: 'gscip_map_entries', help: 'Entries in use per BPF map', labelNames: ['map'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const o of datapathSource ? datapathSource.occupancy() : []) this.set({ map: o.map }, o.entries);
  },
});
export const mapCapacityEntries = new Gauge({
  name: 'gscip_map_capacity_entries', help: 'max_entries per BPF map', labelNames: ['map'] as const, registers: [registry],
  collect() {
    this.reset();
    for (const o of datapathSource ? datapathSource.occupancy() : []) this.set({ map: o.map }, o.capacity);
  },
});
export const agentMemoryReliefsTotal = new Counter({
  name: 'gscip_agent_memory_reliefs_total',
  help: 'Full GC + malloc_trim runs after a burst of punted packets ended (agent/memory-relief.ts)', registers: [registry],
});
export const agentPuntsTotal = new Counter({
  name: 'gscip_agent_punts_total', help: 'Punt records received from the fast path, by reason',
  labelNames: ['reason'] as const, // pit_miss | control | truncated | unknown
  registers: [registry],
});
export const agentPuntDelaySeconds = new Histogram({
  name: 'gscip_agent_punt_delay_seconds',
  help: 'Time from the fast path punting a packet (ts_ns) to the agent dispatching it: the control-plane hop every negotiation message pays',
  labelNames: ['reason'] as const,
  buckets: [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1],
  registers: [registry],
});
export const agentReleasesTotal = new Counter({
  name: 'gscip_agent_releases_total', help: 'Stashed packets re-sent to the fast path, by direction',
  labelNames: ['dir'] as const, registers: [registry],
});
export const agentReleaseErrorsTotal = new Counter({
  name: 'gscip_agent_release_errors_total', help: 'Releases the kernel refused (sendto failed)', registers: [registry],
});
export const agentStashPackets = new Gauge({
  name: 'gscip_agent_stash_packets', help: 'Punted packets waiting for a decision', registers: [registry],
  collect() { this.set(datapathSource ? datapathSource.stashPackets() : 0); },
});
export const agentStashDroppedTotal = new Counter({
  name: 'gscip_agent_stash_dropped_total', help: 'Stashed packets discarded instead of released, by reason',
  labelNames: ['reason'] as const, // flow_full | stash_full | expired | stale_on_start | handler | truncated
  registers: [registry],
});
export const agentHandlerErrorsTotal = new Counter({
  name: 'gscip_agent_handler_errors_total', help: 'Punt handler calls that threw', labelNames: ['handler'] as const, registers: [registry],
});
export const agentControlSentTotal = new Counter({
  name: 'gscip_agent_control_sent_total', help: 'GSCIP control packets sent by punt handlers', registers: [registry],
});

// ---- DPRP (controlplane/dprp) ----

export const dprpNegotiationsStartedTotal = new Counter({
  name: 'gscip_dprp_negotiations_started_total', help: 'DPRP negotiations this GE started, by trigger',
  labelNames: ['reason'] as const, // miss | rekey
  registers: [registry],
});
export const dprpNegotiationsCompletedTotal = new Counter({
  name: 'gscip_dprp_negotiations_completed_total', help: 'DPRP negotiations this GE started that completed, by outcome',
  labelNames: ['outcome'] as const, // encrypted | plaintext | refused | no_end_ge | upgraded (late RGI after no_end_ge)
  registers: [registry],
});
export const dprpNegotiationsFailedTotal = new Counter({
  name: 'gscip_dprp_negotiations_failed_total', help: 'DPRP negotiations this GE started that failed, by reason',
  labelNames: ['reason'] as const, // dde_timeout | cdn_timeout | too_many_negotiations | stash_full | bad_path | keys_missing
  registers: [registry],
});
export const dprpRekeySignalsTotal = new Counter({
  name: 'gscip_dprp_rekey_signals_total', help: 'PCCOM per-flow key re-key signals DPRP received, by what it did',
  labelNames: ['answer'] as const, // started | unknown_flow | not_encrypted | running | too_soon | too_many_negotiations
  registers: [registry],
});
export const dprpOwnGmsFlowsTotal = new Counter({
  name: 'gscip_dprp_own_gms_flows_total', help: 'The agent\'s own TCP connections to its GMS endpoint passed without negotiation (PIT why own_gms)',
  registers: [registry],
});
export const dprpNegotiationSeconds = new Histogram({
  name: 'gscip_dprp_negotiation_seconds', help: 'Time from PIT miss to completed DPRP negotiation at the start GE',
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [registry],
});
export const dprpForeignControlTotal = new Counter({
  name: 'gscip_dprp_foreign_control_total',
  help: 'Control messages of a type DPRP does not speak (another part\'s, e.g. a Mobile PPC CU this GE does not run) seen in transit, by outcome: forwarded unchanged, or why not',
  labelNames: ['outcome'] as const, // controlplane/dprp/foreign-control.ts FOREIGN_OUTCOMES
  registers: [registry],
});

export const dprpMessagesRejectedTotal = new Counter({
  name: 'gscip_dprp_messages_rejected_total', help: 'DPRP control messages ignored, by reason (wire_* = malformed)',
  labelNames: ['reason'] as const, // controlplane/dprp/node.ts REJECT_REASONS, wire_<WIRE_REJECT_REASONS> and wire_<OPTION_REFUSAL_REASONS> (option-codecs.ts)
  registers: [registry],
});
export const dprpSendsSuppressedTotal = new Counter({
  name: 'gscip_dprp_sends_suppressed_total', help: 'DPRP control messages this GE did not send: a DDE retransmission over the per-destination limit, a destination no GE sends to',
  labelNames: ['reason'] as const, registers: [registry], // controlplane/dprp/node-deps.ts SUPPRESS_REASONS
});
export const dprpPlaintextFlowsTotal = new Counter({
  name: 'gscip_dprp_plaintext_flows_total',
  help: 'Flows this GE installed as plaintext (result=pass) or refused (result=refused), by why: no downgrade goes unseen',
  labelNames: ['result', 'why'] as const, registers: [registry], // why: enum gscip_pit_why names (maps/vocabulary.ts PIT_WHYS)
});
export const dprpNatFollowTotal = new Counter({
  name: 'gscip_dprp_nat_follow_total',
  help: 'Flows past a NAT (dprp/nat-follow.ts): entries moved to the source port the NAT gave the flow (repointed), or a negotiation not followed because the wait table was full (wait_table_full)',
  labelNames: ['what'] as const, registers: [registry],
});
export const dprpPolicyOverridesTotal = new Counter({
  name: 'gscip_dprp_policy_overrides_total', help: 'Unauthenticated pass decisions a CL GE turned into discard', registers: [registry],
});
export const dprpTransitReinstatedTotal = new Counter({
  name: 'gscip_dprp_transit_reinstated_total',
  help: 'Transit passes (flows this GE relays for another group) that idled out here and were put back by the flow\'s next packet, without a negotiation',
  registers: [registry],
});
export const dprpDowngradesRefusedTotal = new Counter({
  name: 'gscip_dprp_downgrades_refused_total',
  help: 'Unauthenticated pass or discard words (a non-member on the path, or a forger) for flows this GE encrypts: not installed, the flow stays encrypted',
  registers: [registry],
});

/* Mobile PPC (controlplane/mobility/, docs/mobility.md). */
export const mobilityMovesTotal = new Counter({
  name: 'gscip_mobility_moves_total', help: 'Address changes of this GE that moved live flows (one per move)', registers: [registry],
});
export const mobilityFlowsMovedTotal = new Counter({
  name: 'gscip_mobility_flows_moved_total', help: 'Flows whose CIT was installed or re-pointed, by end (mover, stationary)', labelNames: ['end'], registers: [registry],
});
export const mobilityCuSentTotal = new Counter({
  name: 'gscip_mobility_cu_sent_total', help: 'CUs sent by this GE (retry="true": a re-send of an unanswered CU)', labelNames: ['retry'], registers: [registry],
});
export const mobilityCuAnsweredTotal = new Counter({
  name: 'gscip_mobility_cu_answered_total', help: 'CUs this GE sent that were answered by an authenticated CU-ACK', registers: [registry],
});
export const mobilityCuFailedTotal = new Counter({
  name: 'gscip_mobility_cu_failed_total', help: 'CUs this GE gave up on, by reason (no_answer after the retries, no_key to sign with)', labelNames: ['reason'], registers: [registry],
});
export const mobilityCuRefusedTotal = new Counter({
  name: 'gscip_mobility_cu_refused_total', help: 'CU / CU-ACK messages or entries refused, by reason (nothing was moved)', labelNames: ['reason'], registers: [registry],
});
export const mobilityTransitTotal = new Counter({
  name: 'gscip_mobility_transit_total', help: 'CU / CU-ACK messages this GE sent on between two other GEs (on the new path), by result (learned: its PIT entries for the moved flows written)', labelNames: ['result'], registers: [registry],
});
export const mobilityFlowsRekeyedTotal = new Counter({
  name: 'gscip_mobility_flows_rekeyed_total', help: 'Moved flows switched to a newer group key version on their wire CIDs, by step (sent: this end started it, its decrypt switched; applied: the peer\'s re-key CU; answered: the peer switched, this end\'s encrypt too)', labelNames: ['step'], registers: [registry],
});
export const mobilityDdnsUpdatesTotal = new Counter({
  name: 'gscip_mobility_ddns_updates_total', help: 'DDNS updates of this GE\'s name after a move, by result (the server\'s rcode, or no_answer / error)', labelNames: ['result'], registers: [registry],
});
export const mobilityCuRedirectedTotal = new Counter({
  name: 'gscip_mobility_cu_redirected_total', help: 'Unanswered CUs sent to the peer at another address, by why (rendezvous: DNS said the peer moved; peer_cu: the peer\'s own CU came from there)', labelNames: ['why'], registers: [registry],
});
export const mobilityRendezvousLookupsTotal = new Counter({
  name: 'gscip_mobility_rendezvous_lookups_total', help: 'Rendezvous questions (where is the peer now?) by result (moved, same, error)', labelNames: ['result'], registers: [registry],
});
export const mobilityHandoverSeconds = new Histogram({
  name: 'gscip_mobility_handover_seconds', help: 'Time from a detected move to the CU-ACK that switches the flows, at the mover',
  buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
  registers: [registry],
});

/* The GNAT's NAT (controlplane/natf/, docs/natf.md). Sessions created and
 * refused are fast-path counters: gscip_datapath_direction_packets_total
 * {reason="nat_created" | "nat_table_full" | "nat_no_port" | ...}. */
export const natSessions = new Gauge({
  name: 'gscip_nat_sessions', help: 'NAT sessions in gscip_nat at the last expiry pass, by state (udp, tcp_established, tcp_transitory)',
  labelNames: ['state'] as const, registers: [registry],
});
export const natSessionsCapacity = new Gauge({
  name: 'gscip_nat_sessions_capacity', help: 'max_entries of gscip_nat: sessions beyond it are refused (nat_table_full)', registers: [registry],
});
export const natPortsUsed = new Gauge({
  name: 'gscip_nat_ports_used', help: 'External ports claimed by a session at the last expiry pass, by protocol', labelNames: ['proto'] as const, registers: [registry],
});
export const natPortRangeSize = new Gauge({
  name: 'gscip_nat_port_range_size', help: 'External ports the NAT hands out, per protocol (config nat.ports)', registers: [registry],
});
export const natSessionsExpiredTotal = new Counter({
  name: 'gscip_nat_sessions_expired_total', help: 'NAT sessions removed after their idle timeout, by state', labelNames: ['state'] as const, registers: [registry],
});
export const natOrphanClaimsRemovedTotal = new Counter({
  name: 'gscip_nat_orphan_claims_removed_total', help: 'Port claims found without their session at two expiry passes in a row, removed', registers: [registry],
});
export const natActEntries = new Gauge({
  name: 'gscip_nat_act_entries', help: 'Entries of this GNAT\'s ACT as last delivered by the GMS', registers: [registry],
});
export const natDdnsUpdatesTotal = new Counter({
  name: 'gscip_nat_ddns_updates_total', help: 'DDNS updates of the ACT\'s names, by action (published: the name\'s A RRset set to the GNAT\'s address; republished: set again, the GNAT\'s external address changed; withdrawn: deleted, the name left the ACT or lost outside access) and result (the server\'s rcode, or no_answer / error)', labelNames: ['action', 'result'] as const, registers: [registry],
});
export const natExternalChangesTotal = new Counter({
  name: 'gscip_nat_external_changes_total', help: 'Times the GNAT took another external address because the old one left its outside interface (nat.follow)', registers: [registry],
});
export const natExternalReportsTotal = new Counter({
  name: 'gscip_nat_external_reports_total', help: 'Reports of the GNAT\'s external address to its GMS replicas (nat.follow), by result: ok, or the refusal\'s code, or error (no answer)', labelNames: ['result'] as const, registers: [registry],
});
export const natSessionsFlushedTotal = new Counter({
  name: 'gscip_nat_sessions_flushed_total', help: 'NAT sessions removed because their external address left the outside interface (nat.follow), by state', labelNames: ['state'] as const, registers: [registry],
});

// ---- NAT-f (docs/natf.md): the initiator side (part natf) and the GNAT's inbound mappings (part nat)
export const natfDnsAnswersTotal = new Counter({
  name: 'gscip_natf_dns_answers_total', help: 'DNS answers the DNS stage punted, by outcome (rewritten, untouched, servfail_pool_exhausted, passed_<why>; over TCP also dropped_tcp_retransmission_of_held)', labelNames: ['result'] as const, registers: [registry],
});
export const natfVirtualAddresses = new Gauge({
  name: 'gscip_natf_virtual_addresses', help: 'Virtual addresses in the NRT (occupancy of the virtual pool)', registers: [registry],
});
export const natfVirtualCapacity = new Gauge({
  name: 'gscip_natf_virtual_capacity', help: 'Virtual addresses the NRT may hand out at once', registers: [registry],
});
export const natfVatFlows = new Gauge({
  name: 'gscip_natf_vat_flows', help: 'Flows to virtual addresses with a VAT translation (V1:Y <-> G2:Z)', registers: [registry],
});
export const natfDnsTcpConnections = new Gauge({
  name: 'gscip_natf_dns_tcp_connections', help: 'TCP connections from port 53 whose DNS messages are followed across segments (dns-tcp-stream.ts)', registers: [registry],
});
export const natfDnsTcpHeldSegments = new Gauge({
  name: 'gscip_natf_dns_tcp_held_segments', help: 'TCP segments from port 53 held until their DNS message is whole (at most 250 ms each)', registers: [registry],
});
export const natfFlowsTotal = new Counter({
  name: 'gscip_natf_flows_total', help: 'Flows to virtual addresses, by outcome (settled, or the failure: refused_by_gnat, no_port_in_rgi, no_answer, refused, other; refusal_held: a packet of a flow refused a moment ago, answered at once without asking the GNAT again)', labelNames: ['result'] as const, registers: [registry],
});
export const natfVatExpiredTotal = new Counter({
  name: 'gscip_natf_vat_expired_total', help: 'VAT translations removed because their flow\'s PIT entries are gone', registers: [registry],
});
export const natInboundMappingsTotal = new Counter({
  name: 'gscip_nat_inbound_mappings_total', help: 'DDEs naming a private host at this GNAT, by result (created, reused, or the refusal: unknown_name, outside_access_denied, not_member, no_port, table_full)', labelNames: ['result'] as const, registers: [registry],
});
export const natOutboundMappingsTotal = new Counter({
  name: 'gscip_nat_outbound_mappings_total', help: 'DDEs of an inside GE relayed out by this GNAT, the flow mapped in its NAPT first, by result (created, reused, no_port, table_full)', labelNames: ['result'] as const, registers: [registry],
});
