/**
 * A flood of new UDP flows from a host in a test namespace (issue 11 item 3),
 * and the figures of the process it is aimed at: one source of both for
 * test/netns/dprp-flood and bench/dprp-flood.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const DIST = resolve(__dirname, '..', '..');

/**
 * The sender, a script for `node -e` in the flooding host: a raw socket, one
 * 12-byte UDP datagram per new flow (a new source port each, then a new
 * destination port every 60,000), `rate` per second paced per 10 ms, `rate` x
 * `seconds` in all (bounded); prints how many it sent.
 */
export function floodScript(src: string, dst: string, rate: number, seconds: number): string {
  const libc = resolve(DIST, 'controlplane/bpf/libc.js');
  const ipv4 = resolve(DIST, 'controlplane/dprp/ipv4.js');
  const dstBytes = dst.split('.').map(Number);
  return `
const l = require(${JSON.stringify(libc)}); const { buildIpv4Packet } = require(${JSON.stringify(ipv4)});
const fd = l.socket(l.AF_INET, l.SOCK_RAW, l.IPPROTO_RAW); l.setsockoptU32(fd, l.IPPROTO_IP, l.IP_HDRINCL, 1);
const a = Buffer.alloc(16); a.writeUInt16LE(l.AF_INET, 0); Buffer.from(${JSON.stringify(dstBytes)}).copy(a, 4);
const total = ${rate * seconds}, perTick = Math.max(1, Math.round(${rate} / 100));
let sent = 0, seq = 0; const t0 = Date.now();
function tick() {
  const due = Math.min(total, Math.round(((Date.now() - t0) / 1000) * ${rate}) + perTick);
  while (sent < due) {
    const udp = Buffer.alloc(12); const n = seq++;
    udp.writeUInt16BE(1024 + (n % 60000), 0); udp.writeUInt16BE(9000 + Math.floor(n / 60000) % 1000, 2); udp.writeUInt16BE(12, 4);
    try { l.sendto(fd, buildIpv4Packet(${JSON.stringify(src)}, ${JSON.stringify(dst)}, 17, udp), a); sent++; } catch { sent++; }
  }
  if (sent < total) setTimeout(tick, 10); else { l.closeFd(fd); process.stdout.write(String(sent)); }
}
tick();`;
}

/** A process's resident memory (MB) and CPU time so far (s, user + system), from /proc. */
export function procStats(pid: number): { rssMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  return { rssMb: rssKb / 1024, cpuS: ticks / 100 };
}
