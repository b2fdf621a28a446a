/**
 * On-demand inbound mappings per second at the GNAT (issue 13: target
 * >= 1,000/s): controlplane/natf/inbound.ts writing sessions of origin
 * `inbound` (port claim with BPF_NOEXIST, then the session) into the real
 * maps of a loaded datapath object, against the floor of the same run: the
 * same two map writes with BPF_ANY and no port search. Interleaved rounds;
 * the sessions are removed between rounds, so each round starts empty.
 *
 *   node dist/bench/nat-inbound.js [--rounds 5] [--per-round 5000]
 *
 * Writes bench/results/nat-inbound.json. Needs root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { BpfHarness, bpfUnavailable } from '../test/lib/bpf-harness.js';
import { monotonicNs } from '../controlplane/maps/accessors.js';
import { Dir, NatOrigin } from '../controlplane/maps/abi.js';
import { InboundMapper } from '../controlplane/natf/inbound.js';
import { intArg } from './args.js';

const G2 = '192.0.2.2';
const PORTS = { first: 10000, last: 59999 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main(): void {
  const why = bpfUnavailable();
  if (why) { process.stderr.write(`nat-inbound: skipped: ${why}\n`); return; }
  const rounds = intArg('rounds', 5, 1);
  const n = intArg('per-round', 5000, 100);
  const h = BpfHarness.open({ stages: { xlat: true, pccom: true, nat: true }, maxEntries: { gscip_pit: 1024, gscip_xlat: 1024 } });
  const nat = h.maps.nat!;
  const clear = (): void => { nat.sessions.deleteBatch([...nat.sessions.keys()]); nat.ports.deleteBatch([...nat.ports.keys()]); };
  const mapper = new InboundMapper(nat, { external: G2, ports: PORTS }, monotonicNs);
  const rates: { mapper: number[]; floor: number[] } = { mapper: [], floor: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const which of (r % 2 ? ['floor', 'mapper'] : ['mapper', 'floor']) as Array<'mapper' | 'floor'>) {
        clear();
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) {
          const peer = { addr: '203.0.113.9', port: 1024 + i };
          if (which === 'mapper') {
            const res = mapper.map({ proto: 6, inside: { addr: '100.64.1.10', port: 80 }, peer });
            if (!res.ok) throw new Error(`mapping ${i} refused: ${res.reason}`);
          } else {
            const key = { saddr: '100.64.1.10', daddr: peer.addr, sport: 80, dport: peer.port, proto: 6, dir: Dir.EGRESS };
            const now = monotonicNs();
            nat.ports.set({ port: PORTS.first + i, proto: 6 }, key);
            nat.sessions.set(key, { ext_addr: G2, ext_port: PORTS.first + i, origin: NatOrigin.INBOUND, flags: 0, created_ns: now, last_seen_ns: now });
          }
        }
        rates[which].push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
    }
  } finally { clear(); h.close(); }
  const m = median(rates.mapper);
  const f = median(rates.floor);
  process.stdout.write(`inbound mappings per second (median of ${rounds} rounds x ${n}): mapper ${Math.round(m)}/s, ` +
    `floor (two BPF_ANY writes, no port search) ${Math.round(f)}/s, mapper/floor ${(m / f).toFixed(3)}; target >= 1,000/s: ${m >= 1000 ? 'met' : 'NOT met'}\n`);
  const out = resolve(__dirname, '../../bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(resolve(out, 'nat-inbound.json'), JSON.stringify({ kernel: release(), cpus: cpus().length, rounds, perRound: n, rates }, null, 2));
}

main();
