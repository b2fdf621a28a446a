/**
 * Instance checks: is the deployed fast path the one this build would run,
 * and is its agent alive? Read-only: no lock is kept, nothing is mounted,
 * attached or unpinned.
 *
 *  - agent:     the instance lock is held (by the pid in it); the state file is from this netns
 *  - attached:  on each interface, our TC filter (handle 0x65c1 prio 1) on ingress and egress,
 *               running programs whose tag (a hash of their instructions) is this build's
 *  - pins:      every pinned map has the type, key/value size, max_entries (where the
 *               configuration cannot change it) and flags of this build's map definition
 *               (the object opened, not loaded); a stale pin is named with the command that clears it
 *  - keys:      ages of the installed group keys; with --gms-data-dir, the GMS delivery is installed
 *  - punt:      the punt ring's consumer keeps up with its producer (positions read by mmap)
 *  - ipv6:      each interface's IPv6 policy as the fast path holds it (gscip_iface); a warning
 *               when IPv6 passes untouched on a CL element, or on one whose mode the agent did not know
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { bpffsState } from '../bpf/bpffs.js';
import { BpfMap, PerCpuBpfMap } from '../bpf/bpf-map.js';
import {
  closeBpfFd, mapInfo, MapType, objectClose, objectMaps, objectOpenFile, objGet, progInfo, raw, tcQuery, type MapInfo,
} from '../bpf/libbpf.js';
import { ifNameToIndex, mmapRead } from '../bpf/libc.js';
import { BpfObject } from '../bpf/object.js';
import { hasClsact } from '../agent/datapath.js';
import { instancePaths, lockHeld, netnsInode, readIfaceOwner, readState, TC_FILTER, type InstancePaths, type InstanceState } from '../agent/instance.js';
import { DEFAULT_PIN_ROOT, DEFAULT_RUN_DIR } from '../config/agent-config.js';
import { loadCache } from '../gms/agent-files.js';
import { monotonicNs } from '../maps/accessors.js';
import { counterSlot, Dir, Ipv6Policy, ipv6PolicyName, Stat } from '../maps/abi.js';
import { DIRS, type DirName } from '../maps/vocabulary.js';
import { ifaceCfgCodec, ipv6PolicyOf, keyIdCodec, keyValCodec, statValCodec, u32Codec } from '../maps/codecs.js';
import { ADDED_MAP_NAMES, LEGACY_MAP_NAMES, MAP_NAMES, NAT_MAP_NAMES, PROG_NAMES, SCRATCH_MAP_NAMES } from '../maps/gscip-maps.js';
import { legacyPins } from '../agent/migrate.js';

const legacyKey = (pin: string): keyof typeof LEGACY_MAP_NAMES =>
  (Object.keys(LEGACY_MAP_NAMES) as Array<keyof typeof LEGACY_MAP_NAMES>).find((k) => LEGACY_MAP_NAMES[k] === pin) ?? 'stats';
import { failed, guard, ok, skip, warn, type Check } from './checks.js';

export interface InstanceCheckOptions {
  instance: string;
  pinRoot: string;
  runDir: string;
  bpfObject: string;
  /** Interfaces that should be protected; default: those in the instance's state file. */
  ifaces?: string[];
  /** The agent's enrolled data dir: compare installed keys with the GMS delivery. */
  gmsDataDir?: string;
  /** How long a non-empty punt ring may sit unread before it counts as stuck. */
  puntStallMs?: number;
}

/** Maps whose max_entries the configuration sets (maxEntries.pit/xlat, nat.maxSessions): not compared. */
const RESIZABLE = new Set<string>([MAP_NAMES.pit, MAP_NAMES.xlat, NAT_MAP_NAMES.sessions]);
const MAP_TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(MapType).map(([k, v]) => [v, k.toLowerCase()]));
const typeName = (t: number): string => MAP_TYPE_NAMES[t] ?? `type ${t}`;

/** `--instance X` plus --pin-root/--run-dir when they differ from the defaults: a fix command that works as printed. */
export function instanceFlags(o: Pick<InstanceCheckOptions, 'instance' | 'pinRoot' | 'runDir'>): string {
  return [`--instance ${o.instance}`, o.pinRoot !== DEFAULT_PIN_ROOT ? `--pin-root ${o.pinRoot}` : '', o.runDir !== DEFAULT_RUN_DIR ? `--run-dir ${o.runDir}` : ''].filter(Boolean).join(' ');
}

