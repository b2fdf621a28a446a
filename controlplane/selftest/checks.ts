/**
 * The five checks of `gscip selftest`. Each configures its own flow (own
 * ports, own marker), sends real traffic, and returns a verdict function
 * that is applied to the one transit capture once all traffic has run.
 *
 * A check passes only on positive evidence: the bytes arrived (or, for the
 * refusals, the datapath counted exactly the drops), AND the capture saw the
 * flow where it should have. An unreadable or lossy capture fails every check.
 *
 * Faults (`--inject-fault ID`, for the selftest's own test) misconfigure one
 * check on purpose to prove it can fail: for the four protected flows the
 * forward direction is PASS at both ends instead of ENCRYPT/DECRYPT (the
 * data goes out in clear, and is delivered); for the plaintext flow both
 * ends encrypt it (the marker cannot be seen).
 */
import { randomBytes } from 'node:crypto';
import { Action, Dir, PitState, Role } from '../maps/abi.js';
import { monotonicNs } from '../maps/accessors.js';
import type { Cid, PitVal } from '../maps/codecs.js';
import { flowPackets, markerHits, type CaptureResult, type FlowMatch } from './capture.js';
import { ADDR, HOSTS, type SelftestNet, type StatSnapshot } from './scenario.js';
import { markedData, sha256, tcpTransfer, udpTransfer } from './traffic.js';

export const CHECK_IDS = ['encrypted-tcp', 'encrypted-udp', 'missing-key', 'wrong-key', 'plaintext-pass'] as const;
export type CheckId = (typeof CHECK_IDS)[number];

/** The group every protected flow uses, and its key versions. */
export const GROUP = 0x5e1f;
/** Held by both ends (the same key). */
export const V_SHARED = 1;
/** Held by both ends, different keys: the receiver's is wrong. */
export const V_WRONG = 3;
/** Held by the receiver only. */
export const V_MISSING = 5;

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_BYTES = 1 << 20;
const PLAIN_BYTES = 256 << 10;
const UDP_SIZE = 1000;
const UDP_COUNT = 200;
const REFUSED_COUNT = 50;

export interface CheckResult {
  id: CheckId;
  title: string;
  pass: boolean;
  /** One line: the evidence when it passes, what went wrong first when it fails. */
  summary: string;
  /** Everything that was wrong (empty when it passes). */
  problems: string[];
  evidence: Record<string, number | string | boolean>;
  /** Configuring and running its traffic (the capture is judged afterwards, for all checks at once). */
  ms: number;
}

export interface CheckContext {
  net: SelftestNet;
  /** Misconfigure this check on purpose (see the file comment). */
  fault: boolean;
  /** Time left in the run's budget. */
  remainingMs(): number;
}

export type Verdict = (cap: CaptureResult) => CheckResult;

export interface CheckDef { id: CheckId; title: string; run(ctx: CheckContext): Promise<Verdict> }

/* ---------------- flows and PIT entries ---------------- */

interface Flow { proto: number; cport: number; sport: number }

const cid = (f: Flow, saddr: string, daddr: string, sport: number, dport: number, dir: number): Cid =>
  ({ saddr, daddr, sport, dport, proto: f.proto, dir });

function val(action: number, version = 0): PitVal {
  const now = monotonicNs();
  const crypto = action === Action.ENCRYPT || action === Action.DECRYPT;
  return { action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: crypto ? GROUP : 0, key_version: crypto ? version : 0,
    prev_key_version: 0, created_ns: now, last_seen_ns: now };
}

/** a -> b forward direction and b -> a reverse, as each end's interface sees them (no NAT in between). */
function install(net: SelftestNet, f: Flow, a: { out: PitVal; in: PitVal }, b: { in: PitVal; out: PitVal }): void {
  net.pit('a', [
    [cid(f, ADDR.A, ADDR.B, f.cport, f.sport, Dir.EGRESS), a.out],
    [cid(f, ADDR.B, ADDR.A, f.sport, f.cport, Dir.INGRESS), a.in],
  ]);
  net.pit('b', [
    [cid(f, ADDR.A, ADDR.B, f.cport, f.sport, Dir.INGRESS), b.in],
    [cid(f, ADDR.B, ADDR.A, f.sport, f.cport, Dir.EGRESS), b.out],
  ]);
}

/** ENCRYPT/DECRYPT both ways with key `version`; under a fault the forward direction (a -> b) is PASS at both ends. */
function protect(net: SelftestNet, f: Flow, version: number, fault: boolean): void {
  const fwdOut = fault ? val(Action.PASS) : val(Action.ENCRYPT, version);
  const fwdIn = fault ? val(Action.PASS) : val(Action.DECRYPT, version);
  install(net, f, { out: fwdOut, in: val(Action.DECRYPT, version) }, { in: fwdIn, out: val(Action.ENCRYPT, version) });
}

