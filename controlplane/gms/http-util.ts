/** Small HTTP helpers shared by the GMS server's routes. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GscipError, httpStatusOf, type GmsErrorBody, type GmsWireCode } from '../errors/catalogue.js';

/** A refusal the GMS sends: its wire code, and the HTTP status the catalogue gives that code. */
export class HttpError extends GscipError<GmsWireCode> {
  readonly status: number;
  constructor(code: GmsWireCode, message: string, readonly problems?: string[]) {
    super(code, message);
    this.status = httpStatusOf(code);
  }

  /** The JSON body every GMS error answer carries (clients read it with readGmsErrorBody). */
  body(): GmsErrorBody {
    return this.problems ? { error: this.code, message: this.message, problems: this.problems } : { error: this.code, message: this.message };
  }
}

export async function readJson(req: IncomingMessage, limit = 1 << 20): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new HttpError('body_too_large', `request body over ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  if (n === 0) return {};
  try { return JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { throw new HttpError('bad_json', 'request body is not JSON'); }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'cache-control': 'no-store' });
  res.end(s);
}