interface AgentView { paths: InstancePaths; state: InstanceState | null; running: boolean; pid: number | null; sameNetns: boolean }

function agentView(o: InstanceCheckOptions): AgentView {
  const paths = instancePaths({ instance: o.instance, pinRoot: o.pinRoot, runDir: o.runDir });
  const state = readState(paths);
  const held = lockHeld(paths.lockFile);
  const pid = held.held && Number.isInteger(Number(held.by)) && Number(held.by) > 0 ? Number(held.by) : null;
  return { paths, state, running: held.held, pid, sameNetns: state ? state.netnsIno === netnsInode() : true };
}

function agentCheck(o: InstanceCheckOptions, v: AgentView): Check {
  const id = 'instance.agent';
  const t = `agent (${o.instance})`;
  const run = `gscip agent run ${instanceFlags(o)} --iface IFACE ...`;
  if (v.running) {
    return ok(id, t, `running (pid ${v.pid ?? '?'}${v.state?.startedAt ? `, since ${v.state.startedAt}` : ''}; lock ${v.paths.lockFile})`);
  }
  if (!v.state) return failed(id, t, `no agent is running and none has run: no ${v.paths.stateFile}`, `start it: ${run}`);
  const left = v.state.interfaces.map((i) => i.name).join(', ') || 'no interfaces';
  return failed(id, t, `no agent is running (lock ${v.paths.lockFile} is free); the last one left its fast path on ${left}: ` +
    'the PIT is enforced but new flows wait for a decision nobody makes', `start it again: ${run}`);
}

/** This build's program tags (the kernel's hash of the instructions, map references zeroed): load without pins, read, close. */
export function buildProgramTags(bpfObject: string): Record<DirName, string> {
  const obj = BpfObject.load(bpfObject, { maxEntries: { [MAP_NAMES.pit]: 1024, [MAP_NAMES.xlat]: 1024 } });
  try {
    return { ingress: progInfo(obj.progFd(PROG_NAMES.ingress)).tag, egress: progInfo(obj.progFd(PROG_NAMES.egress)).tag };
  } finally { obj.close(); }
}

function attachedChecks(o: InstanceCheckOptions, v: AgentView, tags: Record<DirName, string> | null): Check[] {
  const restart = `restart the agent: gscip agent stop ${instanceFlags(o)}; gscip agent run ${instanceFlags(o)} --iface ...`;
  if (v.state && !v.sameNetns) {
    return [failed('instance.attached', 'attached', `instance '${o.instance}' is attached in another network namespace (inode ${v.state.netnsIno}, this is ${netnsInode()})`,
      'run gscip doctor in that namespace: nsenter --net=/run/netns/NAME gscip doctor ...')];
  }
  const names = o.ifaces?.length ? o.ifaces : (v.state?.interfaces ?? []).map((i) => i.name);
  if (!names.length) return [failed('instance.attached', 'attached', `no interfaces to check: none given (--iface) and none in ${v.paths.stateFile}`, `give --iface IFACE, or start the agent: gscip agent run ${instanceFlags(o)} --iface IFACE`)];
  const ino = netnsInode();
  return names.map((name) => {
    const id = `instance.attached.${name}`;
    const t = `attached ${name}`;
    let ifindex: number;
    try { ifindex = ifNameToIndex(name); } catch { return failed(id, t, `no interface ${name} in this network namespace`, 'run gscip doctor in the interface\'s namespace (nsenter --net=...), or fix --iface'); }
    if (!hasClsact(ifindex)) return failed(id, t, `${name} has no clsact qdisc: the fast path is not attached (no GSCIP filter on either direction)`, restart);
    const dirs: string[] = [];
    const bad: string[] = [];
    for (const dir of DIRS.names) {
      const progId = tcQuery(ifindex, dir, TC_FILTER);
      if (progId === null) { bad.push(`no GSCIP filter on ${dir} (handle 0x${TC_FILTER.handle.toString(16)} prio ${TC_FILTER.priority}): removed by hand or by another tool`); continue; }
      const p = progById(progId);
      if (!p) { bad.push(`${dir} filter points at program id ${progId}, which the kernel no longer has`); continue; }
      if (tags && p.tag !== tags[dir]) {
        bad.push(`${dir} runs ${p.name} id ${progId} tag ${p.tag}, not this build's ${PROG_NAMES[dir]} (tag ${tags[dir]}): an agent of another build attached it`);
        continue;
      }
      dirs.push(`${dir} id ${progId}`);
    }
    const owner = readIfaceOwner(o.runDir, ino, ifindex);
    if (owner && owner !== o.instance) bad.push(`${o.runDir} records instance '${owner}' as its owner, not '${o.instance}'`);
    if (bad.length) return failed(id, t, `${name}: ${bad.join('; ')}`, restart);
    return ok(id, t, `${name} (ifindex ${ifindex}): ${dirs.join(', ')}${tags ? ', programs of this build' : ''}`);
  });
}

