/**
 * Reference ChaCha block function in TypeScript (RFC 8439 section 2.3), with
 * the round count as a parameter: 20 (RFC 8439), 12 or 8. Independent of
 * OpenSSL (which offers only 20 rounds) and of the BPF code; the chacha20 test
 * proves it on the RFC vectors and against OpenSSL before trusting it for 12/8.
 */
export type ChachaRounds = 20 | 12 | 8;

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

function rotl(v: number, n: number): number { return ((v << n) | (v >>> (32 - n))) >>> 0; }

function quarter(x: Uint32Array, a: number, b: number, c: number, d: number): void {
  x[a] += x[b]; x[d] = rotl(x[d] ^ x[a], 16);
  x[c] += x[d]; x[b] = rotl(x[b] ^ x[c], 12);
  x[a] += x[b]; x[d] = rotl(x[d] ^ x[a], 8);
  x[c] += x[d]; x[b] = rotl(x[b] ^ x[c], 7);
}

/** One 64-byte keystream block for (key[32], 32-bit counter, nonce[12], rounds). */
export function chachaBlock(key: Buffer, counter: number, nonce: Buffer, rounds: ChachaRounds = 20): Buffer {
  if (key.length !== 32) throw new Error(`chachaBlock: key must be 32 bytes, got ${key.length}`);
  if (nonce.length !== 12) throw new Error(`chachaBlock: nonce must be 12 bytes, got ${nonce.length}`);
  if (![20, 12, 8].includes(rounds)) throw new Error(`chachaBlock: rounds must be 20, 12 or 8, got ${rounds}`);
  const init = new Uint32Array(16);
  init.set(SIGMA, 0);
  for (let i = 0; i < 8; i++) init[4 + i] = key.readUInt32LE(4 * i);
  init[12] = counter >>> 0;
  for (let i = 0; i < 3; i++) init[13 + i] = nonce.readUInt32LE(4 * i);
  const x = Uint32Array.from(init);
  for (let r = 0; r < rounds; r += 2) {
    quarter(x, 0, 4, 8, 12); quarter(x, 1, 5, 9, 13); quarter(x, 2, 6, 10, 14); quarter(x, 3, 7, 11, 15);
    quarter(x, 0, 5, 10, 15); quarter(x, 1, 6, 11, 12); quarter(x, 2, 7, 8, 13); quarter(x, 3, 4, 9, 14);
  }
  const out = Buffer.alloc(64);
  for (let i = 0; i < 16; i++) out.writeUInt32LE((x[i] + init[i]) >>> 0, 4 * i);
  return out;
}

/** Keystream bytes [skip, skip+len) of the stream that starts at block `counter` (counter wraps mod 2^32). */
export function chachaStream(key: Buffer, counter: number, nonce: Buffer, skip: number, len: number, rounds: ChachaRounds = 20): Buffer {
  const first = Math.floor(skip / 64);
  const nblocks = Math.ceil((skip + len) / 64) - first;
  const blocks: Buffer[] = [];
  for (let i = 0; i < nblocks; i++) blocks.push(chachaBlock(key, (counter + first + i) >>> 0, nonce, rounds));
  const all = Buffer.concat(blocks);
  const from = skip - first * 64;
  return all.subarray(from, from + len);
}
