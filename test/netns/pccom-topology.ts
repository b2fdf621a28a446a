/**
 * Shared by test/netns/pccom.test.ts and bench/pccom.ts: two GES hosts with a
 * real NAT + firewall between them, each running the real datapath object
 * (build/bpf/gscip_tc.bpf.o) on its interface, maps seeded through BpfHarness.
 *
 *   a (va 192.0.2.1) --- (ra 192.0.2.254) r (rb 203.0.113.254) --- (vb 203.0.113.2) b
 *                         nftables on r: masquerade out of rb; forward only
 *                         tcp/5201 and udp/5202 from a's side (+ established)
 *
 * Offloads stay as the kernel sets them: TCP hands TC GSO super-packets and
 * PCCOM encrypts them whole (the keyed checksum survives segmentation, see
 * docs/pccom.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdirP } from '../../controlplane/bpf/bpffs.js';
import { type ChildProcess } from 'node:child_process';
import { BpfHarness } from '../lib/bpf-harness.js';
import { Topology, sh, waitFor } from '../lib/netns.js';
import { objPin } from '../../controlplane/bpf/libbpf.js';
import { Action, Dir, MissAction, PitState, Role } from '../../controlplane/maps/abi.js';
import type { Cid, PitVal } from '../../controlplane/maps/codecs.js';
import { Capture } from '../lib/capture.js';

export const A = '192.0.2.1';
export const R_IN = '192.0.2.254';
export const R_OUT = '203.0.113.254';
export const B = '203.0.113.2';
export const TCP_PORT = 5201;
export const UDP_PORT = 5202;
export const BLOCKED_PORT = 5209;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export interface Flow { proto: number; cport: number; sport: number }

const NFT_RULES = `
table ip gscip_test {
  chain nat_post { type nat hook postrouting priority srcnat; oifname "rb" masquerade; }
  chain filter_forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "ra" tcp dport ${TCP_PORT} accept
    iifname "ra" udp dport ${UDP_PORT} accept
  }
}`;

export interface PccomTopoOptions {
  /** Checksums completed in software after TC egress and verified in software on receive
   * (a real keyed checksum crosses the NAT), instead of CHECKSUM_PARTIAL end to end. */
  softwareChecksums?: boolean;
  /** Attach the datapath programs (false: plain namespaces, for the baseline). */
  attach?: boolean;
}

export class PccomTopo {
  readonly topo: Topology;
  readonly h: { a?: BpfHarness; b?: BpfHarness } = {};
  readonly ifindex: { a: number; b: number };
  private readonly pinDir: string;