function progById(id: number): { name: string; tag: string } | null {
  const fd = raw.bpf_prog_get_fd_by_id(id) as number;
  if (fd < 0) return null;
  try { return progInfo(fd); } finally { closeBpfFd(fd); }
}

interface MapDef { name: string; type: number; keySize: number; valueSize: number; maxEntries: number; flags: number }

/** The object's map definitions, opened and not loaded (what a fresh agent would create). */
export function objectMapDefs(bpfObject: string): MapDef[] {
  const obj = objectOpenFile(bpfObject);
  try {
    return objectMaps(obj).map((m) => ({
      name: raw.bpf_map__name(m) as string, type: raw.bpf_map__type(m) as number, keySize: raw.bpf_map__key_size(m) as number,
      valueSize: raw.bpf_map__value_size(m) as number, maxEntries: raw.bpf_map__max_entries(m) as number, flags: raw.bpf_map__map_flags(m) as number,
    })).filter((d) => !d.name.includes('.')); // .rodata/.bss: internal, never pinned
  } finally { objectClose(obj); }
}

/** How a pinned map differs from this build's definition (empty: it matches). */
export function mapDifferences(def: MapDef, pin: Pick<MapInfo, 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags'>): string[] {
  const d: string[] = [];
  if (pin.type !== def.type) d.push(`type ${typeName(pin.type)}, this build ${typeName(def.type)}`);
  if (pin.keySize !== def.keySize) d.push(`key size ${pin.keySize}, this build ${def.keySize}`);
  if (pin.valueSize !== def.valueSize) d.push(`value size ${pin.valueSize}, this build ${def.valueSize}`);
  if (!RESIZABLE.has(def.name) && pin.maxEntries !== def.maxEntries) d.push(`max_entries ${pin.maxEntries}, this build ${def.maxEntries}`);
  if (pin.flags !== def.flags) d.push(`flags 0x${pin.flags.toString(16)}, this build 0x${def.flags.toString(16)}`);
  return d;
}

function pinsUsable(v: AgentView): boolean {
  return bpffsState(v.paths.pinDir).mountPoint !== null && existsSync(v.paths.pinDir);
}

