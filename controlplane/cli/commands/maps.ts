/**
 * `gscip maps dump pit|xlat|cit|nat|keys|flow-keys|iface|stats`: what the fast path holds.
 * Key material is never printed.
 */
import { readPublishedTable } from '../../parts/published-table.js';
import { MOVES_TABLE, movesByFlow } from '../../mobility/published-moves.js';
import type { CommandModule } from 'yargs';
import { monotonicNs, readStats } from '../../maps/accessors.js';
import { ifIndexToName } from '../../bpf/libc.js';
import { FK_SEQ_BASE_SET, KEY_F_ROUNDS_12, KEY_F_ROUNDS_8, ipv6PolicyName } from '../../maps/abi.js';
import { legName, saltFromU64 } from '../../pccom/flow-key.js';
import { natState } from '../../natf/nat-expiry.js';
import { ACTIONS, DIRS, MISS_ACTIONS, NAT_ORIGINS, PIT_STATES, ROLES, XLAT_KINDS, pitWhyOf } from '../../maps/vocabulary.js';
import type { GscipMaps } from '../../maps/gscip-maps.js';
import { ipv6PolicyOf } from '../../maps/codecs.js';
import { protoName, UsageError } from '../args.js';
import { guarded, print, table, toJson } from '../output.js';
import { withInstance, withMaps, type InstanceArgs } from '../instance-args.js';
import { readTable, type NatfTable } from '../../natf/tables-file.js';

function ageS(ns: bigint, now: bigint): string {
  return ns === 0n || ns > now ? '-' : ((Number(now - ns) / 1e9).toFixed(1));
}

export function dumpPit(m: GscipMaps, json: boolean): string {
  const now = monotonicNs();
  const rows = [...m.pit.entries()].map(([k, v]) => ({
    dir: DIRS.label(k.dir), proto: protoName(k.proto), src: k.saddr, sport: k.sport, dst: k.daddr, dport: k.dport,
    action: ACTIONS.label(v.action), state: PIT_STATES.label(v.state), role: ROLES.label(v.role), group: v.group_id, keyVersion: v.key_version,
    prevKeyVersion: v.prev_key_version ?? 0, why: pitWhyOf(v.flags),
    createdNs: v.created_ns, lastSeenNs: v.last_seen_ns,
  }));
  rows.sort((a, b) => `${a.dir}${a.src}${a.sport}`.localeCompare(`${b.dir}${b.src}${b.sport}`));
  if (json) return toJson(rows);
  return `${table(['DIR', 'PROTO', 'SRC', 'SPORT', 'DST', 'DPORT', 'ACTION', 'STATE', 'ROLE', 'GROUP', 'KEYV', 'PREVV', 'WHY', 'AGE_S', 'IDLE_S'],
    rows.map((r) => [r.dir, r.proto, r.src, r.sport, r.dst, r.dport, r.action, r.state, r.role, r.group, r.keyVersion, r.prevKeyVersion || '-', r.why === 'none' ? '-' : r.why, ageS(r.createdNs, now), ageS(r.lastSeenNs, now)]))}\n${rows.length} entries`;
}

export function dumpXlat(m: GscipMaps, json: boolean): string {
  const rows = [...m.xlat.entries()].map(([k, v]) => ({
    dir: DIRS.label(k.dir), proto: protoName(k.proto), src: k.saddr, sport: k.sport, dst: k.daddr, dport: k.dport,
    toSrc: v.saddr, toSport: v.sport, toDst: v.daddr, toDport: v.dport, kind: XLAT_KINDS.label(v.kind),
  }));
  if (json) return toJson(rows);
  return `${table(['DIR', 'PROTO', 'SRC', 'SPORT', 'DST', 'DPORT', '->', 'TO_SRC', 'TO_SPORT', 'TO_DST', 'TO_DPORT', 'KIND'],
    rows.map((r) => [r.dir, r.proto, r.src, r.sport, r.dst, r.dport, '->', r.toSrc, r.toSport, r.toDst, r.toDport, r.kind]))}\n${rows.length} entries`;
}

/**
 * Mobile PPC's view of the XLAT map: one row per moved flow and end (its
 * egress CIT entry): the flow as the sockets see it, the address now on the
 * wire, which end this GE is (mover: its own source changed; stationary: the
 * peer's), and the seconds since the entry was (re)written, i.e. the last move.
 */
