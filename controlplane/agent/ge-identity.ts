/**
 * This GE's identity (type, mode) as the agent hands it to punt handler
 * factories (controlplane/parts/handler.ts HandlerFactoryContext):
 *
 *   1. the GMS GE info, when the agent runs with a GMS client (--gms-data-dir):
 *      the delivery cached in the data dir, else one GET /v1/ge/self;
 *   2. else the configuration (`ge: { type, mode }`, flags --ge-type/--ge-mode);
 *   3. else, as a documented fallback for scripts, GSCIP_GE_TYPE/GSCIP_GE_MODE.
 * When the GMS and the configuration both say something they must agree: a
 * CL router must never run as OP because of a stale flag. Resolution is pure
 * given its sources (`loadDelivery`), so it is tested without a GMS.
 */
import { GE_MODES, GE_TYPES, type GeDelivery, type GeMode, type GeType } from '../gms/model.js';
import { ConfigError } from '../config/agent-config.js';
import type { GeIdentity } from '../parts/handler.js';

export type { GeIdentity };

export interface GeIdentitySources {
  /** Configured identity (config file `ge:` or --ge-type/--ge-mode), already schema-checked. */
  configured: { type: GeType; mode: GeMode } | null;
  /** The GMS GE info, or null when the agent runs without a GMS client. Throws if the GMS cannot say. */
  loadDelivery: (() => Promise<Pick<GeDelivery, 'type' | 'mode'>>) | null;
  env?: NodeJS.ProcessEnv;
}

function checkEnv(env: NodeJS.ProcessEnv): { type: GeType; mode: GeMode } | null {
  const type = env.GSCIP_GE_TYPE;
  const mode = env.GSCIP_GE_MODE;
  if (type === undefined && mode === undefined) return null;
  if (!type || !(GE_TYPES as readonly string[]).includes(type)) {
    throw new ConfigError(`GSCIP_GE_TYPE: must be one of ${GE_TYPES.join(', ')} (got '${type ?? ''}')`, []);
  }
  if (!mode || !(GE_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(`GSCIP_GE_MODE: must be OP or CL (got '${mode ?? ''}')`, []);
  }
  return { type: type as GeType, mode: mode as GeMode };
}

/** Resolves the identity, or null when nothing says it (handlers that need it refuse to start). */
export async function resolveGeIdentity(s: GeIdentitySources): Promise<GeIdentity | null> {
  if (s.loadDelivery) {
    let d: Pick<GeDelivery, 'type' | 'mode'>;
    try {
      d = await s.loadDelivery();
    } catch (e) {
      throw new ConfigError(`gms.dataDir: cannot learn this GE's type and mode from the GMS (no cached delivery and ${(e as Error).message})`, []);
    }
    if (!(GE_TYPES as readonly string[]).includes(d.type) || !(GE_MODES as readonly string[]).includes(d.mode)) {
      throw new ConfigError(`gms.dataDir: the GMS delivered an unknown GE type/mode (${String(d.type)}/${String(d.mode)})`, []);
    }
    const c = s.configured;
    if (c && c.type !== d.type) throw new ConfigError(`--ge-type (ge.type): ${c.type} disagrees with the GMS, which defines this GE as ${d.type}`, []);
    if (c && c.mode !== d.mode) throw new ConfigError(`--ge-mode (ge.mode): ${c.mode} disagrees with the GMS, which defines this GE as ${d.mode}`, []);
    return { type: d.type, mode: d.mode, source: 'gms' };
  }
  if (s.configured) return { ...s.configured, source: 'config' };
  const e = checkEnv(s.env ?? process.env);
  return e ? { ...e, source: 'env' } : null;
}

/** The GMS side of the sources for an enrolled data dir: the cached delivery, else one request. */
export function gmsDeliveryLoader(dataDir: string): () => Promise<Pick<GeDelivery, 'type' | 'mode'>> {
  return async () => {
    const { loadCache } = await import('../gms/agent-files.js');
    const cached = loadCache(dataDir);
    if (cached) return cached;
    const { fetchGeState } = await import('../gms/client.js');
    return fetchGeState(dataDir);
  };
}