const match = (f: Flow): FlowMatch => ({ proto: f.proto, a: ADDR.A, aport: f.cport, b: ADDR.B, bport: f.sport });

/** A marker no other check, and nothing else on this host, carries. */
const newMarker = (id: CheckId): Buffer => Buffer.from(`GSCIP-SELFTEST-${id}-${randomBytes(6).toString('hex')}`);

/* ---------------- evidence helpers ---------------- */

function delta(before: StatSnapshot, after: StatSnapshot, name: string, field: 'packets' | 'bytes' = 'packets'): number {
  return (after[name]?.[field] ?? 0) - (before[name]?.[field] ?? 0);
}

export function size(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(n % 1024 ? 1 : 0)} KiB`;
  return `${n} B`;
}

function verdict(id: CheckId, title: string, ms: number, problems: string[], summary: string,
  evidence: CheckResult['evidence'], cap: CaptureResult): CheckResult {
  const all = [...(cap.problem ? [cap.problem] : []), ...problems];
  return { id, title, pass: all.length === 0, summary: all.length ? `${all.join('; ')}. Seen: ${summary}` : summary, problems: all, evidence, ms };
}

/* ---------------- the checks ---------------- */

const encryptedTcp: CheckDef = {
  id: 'encrypted-tcp',
  title: 'encrypted TCP',
  async run({ net, fault, remainingMs }) {
    const t0 = Date.now();
    const f: Flow = { proto: IPPROTO_TCP, cport: 40001, sport: 5201 };
    protect(net, f, V_SHARED, fault);
    const marker = newMarker(this.id);
    const data = markedData(TCP_BYTES, marker, 1024);
    const sa = net.stats('a'); const sb = net.stats('b');
    const tr = await tcpTransfer(net.topo, net.tmp, HOSTS.a, HOSTS.b, f.sport, f.cport, data, Math.min(fault ? 3000 : 10_000, remainingMs()));
    const sa2 = net.stats('a'); const sb2 = net.stats('b');
    const ms = Date.now() - t0;
    return (cap) => {
      const wire = flowPackets(cap, match(f)); const hits = markerHits(cap, marker);
      const exact = tr.received.length === data.length && sha256(tr.received) === sha256(data);
      const enc = delta(sa, sa2, 'pit_encrypt', 'bytes'); const dec = delta(sb, sb2, 'pit_decrypt', 'bytes');
      const bad = delta(sa, sa2, 'bad_keyed_csum') + delta(sb, sb2, 'bad_keyed_csum');
      const p: string[] = [];
      if (hits > 0) p.push(`LEAK: the marker crossed the transit wire ${hits} times`);
      if (!tr.completed) p.push(`the transfer did not complete (${tr.error ?? 'sink failed'})`);
      if (!exact) p.push(`received ${size(tr.received.length)} of ${size(data.length)}, not byte-exact`);
      if (wire.forward === 0) p.push('the capture saw none of the flow\'s packets');
      if (enc < data.length) p.push(`a encrypted only ${size(enc)}`);
      if (dec < data.length) p.push(`b decrypted only ${size(dec)}`);
      if (bad > 0) p.push(`${bad} bad keyed checksums`);
      return verdict(this.id, this.title, ms, p,
        `${size(data.length)} ${exact ? 'byte-exact' : 'sent'}, ${hits} marker hits in ${wire.forward + wire.reverse} transit packets (both links); a encrypted ${size(enc)}, b decrypted ${size(dec)}, ${bad} bad keyed checksums`,
        { bytes: data.length, receivedBytes: tr.received.length, byteExact: exact, markerHits: hits, transitPackets: wire.forward + wire.reverse,
          encryptedBytes: enc, decryptedBytes: dec, badKeyedChecksums: bad, transferMs: tr.ms }, cap);
    };
  },
};

const encryptedUdp: CheckDef = {
  id: 'encrypted-udp',
  title: 'encrypted UDP',
  async run({ net, fault, remainingMs }) {
    const t0 = Date.now();
    const f: Flow = { proto: IPPROTO_UDP, cport: 40002, sport: 5202 };
    protect(net, f, V_SHARED, fault);
    const marker = newMarker(this.id);
    const data = markedData(UDP_COUNT * UDP_SIZE, marker, UDP_SIZE);  // every datagram starts with the marker
    const sa = net.stats('a'); const sb = net.stats('b');
    const ur = await udpTransfer(net.topo, net.tmp, HOSTS.a, HOSTS.b, f.sport, f.cport, data, UDP_SIZE, Math.min(8000, remainingMs()));
    const sa2 = net.stats('a'); const sb2 = net.stats('b');
    const ms = Date.now() - t0;
    return (cap) => {
      const wire = flowPackets(cap, match(f)); const hits = markerHits(cap, marker);
      const exact = ur.received.length === data.length && sha256(ur.received) === sha256(data);
      const enc = delta(sa, sa2, 'pit_encrypt'); const dec = delta(sb, sb2, 'pit_decrypt');
      const bad = delta(sb, sb2, 'bad_keyed_csum');
      const p: string[] = [];
      if (hits > 0) p.push(`LEAK: the marker crossed the transit wire ${hits} times`);
      if (ur.sent !== UDP_COUNT) p.push(`the sender sent ${ur.sent} of ${UDP_COUNT} datagrams`);
      if (!exact) p.push(`received ${ur.datagrams}/${UDP_COUNT} datagrams, ${size(ur.received.length)}, not byte-exact`);
      if (wire.forward < UDP_COUNT) p.push(`the capture saw ${wire.forward} of the flow's ${UDP_COUNT} datagrams`);
      if (enc < UDP_COUNT) p.push(`a encrypted only ${enc} datagrams`);
      if (dec < UDP_COUNT) p.push(`b decrypted only ${dec} datagrams`);
      if (bad > 0) p.push(`${bad} bad keyed checksums on b`);
      return verdict(this.id, this.title, ms, p,
        `${ur.datagrams}/${UDP_COUNT} datagrams (${size(data.length)}) ${exact ? 'byte-exact' : 'received'}, ${hits} marker hits in ${wire.forward + wire.reverse} transit packets (both links); a encrypted ${enc}, b decrypted ${dec}, ${bad} bad keyed checksums`,
        { datagrams: UDP_COUNT, sent: ur.sent, received: ur.datagrams, byteExact: exact, markerHits: hits, transitPackets: wire.forward + wire.reverse,
          encrypted: enc, decrypted: dec, badKeyedChecksums: bad, transferMs: ur.ms }, cap);
    };
  },
};