export function dumpCit(m: GscipMaps, json: boolean, moves: Map<string, number> | null = null): string {
  const now = monotonicNs();
  const rows = [...m.xlat.entries()].filter(([k, v]) => XLAT_KINDS.name(v.kind) === 'cit' && DIRS.name(k.dir) === 'egress').map(([k, v]) => {
    const mover = v.saddr !== k.saddr || v.sport !== k.sport;
    const stationary = v.daddr !== k.daddr || v.dport !== k.dport;
    // Both ends moved at once: old and new name both ends, this one first.
    const both = mover && stationary;
    return {
      proto: protoName(k.proto), local: `${k.saddr}:${k.sport}`, peer: `${k.daddr}:${k.dport}`, end: both ? 'both' : mover ? 'mover' : 'stationary',
      old: both ? `${k.saddr}:${k.sport}>${k.daddr}:${k.dport}` : mover ? `${k.saddr}:${k.sport}` : `${k.daddr}:${k.dport}`,
      new: both ? `${v.saddr}:${v.sport}>${v.daddr}:${v.dport}` : mover ? `${v.saddr}:${v.sport}` : `${v.daddr}:${v.dport}`, createdNs: v.created_ns,
      // The count is the agent's (published by the mobile-ppc part), not the map's: null without a running agent.
      moves: moves?.get(`${k.proto} ${k.saddr}:${k.sport} ${k.daddr}:${k.dport}`) ?? null,
    };
  });
  rows.sort((a, b) => a.local.localeCompare(b.local) || a.peer.localeCompare(b.peer));
  if (json) return toJson(rows);
  return `${table(['PROTO', 'LOCAL', 'PEER', 'END', 'OLD', '->', 'NEW', 'MOVES', 'SINCE_MOVE_S'], rows.map((r) => [r.proto, r.local, r.peer, r.end, r.old, '->', r.new, r.moves ?? '-', ageS(r.createdNs, now)]))}\n${rows.length} moved flows`;
}

/**
 * The GNAT's NAT sessions (gscip_nat): the inside host's flow, the external
 * address:port it has on the global side, who made it (outbound: the fast
 * path; inbound: NAT-f), the state its timeout follows, its age and idle time.
 */
export function dumpNat(m: GscipMaps, json: boolean): string {
  if (!m.nat) throw new UsageError('map nat: this instance has no NAT maps (its pins predate NAT)');
  const now = monotonicNs();
  const cfg = m.nat.cfg.get(0);
  const rows = [...m.nat.sessions.entries()].map(([k, v]) => ({
    proto: protoName(k.proto), inside: `${k.saddr}:${k.sport}`, peer: `${k.daddr}:${k.dport}`, external: `${v.ext_addr}:${v.ext_port}`,
    origin: NAT_ORIGINS.label(v.origin), state: natState(k.proto, v.flags), flags: v.flags, createdNs: v.created_ns, lastSeenNs: v.last_seen_ns,
  }));
  rows.sort((a, b) => a.inside.localeCompare(b.inside) || a.peer.localeCompare(b.peer));
  if (json) return toJson(rows);
  const head = cfg && cfg.ext_addr !== '0.0.0.0'
    ? `external ${cfg.ext_addr}, ports ${cfg.port_lo}-${cfg.port_hi}, inside ${cfg.inside.filter((p) => p.mask !== '0.0.0.0').map((p) => `${p.addr}/${p.mask}`).join(' ')}\n`
    : 'NAT not configured on this instance\n';
  return `${head}${table(['PROTO', 'INSIDE', 'PEER', 'EXTERNAL', 'ORIGIN', 'STATE', 'AGE_S', 'IDLE_S'],
    rows.map((r) => [r.proto, r.inside, r.peer, r.external, r.origin, r.state, ageS(r.createdNs, now), ageS(r.lastSeenNs, now)]))}\n${rows.length} sessions`;
}

function cipherName(flags: number): string {
  const r = flags & (KEY_F_ROUNDS_12 | KEY_F_ROUNDS_8);
  return r === 0 ? 'chacha20' : r === KEY_F_ROUNDS_12 ? 'chacha12' : r === KEY_F_ROUNDS_8 ? 'chacha8' : 'invalid';
}

