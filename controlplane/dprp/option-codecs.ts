/**
 * The DPRP option codec registry (as dns-packet keeps one codec per record and
 * option type): each TLV type has at most one codec, registered by the part
 * that defines it (parts/dprp-extension.ts DprpOptionCodec). wire.ts asks it,
 * for every option it encodes or decodes, whether the value is valid; a type
 * with no codec is kept as raw bytes when skippable (>= 0x80) and refuses the
 * message when not (counted wire_unknown_critical_option).
 */
import { OPTION_SKIPPABLE_FROM, type DprpOptionCodec } from '../parts/dprp-extension.js';

export { OPTION_SKIPPABLE_FROM, type DprpOptionCodec } from '../parts/dprp-extension.js';

/** Refusals of the option registry, counted like the wire codec's (wire_<reason>). */
export const OPTION_REFUSAL_REASONS = ['unknown_critical_option'] as const;
export type OptionRefusalReason = (typeof OPTION_REFUSAL_REASONS)[number];

export class OptionCodecs {
  private readonly byType = new Map<number, DprpOptionCodec>();

  constructor(codecs: readonly DprpOptionCodec[] = []) {
    for (const c of codecs) this.register(c);
  }

  register(c: DprpOptionCodec): void {
    if (!Number.isInteger(c.type) || c.type < 1 || c.type > 255) throw new RangeError(`DPRP option ${c.name}: type ${c.type} is not 1..255`);
    if (c.skippable !== (c.type >= OPTION_SKIPPABLE_FROM)) throw new RangeError(`DPRP option ${c.name}: type ${c.type} and skippable=${c.skippable} disagree`);
    const had = this.byType.get(c.type);
    if (had) throw new RangeError(`DPRP option type ${c.type}: ${c.name} and ${had.name} both define it`);
    this.byType.set(c.type, c);
  }

  get(type: number): DprpOptionCodec | undefined {
    return this.byType.get(type);
  }

  /** The same codecs plus `more` (a composed agent: the spec codecs and every part's). */
  with(more: readonly DprpOptionCodec[]): OptionCodecs {
    return new OptionCodecs([...this.byType.values(), ...more]);
  }

  codecs(): DprpOptionCodec[] {
    return [...this.byType.values()];
  }
}
