/**
 * The datapath object of another git ref, for old-vs-new benches:
 * `git archive <ref> bpf Makefile` into a temp dir, built there by that tree's
 * own Makefile (`make bpf`: its clang flags) with this tree's
 * bpf/include/vmlinux.h. The caller removes `dir` when done.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, __dirname.includes('/dist/') ? '../..' : '..');

export function buildBase(ref: string): { obj: string; dir: string; commit: string } {
  const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', ref], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'gscip-bench-base-'));
  execFileSync('bash', ['-c', `git -C "${ROOT}" archive "${commit}" bpf Makefile | tar -x -C "${dir}"`]);
  copyFileSync(join(ROOT, 'bpf/include/vmlinux.h'), join(dir, 'bpf/include/vmlinux.h'));
  execFileSync('make', ['-s', '-C', dir, 'bpf'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { obj: join(dir, 'build/bpf/gscip_tc.bpf.o'), dir, commit };
}
