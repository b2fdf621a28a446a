/**
 * GSRA admissions per second at the router: for each flow the EN's session
 * (controlplane/gsra/en-session.ts) and the router's exchange (router-exchange.ts)
 * run AUTH and MAP (encode, decode, MAC under the user's key, replay check,
 * admission, answer, verify at the EN), and the router writes both halves of
 * the translation (router-nat.ts) into the NAT maps of two loaded datapath
 * objects (the router's outside and inside instances). Baseline of the same
 * run: the same two NAT writes alone (GsraRouterNat.install with nothing
 * before it). Interleaved rounds; maps emptied between rounds. No network:
 * the messages go from one object to the other in memory, so this is the
 * control plane's cost, not a round trip.
 *
 *   node dist/bench/gsra-admission.js [--rounds 5] [--per-round 2000]
 *
 * Writes bench/results/gsra-admission.json. Needs root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, release } from 'node:os';
import { resolve } from 'node:path';
import { BpfHarness, bpfUnavailable } from '../test/lib/bpf-harness.js';
import { monotonicNs } from '../controlplane/maps/accessors.js';
import { GsraAdmission, type Mapping } from '../controlplane/gsra/admission.js';
import { EnSession } from '../controlplane/gsra/en-session.js';
import { GsraRouterExchange } from '../controlplane/gsra/router-exchange.js';
import { GsraRouterNat } from '../controlplane/gsra/router-nat.js';
import { intArg } from './args.js';

const GGR = '192.0.2.1';
const PGR = '100.64.1.1';
const NONE = { addr: '0.0.0.0', mask: '0.0.0.0' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main(): void {
  const why = bpfUnavailable();
  if (why) { process.stderr.write(`gsra-admission: skipped: ${why}\n`); return; }
  const rounds = intArg('rounds', 5, 1);
  const n = intArg('per-round', 2000, 100);
  const open = (): BpfHarness => BpfHarness.open({ stages: { xlat: true, pccom: true, nat: true }, maxEntries: { gscip_pit: 256, gscip_xlat: 256 } });
  const out = open();
  const ins = open();
  out.maps.nat!.cfg.set(0, { ext_addr: GGR, port_lo: 20000, port_hi: 32767, inside: [{ addr: '100.64.1.0', mask: '255.255.255.0' }, NONE, NONE, NONE] });
  ins.maps.nat!.cfg.set(0, { ext_addr: PGR, port_lo: 20000, port_hi: 32767, inside: [NONE, NONE, NONE, NONE] });
  const nat = new GsraRouterNat(out.maps.nat!, ins.maps.nat!, { ggr: GGR, pgr: PGR }, monotonicNs);
  const clear = (): void => { for (const h of [out, ins]) { h.maps.nat!.sessions.deleteBatch([...h.maps.nat!.sessions.keys()]); h.maps.nat!.ports.deleteBatch([...h.maps.nat!.ports.keys()]); } };
  const key = randomBytes(32);
  const rates: { admission: number[]; natOnly: number[] } = { admission: [], natOnly: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const which of (r % 2 ? ['natOnly', 'admission'] : ['admission', 'natOnly']) as Array<'admission' | 'natOnly'>) {
        clear();
        const adm = new GsraAdmission({ portLo: 40000, portHi: 40000 + n - 1, maxEntries: n + 10, leaseMs: 10_000, idleMs: 300_000 });
        adm.setServers([{ name: 'in1.corp.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1] }]);
        adm.setUsers([{ userId: 'alice', groups: [1], key }]);
        const router = new GsraRouterExchange(adm);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) {
          const local = { addr: '198.51.100.20', port: 10000 + i };
          if (which === 'natOnly') {
            const m: Mapping = { t: 40000 + i, userId: 'alice', group: 1, proto: 6, en: local, inside: { addr: '100.64.1.10', port: 22 }, createdAt: 0, lastSeenAt: 0 };
            if (!nat.install(m).ok) throw new Error(`NAT write ${i} refused`);
            continue;
          }
          const now = Date.now();
          const s = new EnSession({ userId: 'alice', key, group: 1, name: 'in1.corp.example.net', vin: '198.18.0.1', ggr: GGR, proto: 6, local, dport: 22, behindNat: false });
          let msg: ReturnType<EnSession["start"]> | null = s.start(now);
          for (let step = 0; msg && step < 3; step++) {
            const o = router.onMessage(msg.msg, { addr: local.addr, port: 7253 }, now);
            if (o.install && !nat.install(o.install).ok) throw new Error(`NAT write ${i} refused`);
            if (!o.reply) throw new Error(`flow ${i}: ${o.result}`);
            msg = s.onReply(o.reply, now);
          }
          if (s.state !== 'done') throw new Error(`flow ${i} not admitted: ${s.state} ${s.failure}`);
        }
        rates[which].push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
    }
  } finally { clear(); out.close(); ins.close(); }
  const a = median(rates.admission);
  const f = median(rates.natOnly);
  process.stdout.write(`GSRA admissions per second (median of ${rounds} rounds x ${n}): full AUTH+MAP exchange + both NAT halves ${Math.round(a)}/s, ` +
    `the NAT writes alone ${Math.round(f)}/s, admission/NAT-only ${(a / f).toFixed(3)}\n`);
  const dir = resolve(__dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'gsra-admission.json'), JSON.stringify({ kernel: release(), cpus: cpus().length, rounds, perRound: n, rates }, null, 2));
}

main();
