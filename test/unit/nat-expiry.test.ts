/**
 * NAT session expiry (controlplane/natf/nat-expiry.ts, nat-sweep.ts) with a
 * fake clock and fake maps: the state each session's flags mean, its timeout
 * (RFC 4787 / 5382 / 6146 defaults), the sweep removing the session and then
 * only its own port claim, orphan claims removed only at the second pass; and
 * the `nat` config refusing what would break the NAT, naming the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAT_F_FIN_IN, NAT_F_FIN_OUT, NAT_F_IN, NAT_F_RST, NAT_F_SYN_OUT } from '../../controlplane/maps/abi.js';
import type { Cid, NatPortKey, NatVal } from '../../controlplane/maps/codecs.js';
import { natExpired, natState } from '../../controlplane/natf/nat-expiry.js';
import { NatSweeper } from '../../controlplane/natf/nat-sweep.js';
import { natCfgOf, natConfigSchema, NAT_TIMEOUT_DEFAULTS, parseInsidePrefix, portRangesOverlap } from '../../controlplane/natf/nat-config.js';
import { ConfigError, parseAgentConfig } from '../../controlplane/config/agent-config.js';
import { JsonKeyMap } from '../lib/json-key-map.js';

const TCP = 6;
const UDP = 17;
const S = 1_000_000_000n;
const T = { ...NAT_TIMEOUT_DEFAULTS };

function val(flags: number, lastSeenS: number, port = 40000): NatVal {
  return { ext_addr: '192.0.2.2', ext_port: port, origin: 0, flags, created_ns: 1n * S, last_seen_ns: BigInt(lastSeenS) * S };
}


function key(sport: number, proto = TCP): Cid {
  return { saddr: '100.64.1.10', daddr: '198.51.100.7', sport, dport: 80, proto, dir: 1 };
}

test('state from the flags: SYN answered = established; unanswered SYN, mid-stream pickup, both FINs, RST = transitory; one FIN still established', () => {
  assert.equal(natState(UDP, 0), 'udp');
  assert.equal(natState(TCP, NAT_F_SYN_OUT), 'tcp_transitory');
  assert.equal(natState(TCP, NAT_F_IN), 'tcp_transitory', 'picked up without a SYN');
  assert.equal(natState(TCP, NAT_F_SYN_OUT | NAT_F_IN), 'tcp_established');
  assert.equal(natState(TCP, NAT_F_SYN_OUT | NAT_F_IN | NAT_F_FIN_OUT), 'tcp_established', 'half-closed');
  assert.equal(natState(TCP, NAT_F_SYN_OUT | NAT_F_IN | NAT_F_FIN_OUT | NAT_F_FIN_IN), 'tcp_transitory');
  assert.equal(natState(TCP, NAT_F_SYN_OUT | NAT_F_IN | NAT_F_RST), 'tcp_transitory');
});

test('timeouts on a fake clock: UDP 300 s, TCP established 7440 s, transitory 240 s, counted from the last packet', () => {
  const est = val(NAT_F_SYN_OUT | NAT_F_IN, 100);
  assert.equal(natExpired(TCP, est, (100n + 7439n) * S, T), false);
  assert.equal(natExpired(TCP, est, (100n + 7440n) * S, T), true);
  const syn = val(NAT_F_SYN_OUT, 100);
  assert.equal(natExpired(TCP, syn, (100n + 239n) * S, T), false);
  assert.equal(natExpired(TCP, syn, (100n + 240n) * S, T), true);
  const udp = val(0, 100);
  assert.equal(natExpired(UDP, udp, (100n + 299n) * S, T), false);
  assert.equal(natExpired(UDP, udp, (100n + 300n) * S, T), true);
  assert.equal(natExpired(UDP, val(0, 0), 2n * S, T), false, 'never seen: counted from created_ns');
  assert.equal(natExpired(UDP, udp, 50n * S, T), false, 'a clock behind the entry never expires it');
});

test('a sweep removes expired sessions and then their own port claims; live ones and other sessions\' claims stay', () => {
  const sessions = new JsonKeyMap<Cid, NatVal>();
  const ports = new JsonKeyMap<NatPortKey, Cid>();
  sessions.set(key(1), val(NAT_F_SYN_OUT | NAT_F_IN, 0, 40001));      // established, idle since 0
  sessions.set(key(2), val(NAT_F_SYN_OUT, 0, 40002));                 // SYN unanswered, idle since 0
  sessions.set(key(3, UDP), val(0, 900, 40003));                      // UDP, recent
  sessions.set(key(4, 1), val(0, 900, 40004));                        // ICMP echo (identifier claimed like a port), recent: the UDP timeout
  for (const [k, v] of sessions.entries()) ports.set({ port: v.ext_port, proto: k.proto }, k);
  const sw = new NatSweeper({ sessions, ports }, T);
  const r = sw.sweep(1000n * S);
  assert.deepEqual(r.expired, { udp: 0, tcp_established: 0, tcp_transitory: 1 });
  assert.deepEqual(r.sessions, { udp: 2, tcp_established: 1, tcp_transitory: 0 });
  assert.equal(sessions.get(key(2)), undefined);
  assert.equal(ports.get({ port: 40002, proto: TCP }), undefined, 'its claim is free again');
  assert.deepEqual(r.ports, { tcp: 1, udp: 1, icmp: 1 });
  const r2 = sw.sweep((7440n + 1n) * S);
  assert.deepEqual(r2.expired, { udp: 2, tcp_established: 1, tcp_transitory: 0 });
  assert.equal(sessions.size, 0);
  assert.equal(ports.size, 0);
});

test('a claim another session took over is not removed with the expired one', () => {
  const sessions = new JsonKeyMap<Cid, NatVal>();
  const ports = new JsonKeyMap<NatPortKey, Cid>();
  sessions.set(key(1), val(NAT_F_SYN_OUT, 0, 40001));
  sessions.set(key(9), val(NAT_F_SYN_OUT | NAT_F_IN, 990, 40001));   // (cannot happen in the fast path; the sweep still must not free it)
  ports.set({ port: 40001, proto: TCP }, key(9));
  new NatSweeper({ sessions, ports }, T).sweep(1000n * S);
  assert.equal(sessions.get(key(1)), undefined);
  assert.deepEqual(ports.get({ port: 40001, proto: TCP }), key(9));
});

test('an orphan claim (no session) is kept at the first pass, removed at the second: the fast path claims just before it writes the session', () => {
  const sessions = new JsonKeyMap<Cid, NatVal>();
  const ports = new JsonKeyMap<NatPortKey, Cid>();
  ports.set({ port: 40005, proto: UDP }, key(5, UDP));
  const sw = new NatSweeper({ sessions, ports }, T);
  assert.equal(sw.sweep(10n * S).orphans, 0);
  assert.equal(ports.size, 1);
  assert.equal(sw.sweep(15n * S).orphans, 1);
  assert.equal(ports.size, 0);
  // a claim whose session appears in between is never touched
  ports.set({ port: 40006, proto: UDP }, key(6, UDP));
  sw.sweep(20n * S);
  sessions.set(key(6, UDP), val(0, 20, 40006));
  assert.equal(sw.sweep(21n * S).orphans, 0);
  assert.equal(ports.size, 1);
});

test('nat config: prefixes, ports and timeouts are checked, each problem named', () => {
  assert.deepEqual(parseInsidePrefix('100.64.0.0/10'), { addr: '100.64.0.0', mask: '255.192.0.0' });
  assert.throws(() => parseInsidePrefix('100.64.1.1/24'), /host bits are set \(did you mean 100\.64\.1\.0\/24\?\)/);
  assert.throws(() => parseInsidePrefix('0.0.0.0/0'), /1\.\.32/);
  assert.throws(() => parseInsidePrefix('100.64.1.0'), /not an IPv4 prefix/);
  const ok = natConfigSchema.parse({ external: '192.0.2.2', inside: ['100.64.1.0/24'] });
  assert.deepEqual(ok.ports, { first: 20000, last: 32767 });
  assert.deepEqual(natCfgOf(ok).inside.length, 4);
  const bad = (n: object, re: RegExp): void => {
    assert.throws(() => parseAgentConfig({ interfaces: [{ name: 'eth0' }], handlers: ['nat'], nat: n }), (e: unknown) => e instanceof ConfigError && re.test(e.message));
  };
  bad({ external: '100.64.1.1', inside: ['100.64.1.0/24'] }, /nat\.external: 100\.64\.1\.1 is inside 100\.64\.1\.0\/24/);
  bad({ external: '192.0.2.2', inside: ['100.64.1.0/24'], ports: { first: 30000, last: 20000 } }, /nat\.ports: first must be <= last/);
  bad({ external: '192.0.2.2', inside: ['100.64.1.0/24'], timeouts: { udpS: 30 } }, /nat\.timeouts\.udpS: RFC 4787 REQ-5/);
  bad({ external: '192.0.2.2', inside: ['a', 'b', 'c', 'd', 'e'] }, /at most 4 inside prefixes/);
  assert.throws(() => parseAgentConfig({ interfaces: [{ name: 'eth0' }], nat: { external: '192.0.2.2', inside: ['100.64.1.0/24'] } }),
    /nat: needs the nat part/);
  assert.equal(portRangesOverlap({ first: 20000, last: 32767 }, { first: 32768, last: 60999 }), false);
  assert.equal(portRangesOverlap({ first: 20000, last: 40000 }, { first: 32768, last: 60999 }), true);
});
