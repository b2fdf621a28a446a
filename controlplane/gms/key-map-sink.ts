/**
 * KeySink over the fast path's key map (gscip_keys: (group_id, version) ->
 * 32-byte ChaCha key + flags choosing 20, 12 or 8 rounds). `installed_ns` is
 * CLOCK_MONOTONIC like bpf_ktime_get_ns(), so the agent can compare it with
 * PIT timestamps.
 */
import type { BpfMap } from '../bpf/bpf-map.js';
import type { KeyId, KeyVal } from '../maps/codecs.js';
import { cipherKeyFlags } from './key-cipher.js';
import { GROUP_KEY_BYTES } from './model.js';
import type { KeySink } from './client.js';

export function keyMapSink(keys: BpfMap<KeyId, KeyVal>): KeySink {
  return {
    set(group, version, key, cipher) {
      if (key.length !== GROUP_KEY_BYTES) throw new Error(`key for group ${group} v${version}: ${key.length} bytes, expected ${GROUP_KEY_BYTES}`);
      keys.set({ group_id: group, version }, { key, flags: cipherKeyFlags(cipher), installed_ns: process.hrtime.bigint() });
    },
    del(group, version) {
      keys.delete({ group_id: group, version }); // absent already: fine (idempotent)
    },
    list() {
      return [...keys.keys()].map((k) => [k.group_id, k.version] as [number, number]);
    },
  };
}