function pinChecks(o: InstanceCheckOptions, v: AgentView): Check[] {
  const t = 'pinned maps';
  const dir = v.paths.pinDir;
  if (bpffsState(dir).mountPoint === null) return [skip('instance.pins', t, `no bpffs serves ${dir}: there are no pins (an agent mounts bpffs and pins when it starts)`)];
  if (!existsSync(dir)) return [skip('instance.pins', t, `no pins in ${dir}: no agent has run for instance '${o.instance}'`)];
  const clear = v.running ? `gscip agent stop --unpin ${instanceFlags(o)}` : `gscip agent detach --unpin ${instanceFlags(o)}`;
  const loses = ' (removes the pins and their state: PIT, XLAT, keys; then start the agent of this build)';
  const defs = objectMapDefs(o.bpfObject);
  const out: Check[] = [];
  // Pins of the previous layout are not stale: this build's agent migrates them when it starts (agent/migrate.ts).
  const legacy = legacyPins(dir, new Set(defs.map((d) => d.name)));
  const replacedBy = new Map<string, string>(legacy.map((n) => [MAP_NAMES[legacyKey(n)], n]));
  const upgrade = v.running
    ? `restart the agent with this build: gscip agent stop ${instanceFlags(o)}; gscip agent run ${instanceFlags(o)} --iface ...`
    : `start the agent of this build: gscip agent run ${instanceFlags(o)} --iface ...`;
  const migrates = 'the agent of this build migrates these pins in place when it starts: PIT, XLAT, keys and established flows are kept';
  for (const def of defs) {
    const path = `${dir}/${def.name}`;
    const id = `instance.pin.${def.name}`;
    const old = replacedBy.get(def.name);
    if (!existsSync(path) && old) {
      out.push(warn(id, `pin ${def.name}`, `${path} is missing because the pins are of the previous layout (${old}); ${migrates}, ${def.name} is created`, upgrade));
      continue;
    }
    if (!existsSync(path) && ADDED_MAP_NAMES.has(def.name) && existsSync(`${dir}/${MAP_NAMES.pit}`)) {
      out.push(warn(id, `pin ${def.name}`, `${path} is missing: a map this build added (the pins are an earlier build's); the agent of this build creates it when it starts, established flows are kept`, upgrade));
      continue;
    }
    if (!existsSync(path)) {
      out.push(failed(id, `pin ${def.name}`, `${path} is missing: this build's programs need ${def.name}`, v.running
        ? `restart the agent (it pins a new, empty ${def.name}): gscip agent stop ${instanceFlags(o)}; gscip agent run ${instanceFlags(o)} --iface ...`
        : `start the agent: it pins a new, empty ${def.name}`));
      continue;
    }
    let info: MapInfo;
    const fd = objGet(path);
    try { info = mapInfo(fd); } finally { closeBpfFd(fd); }
    const diff = mapDifferences(def, info);
    if (diff.length && SCRATCH_MAP_NAMES.has(def.name)) {
      // No state in it: the agent of this build replaces the pin on start (agent/datapath.ts).
      out.push(warn(id, `pin ${def.name}`, `${path} is another build's ${def.name} (${diff.join('; ')}), a scratch map with no state: the agent of this build replaces it when it starts`,
        v.running ? `restart the agent of this build: gscip agent stop ${instanceFlags(o)}; gscip agent run ${instanceFlags(o)} --iface ...` : 'start the agent of this build'));
      continue;
    }
    if (diff.length) out.push(failed(id, `pin ${def.name}`, `${path} is stale, not this build's ${def.name}: ${diff.join('; ')} (an older build's pin, or replaced by hand)`, `${clear}${loses}`));
  }
  const known = new Set(defs.map((d) => d.name));
  for (const f of readdirSync(dir).filter((n) => !known.has(n)).sort()) {
    if (legacy.includes(f)) {
      out.push(warn(`instance.pin.${f}`, `pin ${f}`, `${dir}/${f} is the previous layout's ${f} (not stale): ${migrates}; it is removed after its totals are logged (counters have no direction there and are not carried over)`, upgrade));
      continue;
    }
    out.push(warn(`instance.pin.${f}`, `pin ${f}`, `${dir}/${f} is not a map of this build (left by an older build?)`, `if no other build uses it: rm ${dir}/${f}`));
  }
  if (!out.some((c) => c.status === 'fail') && !legacy.length) {
    out.unshift(ok('instance.pins', t, `all ${defs.length} pins in ${dir} match this build's maps (type, key/value size, max_entries, flags)`));
  }
  return out;
}

function fmtAge(s: number): string {
  return s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${(s / 3600).toFixed(1)}h` : `${(s / 86_400).toFixed(1)}d`;
}

function keysCheck(o: InstanceCheckOptions, v: AgentView): Check {
  const id = 'instance.keys';
  const t = 'group keys';
  const path = `${v.paths.pinDir}/${MAP_NAMES.keys}`;
  if (!pinsUsable(v) || !existsSync(path)) return skip(id, t, `no ${path}`);
  let m: BpfMap<{ group_id: number; version: number }, { installed_ns: bigint }>;
  try { m = BpfMap.fromPin(path, keyIdCodec, keyValCodec); } catch (e) { return skip(id, t, `${path} cannot be read with this build's codecs: ${(e as Error).message} (see pinned maps)`); }
  const now = monotonicNs();
  let installed: Array<{ group: number; version: number; ageS: number }>;
  try {
    installed = [...m.entries()].map(([k, val]) => ({ group: k.group_id, version: k.version, ageS: Number(now - val.installed_ns) / 1e9 }))
      .sort((a, b) => a.group - b.group || a.version - b.version);
  } finally { m.close(); }
  const list = installed.map((k) => `group ${k.group} v${k.version} ${fmtAge(k.ageS)}`).join(', ');
  if (o.gmsDataDir) {
    const d = loadCache(o.gmsDataDir);
    if (!d) return warn(id, t, `${installed.length} installed${list ? `: ${list}` : ''}; ${o.gmsDataDir} holds no GMS delivery yet`, `start the agent with --gms-data-dir ${o.gmsDataDir} while the GMS is reachable`);
    const nowMs = Date.now();
    const has = (g: number, ver: number): boolean => installed.some((k) => k.group === g && k.version === ver);
    const live = d.keys.filter((k) => k.expiresAt === null || k.expiresAt > nowMs);
    const missing = live.filter((k) => !has(k.group, k.version)).map((k) => `group ${k.group} v${k.version}`);
    const expired = d.keys.filter((k) => k.expiresAt !== null && k.expiresAt <= nowMs && has(k.group, k.version)).map((k) => `group ${k.group} v${k.version} (expired ${new Date(k.expiresAt!).toISOString()})`);
    const ages = live.map((k) => `group ${k.group} v${k.version} ${k.expiresAt === null ? 'current' : 'grace'} ${fmtAge((nowMs - k.createdAt) / 1000)}`).join(', ');
    const deliveredAge = fmtAge((nowMs - d.issuedAt) / 1000);
    if (missing.length || expired.length) {
      return failed(id, t, [missing.length ? `delivered by the GMS but not in ${MAP_NAMES.keys}: ${missing.join(', ')}` : '',
        expired.length ? `still installed after expiry: ${expired.join(', ')}` : ''].filter(Boolean).join('; ') + ` (delivery ${deliveredAge} old)`,
      `run the agent with --gms-data-dir ${o.gmsDataDir}: it installs the delivery and removes expired keys`);
    }
    return ok(id, t, `${installed.length} installed, as the GMS delivered ${deliveredAge} ago: ${ages || 'no keys'}`);
  }
  return ok(id, t, installed.length ? `${installed.length} installed (age since install): ${list}` : 'none installed (PCCOM flows need a key: gscip keys set, or the GMS)');
}

