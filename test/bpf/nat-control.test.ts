/**
 * Control messages at a GNAT (issue 11; docs/dprp.md "Across NATs and
 * firewalls nobody configured", the GNAT bullet), BPF_PROG_TEST_RUN on the GNAT's outside interface with the
 * NAT stage on: what leaves with an inside (private) source.
 *
 * A GE behind the GNAT sends its DPRP messages as UDP to port 7253. They reach
 * the GNAT's outside egress without the agent's mark (marks do not cross the
 * link), so the fast path punts them (never passes them); the GNAT's DPRP,
 * when it relays a DDE "transparently" (relay-role.ts: the next GE sees the
 * start GE's source), sends it with the start GE's source and the
 * CONTROL_TX mark, and the classify stage passed such a message before the NAT
 * stage runs: a relayed message from a GE behind the GNAT left with its
 * private source (the last test, without the change in gscip_tc.bpf.c
 * gscip_control: "left the GNAT with source 100.64.1.10"). Now it is dropped
 * and counted as the NAT drops what it does not translate (nat_proto).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfHarness, bpfUnavailable, TC_ACT, TEST_RUN_IFINDEX } from '../lib/bpf-harness.js';
import { parseFrame, udpFrame } from '../lib/packets.js';
import { CONTROL_UDP_PORT, MARK_CONTROL_TX, MissAction, Stat } from '../../controlplane/maps/abi.js';
import type { NatCfg } from '../../controlplane/maps/codecs.js';

const EGRESS = 'gscip_tc_egress';
const G2 = '192.0.2.2';    // the GNAT's global address
const P1 = '100.64.1.10';  // a GE behind it
const D = '198.51.100.7';  // a global GE
const unavailable = bpfUnavailable();

const cfg: NatCfg = {
  ext_addr: G2, port_lo: 40000, port_hi: 40999,
  inside: [{ addr: '100.64.1.0', mask: '255.255.255.0' }, ...Array(3).fill({ addr: '0.0.0.0', mask: '0.0.0.0' })],
};

describe('control messages from behind a GNAT (BPF_PROG_TEST_RUN, NAT stage on)', { skip: unavailable ?? false, timeout: 30_000 }, () => {
  let h: BpfHarness;
  before(() => { h = BpfHarness.open({ stages: { xlat: true, pccom: true, nat: true } }); });
  after(() => { h?.close(); });
  beforeEach(() => {
    h.maps.nat!.cfg.set(0, cfg);
    h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 0 });
    h.maps.cfg.set(0, { punt_rate_pps: 0n, punt_burst: 0n });
    h.resetStats();
    h.punts();
  });
  const dde = (src: string, sport: number) => udpFrame({ src, dst: D, sport, dport: CONTROL_UDP_PORT, payload: Buffer.alloc(92, 0x33) });

  test('an inside GE\'s control message forwarded by the GNAT (no mark) is punted to the GNAT\'s agent, never passed with its private source', () => {
    const r = h.progTestRun(EGRESS, dde(P1, CONTROL_UDP_PORT));
    assert.equal(r.retval, TC_ACT.STOLEN, 'stolen for the agent');
    assert.equal(h.stat(Stat.STAT_PUNT_CONTROL).packets, 1n);
  });

  test('the GNAT\'s own control message (its address, the mark) passes unchanged', () => {
    const r = h.progTestRun(EGRESS, dde(G2, CONTROL_UDP_PORT), { mark: MARK_CONTROL_TX });
    assert.equal(r.retval, TC_ACT.OK);
    assert.equal(parseFrame(r.dataOut).ip?.src, G2);
    assert.equal(h.stat(Stat.STAT_CONTROL_TX).packets, 1n);
  });

  test('a message the GNAT\'s agent relays with an inside GE\'s source (the mark) does not leave with that private source: dropped, counted nat_proto', () => {
    const r = h.progTestRun(EGRESS, dde(P1, CONTROL_UDP_PORT), { mark: MARK_CONTROL_TX });
    const src = parseFrame(r.dataOut).ip?.src;
    assert.ok(r.retval === TC_ACT.SHOT || src !== P1, `left the GNAT with source ${src}`);
    assert.equal(r.retval, TC_ACT.SHOT);
    assert.equal(h.stat(Stat.DROP_NAT_PROTO).packets, 1n, 'counted');
    assert.equal(h.stat(Stat.STAT_CONTROL_TX).packets, 0n);
  });

  test('without the NAT stage (a GES or GEN) the agent\'s marked message passes whatever its source', () => {
    const g = BpfHarness.open({ stages: { xlat: true, pccom: true, nat: false } });
    try {
      g.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.PASS, MissAction.PASS], flags: 0 });
      const r = g.progTestRun(EGRESS, dde(P1, CONTROL_UDP_PORT), { mark: MARK_CONTROL_TX });
      assert.equal(r.retval, TC_ACT.OK);
      assert.equal(parseFrame(r.dataOut).ip?.src, P1);
    } finally { g.close(); }
  });
});
