/**
 * The GNAT publishes its ACT's allowed names in DDNS with its global address
 * (SPEC section 6: `bob -> G2`), over the RFC 2136 + TSIG encoder Mobile PPC
 * uses (controlplane/mobility/ddns.ts): one UPDATE per name, replacing that
 * name's A RRset. Names whose last update failed are retried by the next
 * call; names already published with this address are not sent again.
 */
import { readFileSync } from 'node:fs';
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

export interface DdnsOutcome { name: string; result: string }

export class ActDdns {
  private readonly done = new Map<string, string>(); // name -> address published
  private key: TsigKey | null = null;

  constructor(private readonly cfg: ActDdnsConfig, private readonly external: string, private readonly send: SendUpdate = sendUpdate) {}

  private tsig(): TsigKey {
    if (!this.key) this.key = { name: this.cfg.keyName, secret: Buffer.from(readFileSync(this.cfg.keyFile, 'utf8').trim(), 'base64') };
    return this.key;
  }

  /** Publish every allowed name not yet published with this address; one outcome per UPDATE sent. */
  async publish(act: readonly ActEntry[]): Promise<DdnsOutcome[]> {
    const out: DdnsOutcome[] = [];
    for (const name of publishedNames(act)) {
      if (this.done.get(name) === this.external) continue;
      let result: string;
      try {
        const a = await this.send({ zone: this.cfg.zone, name, addr: this.external, ttl: this.cfg.ttl, key: this.tsig() }, this.cfg.server, this.cfg.port);
        result = a.rcode === 'NOERROR' && a.tsigError === 'NOERROR' ? 'NOERROR' : a.rcode;
      } catch (e) { result = /no answer/.test((e as Error).message) ? 'no_answer' : 'error'; }
      if (result === 'NOERROR') this.done.set(name, this.external);
      out.push({ name, result });
    }
    return out;
  }
}