const missingKey: CheckDef = {
  id: 'missing-key',
  title: 'key missing on the sender',
  async run({ net, fault, remainingMs }) {
    const t0 = Date.now();
    const f: Flow = { proto: IPPROTO_UDP, cport: 40003, sport: 5203 };
    // a's encrypt entry names version V_MISSING, which only b holds.
    protect(net, f, V_MISSING, fault);
    const marker = newMarker(this.id);
    const data = markedData(REFUSED_COUNT * UDP_SIZE, marker, UDP_SIZE);
    const sa = net.stats('a');
    const ur = await udpTransfer(net.topo, net.tmp, HOSTS.a, HOSTS.b, f.sport, f.cport, data, UDP_SIZE, Math.min(8000, remainingMs()));
    const sa2 = net.stats('a');
    const ms = Date.now() - t0;
    return (cap) => {
      const wire = flowPackets(cap, match(f)); const hits = markerHits(cap, marker);
      const noKey = delta(sa, sa2, 'no_key');
      const p: string[] = [];
      if (hits > 0) p.push(`LEAK: the marker crossed the transit wire ${hits} times`);
      if (ur.sent !== REFUSED_COUNT) p.push(`the sender sent ${ur.sent} of ${REFUSED_COUNT} datagrams`);
      if (noKey < ur.sent || ur.sent === 0) p.push(`a counted ${noKey} no_key drops for ${ur.sent} datagrams`);
      if (wire.forward > 0) p.push(`${wire.forward} of the flow's packets crossed the transit wire`);
      if (ur.datagrams > 0) p.push(`${ur.datagrams} datagrams were delivered`);
      return verdict(this.id, this.title, ms, p,
        `${noKey}/${ur.sent} datagrams dropped on a (no_key +${noKey}), ${wire.forward} on the transit wire, ${hits} marker hits, ${ur.datagrams} delivered`,
        { sent: ur.sent, noKeyDrops: noKey, transitPackets: wire.forward, markerHits: hits, delivered: ur.datagrams }, cap);
    };
  },
};

