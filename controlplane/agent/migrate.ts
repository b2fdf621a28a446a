/**
 * Pins of earlier layouts, migrated when an agent of this build starts on
 * them (an in-place upgrade: the fast path keeps running throughout).
 *
 * Layout 1 (up to and including commit 951c3ab): the counters were
 * `gscip_stats`, a per-CPU array indexed by enum gscip_stat alone, no
 * direction. Layout 2 (this build): `gscip_counters`, one slot per (reason,
 * direction). Every other map (PIT, XLAT, keys, iface, cfg, punt ring, punt
 * buckets) kept its layout, so libbpf adopts those pins as they are and no
 * flow is touched. (gscip_iface_cfg's padding byte became ipv6_policy, size
 * unchanged: a layout-1 entry reads 0 = pass, what that release did, and the
 * agent rewrites every entry it attaches with the configured or default
 * policy; nothing to migrate.)
 *
 * The old counters are not carried over: they cannot be split by direction
 * and putting them under one direction would be a lie. Their non-zero totals
 * are logged once (warn: every reason with packets and bytes), then the pin is
 * removed; Prometheus sees one counter reset at the upgrade, which rate() and
 * increase() handle. Call it only after this build's programs replaced the old
 * ones on every interface: from then on nothing counts into the old map, so
 * the logged totals are final. A start that dies before this leaves the pin,
 * and the next start migrates it (idempotent).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { PerCpuBpfMap } from '../bpf/bpf-map.js';
import { closeBpfFd, MapType, mapInfo, objGet } from '../bpf/libbpf.js';
import { statValCodec, u32Codec } from '../maps/codecs.js';
import { LEGACY_MAP_NAMES } from '../maps/gscip-maps.js';
import type { Logger } from '../log/logger.js';

/** enum gscip_stat of layout 1 (number -> label), for the totals logged at migration. */
export const LAYOUT1_STAT_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'pass_non_ip'], [1, 'pass_ipv6'], [2, 'pass_other_l4'], [3, 'pass_fragment'], [4, 'pit_pass'], [5, 'pit_encrypt'],
  [6, 'pit_decrypt'], [7, 'miss_pass'], [8, 'punt_miss'], [9, 'punt_control'], [10, 'punt_truncated'], [11, 'released'],
  [12, 'xlat'], [13, 'pit_decrypt_prev'], [14, 'control_tx'],
  [32, 'policy'], [33, 'miss_policy'], [34, 'malformed_l2'], [35, 'malformed_ip'], [36, 'malformed_l4'], [37, 'punt_rate'],
  [38, 'punt_ringbuf'], [39, 'release_miss'], [40, 'xlat_rewrite'], [41, 'no_key'], [42, 'bad_keyed_csum'], [43, 'crypto'],
  [44, 'unsupported'], [45, 'control_malformed'], [46, 'fragment'], [47, 'no_iface_cfg'],
]);
const LAYOUT1_STATS_ENTRIES = 64;

export interface Migration {
  /** The pin that was migrated away (removed). */
  pin: string;
  /** Its non-zero counters at removal, by layout-1 label (decimal strings: u64). */
  dropped: Record<string, { packets: string; bytes: string }>;
}

/** Is there a pin of an earlier layout in `pinDir` that an agent of this build migrates on start? */
export function legacyPins(pinDir: string, thisBuildMaps: ReadonlySet<string>): string[] {
  return Object.values(LEGACY_MAP_NAMES).filter((n) => !thisBuildMaps.has(n) && existsSync(`${pinDir}/${n}`));
}

/** Does this pin have layout 1's gscip_stats shape (per-CPU array, u32 -> gscip_stat_val, 64 entries)? */
function isLayout1Stats(path: string): boolean {
  const fd = objGet(path);
  try {
    const i = mapInfo(fd);
    return i.type === MapType.PERCPU_ARRAY && i.keySize === 4 && i.valueSize === statValCodec.size && i.maxEntries === LAYOUT1_STATS_ENTRIES;
  } finally { closeBpfFd(fd); }
}

/**
 * Migrate every earlier-layout pin of `pinDir` (see the file comment). A pin of
 * that name but another shape is not ours to judge: left alone, with a warning.
 */
export function migrateLegacyPins(pinDir: string, thisBuildMaps: ReadonlySet<string>, log: Logger): Migration[] {
  const out: Migration[] = [];
  for (const name of legacyPins(pinDir, thisBuildMaps)) {
    const path = `${pinDir}/${name}`;
    if (name !== LEGACY_MAP_NAMES.stats || !isLayout1Stats(path)) {
      log.warn({ pin: path }, 'a pin with the name of an earlier layout\'s map but not its shape: left as it is');
      continue;
    }
    const dropped: Migration['dropped'] = {};
    const m = PerCpuBpfMap.fromPin(path, u32Codec, statValCodec);
    try {
      for (const [id, label] of LAYOUT1_STAT_NAMES) {
        let packets = 0n;
        let bytes = 0n;
        for (const v of m.get(id) ?? []) { packets += v.packets; bytes += v.bytes; }
        if (packets || bytes) dropped[label] = { packets: packets.toString(), bytes: bytes.toString() };
      }
    } finally { m.close(); }
    unlinkSync(path);
    log.warn({ pin: path, dropped },
      `migrated the previous layout's counters: removed ${name} (no direction); its totals are logged here and not carried over, gscip_counters counts from zero`);
    out.push({ pin: path, dropped });
  }
  return out;
}
