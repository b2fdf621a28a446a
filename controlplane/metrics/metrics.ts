/**
 * Every Prometheus metric of GSCIP, defined in this one module (names carry
 * units: _seconds, _total). Components import the metric objects they update;
 * nothing else calls the prom-client constructors.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
let defaultsOn = false;
/** Process metrics (RSS, CPU, event loop) for long-running daemons; call once. */
export function enableProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: 'gscip_' });
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
  labelNames: ['reason'] as const, // schedule | demand | member_left | group_created
  registers: [registry],
});
export const gmsEnrollmentsTotal = new Counter({
  name: 'gscip_gms_enrollments_total', help: 'Enrollment attempts, by result',
  labelNames: ['result'] as const, // ok | token_unknown | token_used | token_expired | ge_removed | bad_csr
  registers: [registry],
});
export const gmsAuthRefusedTotal = new Counter({
  name: 'gscip_gms_auth_refused_total', help: 'Requests refused by client authentication, by reason',
  labelNames: ['reason'] as const, // no_cert | untrusted | unknown_cert | revoked | ge_removed | wrong_role
  registers: [registry],
});
export const gmsPushesTotal = new Counter({
  name: 'gscip_gms_pushes_total', help: 'State updates pushed to subscribed GEs', registers: [registry],
});
