/**
 * The previous release, built from git for upgrade tests: its datapath object
 * (same clang flags as the Makefile) and its control plane (tsc), in a cache
 * directory under the OS temp dir keyed by the commit, so only the first run
 * pays (~20 s). PREVIOUS_RELEASE is the last commit of layout 1 (counters in
 * gscip_stats, no direction): controlplane/agent/migrate.ts migrates its pins.
 *
 * Build it by hand: node dist/test/lib/previous-release.js  (prints the paths)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const PREVIOUS_RELEASE = '951c3ab6663b6544f18990f101b13120bd159e9c';
const ROOT = resolve(__dirname, '../../..');
/** The Makefile's BPF_CFLAGS. */
const BPF_CFLAGS = ['-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-mcpu=v3', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter'];

export interface Release { commit: string; dir: string; main: string; bpfObject: string }

/** Why the previous release cannot be built here (no git history, no toolchain), or null. */
export function previousReleaseUnavailable(): string | null {
  try {
    execFileSync('git', ['-C', ROOT, 'cat-file', '-e', `${PREVIOUS_RELEASE}^{commit}`], { stdio: 'pipe' });
  } catch { return `commit ${PREVIOUS_RELEASE.slice(0, 7)} (the previous release) is not in this clone's history`; }
  if (!existsSync(join(ROOT, 'bpf/include/vmlinux.h'))) return 'bpf/include/vmlinux.h missing: run make bpf';
  if (!existsSync(join(ROOT, 'node_modules'))) return 'node_modules missing: run make deps';
  return null;
}

/** Build (or reuse) the previous release. Safe against concurrent callers: built aside, then renamed into place. */
export function previousRelease(): Release {
  // One cache per checkout: the build links this checkout's node_modules, and a cache shared with a
  // checkout that is gone (a CI clone) would keep a dangling link ("Cannot find module 'yargs'").
  const tree = createHash('sha256').update(ROOT).digest('hex').slice(0, 8);
  const dir = join(tmpdir(), `gscip-release-${PREVIOUS_RELEASE.slice(0, 12)}-${tree}`);
  const rel: Release = {
    commit: PREVIOUS_RELEASE, dir,
    main: join(dir, 'dist/controlplane/cli/main.js'), bpfObject: join(dir, 'build/bpf/gscip_tc.bpf.o'),
  };
  if (existsSync(rel.main) && existsSync(rel.bpfObject) && existsSync(join(dir, 'node_modules/yargs'))) return rel;
  rmSync(dir, { recursive: true, force: true });  // incomplete, or its node_modules link dangles
  const tmp = mkdtempSync(`${dir}.tmp-`);
  try {
    execFileSync('bash', ['-c', `git -C "$1" archive "$2" | tar -x -C "$3"`, '_', ROOT, PREVIOUS_RELEASE, tmp], { stdio: 'pipe' });
    symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'));
    copyFileSync(join(ROOT, 'bpf/include/vmlinux.h'), join(tmp, 'bpf/include/vmlinux.h'));
    mkdirSync(join(tmp, 'build/bpf'), { recursive: true });
    execFileSync('clang', [...BPF_CFLAGS, `-I${join(tmp, 'bpf/include')}`, `-I${join(tmp, 'bpf/lib')}`, '-c', join(tmp, 'bpf/gscip_tc.bpf.c'), '-o', join(tmp, 'build/bpf/gscip_tc.bpf.o')], { stdio: 'pipe' });
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(tmp, 'tsconfig.json')], { stdio: 'pipe', cwd: tmp, timeout: 180_000 });
    try { renameSync(tmp, dir); } catch { /* another run got there first: use its build */ }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!existsSync(rel.main) || !existsSync(rel.bpfObject)) throw new Error(`previous release build in ${dir} is incomplete`);
  return rel;
}

if (require.main === module) {
  const why = previousReleaseUnavailable();
  if (why) { console.error(why); process.exit(1); }
  console.log(JSON.stringify(previousRelease(), null, 2));
}
