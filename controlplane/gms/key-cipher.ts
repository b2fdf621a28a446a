/**
 * A group key version's cipher as the fast path sees it: the PCCOM rounds are
 * chosen per key by gscip_key_val.flags (GSCIP_KEY_F_ROUNDS_12/8 in
 * bpf/include/gscip_abi.h). Pure.
 */
import { KEY_F_NONE, KEY_F_ROUNDS_12, KEY_F_ROUNDS_8 } from '../maps/abi.js';
import { CIPHERS, DEFAULT_CIPHER, isCipher, type Cipher } from './model.js';

const FLAGS: Record<Cipher, number> = { chacha20: KEY_F_NONE, chacha12: KEY_F_ROUNDS_12, chacha8: KEY_F_ROUNDS_8 };

/** Key map entry flags that make the fast path run this cipher. */
export function cipherKeyFlags(c: Cipher): number {
  const f = FLAGS[c];
  if (f === undefined) throw new Error(`cipher: ${JSON.stringify(c)} is not one of ${CIPHERS.join(', ')}`);
  return f;
}

/**
 * The cipher field of a delivered key, as received over the wire: absent
 * (a GMS from before per-group ciphers) means chacha20; anything else that is
 * not a known name is `null` and the key must not be installed.
 */
export function deliveredCipher(v: unknown): Cipher | null {
  if (v === undefined) return DEFAULT_CIPHER;
  return isCipher(v) ? v : null;
}
