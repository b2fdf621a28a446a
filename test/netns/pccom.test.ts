/**
 * PCCOM end to end in namespaces, kernel-selftest style (test_tc_tunnel.sh):
 * baseline works in plaintext; encrypt on one side only -> the application gets
 * garbage or nothing; both sides -> the bytes arrive identical (sha256), for a
 * multi-MB TCP transfer and for UDP, through a real nftables masquerade + port
 * filter in the middle namespace. Every scenario is captured on the middle
 * namespace; no encrypted scenario may show the application's plaintext marker
 * (and the baseline must, or the leak check could not fail).
 *
 * Run twice: with the veth defaults (CHECKSUM_PARTIAL end to end: PCCOM adjusts
 * the seed) and with software checksums (a real keyed checksum on the wire,
 * computed per segment by software GSO after TC, NAT updates it incrementally,
 * the receiver verifies it and its stack verifies the restored one). GSO stays
 * on in both: TC sees super-packets, which PCCOM encrypts whole.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { waitFor } from '../lib/netns.js';
import { KEY_F_ROUNDS_12, KEY_F_ROUNDS_8, PIT_F_WIRE_CSUM, Stat } from '../../controlplane/maps/abi.js';
import {
  BLOCKED_PORT, IPPROTO_TCP, IPPROTO_UDP, PccomTopo, TCP_PORT, TransitCapture, UDP_PORT,
  markedData, sha256, tcpTransfer, udpTransfer,
} from './pccom-topology.js';

const GROUP = 1;
const unavailable = bpfUnavailable();
const TCP_BYTES = 8 << 20;
const UDP_BYTES = 400 * 1000;

function statId(name: keyof typeof Stat): number {
  return Stat[name];
}

function snmp(p: PccomTopo, host: string, key: string): number {
  const lines = p.topo.exec(host, 'cat', ['/proc/net/snmp']).stdout.trim().split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/); const vals = lines[i + 1].split(/\s+/);
    const j = names.indexOf(key.split('.')[1]);
    if (names[0] === `${key.split('.')[0]}:` && j > 0) return Number(vals[j]);
  }
  throw new Error(`no ${key} in /proc/net/snmp`);
}

for (const softwareChecksums of [false, true]) {
  describe(`PCCOM through NAT + firewall (${softwareChecksums ? 'software checksums' : 'CHECKSUM_PARTIAL offload'})`, { skip: unavailable ?? false }, () => {
    let p: PccomTopo;
    let port = 41000 + (softwareChecksums ? 500 : 0);
    const nextFlow = (proto: number) => ({ proto, cport: port++, sport: proto === IPPROTO_TCP ? TCP_PORT : UDP_PORT });

    before(() => {
      p = new PccomTopo(softwareChecksums ? 'pcsw' : 'pcof', { softwareChecksums });
      const key = randomBytes(32);
      p.setKey('a', GROUP, 1, key);
      p.setKey('b', GROUP, 1, key);
    });
    after(() => p?.cleanup());

    test('baseline: plaintext TCP and UDP cross the NAT; the capture sees the marker; the firewall blocks other ports', async () => {
      const tf = nextFlow(IPPROTO_TCP); const uf = nextFlow(IPPROTO_UDP);
      p.protect('a', tf, 0, 0, 'pass'); p.protect('b', tf, 0, 0, 'pass');
      const data = markedData(1 << 20); const udata = markedData(UDP_BYTES);
      const cap = await TransitCapture.start(p.topo);
      const tr = await tcpTransfer(p.topo, data, tf.cport);
      const ur = await udpTransfer(p.topo, udata, uf.cport);
      const leak = await cap.stop();
      assert.ok(tr.completed, 'TCP transfer completed');
      assert.equal(sha256(tr.received), sha256(data));
      assert.equal(sha256(ur.received), sha256(udata), `UDP: ${ur.datagrams} datagrams`);
      assert.ok(leak.markers > 1000, `the leak check can see plaintext (${leak.markers} markers)`);
      const blocked = await tcpTransfer(p.topo, Buffer.from('x'), nextFlow(IPPROTO_TCP).cport, 3000, BLOCKED_PORT);
      assert.equal(blocked.completed, false, 'port filter on r is active');
    });

    test('encrypt on one side only: the application gets garbage or nothing, never the data', async () => {
      const tf = nextFlow(IPPROTO_TCP); const uf = nextFlow(IPPROTO_UDP);
      p.protect('a', tf, GROUP, 1); p.protect('a', uf, GROUP, 1);  // b has no entry: miss -> pass
      const data = markedData(256 << 10); const udata = markedData(100 * 1000);
      const cap = await TransitCapture.start(p.topo);
      const tr = await tcpTransfer(p.topo, data, tf.cport, 4000);
      const ur = await udpTransfer(p.topo, udata, uf.cport);
      const leak = await cap.stop();
      assert.notEqual(sha256(tr.received), sha256(data));
      assert.equal(tr.received.indexOf(data.subarray(0, 64)), -1, 'no plaintext reached the TCP application');
      assert.notEqual(sha256(ur.received), sha256(udata));
      assert.equal(ur.received.indexOf(udata.subarray(0, 64)), -1, 'no plaintext reached the UDP application');
      assert.equal(leak.markers, 0, 'no plaintext marker crossed r');
      assert.ok(leak.bytes > 1000, 'and the capture did see the traffic');
    });

    test('both sides: multi-MB TCP and UDP arrive byte-identical; nothing readable crosses r', async () => {
      const tf = nextFlow(IPPROTO_TCP); const uf = nextFlow(IPPROTO_UDP);
      for (const h of ['a', 'b'] as const) { p.protect(h, tf, GROUP, 1); p.protect(h, uf, GROUP, 1); }
      const before = {
        enc: p.stat('a', statId('STAT_PIT_ENCRYPT')), dec: p.stat('b', statId('STAT_PIT_DECRYPT')),
        badA: p.stat('a', statId('DROP_BAD_KEYED_CSUM')), badB: p.stat('b', statId('DROP_BAD_KEYED_CSUM')),
        csumErr: snmp(p, 'b', 'Tcp.InCsumErrors') + snmp(p, 'b', 'Udp.InCsumErrors'),
        encBytes: Number(p.harness('a').stat(statId('STAT_PIT_ENCRYPT')).bytes),
        unsA: p.stat('a', statId('DROP_UNSUPPORTED')), unsB: p.stat('b', statId('DROP_UNSUPPORTED')),
      };
      const data = markedData(TCP_BYTES); const udata = markedData(UDP_BYTES);
      const cap = await TransitCapture.start(p.topo);
      const tr = await tcpTransfer(p.topo, data, tf.cport);
      const ur = await udpTransfer(p.topo, udata, uf.cport);
      const leak = await cap.stop();
      assert.ok(tr.completed, 'TCP transfer completed');
      assert.equal(tr.received.length, data.length);
      assert.equal(sha256(tr.received), sha256(data), 'TCP bytes identical end to end');
      assert.equal(ur.datagrams, UDP_BYTES / 1000);
      assert.equal(sha256(ur.received), sha256(udata), 'UDP bytes identical end to end');
      assert.equal(leak.markers, 0, 'no plaintext marker crossed r');
      assert.ok(leak.bytes > TCP_BYTES, 'the capture saw the transfer');
      const enc = p.stat('a', statId('STAT_PIT_ENCRYPT')) - before.enc;
      const encBytes = Number(p.harness('a').stat(statId('STAT_PIT_ENCRYPT')).bytes) - before.encBytes;
      assert.ok(encBytes >= TCP_BYTES + UDP_BYTES, `a encrypted every byte (${encBytes} bytes in ${enc} skbs)`);
      assert.ok(encBytes / enc > 1514, `GSO super-packets were encrypted whole (mean skb ${Math.round(encBytes / enc)} bytes)`);
      assert.ok(p.stat('b', statId('STAT_PIT_DECRYPT')) - before.dec > 0, 'b decrypted');
      assert.equal(p.stat('a', statId('DROP_UNSUPPORTED')) - before.unsA, 0, 'nothing refused on a');
      assert.equal(p.stat('b', statId('DROP_UNSUPPORTED')) - before.unsB, 0, 'nothing refused on b');
      assert.equal(p.stat('a', statId('DROP_BAD_KEYED_CSUM')) - before.badA, 0);
      assert.equal(p.stat('b', statId('DROP_BAD_KEYED_CSUM')) - before.badB, 0);
      assert.equal(snmp(p, 'b', 'Tcp.InCsumErrors') + snmp(p, 'b', 'Udp.InCsumErrors') - before.csumErr, 0,
        'the receiving stack saw only valid ordinary checksums');
    });

    // (software checksums only: a CHECKSUM_PARTIAL skb is never verified by conntrack)
    if (softwareChecksums) test('TCP through a conntrack that verifies checksums (nf_conntrack_checksum=1, the default): the keyed form is INVALID to it and is not translated; the wire-valid form is, and arrives byte-identical', async () => {
      p.topo.exec('r', 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_checksum=1']);
      try {
        const data = markedData(1 << 20);
        const keyed = nextFlow(IPPROTO_TCP);
        for (const h of ['a', 'b'] as const) p.protect(h, keyed, GROUP, 1);
        const kr = await tcpTransfer(p.topo, data, keyed.cport, 4000);
        assert.notEqual(sha256(kr.received), sha256(data), 'the keyed form does not get through this NAT (the finding this fixes)');
        const wire = nextFlow(IPPROTO_TCP);
        for (const h of ['a', 'b'] as const) p.protect(h, wire, GROUP, 1, 'encrypt', 0, undefined, PIT_F_WIRE_CSUM);
        const bad0 = p.stat('b', statId('DROP_BAD_KEYED_CSUM'));
        const err0 = snmp(p, 'b', 'Tcp.InCsumErrors');
        const cap = await TransitCapture.start(p.topo);
        const wr = await tcpTransfer(p.topo, data, wire.cport);
        const leak = await cap.stop();
        assert.ok(wr.completed, 'the wire-valid form crossed the NAT');
        assert.equal(sha256(wr.received), sha256(data), 'byte-identical');
        assert.equal(leak.markers, 0, 'no plaintext marker crossed r');
        assert.equal(p.stat('b', statId('DROP_BAD_KEYED_CSUM')) - bad0, 0);
        assert.equal(snmp(p, 'b', 'Tcp.InCsumErrors') - err0, 0);
      } finally {
        p.topo.exec('r', 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_checksum=0']);
      }
    });

    test('key rotation under traffic without loss: decrypt entries accept (2, prev 1), then each end switches its sender', async () => {
      const tf = nextFlow(IPPROTO_TCP);
      const key2 = randomBytes(32);
      p.setKey('a', GROUP, 2, key2);
      p.setKey('b', GROUP, 2, key2);
      for (const h of ['a', 'b'] as const) p.protect(h, tf, GROUP, 1);
      const data = markedData(64 << 20);
      const bad0 = { a: p.stat('a', statId('DROP_BAD_KEYED_CSUM')), b: p.stat('b', statId('DROP_BAD_KEYED_CSUM')) };
      const prev0 = p.stat('b', statId('STAT_PIT_DECRYPT_PREV'));
      // progress in encrypted BYTES at a (GSO: one counted skb may carry 64 KB)
      const encBytes = (): number => Number(p.harness('a').stat(statId('STAT_PIT_ENCRYPT')).bytes);
      const encBefore = encBytes();
      const cap = await TransitCapture.start(p.topo);
      const transfer = tcpTransfer(p.topo, data, tf.cport, 90_000);
      await waitFor('the flow to carry data', () => encBytes() - encBefore > 4 << 20, 30_000, 5);
      // 1. both receivers accept version 2 and still version 1 (what DPRP does first when it re-keys)
      for (const h of ['a', 'b'] as const) p.protect(h, tf, GROUP, 2, 'encrypt', 1, 'decrypt');
      // 2. the senders switch one after the other, with traffic in between
      p.protect('b', tf, GROUP, 2, 'encrypt', 0, 'encrypt');
      await waitFor('a to send more under version 1', () => encBytes() - encBefore > 16 << 20, 30_000, 5);
      const encAtSwitch = encBytes() - encBefore;
      p.protect('a', tf, GROUP, 2, 'encrypt', 0, 'encrypt');
      const tr = await transfer;
      const leak = await cap.stop();
      const encTotal = encBytes() - encBefore;
      assert.ok(encAtSwitch < encTotal - (8 << 20), `the switch happened mid-flow (${encAtSwitch} of ${encTotal} bytes before it)`);
      assert.ok(tr.completed, 'TCP transfer completed across the rotation');
      assert.equal(sha256(tr.received), sha256(data), 'bytes identical');
      assert.equal(leak.markers, 0);
      assert.equal(p.stat('b', statId('DROP_BAD_KEYED_CSUM')) - bad0.b, 0, 'no packet lost at b');
      assert.equal(p.stat('a', statId('DROP_BAD_KEYED_CSUM')) - bad0.a, 0, 'no packet lost at a');
      assert.ok(p.stat('b', statId('STAT_PIT_DECRYPT_PREV')) - prev0 > 0, 'the fallback carried a\'s old-version packets at b');
    });

    test('ChaCha12 and ChaCha8 keys carry a transfer; ends that disagree on the rounds drop', async () => {
      for (const [flags, v] of [[KEY_F_ROUNDS_12, 12], [KEY_F_ROUNDS_8, 8]] as const) {
        const key = randomBytes(32);
        p.setKey('a', GROUP, v, key, flags);
        p.setKey('b', GROUP, v, key, flags);
        const tf = nextFlow(IPPROTO_TCP);
        for (const h of ['a', 'b'] as const) p.protect(h, tf, GROUP, v);
        const data = markedData(2 << 20);
        const cap = await TransitCapture.start(p.topo);
        const tr = await tcpTransfer(p.topo, data, tf.cport);
        const leak = await cap.stop();
        assert.equal(sha256(tr.received), sha256(data), `${v} rounds: bytes identical`);
        assert.equal(leak.markers, 0);
      }
      const key = randomBytes(32);
      p.setKey('a', GROUP, 20, key, KEY_F_ROUNDS_8);
      p.setKey('b', GROUP, 20, key, 0);
      const tf = nextFlow(IPPROTO_TCP);
      for (const h of ['a', 'b'] as const) p.protect(h, tf, GROUP, 20);
      const bad = p.stat('b', statId('DROP_BAD_KEYED_CSUM'));
      const tr = await tcpTransfer(p.topo, markedData(16 << 10), tf.cport, 3000);
      assert.equal(tr.received.length, 0, 'nothing reached the application');
      assert.ok(p.stat('b', statId('DROP_BAD_KEYED_CSUM')) - bad >= 2, 'counted as bad keyed checksum');
    });

    test('a receiver holding another key drops every packet as bad keyed checksum', async () => {
      const tf = nextFlow(IPPROTO_TCP);
      p.setKey('b', GROUP, 9, randomBytes(32));
      p.protect('a', tf, GROUP, 1);
      p.protect('b', tf, GROUP, 9);
      const bad = p.stat('b', statId('DROP_BAD_KEYED_CSUM'));
      const data = markedData(64 << 10);
      const tr = await tcpTransfer(p.topo, data, tf.cport, 3000);
      assert.equal(tr.completed, false);
      assert.equal(tr.received.length, 0, 'nothing reached the application');
      assert.ok(p.stat('b', statId('DROP_BAD_KEYED_CSUM')) - bad >= 2, 'the SYN and its retransmission were counted');
    });
  });
}
