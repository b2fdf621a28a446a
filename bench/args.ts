/** Command-line numbers for the bench scripts: `--name N`, validated, the bad flag named. */
export function intArg(name: string, dflt: number, min = 1): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${i >= 0 ? process.argv[i + 1] : v}`);
  return v;
}

/** Command-line strings: `--name VALUE`, or undefined when absent. */
export function strArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name}: expected a value`);
  return v;
}
