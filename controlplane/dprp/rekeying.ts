/**
 * Re-keying without loss: a new key version of a group this GE's flows use
 * is negotiated again from this GE (start or end), and the switch is ordered
 * so every packet sent is decryptable by its receiver (PCCOM carries no key
 * version on the wire; a decrypt entry's `prevVersion` is tried when the
 * keyed checksum fails under its version). docs/dprp.md section 6:
 *   1. start GE, on RGI, before the MPIT: decrypt entries to v(n+1), prev n
 *      (`decryptSwitchesBeforeMpit`); its encrypt entries stay on v(n);
 *   2. each GE on the MPIT: decrypt entries and the encrypt entries toward
 *      the start switch; an intermediate's encrypt toward the end waits for
 *      the CDN (`deferredUntilCdn`);
 *   3. start GE, on CDN: its encrypt entries switch (start-role.ts);
 *   4. `clearPrevVersions`: prev dropped once v(n) left the key ring, or
 *      prevGraceMs after the switch.
 * A re-key without an answer never concludes alone (start-role.ts): the flow
 * keeps its entries and `retryFailed` negotiates it again on the next sweep.
 * Per-flow keys (docs/pccom.md): a rotation keeps a flow's salt (both ends
 * re-derive over it: withPrevVersions), and PCCOM's re-key signal
 * (`onRekeyWanted`: a UDP counter near its limit, a receiver out of step, a
 * TCP sequence far on) negotiates the flow again under the same version: the
 * new negotiation id is the new salt, the same ordered switch applies.
 * Contract: `onKeysChanged` and `onRekeyWanted` start negotiations only
 * through the start role, never for a flow already being negotiated, within
 * maxNegotiations; a signalled flow at most once per rekeyMinIntervalMs.
 */
import type { DprpContext } from './node-context.js';
import { sameFlow } from './node-context.js';
import { isDecryptVersionSwitch, isEncryptVersionSwitch, reverseFlow, type PitEntry } from './pit-entries.js';
import type { RelayRole } from './relay-role.js';
import type { StartRole } from './start-role.js';
import type { Flow } from './wire.js';

/** Step 1: the start GE's decrypt entries that move to another version, written (confirmed) before the MPIT. */
export function decryptSwitchesBeforeMpit(entries: readonly PitEntry[], prior: readonly PitEntry[] | undefined): PitEntry[] {
  return entries.filter((e) => isDecryptVersionSwitch(e, prior)).map((e) => ({ ...e, state: 'confirmed' as const }));
}

/**
 * Step 2: which of an MPIT's entries wait for the CDN at a GE that is not the
 * end: an encrypt entry of the forward flow (toward the end) switching version.
 */
export function deferredUntilCdn(isEnd: boolean, flow: Flow, prior: readonly PitEntry[] | undefined): (e: PitEntry) => boolean {
  return (e) => !isEnd && isEncryptVersionSwitch(e, prior) && sameFlow(e.flow, flow);
}

import type { FiveTuple } from '../flows/cid.js';

export type RekeyAnswer = 'started' | 'unknown_flow' | 'not_encrypted' | 'running' | 'too_soon' | 'too_many_negotiations';

export class Rekeying {
  /** Flow id -> when its last signalled re-key started (bounded: swept with the prev versions). */
  private readonly lastSignalled = new Map<number, number>();

  constructor(private readonly c: DprpContext, private readonly start: StartRole, private readonly relay: RelayRole) {}

  /**
   * PCCOM's per-flow key of an entry of `wire` (either orientation) asked for
   * a new key: negotiate the flow again from this GE (start or end).
   */
  onRekeyWanted(wire: FiveTuple, now: number): RekeyAnswer {
    const c = this.c;
    const f = c.flows.find(wire as Flow);
    if (!f) return 'unknown_flow';
    const { role, group } = f.meta;
    if (role === 'intermediate' || group === 0) return 'not_encrypted';
    const mine = role === 'start' ? f.wire : reverseFlow(f.wire);
    if (this.start.isRunning(mine) || this.start.isRunning(reverseFlow(mine))) return 'running';
    const last = this.lastSignalled.get(f.id);
    if (last !== undefined && now - last < c.cfg.rekeyMinIntervalMs) return 'too_soon';
    if (this.start.pending >= c.cfg.maxNegotiations) return 'too_many_negotiations';
    this.lastSignalled.set(f.id, now);
    this.start.begin(mine, 'rekey', [], false, true);
    return 'started';
  }

  /**
   * The key ring changed (GMS rotation). Every flow this GE started or ended
   * that uses an older version of a group it now holds a newer version of is
   * negotiated again, from this GE; the new entries replace the old ones when
   * the new negotiation installs them. Returns how many were started.
   */
  onKeysChanged(): number {
    const c = this.c;
    const newest = new Map<number, number>();
    for (const k of c.myKeys()) newest.set(k.group, Math.max(newest.get(k.group) ?? 0, k.version));
    let n = 0;
    for (const f of [...c.flows.values()]) {
      const { role, group, version } = f.meta;
      if (role === 'intermediate' || group === 0) continue;
      const v = newest.get(group);
      if (v === undefined || v <= version) continue;
      const mine = role === 'start' ? f.wire : reverseFlow(f.wire);
      if (this.start.isRunning(mine) || this.start.isRunning(reverseFlow(mine))) continue;
      if (this.start.pending >= c.cfg.maxNegotiations) break;
      this.start.begin(mine, 'rekey', []);
      n++;
    }
    return n;
  }

  /**
   * A re-key that failed (no answer from the peer's agent in time, a lost
   * CDN) left its flow on the old version: the flows still behind the newest
   * version are negotiated again, at most once per rekeyMinIntervalMs, until
   * none fails (or the old version leaves and the flow with it).
   */
  retryFailed(now: number): number {
    if (this.lastRetry !== null && now - this.lastRetry < this.c.cfg.rekeyMinIntervalMs) return 0;
    if (this.start.takeRekeyFailures() === 0) return 0;
    this.lastRetry = now;
    return this.onKeysChanged();
  }

  private lastRetry: number | null = null;

  /**
   * Step 4: decrypt entries stop accepting the previous key version once it
   * left the key ring, or prevGraceMs after the switch.
   */
  clearPrevVersions(now: number): void {
    const c = this.c;
    for (const [id, t] of this.lastSignalled) if (now - t >= c.cfg.rekeyMinIntervalMs) this.lastSignalled.delete(id);
    let held: Set<string> | null = null;
    for (const f of c.flows.values()) {
      if (!f.pit.some((e) => e.prevVersion)) continue;
      held ??= new Set(c.myKeys().map((k) => `${k.group}/${k.version}`));
      const h = held;
      // Adopted entries (installedMono 0: age unknown) keep prev until the old key leaves.
      const keep = (f.installedMono === 0 || now - f.installedMono < c.cfg.prevGraceMs)
        && f.pit.every((e) => !e.prevVersion || h.has(`${e.group}/${e.prevVersion}`));
      if (keep) continue;
      const entries = f.pit.map((e) => {
        if (!e.prevVersion && !e.prevFlowKey) return e;
        const { prevVersion: _gone, prevFlowKey: _gone2, ...rest } = e;
        return rest;
      });
      c.flows.table.rewrite(f.id, { pit: entries });
      this.relay.entriesRewritten(f.meta.negId, entries);
    }
  }
}
