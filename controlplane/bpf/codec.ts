/** What a BpfMap needs to (de)serialize its keys and values: a fixed size and a byte codec. */
export interface Codec<T> {
  readonly size: number;
  encode(v: T, buf?: Buffer, off?: number): Buffer;
  decode(buf: Buffer, off?: number): T;
}