function pageSize(): number {
  const r = spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8', timeout: 2000 });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 4096;
}

/** consumer_pos (page 0) and producer_pos (page 1) of a BPF ring buffer. */
function ringPositions(fd: number, page: number): { consumer: bigint; producer: bigint } {
  return { consumer: mmapRead(fd, 0, page, 8).readBigUInt64LE(0), producer: mmapRead(fd, page, page, 8).readBigUInt64LE(0) };
}

async function puntCheck(o: InstanceCheckOptions, v: AgentView): Promise<Check> {
  const id = 'instance.punt';
  const t = 'punt path';
  const path = `${v.paths.pinDir}/${MAP_NAMES.punt}`;
  if (!v.running) return skip(id, t, 'no agent runs to read the punt ring (see agent)');
  if (!pinsUsable(v) || !existsSync(path)) return skip(id, t, `no ${path}`);
  const fd = objGet(path);
  try {
    const info = mapInfo(fd);
    if (info.type !== MapType.RINGBUF) return skip(id, t, `${path} is not a ring buffer (see pinned maps)`);
    const page = pageSize();
    const a = ringPositions(fd, page);
    const dropped = ringDrops(v.paths.pinDir);
    const drops = dropped > 0n ? `; ${dropped} punts dropped since load because the ring was full (${MAP_NAMES.stats} punt_ringbuf)` : '';
    if (a.producer === a.consumer) return ok(id, t, `the agent (pid ${v.pid ?? '?'}) has read every punt: ring empty at position ${a.consumer}${drops}`);
    const wait = o.puntStallMs ?? 300;
    await new Promise((r) => setTimeout(r, wait));
    const b = ringPositions(fd, page);
    if (b.consumer !== a.consumer || b.producer === b.consumer) {
      return ok(id, t, `the agent (pid ${v.pid ?? '?'}) is reading punts: consumer moved ${b.consumer - a.consumer} bytes in ${wait} ms, ${b.producer - b.consumer} behind${drops}`);
    }
    return failed(id, t, `${b.producer - b.consumer} bytes of punts sit unread for ${wait} ms while agent pid ${v.pid ?? '?'} holds the lock: its punt reader is stuck, punted packets wait and expire${drops}`,
      `restart the agent: gscip agent stop ${instanceFlags(o)}; gscip agent run ${instanceFlags(o)} --iface ...`);
  } finally { closeBpfFd(fd); }
}

function ringDrops(pinDir: string): bigint {
  const path = `${pinDir}/${MAP_NAMES.stats}`;
  if (!existsSync(path)) return 0n;
  try {
    const m = PerCpuBpfMap.fromPin(path, u32Codec, statValCodec);
    const cells = [Dir.INGRESS, Dir.EGRESS].flatMap((d) => m.get(counterSlot(Stat.DROP_PUNT_RINGBUF, d)) ?? []);
    try { return cells.reduce((s, x) => s + x.packets, 0n); } finally { m.close(); }
  } catch { return 0n; }
}

