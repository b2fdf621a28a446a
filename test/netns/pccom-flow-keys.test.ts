/**
 * PCCOM per-flow keys end to end in namespaces (issue 16): two GESs (real
 * agents, DPRP, fast path) and one UDP flow of more than 2^17 short datagrams.
 * The agents re-key a UDP flow every 2^15 datagrams (GSCIP_PCCOM_UDP_REKEY_AT),
 * so the flow goes through several keys while it runs:
 *  - every datagram arrives, decrypted, exactly once (sequence numbers), and
 *    no keyed checksum fails at the receiver;
 *  - the capture on the router shows the IP ID (the counter's low 16 bits)
 *    counting up from 0 under each key and starting again at 0 at each
 *    re-key, never repeating under one key, with as many keys as salts the
 *    sender's gscip_flow_keys entry went through: no (nonce, key) pair twice;
 *  - no plaintext on the wire.
 * Bounded: 140,000 datagrams paced at ~25,000/s, the whole file in 120 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { bpfUnavailable } from '../lib/bpf-harness.js';
import { Dir, Stat } from '../../controlplane/maps/abi.js';
import { readStat } from '../../controlplane/maps/accessors.js';
import type { Cid } from '../../controlplane/maps/codecs.js';
import { ipOfFrame } from '../../controlplane/dprp/handler.js';
import { A, B, DprpTopo, MARKER } from './dprp-topology.js';
import { waitFor } from '../lib/netns.js';
import { Capture } from '../lib/capture.js';

const unavailable = bpfUnavailable();
const PORT = 7102;
const SPORT = 41_000;
const N = 140_000;            // > 2^17
const REKEY_AT = 32_768;      // 2^15: several keys in one run, each well under 2^16 datagrams

describe('PCCOM per-flow keys: a long UDP flow is re-keyed without loss, no (nonce, key) pair twice', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let p: DprpTopo;
  const key = randomBytes(32);
  before(async () => {
    p = new DprpTopo('pfk');
    const env = { GSCIP_PCCOM_UDP_REKEY_AT: String(REKEY_AT) };
    await p.startGe('a', 'va', { keys: [[1, 1, key]], env });
    await p.startGe('b', 'vb', { keys: [[1, 1, key]], env });
  });
  after(async () => { await p?.cleanup(); });

  test(`${N} datagrams of one flow, re-keyed every ${REKEY_AT}`, async (tc) => {
    const t = p.topo;
    const salts: bigint[] = [];
    // receiver on b: counts distinct sequence numbers, reports when told to stop
    const recv = t.spawn('b', 'node', ['-e', `
const s = require('dgram').createSocket({ type: 'udp4', recvBufferSize: 1 << 24 });
const seen = new Uint8Array(${N}); let n = 0, dup = 0, bad = 0;
s.on('message', (m) => {
  const t = m.toString();
  if (t === 'hello') return;
  const i = Number(t.slice(0, 8));
  if (!(i >= 0 && i < ${N}) || t.slice(8) !== ${JSON.stringify(`-${MARKER}`)}) { bad++; return; }
  if (seen[i]) dup++; else { seen[i] = 1; n++; }
});
s.bind(${PORT}, () => console.log('ready'));
process.stdin.on('data', () => { console.log(JSON.stringify({ n, dup, bad })); process.exit(0); });
`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let rout = '';
    recv.stdout!.setEncoding('utf8');
    recv.stdout!.on('data', (d: string) => { rout += d; });
    await waitFor('udp receiver', () => rout.includes('ready'), 10_000);

    // capture on the router (a side), kernel buffer large enough for the burst
    const pcap = `/tmp/${t.prefix}-pfk-${randomBytes(3).toString('hex')}.pcap`;
    const cap = await Capture.start(t, { host: 'r', iface: 'ra', file: pcap, snaplen: 96, filter: ['udp', 'and', 'dst', 'port', String(PORT)] });
    try {

      // one socket = one flow; 'hello' first (it waits in the stash while DPRP negotiates), then the stream, paced
      const send = t.spawn('a', 'node', ['-e', `
const s = require('dgram').createSocket('udp4');
s.bind(${SPORT}, () => {
  s.send('hello', ${PORT}, ${JSON.stringify(B)});
  setTimeout(() => {
    let i = 0;
    const burst = () => {
      for (let k = 0; k < 250 && i < ${N}; k++, i++) s.send(String(i).padStart(8, '0') + ${JSON.stringify(`-${MARKER}`)}, ${PORT}, ${JSON.stringify(B)});
      if (i < ${N}) setTimeout(burst, 10); else setTimeout(() => { console.log('sent'); process.exit(0); }, 200);
    };
    burst();
  }, 1000);
});
`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let sout = '';
      send.stdout!.setEncoding('utf8');
      send.stdout!.on('data', (d: string) => { sout += d; });

      // meanwhile: which salts the sender's key goes through (a new salt = a new key, its counter from 0)
      const eg: Cid = { saddr: A, daddr: B, sport: SPORT, dport: PORT, proto: 17, dir: Dir.EGRESS };
      const ma = p.maps('a');
      const mb = p.maps('b');
      try {
        const t0 = Date.now();
        while (!sout.includes('sent') && Date.now() - t0 < 60_000) {
          const v = ma.flowKeys.get(eg);
          if (v && v.cur.key_version && salts[salts.length - 1] !== v.salt) salts.push(v.salt);
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(sout.includes('sent'), 'the sender finished within 60 s');
        await new Promise((r) => setTimeout(r, 500));
        recv.stdin!.write('x\n');
        await waitFor('receiver report', () => rout.includes('{'), 5000);
        const got = JSON.parse(rout.slice(rout.indexOf('{'))) as { n: number; dup: number; bad: number };
        const badCsum = readStat(mb, Stat.DROP_BAD_KEYED_CSUM).packets;
        const refused = readStat(ma, Stat.DROP_NONCE_LIMIT).packets;
        const signals = readStat(ma, Stat.STAT_PCCOM_REKEY).packets;
        tc.diagnostic(`received ${got.n}/${N}; keys (salts) seen at the sender: ${salts.length}; re-key signals raised: ${signals}`);
        // Where a loss went (seen once in a loaded CI run: 397 of 140,000): every counter either fast path moved.
        const moved = (m: typeof ma): string => Object.entries(Stat).filter(([, id]) => readStat(m, id).packets > 0n).map(([k, id]) => `${k}=${readStat(m, id).packets}`).join(' ');
        tc.diagnostic(`stats a: ${moved(ma)}`);
        tc.diagnostic(`stats b: ${moved(mb)}`);
        assert.equal(got.bad, 0, 'every datagram decrypted to its plaintext');
        assert.equal(got.dup, 0);
        assert.equal(got.n, N, 'no datagram lost across the re-keys');
        assert.equal(badCsum, 0n, 'no keyed checksum failed at the receiver');
        assert.equal(refused, 0n);
        assert.ok(salts.length >= Math.floor(N / REKEY_AT), `re-keyed: ${salts.length} keys for ${N} datagrams`);
      } finally { ma.close(); mb.close(); }
    } finally {
      await new Promise((r) => setTimeout(r, 300));
      await cap.stop(3000);
      recv.kill('SIGKILL');
    }

    // the capture: per key, the IP IDs count from 0 and never repeat
    let buf: Buffer;
    try { buf = cap.pcap(); } finally { rmSync(pcap, { force: true }); }
    const ids: number[] = [];
    let leaks = 0;
    for (let off = 24; off + 16 <= buf.length;) {
      const incl = buf.readUInt32LE(off + 8);
      const f = buf.subarray(off + 16, off + 16 + incl);
      off += 16 + incl;
      const ip = ipOfFrame(f);
      if (!ip || ip.proto !== 17) continue;
      if (f.includes(MARKER)) leaks++;
      ids.push(f.readUInt16BE(14 + 4));
    }
    assert.equal(leaks, 0, 'no plaintext on the wire');
    assert.ok(ids.length >= N, `the capture holds the stream (${ids.length} datagrams)`);
    // epochs: a new key starts again at 0 (the stash-released 'hello' is counter 0 of the first key)
    const epochs: number[][] = [[]];
    for (let i = 0; i < ids.length; i++) {
      const cur = epochs[epochs.length - 1];
      if (cur.length > 0 && ids[i] < 64 && cur[cur.length - 1] > REKEY_AT - 64) epochs.push([]);
      epochs[epochs.length - 1].push(ids[i]);
    }
    for (const [k, e] of epochs.entries()) {
      assert.ok(e.length < 65_536, `key ${k}: ${e.length} datagrams, under 2^16 (its counter never wrapped: the IP ID is the whole nonce)`);
      assert.equal(new Set(e).size, e.length, `key ${k}: no IP ID (counter) twice`);
      assert.equal(Math.min(...e), 0, `key ${k}: its counter starts at 0`);
    }
    assert.equal(epochs.length, salts.length, `as many counter runs on the wire (${epochs.length}) as keys the sender held (${salts.length})`);
  });
});
