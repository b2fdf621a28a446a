/**
 * Encryption at rest of the secrets the GMS database holds (group keys, and
 * with PostgreSQL the CA's private key): AES-256-GCM under a master key that
 * the GMS replicas hold outside the database (a file, or the environment).
 * Someone who can read the database (a backup, a DBA, a replica of it) gets
 * only sealed blobs.
 *
 * A key ring: the first key seals, every key listed opens (by its id), so the
 * master key is rotated without downtime: put the new key first on every
 * replica, run `gscip gms rekey` (re-seals every row under it), then drop the
 * old key. Each blob is bound to the row it belongs to (AAD = e.g.
 * "group_key/3/17"), so a sealed key copied into another row does not open.
 *
 * Sealed layout: "GK1" | key id (4 bytes) | IV (12) | ciphertext | tag (16).
 * A 32-byte value (a group key written without a master key) is plaintext.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GscipError } from '../errors/catalogue.js';
import { assertOwnerOnly } from './secure-fs.js';

const MAGIC = Buffer.from('GK1');
const ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const MASTER_KEY_BYTES = 32;
/** Environment variable that may hold the key ring instead of a file. */
export const MASTER_KEY_ENV = 'GSCIP_GMS_MASTER_KEY';

export class AtRestError extends GscipError {
  constructor(message: string) { super('GSCIP_E_GMS_AT_REST', message); }
}

function keyId(k: Buffer): Buffer { return createHash('sha256').update('gscip-gms-master-key').update(k).digest().subarray(0, ID_BYTES); }

/** One master key per line (64 hex digits or 44 base64 chars); '#' comments and blank lines ignored. First = sealing key. */
export function parseKeyRing(text: string, what: string): Buffer[] {
  const out: Buffer[] = [];
  for (const [i, raw] of text.split(/[\n,]/).entries()) {
    const l = raw.replace(/#.*/, '').trim();
    if (!l) continue;
    const k = /^[0-9a-fA-F]{64}$/.test(l) ? Buffer.from(l, 'hex') : Buffer.from(l, 'base64');
    if (k.length !== MASTER_KEY_BYTES || (!/^[0-9a-fA-F]{64}$/.test(l) && k.toString('base64') !== l)) {
      throw new AtRestError(`${what}: entry ${i + 1} is not a 32-byte key (64 hex digits or base64)`);
    }
    out.push(k);
  }
  if (!out.length) throw new AtRestError(`${what}: no key`);
  return out;
}

export class AtRest {
  private readonly byId: Map<string, Buffer>;
  private constructor(private readonly ring: Buffer[]) {
    this.byId = new Map(ring.map((k) => [keyId(k).toString('hex'), k]));
  }

  /** No master key: values are stored as they are (the SQLite default, a 0600 file on one machine). */
  static none(): AtRest { return new AtRest([]); }
  static fromKeys(keys: Buffer[]): AtRest { return new AtRest(keys); }

  /** From a key file (must be 0600) or, without one, from $GSCIP_GMS_MASTER_KEY; none() if neither. */
  static load(file: string | undefined, env: NodeJS.ProcessEnv = process.env): AtRest {
    if (file) {
      assertOwnerOnly(file);
      return new AtRest(parseKeyRing(readFileSync(file, 'utf8'), `master-key-file ${file}`));
    }
    const e = env[MASTER_KEY_ENV];
    if (e) return new AtRest(parseKeyRing(e, MASTER_KEY_ENV));
    return AtRest.none();
  }

  static generateKey(): Buffer { return randomBytes(MASTER_KEY_BYTES); }

  get enabled(): boolean { return this.ring.length > 0; }
  /** Id of the sealing key (hex), or null. */
  get currentKeyId(): string | null { return this.ring.length ? keyId(this.ring[0]).toString('hex') : null; }

  seal(plain: Buffer, aad: string): Buffer {
    if (!this.ring.length) return Buffer.from(plain);
    const k = this.ring[0];
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', k, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([MAGIC, keyId(k), iv, ct, c.getAuthTag()]);
  }

  static isSealed(b: Buffer): boolean {
    return b.length > MAGIC.length + ID_BYTES + IV_BYTES + TAG_BYTES && b.subarray(0, MAGIC.length).equals(MAGIC);
  }

  /** Id (hex) of the key a sealed blob was sealed under; null for plaintext. */
  static sealedBy(b: Buffer): string | null {
    return AtRest.isSealed(b) ? b.subarray(MAGIC.length, MAGIC.length + ID_BYTES).toString('hex') : null;
  }

  open(blob: Buffer, aad: string): Buffer {
    if (!AtRest.isSealed(blob)) {
      if (this.ring.length && blob.length !== 32 && !aad.startsWith('ca_key')) throw new AtRestError(`${aad}: neither sealed nor a plain key`);
      return Buffer.from(blob);
    }
    const id = AtRest.sealedBy(blob)!;
    const k = this.byId.get(id);
    if (!k) {
      throw new AtRestError(this.ring.length
        ? `${aad}: sealed under master key ${id}, which is not in this replica's key ring (${[...this.byId.keys()].join(', ')})`
        : `${aad}: sealed under master key ${id}; start the GMS with --master-key-file or $${MASTER_KEY_ENV}`);
    }
    const o = MAGIC.length + ID_BYTES;
    const d = createDecipheriv('aes-256-gcm', k, blob.subarray(o, o + IV_BYTES));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    try {
      return Buffer.concat([d.update(blob.subarray(o + IV_BYTES, blob.length - TAG_BYTES)), d.final()]);
    } catch {
      throw new AtRestError(`${aad}: does not open under master key ${id} (tampered, or moved from another row)`);
    }
  }

  /** Whether a stored blob is sealed under the current key (rekey leaves those alone). */
  isCurrent(blob: Buffer): boolean {
    return this.ring.length ? AtRest.sealedBy(blob) === this.currentKeyId : !AtRest.isSealed(blob);
  }
}

/** AAD of a group key row. */
export const groupKeyAad = (group: number, version: number): string => `group_key/${group}/${version}`;
export const CA_KEY_AAD = 'ca_key';
