/**
 * The DNS answer rewriters of one agent, in order: NAT-f's NRT first; a
 * second part (GSRA, issue 14) registers its own names -> virtual address
 * mapping the same way. The first rewriter that changes a message wins; one
 * that throws counts as not changing it (the answer goes on as it came).
 */
export interface DnsAnswerRewriter {
  readonly name: string;
  /** The message to deliver instead, or null: not mine. `label` says why, for the metric. */
  rewrite(message: Buffer): { message: Buffer; label: string } | null;
}

export class DnsRewriters {
  private readonly list: DnsAnswerRewriter[] = [];

  register(r: DnsAnswerRewriter): void {
    if (this.list.some((x) => x.name === r.name)) throw new Error(`DNS rewriter ${r.name} is already registered`);
    this.list.push(r);
  }

  /** The first rewriter's answer, with its label; null: nobody rewrote it. */
  rewrite(message: Buffer, onError: (name: string, e: unknown) => void): { message: Buffer; label: string } | null {
    for (const r of this.list) {
      try {
        const out = r.rewrite(message);
        if (out) return out;
      } catch (e) { onError(r.name, e); }
    }
    return null;
  }
}
