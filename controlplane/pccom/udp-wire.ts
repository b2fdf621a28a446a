/**
 * PCCOM's UDP wire-valid form as the control plane sees it (docs/pccom.md
 * "UDP across a checksum-verifying NAT"): the IP ID a datagram of counter
 * `ctr` carries, counter bits 0..5 | K bits 0..9 << 6, K = 16 bits of the
 * ChaCha20 block (key = the flow key, nonce PCU\x02 | ctr bits 0..31 | bits
 * 32..47 << 16, block 0). Used for one thing: a GE past a NAT recognises a
 * UDP flow's first datagram (counter 0 of the forward leg) by its IP ID
 * (first-packet.ts, nat-follow.ts). OpenSSL's ChaCha20 only: for a
 * ChaCha12/8 group the mark does not match and the wait is taken oldest
 * first, as without it. Pure.
 */
import { createCipheriv } from 'node:crypto';
import { UDP_WIRE_CTR_BITS } from '../maps/abi.js';
import { deriveFlowKey } from './flow-key.js';

const DOM_UDP_CSUM = 0x50435502;

/** The IP ID (host order) of datagram counter `ctr` under `flowKey` (ChaCha20). */
export function udpWireIpId(flowKey: Buffer, ctr: bigint): number {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(0, 0);  // block counter 0
  iv.writeUInt32LE(DOM_UDP_CSUM, 4);
  iv.writeUInt32LE(Number(ctr & 0xffffffffn), 8);
  iv.writeUInt32LE((Number((ctr >> 32n) & 0xffffn) << 16) >>> 0, 12);
  const k = createCipheriv('chacha20', flowKey, iv).update(Buffer.alloc(2)).readUInt16LE(0);
  const loMask = (1 << UDP_WIRE_CTR_BITS) - 1;
  return ((Number(ctr & BigInt(loMask))) | ((k & ((1 << (16 - UDP_WIRE_CTR_BITS)) - 1)) << UDP_WIRE_CTR_BITS)) & 0xffff;
}

/** The IP ID of a negotiated UDP flow's first datagram (forward leg, counter 0). */
export function udpWireFirstMark(groupKey: Buffer, group: number, version: number, salt: string): number {
  return udpWireIpId(deriveFlowKey(groupKey, group, version, salt, 'fwd'), 0n);
}
