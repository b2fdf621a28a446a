/**
 * "Strict mode" (issue 11, item 2): destinations to which the network
 * definition requires encryption. A flow to one of them that DPRP would
 * carry in plaintext (no GE answered, or no shared group) is refused
 * instead: every GE on the path discards, the start counts it and logs it,
 * and its PIT entries say `encryption_required`. Like Cilium's WireGuard
 * strict mode, it fails closed rather than fall back to the clear.
 *
 * Entries are IPv4 prefixes ("203.0.113.0/24", a bare address = /32) or DNS
 * names ("db.example.net"), which the agent resolves through the system
 * resolver and re-resolves every `refreshMs` (a name that does not resolve
 * matches nothing until it does, and is logged). Pure except the resolver,
 * which is injected.
 */
import { GscipError } from '../errors/catalogue.js';
import { refusedOutcome, type Outcome } from './decide.js';
import { inPrefix, ipv4ToInt } from './ipv4.js';

export class EncryptionRequiredError extends GscipError {
  constructor(readonly field: string, detail: string) {
    super('GSCIP_E_ENCRYPTION_REQUIRED', `${field}: ${detail}`);
  }
}

const NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const PREFIX = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/;

export type RequiredEntry = { kind: 'prefix'; prefix: string } | { kind: 'name'; name: string };

/** Parses one entry; throws naming `field` and what is wrong. */
export function parseRequiredEntry(v: unknown, field: string): RequiredEntry {
  if (typeof v !== 'string' || v.trim() === '') throw new EncryptionRequiredError(field, `must be an IPv4 prefix or a DNS name, got ${JSON.stringify(v)}`);
  const s = v.trim();
  const p = PREFIX.exec(s);
  if (p) {
    const len = p[2] === undefined ? 32 : Number(p[2]);
    if (len > 32) throw new EncryptionRequiredError(field, `prefix length ${len} is over 32 in '${s}'`);
    try { ipv4ToInt(p[1], field); } catch { throw new EncryptionRequiredError(field, `'${s}' is not an IPv4 prefix`); }
    return { kind: 'prefix', prefix: `${p[1]}/${len}` };
  }
  if (/^[\d./]+$/.test(s)) throw new EncryptionRequiredError(field, `'${s}' is not an IPv4 prefix`);
  if (!NAME.test(s)) throw new EncryptionRequiredError(field, `'${s}' is neither an IPv4 prefix nor a DNS name`);
  return { kind: 'name', name: s.replace(/\.$/, '').toLowerCase() };
}

export function parseRequiredList(v: unknown, field: string): RequiredEntry[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new EncryptionRequiredError(field, 'must be a list of IPv4 prefixes or DNS names');
  return v.map((x, i) => parseRequiredEntry(x, `${field}[${i}]`));
}

export type Resolve4 = (name: string) => Promise<string[]>;

export interface EncryptionRequiredOptions {
  resolve4?: Resolve4;
  refreshMs?: number;
  /** Called when a name does not resolve (the agent logs it). */
  onResolveError?: (name: string, err: unknown) => void;
}

/** The destinations encryption is required to: prefixes now, names as they resolve. */
export class EncryptionRequired {
  private prefixes: string[] = [];
  private names: string[] = [];
  /** name -> its addresses at the last resolution */
  private resolved = new Map<string, string[]>();
  private byAddr = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: EncryptionRequiredOptions = {}) {}

  /** Replaces the list (config load, a GMS delivery). Names are resolved in the background. */
  set(entries: readonly RequiredEntry[]): void {
    this.prefixes = entries.flatMap((e) => (e.kind === 'prefix' ? [e.prefix] : []));
    this.names = [...new Set(entries.flatMap((e) => (e.kind === 'name' ? [e.name] : [])))];
    for (const n of [...this.resolved.keys()]) if (!this.names.includes(n)) this.resolved.delete(n);
    this.rebuild();
    if (this.names.length && this.o.resolve4) void this.refresh();
  }

  get size(): number {
    return this.prefixes.length + this.names.length;
  }

  /** Whether encryption is required to `addr`. */
  matches(addr: string): boolean {
    if (this.byAddr.has(addr)) return true;
    for (const p of this.prefixes) if (inPrefix(addr, p)) return true;
    return false;
  }

  /** Re-resolves every name once (failures keep the previous addresses). */
  async refresh(): Promise<void> {
    const r = this.o.resolve4;
    if (!r) return;
    await Promise.all(this.names.map(async (n) => {
      try {
        this.resolved.set(n, await r(n));
      } catch (e) {
        this.o.onResolveError?.(n, e);
      }
    }));
    this.rebuild();
  }

  /** Re-resolves names every refreshMs until stop(). */
  start(): void {
    if (this.timer || !this.o.resolve4) return;
    this.timer = setInterval(() => { if (this.names.length) void this.refresh(); }, this.o.refreshMs ?? 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private rebuild(): void {
    this.byAddr = new Set([...this.resolved.values()].flat());
  }
}

/**
 * The outcome a start GE acts on: a plaintext outcome to a destination that
 * requires encryption becomes a refusal by the start itself (every GE of the
 * path discards); any other outcome is kept.
 */
export function withEncryptionRequired(out: Outcome, required: boolean): Outcome {
  if (!required || out.verdict !== 'plaintext') return out;
  const addrs = out.actions.map((a) => a.addr);
  return refusedOutcome(addrs, addrs[0], 'encryption_required');
}
