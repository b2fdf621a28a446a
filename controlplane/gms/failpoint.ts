/**
 * Failpoints for the replica tests: `GSCIP_GMS_FAILPOINT=rotation-hold=MS`
 * makes a replica hold a scheduled rotation's transaction open for MS after
 * writing the new version (before COMMIT), and say so on stderr, so a test can
 * kill it exactly in the middle of a rotation. Unset (always, outside tests):
 * nothing happens.
 */
const spec = process.env.GSCIP_GMS_FAILPOINT ?? '';

export type FailpointName = 'rotation-hold';

export async function failpoint(name: FailpointName, detail: string): Promise<void> {
  if (!spec) return;
  for (const part of spec.split(',')) {
    const [n, ms] = part.split('=');
    if (n !== name) continue;
    process.stderr.write(`failpoint ${name}: ${detail}\n`);
    await new Promise((r) => setTimeout(r, Number(ms) || 0));
  }
}
