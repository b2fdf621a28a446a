/**
 * Forged DPRP control messages from a non-member (issue 11 item 4), as IPv4
 * packets a host at `from` sends to a GE at `to`: DDEs whose bodies name
 * addresses no GE may send to, a victim named only in a body, consistent
 * DDEs (answerable, up to the per-source limit), unsigned PASS MPITs and
 * mutants of a consistent DDE. One source for test/netns/dprp-hostile and
 * bench/dprp-forged, so the bench measures the mix the test asserts on.
 */
import { encode, MsgType, WireAction, WireRole, type DprpMessage, type Flow } from '../../controlplane/dprp/wire.js';
import { buildIpv4Packet, inetChecksum, IPPROTO_ICMP } from '../../controlplane/dprp/ipv4.js';

/** A victim that exists nowhere (TEST-NET-2). */
export const VICTIM = '198.51.100.77';

/** Multicast, broadcast (limited, and `to`'s directed broadcast), loopback, 0.0.0.0. */
export function specialAddresses(directedBroadcast: string): string[] {
  return ['224.0.0.1', '239.255.255.250', '255.255.255.255', '127.0.0.1', '0.0.0.0', directedBroadcast];
}

export class ForgedDprp {
  private seq = 0;
  constructor(private readonly from: string, private readonly to: string, private readonly tag = 0x4e0000 + (process.pid & 0xffff)) {}

  private negId(): Buffer {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(this.tag >>> 0, 0);
    b.writeUInt32BE(this.seq++ >>> 0, 4);
    return b;
  }

  flowTo(daddr: string, sport: number): Flow {
    return { saddr: this.from, daddr, sport, dport: 80, proto: 17 };
  }

  dde(startGe: string, flow: Flow): DprpMessage {
    return {
      type: MsgType.DDE, flags: 0, attempt: 1, negId: this.negId(), timestampMs: Date.now(), flow, status: 0, startGe, endGe: '0.0.0.0',
      records: [{ addr: startGe, geType: 'GES', mode: 'OP', flags: 0, tags: [], options: [] }], actions: [], seal: null, options: [],
    };
  }

  /** An unsigned PASS MPIT for a DDE sent before (a flow no key authenticates). */
  unsignedPassMpit(d: DprpMessage): DprpMessage {
    return {
      ...d, type: MsgType.MPIT, timestampMs: Date.now(), endGe: this.to, records: [],
      actions: [{ addr: this.to, action: WireAction.PASS, role: WireRole.END, flags: 0, selector: Buffer.alloc(16), mac: Buffer.alloc(16) }],
    };
  }

  /** The message as an IPv4 packet from `from` (ICMP type 253, what the UDP transport's peers also accept). */
  packet(m: DprpMessage | Buffer, dst = this.to): Buffer {
    return buildIpv4Packet(this.from, dst, IPPROTO_ICMP, Buffer.isBuffer(m) ? m : encode(m));
  }

  /** 1-3 random bytes of an encoded message flipped; with `fixChecksum`, the ICMP checksum made valid again. */
  static mutant(base: Buffer, rnd: () => number, fixChecksum: boolean): Buffer {
    const b = Buffer.from(base);
    const n = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < n; k++) b[4 + Math.floor(rnd() * (b.length - 4))] ^= 1 + Math.floor(rnd() * 255);
    if (fixChecksum) {
      b.writeUInt16BE(0, 2);
      b.writeUInt16BE(inetChecksum(b), 2);
    }
    return b;
  }
}