/** Packets of some reasons, both directions, from the pinned counters (0 when unreadable). */
function counted(pinDir: string, ids: number[]): bigint {
  const path = `${pinDir}/${MAP_NAMES.stats}`;
  if (!existsSync(path)) return 0n;
  try {
    const m = PerCpuBpfMap.fromPin(path, u32Codec, statValCodec);
    try {
      return ids.flatMap((id) => [Dir.INGRESS, Dir.EGRESS].flatMap((d) => m.get(counterSlot(id, d)) ?? [])).reduce((s, x) => s + x.packets, 0n);
    } finally { m.close(); }
  } catch { return 0n; }
}

const IPV6_MEANING: Record<number, string> = {
  [Ipv6Policy.PASS]: 'every IPv6 packet passes untouched',
  [Ipv6Policy.DROP]: 'every IPv6 packet is dropped',
  [Ipv6Policy.ND_ONLY]: 'neighbour discovery and link-local traffic only, the rest dropped',
};

/** Each interface's IPv6 policy, read from the pinned gscip_iface (GSCIP guards IPv4 only). */
function ipv6Checks(o: InstanceCheckOptions, v: AgentView): Check[] {
  if (v.state && !v.sameNetns) return [skip('instance.ipv6', 'IPv6 policy', 'the instance is attached in another network namespace')];
  const names = o.ifaces?.length ? o.ifaces : (v.state?.interfaces ?? []).map((i) => i.name);
  const path = `${v.paths.pinDir}/${MAP_NAMES.iface}`;
  if (!names.length || !existsSync(path)) return [skip('instance.ipv6', 'IPv6 policy', names.length ? `no ${path}` : 'no interfaces to check')];
  const mode = v.state?.geMode ?? null;
  const flags = instanceFlags(o);
  const dropped = counted(v.paths.pinDir, [Stat.DROP_IPV6_POLICY, Stat.DROP_IPV6_ND_ONLY]);
  const passed = counted(v.paths.pinDir, [Stat.STAT_PASS_IPV6, Stat.STAT_PASS_IPV6_ND, Stat.STAT_PASS_IPV6_LINK_LOCAL]);
  const totals = `instance counts: ${passed} IPv6 packets passed, ${dropped} dropped by IPv6 policy`;
  const m = BpfMap.fromPin(path, u32Codec, ifaceCfgCodec);
  try {
    return names.map((name) => {
      const id = `instance.ipv6.${name}`;
      const t = `IPv6 ${name}`;
      let ifindex: number;
      try { ifindex = ifNameToIndex(name); } catch { return skip(id, t, `no interface ${name} in this network namespace`); }
      const e = m.get(ifindex);
      if (!e) return skip(id, t, `${name} has no gscip_iface entry (not configured by an agent)`);
      const p = ipv6PolicyOf(e);
      const what = `${name}: ipv6 ${ipv6PolicyName(p)} (${IPV6_MEANING[p] ?? 'a value this build does not know: dropped'}); ${totals}`;
      const fix = `close it: gscip iface set ${name} --ipv6 nd-only ${flags} (or drop), and interfaces[].ipv6 / --ipv6 ${name}:nd-only in the agent's configuration`;
      if (p !== Ipv6Policy.PASS) return ok(id, t, what);
      if (mode === 'CL') return warn(id, t, `${what}: this element is CL, and IPv6 goes through it unguarded`, fix);
      if (mode === null) return warn(id, t, `${what}: the agent did not know this element's mode (no ge / GMS identity), so it may be a CL element open to IPv6`, fix);
      return ok(id, t, `${what} (an OP element)`);
    });
  } finally { m.close(); }
}

/** Every instance check, in order. */
export async function instanceChecks(o: InstanceCheckOptions): Promise<Check[]> {
  const v = agentView(o);
  const out: Check[] = [agentCheck(o, v)];
  let tags: Record<DirName, string> | null = null;
  const tagNote: Check[] = await guard('instance.build', 'this build', () => { tags = buildProgramTags(o.bpfObject); return []; });
  out.push(...tagNote);
  out.push(...await guard('instance.attached', 'attached', () => attachedChecks(o, v, tags)));
  out.push(...await guard('instance.pins', 'pinned maps', () => pinChecks(o, v)));
  out.push(...await guard('instance.keys', 'group keys', () => keysCheck(o, v)));
  out.push(...await guard('instance.punt', 'punt path', () => puntCheck(o, v)));
  out.push(...await guard('instance.ipv6', 'IPv6 policy', () => ipv6Checks(o, v)));
  return out;
}
