/**
 * Adoption: a restarted agent takes over the PIT entries a previous one made
 * (the pinned PIT survives it), so idle expiry and re-keying keep covering
 * them. Contract: entries are grouped per flow (either orientation); a flow
 * the table already holds is left alone; the flow's orientation and decision
 * come from its encrypt (egress, start) or decrypt (ingress) entry; its age is
 * unknown (installedMono 0), so the first sweep asks the kernel for its last
 * activity and a previous key version is kept until it leaves the key ring.
 * Nothing is written: the entries are in the PIT already.
 */
import type { Decision } from './decide.js';
import type { NegotiatedFlows } from './negotiated-flows.js';
import { canonicalFlowKey, type PitEntry } from './pit-entries.js';
import { wireActionOf } from './wire.js';

/** Returns how many flows were adopted. */
export function adoptPitEntries(flows: NegotiatedFlows, entries: readonly PitEntry[]): number {
  const byFlow = new Map<string, PitEntry[]>();
  for (const e of entries) {
    const k = canonicalFlowKey(e.flow);
    const l = byFlow.get(k);
    if (l) l.push(e);
    else byFlow.set(k, [e]);
  }
  let n = 0;
  for (const es of byFlow.values()) {
    if (flows.find(es[0].flow)) continue;
    const enc = es.find((e) => e.action === 'encrypt' && e.dir === 'egress' && e.role === 'start');
    const dec = es.find((e) => e.action === 'decrypt' && e.dir === 'ingress');
    const any = enc ?? dec ?? es.find((e) => e.dir === 'egress') ?? es[0];
    // No crypto entry to go by: the flow is dropped or else passed.
    const decision: Decision = enc ? 'encrypt' : dec ? 'decrypt' : wireActionOf(any.action === 'drop' ? 'drop' : 'pass');
    flows.table.commit(any.flow, { role: any.role, decision, group: any.group, version: any.version, negId: 'adopted' }, { pit: es }, { written: true, installedMono: 0 });
    n++;
  }
  return n;
}
