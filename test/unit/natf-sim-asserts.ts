/**
 * Assertions shared by the NAT-f DPRP simulations (natf-dprp, natf-dprp-via).
 */
import assert from 'node:assert/strict';
import type { Flow } from '../../controlplane/dprp/wire.js';
import type { Sim } from './dprp-sim.js';

/**
 * Seeds' figure b (a GE inside the GNAT's network reaching alice through the
 * NAPT): `inside` encrypts P1:X -> G1:Y and decrypts back, the GNAT passes the
 * post-NAT flow G2:Z <-> G1:Y (transit), alice decrypts and encrypts it, and
 * alice keys nothing on the private address P1.
 */
export function assertFigureB(sim: Sim, inside: string, flow: Flow, g2: string, z: number, p1: string): void {
  const rev = (f: Flow): Flow => ({ saddr: f.daddr, daddr: f.saddr, sport: f.dport, dport: f.sport, proto: f.proto });
  assert.equal(sim.pitOf(inside, flow, 'egress')?.action, 'encrypt', `${inside}: P1:X -> G1:Y encrypt`);
  assert.equal(sim.pitOf(inside, rev(flow), 'ingress')?.action, 'decrypt');
  const wire: Flow = { ...flow, saddr: g2, sport: z };
  assert.equal(sim.pitOf('gnat', wire, 'egress')?.action, 'pass', 'the GNAT: G2:Z <-> G1:Y, transit');
  assert.equal(sim.pitOf('gnat', rev(wire), 'ingress')?.action, 'pass');
  assert.equal(sim.pitOf('alice', wire, 'ingress')?.action, 'decrypt', 'alice: G2:Z <-> G1:Y at once (no wait for the first packet)');
  assert.equal(sim.pitOf('alice', rev(wire), 'egress')?.action, 'encrypt');
  assert.equal([...sim.ge('alice').pit.values()].filter((e) => e.flow.saddr === p1 || e.flow.daddr === p1).length, 0, 'alice keys nothing on the private address');
}
