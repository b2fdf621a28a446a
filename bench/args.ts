/** Command-line numbers for the bench scripts: `--name N`, validated, the bad flag named. */
export function intArg(name: string, dflt: number, min = 1): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${i >= 0 ? process.argv[i + 1] : v}`);
  return v;
}
