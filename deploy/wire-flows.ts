/**
 * What a capture saw of one TCP flow: frames, frames carrying payload, and
 * frames whose payload holds the application's plaintext. Frames come from
 * test/netns/dprp-topology.ts RouterCapture (Ethernet, or Linux cooked v1/v2
 * on the "any" interface).
 */

export interface FlowOnWire { frames: number; dataFrames: number; plaintextFrames: number }
/** 'no data': the flow's payload never crossed (header-only frames such as a SYN may have). */
export type WireVerdict = 'plaintext' | 'ciphertext' | 'no data';

/**
 * Offset of the IPv4 header in a captured frame, or -1 if it is not IPv4:
 * Linux cooked v2 (tcpdump -i any with libpcap >= 1.10: protocol at 0, 20
 * bytes), cooked v1 (protocol at 14, 16 bytes) or Ethernet (protocol at 12).
 * The IPv4 header must be plausible (version 4, total length fits the frame).
 */
function ipOffset(f: Buffer): number {
  for (const [proto, off] of [[0, 20], [14, 16], [12, 14]] as const) {
    if (f.length < off + 20 || f.readUInt16BE(proto) !== 0x0800 || f[off] >> 4 !== 4 || (f[off] & 0x0f) < 5) continue;
    const total = f.readUInt16BE(off + 2);
    if (total >= 20 && total <= f.length - off) return off;
  }
  return -1;
}

/** Frames of the TCP flow between port `a` and port `b` (either direction); `needles` mark plaintext. */
export function tcpFlowOnWire(frames: Buffer[], a: number, b: number, needles: string[]): FlowOnWire {
  const r: FlowOnWire = { frames: 0, dataFrames: 0, plaintextFrames: 0 };
  for (const f of frames) {
    const ip = ipOffset(f);
    if (ip < 0 || f[ip + 9] !== 6) continue;
    const ihl = (f[ip] & 0x0f) * 4;
    const tcp = ip + ihl;
    if (tcp + 20 > f.length) continue;
    const sp = f.readUInt16BE(tcp);
    const dp = f.readUInt16BE(tcp + 2);
    if (!((sp === a && dp === b) || (sp === b && dp === a))) continue;
    r.frames++;
    const payloadLen = f.readUInt16BE(ip + 2) - ihl - (f[tcp + 12] >> 4) * 4;
    if (payloadLen <= 0) continue;
    r.dataFrames++;
    const payload = f.subarray(tcp + (f[tcp + 12] >> 4) * 4);
    if (needles.some((n) => payload.includes(n))) r.plaintextFrames++;
  }
  return r;
}

export function verdictOf(w: FlowOnWire): WireVerdict {
  if (w.plaintextFrames > 0) return 'plaintext';
  if (w.dataFrames > 0) return 'ciphertext';
  return 'no data';
}
