/**
 * The GNAT publishes its ACT's allowed names in DDNS with its global address
 * (SPEC section 6: `bob -> G2`), over the RFC 2136 + TSIG encoder Mobile PPC
 * uses (controlplane/mobility/ddns.ts): one UPDATE per name, replacing that
 * name's A RRset. Names whose last update failed are retried by the next
 * call; names already published with this address are not sent again.
 *
 * A name this GNAT published that is no longer published (it left the ACT,
 * or its outside access became `deny`) is withdrawn: one UPDATE deleting its
 * A RRset, retried like a publication until the server says NOERROR. The
 * names published are kept in `stateFile` (the agent's GMS data directory),
 * so a name removed while the agent was stopped is withdrawn at its next start.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { sendUpdate, type TsigKey, type UpdateAnswer } from '../mobility/ddns.js';
import type { ActEntry } from './act.js';
import { publishedNames } from './act.js';

export interface ActDdnsConfig {
  server: string;
  port: number;
  zone: string;
  ttl: number;
  keyName: string;
  keyFile: string;
}

export type SendUpdate = (r: Parameters<typeof sendUpdate>[0], server: string, port: number) => Promise<UpdateAnswer>;

/** published: a name new to DNS; republished: a name published before with another address (the GNAT's external address changed); withdrawn: deleted. */
export interface DdnsOutcome { name: string; result: string; action: 'published' | 'republished' | 'withdrawn' }

export interface ActDdnsOptions {
  send?: SendUpdate;
  /** Where the names published so far are kept across restarts (null: in memory only). */
  stateFile?: string | null;
  /** A state file that cannot be read or written (the agent logs it; publication goes on). */
  onStateError?: (e: Error) => void;
}

export class ActDdns {
  private readonly done = new Map<string, string>(); // name -> address published
  private key: TsigKey | null = null;
  private readonly send: SendUpdate;

  constructor(private readonly cfg: ActDdnsConfig, private external: string, o: ActDdnsOptions | SendUpdate = {}) {
    const opts = typeof o === 'function' ? { send: o } : o;
    this.send = opts.send ?? sendUpdate;
    this.stateFile = opts.stateFile ?? null;
    this.onStateError = opts.onStateError ?? (() => undefined);
    for (const [name, addr] of this.loadState()) this.done.set(name, addr);
  }

  private readonly stateFile: string | null;
  private readonly onStateError: (e: Error) => void;

  /**
   * The GNAT's external address changed (`nat.follow`): every name published
   * with another address is sent again by the next publish() (action
   * `republished`), retried each call until the server says NOERROR.
   */
  setExternal(addr: string): void {
    this.external = addr;
  }

  private tsig(): TsigKey {
    if (!this.key) this.key = { name: this.cfg.keyName, secret: Buffer.from(readFileSync(this.cfg.keyFile, 'utf8').trim(), 'base64') };
    return this.key;
  }

  /** The names a previous run published in this zone on this server (a missing file: none). */
  private loadState(): Array<[string, string]> {
    if (!this.stateFile) return [];
    let text: string;
    try { text = readFileSync(this.stateFile, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.onStateError(e as Error);
      return [];
    }
    try {
      const s = JSON.parse(text) as { server?: unknown; zone?: unknown; names?: unknown };
      if (s.server !== this.cfg.server || s.zone !== this.cfg.zone || typeof s.names !== 'object' || s.names === null) return [];
      return Object.entries(s.names as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string');
    } catch (e) { this.onStateError(new Error(`${this.stateFile}: not JSON (${(e as Error).message}): starting with no published names`)); return []; }
  }

  private saveState(): void {
    if (!this.stateFile) return;
    try {
      const tmp = `${this.stateFile}.tmp`;
      writeFileSync(tmp, JSON.stringify({ server: this.cfg.server, zone: this.cfg.zone, names: Object.fromEntries(this.done) }), { mode: 0o600 });
      renameSync(tmp, this.stateFile);
    } catch (e) { this.onStateError(e as Error); }
  }

  private async update(name: string, withdraw: boolean, addr = this.external): Promise<string> {
    try {
      const a = await this.send({ zone: this.cfg.zone, name, addr, ttl: this.cfg.ttl, key: this.tsig(), ...(withdraw ? { withdraw: true } : {}) }, this.cfg.server, this.cfg.port);
      return a.rcode === 'NOERROR' && a.tsigError === 'NOERROR' ? 'NOERROR' : a.rcode;
    } catch (e) { return /no answer/.test((e as Error).message) ? 'no_answer' : 'error'; }
  }

  /**
   * Publish every allowed name not yet published with this address, and
   * withdraw every name published before that is no longer allowed; one
   * outcome per UPDATE sent.
   */
  async publish(act: readonly ActEntry[]): Promise<DdnsOutcome[]> {
    const out: DdnsOutcome[] = [];
    const want = publishedNames(act);
    let changed = false;
    for (const name of want) {
      const had = this.done.get(name);
      if (had === this.external) continue;
      const addr = this.external;
      const result = await this.update(name, false, addr);
      if (result === 'NOERROR') { this.done.set(name, addr); changed = true; }
      out.push({ name, result, action: had === undefined ? 'published' : 'republished' });
    }
    for (const name of [...this.done.keys()].sort()) {
      if (want.includes(name)) continue;
      const result = await this.update(name, true);
      if (result === 'NOERROR') { this.done.delete(name); changed = true; }
      out.push({ name, result, action: 'withdrawn' });
    }
    if (changed) this.saveState();
    return out;
  }
}
