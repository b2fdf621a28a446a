/**
 * PCCOM's UDP wire-valid form against the keyed form, per datagram, through
 * the real gscip_tc programs (BPF_PROG_TEST_RUN; docs/pccom.md "UDP across a
 * checksum-verifying NAT"): two flows of one object, per-flow keys on both,
 * one with GSCIP_PIT_F_WIRE_CSUM on its encrypt entry. 1400-byte payloads,
 * ChaCha20 and ChaCha8.
 *   encrypt: repeat=--repeat on one input (each run encrypts its own output
 *            again: the same work), ns = the kernel's average;
 *   decrypt: one run per syscall on a fresh ciphertext, --singles per round.
 * Rounds interleave both forms, the order rotated each round. Printed: median
 * ns/packet of each form, wire/keyed of the medians and the range of the
 * per-round ratios (the noise). Writes bench/results/pccom-udp-wire.json.
 * Needs root.
 *
 *   node dist/bench/pccom-udp-wire.js [--rounds 15] [--repeat 5000] [--singles 300]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BpfHarness, TEST_RUN_IFINDEX } from '../test/lib/bpf-harness.js';
import { Action, Dir, KEY_F_ROUNDS_8, MissAction, PIT_F_FLOW_KEY, PIT_F_WIRE_CSUM, PitState, Role } from '../controlplane/maps/abi.js';
import type { Cid } from '../controlplane/maps/codecs.js';
import { DIRS } from '../controlplane/maps/vocabulary.js';
import { FlowKeyWriter } from '../controlplane/pccom/flow-keys.js';
import { udpPacket } from '../test/bpf/pccom-fixture.js';
import { intArg } from './args.js';

const ROUNDS = intArg('rounds', 15);
const REPEAT = intArg('repeat', 5000);
const SINGLES = intArg('singles', 300);
const GROUP = 7;
const A = '192.0.2.1';
const B = '198.51.100.2';
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const h = BpfHarness.open();
try {
  h.maps.iface.set(TEST_RUN_IFINDEX, { miss_action: [MissAction.DROP, MissAction.DROP], flags: 1 });
  h.maps.cfg.set(0, { punt_rate_pps: 0n, punt_burst: 0n });
  const results: Record<string, unknown> = {};
  for (const [cipher, flags] of [['chacha20', 0], ['chacha8', KEY_F_ROUNDS_8]] as const) {
    const key = randomBytes(32);
    h.maps.keys.set({ group_id: GROUP, version: 1 }, { key, flags, installed_ns: 0n });
    const w = new FlowKeyWriter(h.maps.flowKeys, () => ({ key, flags }));
    const forms = { keyed: 41000, wire: 41001 } as const;
    for (const [form, sport] of Object.entries(forms)) {
      for (const [dir, action] of [[Dir.EGRESS, 'encrypt'], [Dir.INGRESS, 'decrypt']] as const) {
        const c: Cid = { saddr: A, daddr: B, sport, dport: 5001, proto: 17, dir };
        for (const k of [...h.maps.flowKeys.keys()]) if (k.sport === sport && k.dir === dir) h.maps.flowKeys.delete(k);
        w.install({ flow: { saddr: A, daddr: B, sport, dport: 5001, proto: 17 }, dir: DIRS.of(dir), action, group: GROUP, version: 1, state: 'confirmed', role: 'start', flowKey: { salt: '00112233445566' + (sport & 0xff).toString(16).padStart(2, '0'), leg: 'fwd' } }, c);
        const wire = form === 'wire' && dir === Dir.EGRESS ? PIT_F_WIRE_CSUM : 0;
        h.maps.pit.set(c, { action: dir === Dir.EGRESS ? Action.ENCRYPT : Action.DECRYPT, state: PitState.CONFIRMED, role: Role.START, flags: PIT_F_FLOW_KEY | wire, group_id: GROUP, key_version: 1, created_ns: 0n, last_seen_ns: 0n });
      }
    }
    const ns: Record<string, { enc: number[]; dec: number[] }> = { keyed: { enc: [], dec: [] }, wire: { enc: [], dec: [] } };
    const payload = randomBytes(1400);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? ['wire', 'keyed'] : ['keyed', 'wire'];
      for (const form of order) {
        const pkt = udpPacket({ src: A, dst: B, sport: forms[form as keyof typeof forms], dport: 5001, payload });
        const e = h.progTestRun('gscip_tc_egress', pkt, { repeat: REPEAT });
        ns[form].enc.push(Number(e.durationNs));
        // the receiver follows the sender's counter (repeat ran it far ahead of the wire form's window)
        const sport = forms[form as keyof typeof forms];
        const eg = h.maps.flowKeys.get({ saddr: A, daddr: B, sport, dport: 5001, proto: 17, dir: Dir.EGRESS })!;
        const ingCid: Cid = { saddr: A, daddr: B, sport, dport: 5001, proto: 17, dir: Dir.INGRESS };
        const iv = h.maps.flowKeys.get(ingCid)!;
        h.maps.flowKeys.set(ingCid, { ...iv, cur: { ...iv.cur, ctr: eg.cur.ctr - 1n } });
        const ds: number[] = [];
        for (let i = 0; i < SINGLES; i++) {
          const c = h.progTestRun('gscip_tc_egress', pkt).dataOut;
          const d = h.progTestRun('gscip_tc_ingress', c);
          if (d.retval !== 0) throw new Error(`${form} decrypt refused (retval ${d.retval})`);
          ds.push(Number(d.durationNs));
        }
        ns[form].dec.push(median(ds));
      }
    }
    const ratio = (k: 'enc' | 'dec') => {
      const per = ns.wire[k].map((x, i) => x / ns.keyed[k][i]);
      return { wireNs: median(ns.wire[k]), keyedNs: median(ns.keyed[k]), ratio: +(median(ns.wire[k]) / median(ns.keyed[k])).toFixed(3), perRound: [+Math.min(...per).toFixed(3), +Math.max(...per).toFixed(3)] };
    };
    results[cipher] = { encrypt: ratio('enc'), decrypt: ratio('dec') };
    for (const k of ['encrypt', 'decrypt'] as const) {
      const x = (results[cipher] as Record<string, ReturnType<typeof ratio>>)[k];
      console.log(`${cipher} ${k}: keyed ${x.keyedNs} ns, wire-valid ${x.wireNs} ns, wire/keyed ${x.ratio} (per round ${x.perRound.join('-')})`);
    }
  }
  const out = resolve(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'pccom-udp-wire.json'), JSON.stringify({ machine: `${cpus().length} vCPU ${cpus()[0]?.model}, Linux ${release()}`, rounds: ROUNDS, repeat: REPEAT, singles: SINGLES, results }, null, 2));
} finally { h.close(); }
