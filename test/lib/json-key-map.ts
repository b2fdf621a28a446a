/**
 * A Map keyed by the JSON of the key: what a BPF hash map is to code that
 * gets, sets, deletes and walks typed entries (the NAT sweep, the external
 * address flush), for unit tests without a kernel.
 */
export class JsonKeyMap<K, V> {
  readonly m = new Map<string, [K, V]>();
  set(k: K, v: V): void { this.m.set(JSON.stringify(k), [k, v]); }
  get(k: K): V | undefined { return this.m.get(JSON.stringify(k))?.[1]; }
  delete(k: K): boolean { return this.m.delete(JSON.stringify(k)); }
  *entries(): Iterable<[K, V]> { yield* [...this.m.values()]; }
  get size(): number { return this.m.size; }
}
