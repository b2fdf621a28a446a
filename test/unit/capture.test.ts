/**
 * The tests' capture module (test/lib/capture.ts): tcpdump's "N packets
 * dropped by kernel" report read, a capture that lost packets refused with
 * its interface and count, one that lost none accepted. No root: a stand-in
 * for tcpdump writes the pcap header and, on SIGINT, tcpdump's exit report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoKernelDrops, Capture, CAPTURE_BUFFER_KIB, kernelDrops, type CaptureSpawner } from '../lib/capture.js';

/** tcpdump's stderr as it prints it when stopped. */
const report = (dropped: number): string =>
  `tcpdump: listening on ra, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n412 packets captured\n${412 + dropped} packets received by filter\n${dropped} packets dropped by kernel\n`;

test('the drop report: "3 packets dropped by kernel" throws naming the capture and the count; "0 ..." passes', () => {
  assert.equal(kernelDrops(report(0)), 0);
  assert.equal(kernelDrops(report(3)), 3);
  assert.equal(kernelDrops('1 packet dropped by kernel\n'), 1);
  assert.equal(kernelDrops('tcpdump: listening on ra\n'), null);
  assert.doesNotThrow(() => assertNoKernelDrops(report(0), 'r ra'));
  assert.throws(() => assertNoKernelDrops(report(3), 'r ra'), /capture on r ra lost 3 packets dropped by kernel/);
  assert.throws(() => assertNoKernelDrops('3 packets dropped by kernel', 'r ra'), /lost 3 packets/);
  assert.throws(() => assertNoKernelDrops('tcpdump: listening on ra\n', 'r ra'), /capture on r ra: tcpdump gave no drop report/, 'no report: cannot vouch either');
});

/** A stand-in for tcpdump: checks its arguments, writes a pcap header to -w, reports `dropped` on SIGINT. */
function fakeTcpdump(dropped: number, seen: string[][]): CaptureSpawner {
  const js = `
const fs = require('fs'); const a = process.argv.slice(1);
process.on('SIGINT', () => { process.stderr.write(${JSON.stringify(report(dropped))}); process.exit(0); });
process.stderr.write('tcpdump: listening on ' + a[a.indexOf('-i') + 1] + '\\n');
fs.writeFileSync(a[a.indexOf('-w') + 1], Buffer.alloc(24));
setInterval(() => {}, 1000);`;
  return { spawn: (_host, cmd, args) => { seen.push([cmd, ...args]); return spawn(process.execPath, ['-e', js, '--', ...args], { stdio: ['ignore', 'ignore', 'pipe'] }); } };
}

test('a Capture: one ring size on the command line; pcap() refuses one that lost packets, takes one that lost none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gscip-capture-'));
  try {
    const seen: string[][] = [];
    const ok = await Capture.start(fakeTcpdump(0, seen), { host: 'r', iface: 'ra', file: join(dir, 'ok.pcap'), filter: 'tcp or udp' });
    await ok.stop();
    assert.equal(ok.pcap().length, 24);
    assert.deepEqual(seen[0], ['tcpdump', '-i', 'ra', '--immediate-mode', '-B', String(CAPTURE_BUFFER_KIB), '-U', '-n', '-s', '0', '-w', join(dir, 'ok.pcap'), 'tcp or udp']);

    const lossy = await Capture.start(fakeTcpdump(3, seen), { host: 'gnat', iface: 'out0', file: join(dir, 'lossy.pcap'), filter: ['udp', 'port', '9'], snaplen: 96, count: 5, direction: 'in', immediate: false });
    assert.throws(() => lossy.pcap(), /before stop/);
    await lossy.stop();
    await lossy.stop(); // idempotent
    assert.throws(() => lossy.pcap(), /capture on gnat out0 lost 3 packets dropped by kernel/);
    assert.deepEqual(seen[1].slice(1), ['-i', 'out0', '-B', String(CAPTURE_BUFFER_KIB), '-Q', 'in', '-U', '-n', '-s', '96', '-c', '5', '-w', join(dir, 'lossy.pcap'), 'udp', 'port', '9']);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