  constructor(tag: string, opts: PccomTopoOptions = {}) {
    this.topo = new Topology(tag);
    this.pinDir = this.topo.scratchPinRoot();
    try {
      const t = this.topo;
      t.addHost('a'); t.addHost('r'); t.addHost('b');
      t.link('a', 'va', 'r', 'ra');
      t.link('r', 'rb', 'b', 'vb');
      t.addr('a', 'va', `${A}/24`);
      t.addr('r', 'ra', `${R_IN}/24`);
      t.addr('r', 'rb', `${R_OUT}/24`);
      t.addr('b', 'vb', `${B}/24`);
      t.route('a', 'default', R_IN);
      t.forwarding('r');
      t.exec('r', 'nft', ['-f', '-'], { input: NFT_RULES });
      if (opts.softwareChecksums) {
        for (const [host, dev] of [['a', 'va'], ['r', 'ra'], ['r', 'rb'], ['b', 'vb']] as const) {
          t.exec(host, 'ethtool', ['-K', dev, 'tx', 'off', 'rx', 'off']);
        }
        // A keyed checksum is, to anyone without the key, a bad checksum: Linux
        // conntrack marks such packets INVALID and NAT skips them, unless told not
        // to verify (docs/pccom.md, "NAT boxes"). The papers assume NATs that do not check.
        t.exec('r', 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_checksum=0']);
      }
      this.ifindex = { a: t.ifindex('a', 'va'), b: t.ifindex('b', 'vb') };
      if (opts.attach ?? true) this.attachDatapath();
    } catch (e) {
      this.cleanup();
      throw e;
    }
  }

  /** Load the datapath object once per GE (a, b), attach it to va / vb, miss action pass. */
  attachDatapath(): void {
    mkdirP(this.pinDir);
    this.attach('a', 'va');
    this.attach('b', 'vb');
  }

  private attach(host: 'a' | 'b', dev: string): void {
    const h = BpfHarness.open({ maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 } });
    this.h[host] = h;
    const netns = `--net=/run/netns/${this.topo.ns(host)}`;
    sh('nsenter', [netns, 'tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
    for (const dir of ['ingress', 'egress'] as const) {
      const pin = `${this.pinDir}/${host}-${dir}`;
      objPin(h.obj.progFd(`gscip_tc_${dir}`), pin);
      sh('nsenter', [netns, 'tc', 'filter', 'add', 'dev', dev, dir, 'bpf', 'direct-action', 'pinned', pin]);
    }
    h.maps.iface.set(this.ifindex[host], { miss_action: [MissAction.PASS, MissAction.PASS], flags: 1 });
  }

  /** Take the TC filters off va / vb (false) or put the same pinned programs back (true); maps,
   * keys and PIT entries stay. Lets a bench interleave "no programs" runs with attached ones. */
  setFiltersAttached(on: boolean): void {
    for (const [host, dev] of [['a', 'va'], ['b', 'vb']] as const) {
      const netns = `--net=/run/netns/${this.topo.ns(host)}`;
      for (const dir of ['ingress', 'egress'] as const) {
        if (on) sh('nsenter', [netns, 'tc', 'filter', 'add', 'dev', dev, dir, 'bpf', 'direct-action', 'pinned', `${this.pinDir}/${host}-${dir}`]);
        else sh('nsenter', [netns, 'tc', 'filter', 'del', 'dev', dev, dir]);
      }
    }
  }

  harness(host: 'a' | 'b'): BpfHarness {
    const h = this.h[host];
    if (!h) throw new Error(`no datapath attached on ${host}`);
    return h;
  }

  /** gscip_keys[(group, version)] = key; flags = KEY_F_ROUNDS_* (0: ChaCha20). */
  setKey(host: 'a' | 'b', group: number, version: number, key: Buffer, flags = 0): void {
    this.harness(host).maps.keys.set({ group_id: group, version }, { key, flags, installed_ns: 0n });
  }

  private pit(action: number, group: number, version: number, prev = 0): PitVal {
    return { action, state: PitState.STATIC, role: Role.NONE, flags: 0, group_id: group, key_version: version, prev_key_version: prev, created_ns: 0n, last_seen_ns: 0n };
  }

  /** PIT entries for one flow a:cport -> b:sport, as seen on each wire (b sees r's outside address).
   * decryptPrev: the decrypt entries also accept that version (rotation).
   * only: set just the sending (encrypt) or just the receiving (decrypt) entry. */
  protect(host: 'a' | 'b', f: Flow, group: number, version: number, action: 'encrypt' | 'pass' = 'encrypt',
    decryptPrev = 0, only?: 'encrypt' | 'decrypt', encryptFlags = 0): void {
    const h = this.harness(host);
    const enc = action === 'encrypt' ? Action.ENCRYPT : Action.PASS;
    const dec = action === 'encrypt' ? Action.DECRYPT : Action.PASS;
    const cid = (saddr: string, daddr: string, sport: number, dport: number, dir: number): Cid => ({ saddr, daddr, sport, dport, proto: f.proto, dir });
    const out = host === 'a' ? cid(A, B, f.cport, f.sport, Dir.EGRESS) : cid(B, R_OUT, f.sport, f.cport, Dir.EGRESS);
    const inn = host === 'a' ? cid(B, A, f.sport, f.cport, Dir.INGRESS) : cid(R_OUT, B, f.cport, f.sport, Dir.INGRESS);
    if (only !== 'decrypt') h.maps.pit.set(out, { ...this.pit(enc, group, version), flags: encryptFlags });
    if (only !== 'encrypt') h.maps.pit.set(inn, this.pit(dec, group, version, decryptPrev));
  }

  /** Remove every PIT entry of one host (back to "not configured": miss action pass). */
  clearPit(host: 'a' | 'b'): void {
    const h = this.harness(host);
    for (const k of [...h.maps.pit.keys()]) h.maps.pit.delete(k);
  }

  stat(host: 'a' | 'b', id: number): number {
    return Number(this.harness(host).stat(id).packets);
  }

  cleanup(): void {
    this.topo.cleanupSync();  // deleting the namespaces removes the veths, qdiscs and filters
    rmSync(this.pinDir, { recursive: true, force: true });
    this.h.a?.close();
    this.h.b?.close();
  }
}

/* ---------------- applications (node one-liners inside the namespaces) ---------------- */


export const MARKER = Buffer.from('GSCIP-PLAINTEXT-MARKER');

/** Test data: random bytes with the plaintext marker every 1 KiB. */
export function markedData(bytes: number): Buffer {
  const d = randomBytes(bytes);
  for (let off = 0; off + MARKER.length <= bytes; off += 1024) MARKER.copy(d, off);
  return d;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Wait (bounded) for a child to exit; kill it if it does not. Returns its exit code (null if killed). */
export async function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

async function ready(child: ChildProcess, what: string): Promise<void> {
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => { buf += d; });
  await waitFor(what, () => buf.includes('ready'), 5000);
}

const TCP_SINK = (out: string, port: number): string => `
const net = require('net'), fs = require('fs');
const out = fs.createWriteStream(${JSON.stringify(out)});
const srv = net.createServer((c) => { c.pipe(out); c.on('error', () => {}); c.on('end', () => out.end(() => process.exit(0))); });
srv.listen(${port}, '0.0.0.0', () => console.log('ready'));`;

const TCP_SOURCE = (inp: string, host: string, port: number, cport: number): string => `
const net = require('net'), fs = require('fs');
const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port}, localPort: ${cport} });
s.on('connect', () => fs.createReadStream(${JSON.stringify(inp)}).pipe(s));
s.on('close', () => process.exit(0));
s.on('error', (e) => { console.error(e.message); process.exit(2); });`;

const UDP_SINK = (out: string, port: number, idleMs: number): string => `
const d = require('dgram').createSocket('udp4'), fs = require('fs');
const got = []; let timer;
const fin = () => { fs.writeFileSync(${JSON.stringify(out)}, Buffer.concat(got)); console.log(JSON.stringify({ n: got.length })); process.exit(0); };
d.on('message', (m) => { got.push(m); clearTimeout(timer); timer = setTimeout(fin, ${idleMs}); });
d.bind(${port}, () => { console.log('ready'); timer = setTimeout(fin, ${idleMs * 3}); });`;

const UDP_SOURCE = (inp: string, host: string, port: number, cport: number, size: number): string => `
const d = require('dgram').createSocket('udp4'), data = require('fs').readFileSync(${JSON.stringify(inp)});
let off = 0;
d.bind(${cport}, () => {
  const step = () => {
    for (let i = 0; i < 2 && off < data.length; i++, off += ${size}) d.send(data.subarray(off, off + ${size}), ${port}, ${JSON.stringify(host)});
    if (off < data.length) setTimeout(step, 1); else setTimeout(() => process.exit(0), 50);
  };
  step();
});`;

export interface TransferResult { completed: boolean; received: Buffer; datagrams?: number }

/** a:cport -> b:TCP_PORT bulk transfer; what b's application received. */
export async function tcpTransfer(t: Topology, data: Buffer, cport: number, timeoutMs = 20_000, port = TCP_PORT): Promise<TransferResult> {
  const inp = `/tmp/${t.prefix}-tcp-in`; const out = `/tmp/${t.prefix}-tcp-out`;
  writeFileSync(inp, data); rmSync(out, { force: true });
  try {
    const sink = t.spawn('b', 'node', ['-e', TCP_SINK(out, port)]);
    await ready(sink, 'TCP sink');
    const src = t.spawn('a', 'node', ['-e', TCP_SOURCE(inp, B, port, cport)]);
    const srcCode = await exited(src, timeoutMs);
    const sinkCode = await exited(sink, srcCode === 0 ? 3000 : 100);
    return { completed: srcCode === 0 && sinkCode === 0, received: existsSync(out) ? readFileSync(out) : Buffer.alloc(0) };
  } finally { rmSync(inp, { force: true }); rmSync(out, { force: true }); }
}

/** a:cport -> b:UDP_PORT datagrams of `size` bytes; what b's application received, in order. */
export async function udpTransfer(t: Topology, data: Buffer, cport: number, size = 1000): Promise<TransferResult> {
  const inp = `/tmp/${t.prefix}-udp-in`; const out = `/tmp/${t.prefix}-udp-out`;
  writeFileSync(inp, data); rmSync(out, { force: true });
  try {
    const sink = t.spawn('b', 'node', ['-e', UDP_SINK(out, UDP_PORT, 700)]);
    let line = '';
    sink.stdout?.setEncoding('utf8');
    sink.stdout?.on('data', (d: string) => { line += d; });
    await waitFor('UDP sink', () => line.includes('ready'), 5000);
    const src = t.spawn('a', 'node', ['-e', UDP_SOURCE(inp, B, UDP_PORT, cport, size)]);
    await exited(src, 20_000);
    const code = await exited(sink, 10_000);
    const n = /\{"n":(\d+)\}/.exec(line);
    return { completed: code === 0, received: existsSync(out) ? readFileSync(out) : Buffer.alloc(0), datagrams: n ? Number(n[1]) : 0 };
  } finally { rmSync(inp, { force: true }); rmSync(out, { force: true }); }
}

/** A capture on r (both interfaces) for the leak check (a Capture, ../lib/capture.ts). */
export class TransitCapture {
  readonly file: string;
  private constructor(private readonly cap: Capture) { this.file = cap.file; }
  static async start(t: Topology): Promise<TransitCapture> {
    return new TransitCapture(await Capture.start(t, { host: 'r', iface: 'any', file: `/tmp/${t.prefix}-r-${Date.now()}.pcap`, immediate: false, filter: 'tcp or udp' }));
  }
  /** Stop and return the capture bytes plus how many times the marker appears; throws if tcpdump lost frames. */
  async stop(): Promise<{ bytes: number; markers: number }> {
    await new Promise((r) => setTimeout(r, 200));
    await this.cap.stop(3000);
    let pcap: Buffer;
    try { pcap = this.cap.pcap(); } finally { rmSync(this.file, { force: true }); }
    let markers = 0;
    for (let i = pcap.indexOf(MARKER); i >= 0 && markers < 1e6; i = pcap.indexOf(MARKER, i + 1)) markers++;
    return { bytes: pcap.length, markers };
  }
}
