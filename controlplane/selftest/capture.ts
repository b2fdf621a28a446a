/**
 * The selftest's witness: tcpdump on every interface of the transit
 * namespace (`-i any`, so both links are in one file; no filter, every
 * protocol), and the questions the
 * checks ask of what it wrote: how many packets of a flow crossed, and how
 * often a marker appears anywhere in any captured byte.
 *
 * A capture that cannot be trusted must make the checks fail, never pass:
 * tcpdump missing, not started, or reporting packets dropped by the kernel
 * all come back as `problem`.
 */
import { type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { waitFor, type Topology } from '../lab/topology.js';
import { countOccurrences, ipv4Records, PACKET_OUTGOING, readPcapFile, type CapturedIp } from '../lab/pcap.js';
import { exited } from './traffic.js';

const EXTRA_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** Where an executable is, or null: PATH plus the sbin directories a non-login root shell may lack. */
export function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_DIRS].filter(Boolean);
  for (const d of dirs) {
    const p = join(d, name);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

export const TCPDUMP_MISSING = `tcpdump not found (searched PATH and ${EXTRA_DIRS.join(', ')}): install it (apt-get install tcpdump, or make deps); without a capture no leak check can pass`;

export interface FlowMatch { proto: number; a: string; aport: number; b: string; bport: number }

export interface CaptureResult {
  /** Set when the capture cannot vouch for anything (then every check using it fails). */
  problem: string | null;
  /** The IPv4 records, parsed. */
  records: CapturedIp[];
  /** Every record as captured, whatever its protocol. */
  raw: Buffer[];
  /** tcpdump's own counts from its exit report. */
  captured: number;
  kernelDrops: number;
}

export class TransitCapture {
  private constructor(private readonly child: ChildProcess, readonly file: string, private readonly stderr: () => string) {}

  /** Start tcpdump in `host` writing to `file`; resolves once it is capturing. */
  static async start(t: Topology, host: string, file: string): Promise<TransitCapture> {
    const bin = findExecutable('tcpdump');
    if (!bin) throw new Error(TCPDUMP_MISSING);
    // -B: a 64 MiB capture ring. With the default 2 MiB a busy host (both cores taken) made tcpdump
    // drop packets of the 64 KiB GSO bursts, and a capture with drops cannot vouch for anything.
    const child = t.spawn(host, bin, ['-i', 'any', '-U', '-n', '-s', '0', '-B', '65536', '-w', file]);
    let err = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => { if (err.length < 65536) err += d; });
    const c = new TransitCapture(child, file, () => err);
    await waitFor(`tcpdump in ${t.ns(host)} to start capturing`, () => {
      if (child.exitCode !== null) throw new Error(`tcpdump exited ${child.exitCode}: ${err.trim()}`);
      return err.includes('listening on') && existsSync(file) && readFileSync(file).length >= 24;
    }, 5000, 10);
    return c;
  }

  /** Stop (SIGINT, so tcpdump flushes and reports its counts) and read the capture. */
  async stop(): Promise<CaptureResult> {
    await new Promise((r) => setTimeout(r, 100));
    this.child.kill('SIGINT');
    const code = await exited(this.child, 3000);
    const err = this.stderr();
    const captured = Number(/(\d+) packets? captured/.exec(err)?.[1] ?? -1);
    const kernelDrops = Number(/(\d+) packets? dropped by kernel/.exec(err)?.[1] ?? -1);
    let problem: string | null = null;
    let records: CapturedIp[] = [];
    let raw: Buffer[] = [];
    try {
      const p = readPcapFile(readFileSync(this.file));
      raw = p.records;
      records = ipv4Records(p);
    } catch (e) { problem = `capture unreadable: ${(e as Error).message}`; }
    if (!problem && code === null) problem = 'tcpdump did not stop within 3 s (capture may be incomplete)';
    if (!problem && (captured < 0 || kernelDrops < 0)) problem = `tcpdump gave no exit report (exit ${code}): ${err.trim().slice(-200)}`;
    if (!problem && kernelDrops > 0) problem = `tcpdump lost ${kernelDrops} packets (dropped by kernel): the capture is incomplete`;
    return { problem, records, raw, captured, kernelDrops };
  }
}

function matches(r: CapturedIp, f: FlowMatch): boolean {
  if (r.proto !== f.proto) return false;
  return (r.src === f.a && r.sport === f.aport && r.dst === f.b && r.dport === f.bport)
    || (r.src === f.b && r.sport === f.bport && r.dst === f.a && r.dport === f.aport);
}

/**
 * Packets of a flow that crossed the transit namespace: each is captured on
 * arrival (on the link it came from) and again on departure; this counts
 * arrivals only, so each packet once. Forward = from f.a to f.b.
 */
export function flowPackets(c: CaptureResult, f: FlowMatch): { forward: number; reverse: number; bytes: number } {
  let forward = 0; let reverse = 0; let bytes = 0;
  for (const r of c.records) {
    if (r.pktType === PACKET_OUTGOING || !matches(r, f)) continue;
    if (r.src === f.a) forward++; else reverse++;
    bytes += r.record.length;
  }
  return { forward, reverse, bytes };
}

/** Occurrences of `marker` in every captured byte (headers included, both links, any flow). */
export function markerHits(c: CaptureResult, marker: Buffer): number {
  let n = 0;
  for (const r of c.raw) n += countOccurrences(r, marker);
  return n;
}