const wrongKey: CheckDef = {
  id: 'wrong-key',
  title: 'wrong key on the receiver',
  async run({ net, fault, remainingMs }) {
    const t0 = Date.now();
    const f: Flow = { proto: IPPROTO_UDP, cport: 40004, sport: 5204 };
    // Both ends name version V_WRONG, but their keys differ.
    protect(net, f, V_WRONG, fault);
    const marker = newMarker(this.id);
    const data = markedData(REFUSED_COUNT * UDP_SIZE, marker, UDP_SIZE);
    const sa = net.stats('a'); const sb = net.stats('b');
    const ur = await udpTransfer(net.topo, net.tmp, HOSTS.a, HOSTS.b, f.sport, f.cport, data, UDP_SIZE, Math.min(8000, remainingMs()));
    const sa2 = net.stats('a'); const sb2 = net.stats('b');
    const ms = Date.now() - t0;
    return (cap) => {
      const wire = flowPackets(cap, match(f)); const hits = markerHits(cap, marker);
      const enc = delta(sa, sa2, 'pit_encrypt'); const bad = delta(sb, sb2, 'bad_keyed_csum');
      const dec = delta(sb, sb2, 'pit_decrypt');
      const p: string[] = [];
      if (hits > 0) p.push(`LEAK: the marker crossed the transit wire ${hits} times`);
      if (ur.sent !== REFUSED_COUNT) p.push(`the sender sent ${ur.sent} of ${REFUSED_COUNT} datagrams`);
      if (enc < ur.sent || ur.sent === 0) p.push(`a encrypted ${enc} of ${ur.sent} datagrams`);
      if (wire.forward < ur.sent) p.push(`the capture saw ${wire.forward} of the flow's ${ur.sent} datagrams`);
      if (bad < ur.sent || ur.sent === 0) p.push(`b counted ${bad} bad keyed checksums for ${ur.sent} datagrams`);
      if (dec > 0) p.push(`b decrypted ${dec} datagrams`);
      if (ur.datagrams > 0) p.push(`${ur.datagrams} datagrams were delivered`);
      return verdict(this.id, this.title, ms, p,
        `${bad}/${ur.sent} datagrams refused on b (bad_keyed_csum +${bad}), ${ur.datagrams} delivered; ${wire.forward} packets crossed with ${hits} marker hits`,
        { sent: ur.sent, encrypted: enc, badKeyedChecksums: bad, decrypted: dec, transitPackets: wire.forward, markerHits: hits, delivered: ur.datagrams }, cap);
    };
  },
};

const plaintextPass: CheckDef = {
  id: 'plaintext-pass',
  title: 'plaintext between OP peers',
  async run({ net, fault, remainingMs }) {
    const t0 = Date.now();
    const f: Flow = { proto: IPPROTO_TCP, cport: 40005, sport: 5205 };
    // What DPRP installs between two OP-mode GEs without a common group: PASS both ways at both ends.
    const [o, i] = fault ? [Action.ENCRYPT, Action.DECRYPT] : [Action.PASS, Action.PASS];
    install(net, f, { out: val(o, V_SHARED), in: val(i, V_SHARED) }, { in: val(i, V_SHARED), out: val(o, V_SHARED) });
    const marker = newMarker(this.id);
    const data = markedData(PLAIN_BYTES, marker, 1024);
    const sa = net.stats('a');
    const tr = await tcpTransfer(net.topo, net.tmp, HOSTS.a, HOSTS.b, f.sport, f.cport, data, Math.min(10_000, remainingMs()));
    const sa2 = net.stats('a');
    const ms = Date.now() - t0;
    return (cap) => {
      const wire = flowPackets(cap, match(f)); const hits = markerHits(cap, marker);
      const exact = tr.received.length === data.length && sha256(tr.received) === sha256(data);
      const passed = delta(sa, sa2, 'pit_pass', 'bytes');
      const p: string[] = [];
      if (!tr.completed) p.push(`the transfer did not complete (${tr.error ?? 'sink failed'})`);
      if (!exact) p.push(`received ${size(tr.received.length)} of ${size(data.length)}, not byte-exact`);
      if (wire.forward === 0) p.push('the capture saw none of the flow\'s packets');
      if (hits === 0) p.push('the plaintext marker never appeared in the capture: either the flow was not plaintext or the capture cannot see payloads, and then no leak check above proves anything');
      if (passed < data.length) p.push(`a passed only ${size(passed)}`);
      return verdict(this.id, this.title, ms, p,
        `${size(data.length)} ${exact ? 'byte-exact' : 'sent'}, marker seen ${hits} times in ${wire.forward + wire.reverse} transit packets (both links)${hits ? ': the capture sees plaintext' : ''}; a passed ${size(passed)}`,
        { bytes: data.length, receivedBytes: tr.received.length, byteExact: exact, markerHits: hits, transitPackets: wire.forward + wire.reverse,
          passedBytes: passed, transferMs: tr.ms }, cap);
    };
  },
};

export const CHECKS: readonly CheckDef[] = [encryptedTcp, encryptedUdp, missingKey, wrongKey, plaintextPass];

/** A check that could not run: fails with the reason whatever the capture says. */
export function notRun(def: CheckDef, reason: string): Verdict {
  return () => ({ id: def.id, title: def.title, pass: false, summary: `not run: ${reason}`, problems: [reason], evidence: {}, ms: 0 });
}
