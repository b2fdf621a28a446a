/**
 * Scratch state that must not outlive the process that made it: network
 * namespaces, root-side interfaces, pin and run directories, processes.
 * Used by the test harness and by `gscip selftest`.
 *
 * A process's own cleanup cannot be trusted to run: a SIGKILL, or a SIGTERM
 * while a synchronous loop holds the event loop, ends it first. So every
 * item is written (synchronously) to a manifest BEFORE it is created, and a
 * watcher process (scratch-watcher.ts) removes whatever the manifest still
 * lists when its owner goes away:
 *  - the owner dies in any way: the watcher's stdin pipe reaches EOF;
 *  - a SIGTERM/SIGINT reaches the process group (Ctrl-C, `timeout`, the test
 *    runner): the watcher, in the same group, kills the owner and cleans up.
 * The owner's own cleanup marks items gone ("-" lines), so after a normal
 * exit the watcher finds nothing to do.
 *
 * Manifests live in $GSCIP_SCRATCH_DIR (default /run/gscip-scratch), one per
 * owner; the watcher deletes its manifest when it is done, so a manifest
 * left behind names state that could not be removed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

export type ScratchKind = 'ns' | 'link' | 'path' | 'pid';

export const DEFAULT_SCRATCH_DIR = '/run/gscip-scratch';
/** The line a watcher appends to its manifest once its signal handlers are installed. */
export const WATCHER_READY = '# watcher ready';
/** How long an owner waits for its watcher to start (a busy 2-core host: Node starts in ~50-300 ms). */
const WATCHER_START_MS = 10_000;

/** Roots a registered path must lie under (the watcher runs rm -rf on them as root). */
export const SCRATCH_PATH_ROOTS = ['/sys/fs/bpf/', '/run/', '/tmp/'] as const;

export function scratchDir(): string {
  return process.env.GSCIP_SCRATCH_DIR ?? DEFAULT_SCRATCH_DIR;
}

export interface ScratchItem { kind: ScratchKind; name: string }

/** The items a manifest still lists (added and not marked removed), in the order they were added. */
export function parseManifest(text: string): ScratchItem[] {
  const live = new Map<string, ScratchItem>();
  for (const line of text.split('\n')) {
    const m = /^([+-])(ns|link|path|pid) (.+)$/.exec(line);
    if (!m) continue;
    const key = `${m[2]} ${m[3]}`;
    if (m[1] === '+') live.set(key, { kind: m[2] as ScratchKind, name: m[3] });
    else live.delete(key);
  }
  return [...live.values()];
}

function checkItem(kind: ScratchKind, name: string): void {
  if (!/^[^\s]+$/.test(name)) throw new Error(`scratch ${kind} '${name}': names must be non-empty without whitespace`);
  if (kind === 'path') {
    const p = resolve(name);
    if (p !== name || !SCRATCH_PATH_ROOTS.some((r) => p.startsWith(r) && p.length > r.length)) {
      throw new Error(`scratch path '${name}' must be an absolute path below ${SCRATCH_PATH_ROOTS.join(', ')}`);
    }
  }
}

export class ScratchGuard {
  private static self: ScratchGuard | null = null;
  readonly manifest: string;

  private constructor() {
    const dir = scratchDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.manifest = `${dir}/${process.pid}-${randomBytes(4).toString('hex')}.manifest`;
    appendFileSync(this.manifest, `# owner ${process.pid} ${process.argv.slice(1).join(' ')}\n`, { mode: 0o600 });
    const watcher = spawn(process.execPath, [resolve(__dirname, 'scratch-watcher.js'), this.manifest, String(process.pid)], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    // Neither the watcher nor its pipe may keep the owner alive.
    watcher.unref();
    (watcher.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    // Nothing is created before the watcher can clean it up: wait (bounded, synchronously:
    // add() is synchronous) until it says its signal handlers are installed.
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + WATCHER_START_MS;
    while (!readFileSync(this.manifest, 'utf8').includes(WATCHER_READY)) {
      if (Date.now() > deadline) {  // (a dead watcher shows here too: exitCode never updates in this loop)
        throw new Error(`scratch watcher did not start within ${WATCHER_START_MS} ms (manifest ${this.manifest}): refusing to create state nothing would clean up`);
      }
      Atomics.wait(sleeper, 0, 0, 5);
    }
  }

  /** This process's guard (its watcher starts on first use). */
  static get(): ScratchGuard {
    ScratchGuard.self ??= new ScratchGuard();
    return ScratchGuard.self;
  }

  /** Record an item before creating it. */
  add(kind: ScratchKind, name: string): void {
    checkItem(kind, name);
    appendFileSync(this.manifest, `+${kind} ${name}\n`);
  }

  /** Record that the owner removed an item itself. */
  removed(kind: ScratchKind, name: string): void {
    appendFileSync(this.manifest, `-${kind} ${name}\n`);
  }

  /** What this guard's manifest still lists. */
  pending(): ScratchItem[] {
    return existsSync(this.manifest) ? parseManifest(readFileSync(this.manifest, 'utf8')) : [];
  }
}

function quietRun(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }); } catch { return ''; }
}

/** Does the item still exist? */
export function scratchItemExists(it: ScratchItem): boolean {
  switch (it.kind) {
    case 'pid': { try { process.kill(Number(it.name), 0); return true; } catch { return false; } }
    case 'ns': return existsSync(`/run/netns/${it.name}`);
    case 'link': return existsSync(`/sys/class/net/${it.name}`);
    case 'path': return existsSync(it.name);
  }
}

/** Remove one item (bounded); true when it is gone. */
export function removeScratchItem(it: ScratchItem): boolean {
  switch (it.kind) {
    case 'pid': {
      const pid = Number(it.name);
      if (Number.isInteger(pid) && pid > 1) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      return true;
    }
    case 'ns': {
      if (!scratchItemExists(it)) return true;
      for (const p of quietRun('ip', ['netns', 'pids', it.name]).split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
      }
      quietRun('ip', ['netns', 'del', it.name]);
      return !scratchItemExists(it);
    }
    case 'link':
      if (scratchItemExists(it)) quietRun('ip', ['link', 'del', it.name]);
      return !scratchItemExists(it);
    case 'path':
      if (!SCRATCH_PATH_ROOTS.some((r) => it.name.startsWith(r))) return false;
      try { rmSync(it.name, { recursive: true, force: true }); } catch { /* reported by the caller */ }
      return !scratchItemExists(it);
  }
}
