/**
 * GMS checks, from an enrolled agent data dir: the CA is the one pinned at
 * enrollment, the agent's certificate is valid and issued by it, the GMS
 * answers GET /v1/ge/self over mutual TLS with that certificate (the same
 * request and TLS code the agent uses: gms/client.ts), and this host's clock
 * agrees with the GMS's (its Date header) to within half the DPRP replay window.
 */
import { X509Certificate } from 'node:crypto';
import { certFingerprint, normalizeFingerprint } from '../gms/ca.js';
import { isEnrolled, loadIdentity, type AgentIdentity } from '../gms/agent-files.js';
import { rawRequest, tlsOf } from '../gms/client.js';
import { DEFAULT_REPLAY } from '../dprp/replay.js';
import { failed, guard, ok, warn, type Check } from './checks.js';

/** Two GEs each within this of the GMS are within the replay window of each other. */
export const MAX_GMS_CLOCK_OFFSET_MS = DEFAULT_REPLAY.windowMs / 2;
/** Above this the offset is reported as a warning (clocks drift apart from here). */
export const WARN_GMS_CLOCK_OFFSET_MS = 2_000;
const CERT_WARN_DAYS = 14;

function caCheck(dir: string, id: AgentIdentity): Check {
  const t = 'GMS CA pinned';
  const have = certFingerprint(id.caPem);
  let pinned: string;
  try { pinned = normalizeFingerprint(id.caFingerprint); } catch (e) { return failed('gms.ca', t, `${dir}/identity/gms.json: ${(e as Error).message}`, 're-enroll: gscip agent enroll ...'); }
  if (have !== pinned) {
    return failed('gms.ca', t, `${dir}/identity/ca.crt has fingerprint ${have}, but enrollment pinned ${pinned}: the CA file was replaced`,
      `restore the CA the GMS printed at enrollment, or re-enroll: gscip agent enroll --gms ${id.url} --ca-fingerprint FP --token-file F --data-dir ${dir}`);
  }
  return ok('gms.ca', t, `CA ${have.slice(0, 16)}… pinned at enrollment (identity/ca.crt matches identity/gms.json)`);
}

function certCheck(dir: string, id: AgentIdentity): Check {
  const t = 'agent certificate';
  const reenroll = `re-enroll with a new token: gscip gms token issue --ge ${id.userId} (on the GMS), then gscip agent enroll --gms ${id.url} ... --data-dir ${dir}`;
  const cert = new X509Certificate(id.certPem);
  const ca = new X509Certificate(id.caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return failed('gms.cert', t, `${dir}/identity/agent.crt is not signed by the pinned GMS CA`, reenroll);
  const now = Date.now();
  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  if (now < notBefore) return failed('gms.cert', t, `${id.userId}'s certificate is valid only from ${cert.validFrom} (this host's clock is behind?)`, 'fix the clock (see time sync), or re-enroll');
  if (now >= notAfter) return failed('gms.cert', t, `${id.userId}'s certificate expired ${cert.validTo}`, reenroll);
  const days = (notAfter - now) / 86_400_000;
  if (days < CERT_WARN_DAYS) return warn('gms.cert', t, `${id.userId}'s certificate expires in ${days.toFixed(1)} days (${cert.validTo})`, reenroll);
  return ok('gms.cert', t, `${id.userId}, issued by the pinned CA, valid until ${cert.validTo}`);
}

async function reachCheck(dir: string, id: AgentIdentity): Promise<Check[]> {
  const t = 'GMS reachable';
  const t0 = Date.now();
  let r: Awaited<ReturnType<typeof rawRequest>>;
  try {
    r = await rawRequest(new URL(id.url), '/v1/ge/self', { ...tlsOf(id), timeoutMs: 5000 });
  } catch (e) {
    return [failed('gms.reachable', t, `${id.url}: ${(e as Error).message}`,
      `check that the GMS runs (gscip gms serve) and that ${new URL(id.url).host} is reachable from here (routes, firewall); the agent keeps its cached keys meanwhile`)];
  }
  const t1 = Date.now();
  if (r.status === 401 || r.status === 403) {
    return [failed('gms.reachable', t, `${id.url} refused ${id.userId} (HTTP ${r.status}): revoked, or the GMS lost its enrollment`, `re-enroll: gscip gms token issue --ge ${id.userId}; gscip agent enroll ... --data-dir ${dir}`)];
  }
  if (r.status !== 200) return [failed('gms.reachable', t, `${id.url} answered HTTP ${r.status} to GET /v1/ge/self`, 'see the GMS log')];
  const out = [ok('gms.reachable', t, `${id.url} answered GET /v1/ge/self over mutual TLS as ${id.userId} in ${t1 - t0} ms`)];
  out.push(clockCheck(r.date, t0, t1, id.url));
  return out;
}

/**
 * Offset of our clock from the GMS's Date header. The header has 1 s
 * resolution and was written somewhere in [t0, t1]: the bound subtracts that.
 */
export function clockCheck(date: string | undefined, t0: number, t1: number, url: string): Check {
  const t = 'clock vs GMS';
  if (!date || Number.isNaN(Date.parse(date))) return warn('gms.clock', t, `${url} sent no Date header: cannot compare clocks`);
  const server = Date.parse(date);
  // The server's time was in [server, server + 1000) when ours was in [t0, t1]:
  // our offset lies in centre ± half, and the check uses the smallest offset possible.
  const centre = (t0 + t1) / 2 - (server + 500);
  const half = 500 + (t1 - t0) / 2;
  const offset = Math.sign(centre) * Math.max(0, Math.abs(centre) - half);
  const shown = `${centre >= 0 ? '+' : ''}${(centre / 1000).toFixed(1)} s (±${(half / 1000).toFixed(1)} s)`;
  const fix = 'run an NTP client on this host and on the GMS (chronyd, systemd-timesyncd)';
  if (Math.abs(offset) > MAX_GMS_CLOCK_OFFSET_MS) {
    return failed('gms.clock', t, `this host's clock is ${shown} from the GMS's: beyond ${MAX_GMS_CLOCK_OFFSET_MS / 1000} s, half the DPRP replay window, so its peers may refuse its messages as stale or future`, fix);
  }
  if (Math.abs(offset) > WARN_GMS_CLOCK_OFFSET_MS) return warn('gms.clock', t, `this host's clock is ${shown} from the GMS's`, fix);
  return ok('gms.clock', t, `within ${shown} of the GMS`);
}

export async function gmsChecks(dataDir: string): Promise<Check[]> {
  if (!isEnrolled(dataDir)) {
    return [failed('gms.enrolled', 'GMS enrolled', `${dataDir} holds no enrollment (no identity/gms.json)`, `enroll once: gscip agent enroll --gms URL --token-file F --ca-fingerprint FP --data-dir ${dataDir}`)];
  }
  let id: AgentIdentity;
  try { id = loadIdentity(dataDir); } catch (e) {
    return [failed('gms.enrolled', 'GMS enrolled', `${dataDir}: ${(e as Error).message}`, `chmod 0600 ${dataDir}/identity/agent.key, or re-enroll`)];
  }
  const out: Check[] = [ok('gms.enrolled', 'GMS enrolled', `${dataDir}: ${id.userId} at ${id.url}`)];
  out.push(...await guard('gms.ca', 'GMS CA pinned', () => caCheck(dataDir, id)));
  out.push(...await guard('gms.cert', 'agent certificate', () => certCheck(dataDir, id)));
  out.push(...await guard('gms.reachable', 'GMS reachable', () => reachCheck(dataDir, id)));
  return out;
}
