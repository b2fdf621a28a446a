/**
 * Agent side, pure: which delivered keys may go into the fast path's key map.
 * A delivery arrives over the wire (or from the disk cache), so each key is
 * checked; one bad key is refused alone, the others are still installed.
 */
import { deliveredCipher } from './key-cipher.js';
import { CIPHERS, GROUP_KEY_BYTES, type Cipher, type GeDelivery } from './model.js';

export interface UsableKey { group: number; version: number; key: string; cipher: Cipher }

/** Why a delivered key is not installed (metric label: bounded). */
export type KeyRefusal = 'unknown_cipher' | 'bad_key';
export interface RefusedKey { group: number; version: number; reason: KeyRefusal; detail: string }

/** The unexpired keys of `d`, split into those to install and those refused. */
export function usableKeys(d: GeDelivery | null, now: number): { usable: UsableKey[]; refused: RefusedKey[] } {
  const usable: UsableKey[] = [];
  const refused: RefusedKey[] = [];
  for (const k of d?.keys ?? []) {
    if (k.expiresAt !== null && k.expiresAt <= now) continue;
    const cipher = deliveredCipher(k.cipher);
    if (cipher === null) {
      refused.push({ group: k.group, version: k.version, reason: 'unknown_cipher',
        detail: `cipher ${JSON.stringify(k.cipher)} is not one of ${CIPHERS.join(', ')} (a newer GMS?): not installed rather than run with the wrong rounds` });
      continue;
    }
    const len = typeof k.key === 'string' ? Buffer.from(k.key, 'base64').length : -1;
    if (len !== GROUP_KEY_BYTES) {
      refused.push({ group: k.group, version: k.version, reason: 'bad_key', detail: `key is ${len} bytes, expected ${GROUP_KEY_BYTES}` });
      continue;
    }
    usable.push({ group: k.group, version: k.version, key: k.key, cipher });
  }
  return { usable, refused };
}
