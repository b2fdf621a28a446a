/**
 * The composition root of the protocol parts. Two steps, so that a bad set of
 * parts fails before the agent touches anything:
 *  planParts():  names (config `handlers:`, `--handler`) -> descriptors from the
 *                catalogue, plus embedded parts; every claim and dependency
 *                checked (claims.ts);
 *  startParts(): creates each part in order and builds the punt route.
 */
import type { HandlerFactoryContext, PuntHandler } from './handler.js';
import { checkParts, type PartDeclaration } from './claims.js';
import type { ClaimedOptionHooks, DprpOptionCodec } from './dprp-extension.js';
import type { PartDescriptor, PartExtensions, PartRuntime } from './part.js';
import { NATF_DPRP_HOOK_NAMES, type NatfDprpHooks } from '../dprp/natf-hooks.js';
import { buildRoute, plainDeclaration, type PuntRoute } from './route.js';

/** A part made by the embedder (tests, a program hosting the agent): its declaration and the running object. */
export interface EmbeddedPart {
  readonly declaration: PartDeclaration;
  readonly runtime: PartRuntime;
}

type Member = { declaration: PartDeclaration; create?: PartDescriptor['create']; runtime?: PartRuntime };

export interface PartPlan {
  readonly members: readonly Member[];
  /** Names of the parts the configuration asked for (not the embedded ones). */
  readonly configured: readonly string[];
}

export function isEmbeddedPart(x: PuntHandler | EmbeddedPart): x is EmbeddedPart {
  return 'declaration' in x && 'runtime' in x;
}

/** Resolves and checks; throws PartError (or what `lookup` throws for an unknown name). */
export function planParts(names: readonly string[], lookup: (name: string) => PartDescriptor, embedded: readonly (PuntHandler | EmbeddedPart)[] = []): PartPlan {
  const members: Member[] = names.map((n) => {
    const d = lookup(n);
    const { create, ...declaration } = d;
    return { declaration, create };
  });
  for (const e of embedded) {
    members.push(isEmbeddedPart(e) ? { declaration: e.declaration, runtime: e.runtime } : { declaration: plainDeclaration(e), runtime: e });
  }
  checkParts(members.map((m) => m.declaration));
  return { members, configured: [...names] };
}

export interface StartedParts {
  /** In configured order, then the embedded ones. */
  readonly handlers: readonly PartRuntime[];
  readonly route: PuntRoute;
  readonly extensions: PartExtensions;
}

export function startParts(plan: PartPlan, ctx: (name: string) => HandlerFactoryContext): StartedParts {
  const handlers: PartRuntime[] = [];
  const extensions: PartExtensions = {
    dprpOptionCodecs: plan.members.flatMap((m): readonly DprpOptionCodec[] => m.declaration.claims.dprpOptions ?? []),
    dprpOptionHooks: () => handlers.flatMap((h, i): ClaimedOptionHooks[] => {
      const hooks = h.dprpOptionHooks;
      if (!hooks) return [];
      const d = plan.members[i].declaration;
      return [{
        part: d.name,
        optionTypes: (d.claims.dprpOptions ?? []).map((c) => c.type),
        recordOptions: hooks.recordOptions?.bind(hooks),
        verifyRecordOption: hooks.verifyRecordOption?.bind(hooks),
      }];
    }),
    // The initiator's hooks (part natf) and the GNAT's (part nat) may both be loaded: each hook from the first part offering it.
    natfDprpHooks: () => {
      const hs = handlers.flatMap((h) => (h.natfDprpHooks ? [h.natfDprpHooks] : []));
      if (!hs.length) return null;
      const out: Record<string, unknown> = {};
      for (const k of NATF_DPRP_HOOK_NAMES) {
        const h = hs.find((x) => x[k]);
        if (h) out[k] = h[k];
      }
      return out as NatfDprpHooks;
    },
    dnsRewriters: () => handlers.find((h) => h.dnsRewriters)?.dnsRewriters ?? null,
    flowProtectedBy: () => {
      const fs = handlers.flatMap((h) => (h.flowProtectedBy ? [h.flowProtectedBy] : []));
      if (!fs.length) return null;
      return (flow) => {
        for (const f of fs) { const p = f(flow); if (p) return p; }
        return null;
      };
    },
  };
  for (const m of plan.members) handlers.push(m.runtime ?? m.create!({ ...ctx(m.declaration.name), extensions }));
  const route = buildRoute(plan.members.map((m, i) => ({ declaration: m.declaration, handler: handlers[i] })));
  return { handlers, route, extensions };
}
