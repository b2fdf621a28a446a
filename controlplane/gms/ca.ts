/**
 * The GMS's own certificate authority (ECDSA P-256) and the certificates it
 * issues: its TLS server certificate, one client certificate per enrolled GE,
 * and the administrator's client certificate. X.509 through @peculiar/x509 on
 * Node's WebCrypto (pure TypeScript, no native addon, no openssl subprocess).
 */
import 'reflect-metadata'; // tsyringe, used inside @peculiar/x509, needs it loaded first
import * as x509 from '@peculiar/x509';
import { createHash, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writePrivateFileAtomic, ensurePrivateDir } from './secure-fs.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
x509.cryptoProvider.set(webcrypto as any);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const EKU_SERVER = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT = '1.3.6.1.5.5.7.3.2';
const DAY_MS = 86_400_000;

export interface PemPair { certPem: string; keyPem: string }

function pemOfPkcs8(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}
function derOfPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END)[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

export type { CryptoKeyPair };
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}
export async function exportPrivateKeyPem(k: CryptoKey): Promise<string> {
  return pemOfPkcs8(await webcrypto.subtle.exportKey('pkcs8', k));
}
async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  return (await webcrypto.subtle.importKey('pkcs8', derOfPem(pem), ALG, false, ['sign'])) as CryptoKey;
}

/** Positive 128-bit serial in lower-case hex, as Node's X509Certificate reports it (upper-cased there). */
function newSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x10; // positive, and no leading zero byte to strip
  return b.toString('hex');
}

/** SHA-256 of the certificate's DER, lower-case hex without separators. */
export function certFingerprint(certPem: string): string {
  return createHash('sha256').update(new NodeX509(certPem).raw).digest('hex');
}
/** Accepts "AB:CD:..." or "abcd..." */
export function normalizeFingerprint(f: string): string {
  const n = f.replace(/^sha256:/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(n)) throw new Error(`ca-fingerprint: expected 64 hex digits (SHA-256), got "${f}"`);
  return n;
}

export class GmsCa {
  private constructor(readonly certPem: string, private readonly key: CryptoKey, private readonly cert: x509.X509Certificate) {}

  /** Load `<dir>/ca.crt` + `<dir>/ca.key`, creating them (0600, dir 0700) the first time. */
  static async loadOrCreate(dir: string, name = 'GSCIP GMS CA'): Promise<GmsCa> {
    ensurePrivateDir(dir);
    const crtPath = join(dir, 'ca.crt');
    const keyPath = join(dir, 'ca.key');
    if (existsSync(crtPath) && existsSync(keyPath)) return GmsCa.fromPem(readFileSync(crtPath, 'utf8'), readFileSync(keyPath, 'utf8'));
    const p = await GmsCa.createPem(name);
    writePrivateFileAtomic(keyPath, p.keyPem);
    writePrivateFileAtomic(crtPath, p.certPem);
    return GmsCa.fromPem(p.certPem, p.keyPem);
  }

  /** A CA held elsewhere (the PostgreSQL store keeps it in the database, its key sealed). */
  static async fromPem(certPem: string, keyPem: string): Promise<GmsCa> {
    return new GmsCa(certPem, await importPrivateKeyPem(keyPem), new x509.X509Certificate(certPem));
  }

  /** A new self-signed CA (10 years), as PEM; nothing written. */
  static async createPem(name = 'GSCIP GMS CA'): Promise<PemPair> {
    const keys = await generateKeyPair();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(), name: `CN=${name}, O=GSCIP`,
      notBefore: new Date(now - 60_000), notAfter: new Date(now + 3650 * DAY_MS), signingAlgorithm: ALG, keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
  }

  fingerprint(): string { return certFingerprint(this.certPem); }

  private async issue(publicKey: CryptoKey, subject: string, eku: string, validityDays: number, extra: x509.Extension[] = []): Promise<{ certPem: string; serial: string; notAfter: number }> {
    const now = Date.now();
    const serial = newSerial();
    const notAfter = now + validityDays * DAY_MS;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial, subject, issuer: this.cert.subject,
      notBefore: new Date(now - 60_000), notAfter: new Date(notAfter),
      signingAlgorithm: ALG, publicKey, signingKey: this.key,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([eku], false),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert, false),
        ...extra,
      ],
    });
    return { certPem: cert.toString('pem'), serial, notAfter };
  }

  /** TLS server certificate for the GMS, valid for the given host names / IP addresses. */
  async issueServer(names: string[], validityDays = 397): Promise<PemPair> {
    const keys = await generateKeyPair();
    const san = new x509.SubjectAlternativeNameExtension(
      names.map((n) => ({ type: isIP(n) ? 'ip' as const : 'dns' as const, value: n })), false);
    const { certPem } = await this.issue(keys.publicKey, 'CN=gscip-gms, O=GSCIP', EKU_SERVER, validityDays, [san]);
    return { certPem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
  }

  /**
   * Client certificate from a CSR. The subject is set here from the enrollment
   * record (never taken from the CSR); the CSR only proves possession of the key.
   */
  async issueClient(csrPem: string, userId: string, role: 'ge' | 'admin', validityDays: number): Promise<{ certPem: string; serial: string; notAfter: number }> {
    const publicKey = await checkCsr(csrPem);
    return this.issue(publicKey, `CN=${userId}, OU=${role}, O=GSCIP`, EKU_CLIENT, validityDays);
  }

  /** Key + certificate for a local client (the administrator's), generated here. */
  async issueLocalClient(userId: string, role: 'ge' | 'admin', validityDays: number): Promise<PemPair & { serial: string; notAfter: number }> {
    const keys = await generateKeyPair();
    const r = await this.issue(keys.publicKey, `CN=${userId}, OU=${role}, O=GSCIP`, EKU_CLIENT, validityDays);
    return { ...r, keyPem: await exportPrivateKeyPem(keys.privateKey) };
  }
}

/** A CSR for `userId` signed with the given key pair (the agent side of enrollment). */
export async function createCsr(userId: string, keys: CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${userId}`, keys, signingAlgorithm: ALG });
  return csr.toString('pem');
}

/** Serial as stored by the GMS, from Node's TLS peer certificate (upper-case hex). */
export function normalizeSerial(s: string): string {
  return s.toLowerCase().replace(/^0+/, '');
}

/**
 * Parse and verify a CSR (proof of possession), returning its public key;
 * throws an Error naming the problem.
 */
export async function checkCsr(csrPem: string): Promise<CryptoKey> {
  let csr: x509.Pkcs10CertificateRequest;
  try { csr = new x509.Pkcs10CertificateRequest(csrPem); } catch { throw new Error('csr: not a PEM PKCS#10 certificate request'); }
  if (!(await csr.verify())) throw new Error('csr: signature does not verify (proof of key possession failed)');
  const alg = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new Error(`csr: key must be ECDSA P-256, got ${alg.name} ${alg.namedCurve ?? ''}`);
  return csr.publicKey.export(ALG, ['verify']);
}
