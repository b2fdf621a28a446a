/**
 * Whether two map entries as the control plane describes them (PIT and XLAT
 * entries: plain objects of strings, numbers, booleans and nested plain
 * objects) hold the same fields with the same values, in any key order. A
 * field whose value is `undefined` counts as absent (as JSON would drop it).
 * What the flow writers compare before writing an entry again; it replaced
 * comparing JSON.stringify() of both (issue 12: two strings per entry of a
 * 10,000-flow move). Pure.
 */
export function sameEntry(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let na = 0;
  for (const k in ra) {
    const v = ra[k];
    if (v === undefined) continue;
    na++;
    if (!sameEntry(v, rb[k])) return false;
  }
  let nb = 0;
  for (const k in rb) if (rb[k] !== undefined) nb++;
  return na === nb;
}
