/**
 * tcpdump captures for the tests: the one way to start one in a namespace,
 * stop it, and know that what it wrote is complete.
 *
 * Why the ring size: with --immediate-mode libpcap uses a TPACKET_V2 ring of
 * snaplen-sized slots, and its default 2 MiB holds only 8 frames of -s 0. A
 * tcpdump descheduled for a few ms on a loaded machine lost frames (the
 * Fig. 6 flake: a plaintext segment that crossed the LAN was not in the
 * file). Every capture gets -B CAPTURE_BUFFER_KIB (64 MiB, ~250 such frames).
 *
 * Why the drop check: a bigger ring makes a loss rare, not impossible, and a
 * capture that lost frames passes "no plaintext crossed" on evidence it does
 * not have. tcpdump says on exit how many the kernel dropped; pcap() throws,
 * naming the interface and the count, when that is not "0" (or tcpdump gave no
 * such report), so no test can assert on an incomplete capture.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitFor } from '../../controlplane/lab/topology.js';

/** tcpdump's capture ring (-B, KiB) for every capture of the tests. */
export const CAPTURE_BUFFER_KIB = 65536;

/** The count in tcpdump's "N packets dropped by kernel" exit report, or null if there is none. */
export function kernelDrops(stderr: string): number | null {
  const m = /(\d+) packets? dropped by kernel/.exec(stderr);
  return m ? Number(m[1]) : null;
}

/** Throws unless tcpdump's stderr reports 0 packets dropped by kernel; `where` names the capture (host and interface). */
export function assertNoKernelDrops(stderr: string, where: string): void {
  const n = kernelDrops(stderr);
  if (n === null) throw new Error(`capture on ${where}: tcpdump gave no drop report, so it cannot vouch for what it holds: ${stderr.trim().slice(-300)}`);
  if (n > 0) throw new Error(`capture on ${where} lost ${n} packets dropped by kernel (its ring was full): it cannot show everything that crossed`);
}

/** What can start a process in a host's namespace (a Topology). */
export interface CaptureSpawner { spawn(host: string, cmd: string, args: string[]): ChildProcess }

/** Spawns in the test's own namespace (a capture on its loopback). */
export const THIS_NAMESPACE: CaptureSpawner = { spawn: (_host, cmd, args) => spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }) };

export interface CaptureOptions {
  /** The host (namespace) to capture in; only named in messages with THIS_NAMESPACE. */
  host: string;
  iface: string;
  /** The pcap filter expression (one string or its words). */
  filter: string | string[];
  /** Where tcpdump writes (-w). */
  file: string;
  /** -s: bytes kept of each frame; default 0 (all). */
  snaplen?: number;
  /** -c: tcpdump stops by itself after that many packets. */
  count?: number;
  /** -Q: only frames in that direction. */
  direction?: 'in' | 'out';
  /** --immediate-mode (each packet to the file at once); default true. */
  immediate?: boolean;
}

export class Capture {
  readonly file: string;
  /** "host iface", for messages. */
  readonly where: string;
  private stderr = '';
  private readonly closed: Promise<void>;
  private stopping: Promise<void> | null = null;
  private timedOut = false;

  private constructor(readonly child: ChildProcess, o: CaptureOptions) {
    this.file = o.file;
    this.where = `${o.host} ${o.iface}`;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => { if (this.stderr.length < 65536) this.stderr += d; });
    // 'close', not 'exit': stderr (the drop report) read to its end.
    this.closed = new Promise((r) => child.once('close', () => r()));
  }

  /** Starts tcpdump; resolves once it writes its file (attached, filter set). */
  static async start(t: CaptureSpawner, o: CaptureOptions): Promise<Capture> {
    const args = ['-i', o.iface, ...(o.immediate ?? true ? ['--immediate-mode'] : []), '-B', String(CAPTURE_BUFFER_KIB),
      ...(o.direction ? ['-Q', o.direction] : []), '-U', '-n', '-s', String(o.snaplen ?? 0),
      ...(o.count !== undefined ? ['-c', String(o.count)] : []), '-w', o.file, ...(Array.isArray(o.filter) ? o.filter : [o.filter])];
    const c = new Capture(t.spawn(o.host, 'tcpdump', args), o);
    try {
      await waitFor(`tcpdump on ${c.where}`, () => {
        if (c.child.exitCode !== null) throw new Error(`tcpdump exited ${c.child.exitCode}: ${c.stderr.trim()}`);
        try { return readFileSync(c.file).length >= 24; } catch { return false; }
      }, 5000);
    } catch (e) { c.child.kill('SIGKILL'); throw e; }
    return c;
  }

  /**
   * Stops tcpdump (SIGINT: it flushes and reports its counts; SIGKILL after
   * timeoutMs) unless it stopped by itself (-c), and waits for it. Never
   * throws on a loss, so it fits a finally; pcap() tells.
   */
  stop(timeoutMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.closed, new Promise<void>((r) => { timer = setTimeout(() => { this.timedOut = true; this.child.kill('SIGKILL'); r(); }, timeoutMs); })]);
      clearTimeout(timer);
    })();
    return this.stopping;
  }

  /** The file's bytes, once stopped; throws if tcpdump did not stop, lost packets, or did not say. */
  pcap(): Buffer {
    if (!this.stopping) throw new Error(`capture on ${this.where}: pcap() before stop()`);
    if (this.timedOut) throw new Error(`capture on ${this.where}: tcpdump did not stop in time (killed; the capture may be incomplete)`);
    assertNoKernelDrops(this.stderr, this.where);
    return readFileSync(this.file);
  }
}