/** Never prints key material: group, version, cipher, age only. */
export function dumpKeys(m: GscipMaps, json: boolean): string {
  const now = monotonicNs();
  const rows = [...m.keys.entries()].map(([k, v]) => ({ group: k.group_id, version: k.version, flags: v.flags, cipher: cipherName(v.flags), installedNs: v.installed_ns }))
    .sort((a, b) => a.group - b.group || a.version - b.version);
  if (json) return toJson(rows);
  return `${table(['GROUP', 'VERSION', 'CIPHER', 'AGE_S'], rows.map((r) => [r.group, r.version, r.cipher, ageS(r.installedNs, now)]))}\n${rows.length} keys`;
}

/** PCCOM per-flow keys (gscip_flow_keys): which key each entry uses and its counter; never the key bytes. */
export function dumpFlowKeys(m: GscipMaps, json: boolean): string {
  const rows = [...m.flowKeys.entries()].map(([k, v]) => ({
    dir: DIRS.label(k.dir), proto: protoName(k.proto), src: k.saddr, sport: k.sport, dst: k.daddr, dport: k.dport,
    keyVersion: v.cur.key_version, cipher: cipherName(v.cur.flags), salt: saltFromU64(v.salt), leg: legName(v.leg) ?? '-',
    // UDP: the sender's next counter / the receiver's highest; TCP sender: the first seq under the key
    counter: k.proto === 17 ? v.cur.ctr.toString() : (v.cur.ctr & FK_SEQ_BASE_SET) ? `seq0 ${v.cur.ctr & 0xffffffffn}` : '-',
    prevKeyVersion: v.prev.key_version, prevSalt: v.prev.key_version ? saltFromU64(v.prev_salt) : null,
    rekeyAt: v.rekey_at.toString(), rekeyWishes: v.signalled, failsInARow: v.fails,
  }));
  rows.sort((a, b) => `${a.dir}${a.src}${a.sport}`.localeCompare(`${b.dir}${b.src}${b.sport}`));
  if (json) return toJson(rows);
  return `${table(['DIR', 'PROTO', 'SRC', 'SPORT', 'DST', 'DPORT', 'KEYV', 'CIPHER', 'SALT', 'LEG', 'COUNTER', 'PREVV', 'PREV_SALT', 'WISHES', 'FAILS'],
    rows.map((r) => [r.dir, r.proto, r.src, r.sport, r.dst, r.dport, r.keyVersion, r.cipher, r.salt, r.leg, r.counter, r.prevKeyVersion || '-', r.prevSalt ?? '-', r.rekeyWishes, r.failsInARow]))}\n${rows.length} per-flow keys`;
}

export function dumpIface(m: GscipMaps, json: boolean): string {
  const rows = [...m.iface.entries()].map(([ifindex, v]) => ({
    ifindex, name: ifIndexToName(ifindex) ?? '?', missIngress: MISS_ACTIONS.label(v.miss_action[0]), missEgress: MISS_ACTIONS.label(v.miss_action[1]), flags: v.flags,
    ipv6: ipv6PolicyName(ipv6PolicyOf(v)),
  }));
  // JSON: ipv6 is left out when it is pass (absent = pass, as in the previous layout, whose rows had no such key)
  if (json) return toJson(rows.map(({ ipv6, ...r }) => (ipv6 === 'pass' ? r : { ...r, ipv6 })));
  return table(['IFINDEX', 'NAME', 'MISS_INGRESS', 'MISS_EGRESS', 'FLAGS', 'IPV6'], rows.map((r) => [r.ifindex, r.name, r.missIngress, r.missEgress, `0x${r.flags.toString(16)}`, r.ipv6]));
}

export function dumpStats(m: GscipMaps, json: boolean, all: boolean): string {
  const rows = readStats(m).filter((s) => all || s.packets > 0n);
  if (json) return toJson(rows);
  return table(['ID', 'COUNTER', 'PART', 'KIND', 'ACTION', 'PACKETS', 'BYTES', 'IN_PACKETS', 'OUT_PACKETS'],
    rows.map((s) => [s.id, s.name, s.part, s.kind, s.action, s.packets, s.bytes, s.ingress.packets, s.egress.packets]));
}

/**
 * NAT-f's VAT: the XLAT entries of kind vat, one row per flow (its egress
 * entry): the application's view (to the virtual address) and the wire's
 * (to the GNAT's mapped port).
 */
