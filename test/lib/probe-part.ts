/**
 * `probe`: a test-only protocol part, registered only by tests, that proves
 * the part contract (docs/architecture.md "Protocol parts"). It claims one
 * ICMP control code and one DPRP option type, depends on DPRP, adds its option
 * to this GE's record in every DDE/RGI it sends and checks the option in the
 * records it receives. It reports what it sees through `onEvent`.
 */
import type { DprpOptionCodec } from '../../controlplane/parts/dprp-extension.js';
import type { PartDescriptor, PartRuntime } from '../../controlplane/parts/part.js';
import { puntPacket } from '../../controlplane/maps/codecs.js';

/** A code no DPRP message uses (DPRP's are 1..4). */
export const PROBE_ICMP_CODE = 200;
/** Critical (< 0x80): a GE that does not know it must refuse the message. */
export const PROBE_OPTION_TYPE = 0x7e;
const PREFIX = 'probe:';

export const probeOptionCodec: DprpOptionCodec<string> = {
  type: PROBE_OPTION_TYPE, name: 'PROBE', skippable: false,
  encode: (s) => Buffer.from(PREFIX + s, 'latin1'),
  decode: (b) => {
    const s = b.toString('latin1');
    if (!s.startsWith(PREFIX) || b.length > 64) throw new Error('PROBE: not a probe value');
    return s.slice(PREFIX.length);
  },
};

export type ProbeEvent =
  | { kind: 'option'; from: string; msgType: number; authenticated: boolean; value: string }
  | { kind: 'control'; code: number | null; bytes: number };

/** The probe's declaration; `overrides` let a test make it collide or lack a dependency. */
export function probePart(onEvent: (e: ProbeEvent) => void, overrides: Partial<Omit<PartDescriptor, 'create'>> = {}): PartDescriptor {
  return {
    name: 'probe',
    summary: 'test-only part: one ICMP control code, one DPRP option',
    claims: {
      puntReasons: ['control'],
      icmpCodes: [PROBE_ICMP_CODE],
      dprpOptions: [probeOptionCodec as DprpOptionCodec],
      counterRange: { first: 1000, last: 1003 },
      configKey: 'probe',
      metricsPrefix: 'gscip_probe_',
    },
    dependsOn: ['dprp'],
    ...overrides,
    create: () => probeRuntime(onEvent),
  };
}

export function probeRuntime(onEvent: (e: ProbeEvent) => void): PartRuntime {
  return {
    name: 'probe',
    onControl(rec) {
      const f = puntPacket(rec);
      // Ethernet (14) + IPv4 (ihl) + ICMP code at byte 1.
      const ip = 14;
      const icmp = ip + (f[ip] & 0x0f) * 4;
      onEvent({ kind: 'control', code: f.length > icmp + 1 ? f[icmp + 1] : null, bytes: f.length });
    },
    dprpOptionHooks: {
      recordOptions: ({ self }) => [{ type: PROBE_OPTION_TYPE, value: probeOptionCodec.encode(self) }],
      verifyRecordOption: (o) => {
        const value = probeOptionCodec.decode(o.option.value);
        onEvent({ kind: 'option', from: o.from, msgType: o.msgType, authenticated: o.authenticated, value });
        // The option names the GE whose record carries it; anything else is refused.
        return value === o.from;
      },
    },
  };
}