export function dumpVat(m: GscipMaps, json: boolean): string {
  const now = monotonicNs();
  const rows = [...m.xlat.entries()].filter(([k, v]) => XLAT_KINDS.name(v.kind) === 'vat' && DIRS.name(k.dir) === 'egress').map(([k, v]) => ({
    proto: protoName(k.proto), stack: `${k.saddr}:${k.sport}>${k.daddr}:${k.dport}`, wire: `${v.saddr}:${v.sport}>${v.daddr}:${v.dport}`, createdNs: v.created_ns,
  }));
  rows.sort((a, b) => a.stack.localeCompare(b.stack));
  if (json) return toJson(rows);
  return `${table(['PROTO', 'APPLICATION (VIRTUAL)', '->', 'WIRE (GNAT:Z)', 'AGE_S'], rows.map((r) => [r.proto, r.stack, '->', r.wire, ageS(r.createdNs, now)]))}\n${rows.length} flows to virtual addresses`;
}

/** A table a running agent's NAT-f part publishes (natf/tables-file.ts): the NRT (initiator) or the ACT (GNAT). */
export function dumpNatfTable(a: InstanceArgs, which: NatfTable): string {
  const rows = readTable(a['run-dir'], a.instance, which);
  if (!rows) throw new UsageError(`map ${which}: instance ${a.instance} publishes no ${which.toUpperCase()} (no running agent with the ${which === 'nrt' ? 'natf' : 'nat'} part)`);
  if (a.json) return toJson(rows);
  if (which === 'nrt') {
    const r = rows as Array<{ name: string; real: string; virtual: string; lifeS: number }>;
    return `${table(['NAME', 'GNAT', 'VIRTUAL', 'LIFE_S'], r.map((x) => [x.name, x.real, x.virtual, x.lifeS]))}\n${r.length} virtual addresses`;
  }
  const r = rows as Array<{ name: string; address: string; outsideAccess: string; groups: number[]; source: string }>;
  return `${table(['NAME', 'ADDRESS', 'OUTSIDE_ACCESS', 'GROUPS', 'FROM'], r.map((x) => [x.name, x.address, x.outsideAccess, x.groups.join(','), x.source]))}\n${r.length} ACT entries`;
}

const MAPS = ['pit', 'xlat', 'cit', 'keys', 'flow-keys', 'iface', 'stats', 'nat', 'nrt', 'vat', 'act'] as const;

interface DumpArgs extends InstanceArgs { map: string; all: boolean }

const dump: CommandModule<object, DumpArgs> = {
  command: 'dump <map>',
  describe: 'print a map (pit, xlat, nat, keys, flow-keys, iface, stats; cit: the moved flows in xlat; nat: the GNAT\'s NAT sessions; vat: flows to virtual addresses; nrt, act: NAT-f\'s tables of a running agent)',
  builder: (y) => withInstance(y)
    .positional('map', { type: 'string', describe: MAPS.join(' | ') })
    .option('all', { type: 'boolean', default: false, describe: 'stats: include zero counters' }) as never,
  handler: guarded((a: DumpArgs) => (a.map === 'nrt' || a.map === 'act' ? print(dumpNatfTable(a, a.map)) : withMaps(a, (m) => {
    switch (a.map) {
      case 'pit': print(dumpPit(m, a.json)); break;
      case 'xlat': print(dumpXlat(m, a.json)); break;
      case 'cit': print(dumpCit(m, a.json, movesByFlow(readPublishedTable(a['run-dir'], a.instance, MOVES_TABLE)))); break;
      case 'nat': print(dumpNat(m, a.json)); break;
      case 'vat': print(dumpVat(m, a.json)); break;
      case 'keys': print(dumpKeys(m, a.json)); break;
      case 'flow-keys': print(dumpFlowKeys(m, a.json)); break;
      case 'iface': print(dumpIface(m, a.json)); break;
      case 'stats': print(dumpStats(m, a.json, a.all)); break;
      default: throw new UsageError(`map: '${a.map}' must be one of ${MAPS.join(', ')}`);
    }
  }))),
};

export const mapsCommand: CommandModule = {
  command: 'maps <command>',
  describe: 'inspect the fast-path maps of an instance',
  builder: (y) => y.command(dump as CommandModule).demandCommand(1),
  handler: () => undefined,
};
