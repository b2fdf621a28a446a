/**
 * The watcher half of scratch-guard.ts: `node scratch-watcher.js MANIFEST OWNER_PID`.
 * Waits for its owner to go away (stdin EOF), or for a SIGTERM/SIGINT/SIGHUP
 * sent to the process group (then it SIGKILLs the owner first, which may be
 * stuck in a synchronous loop), and removes what the manifest still lists.
 * Every step is bounded; what cannot be removed stays in the manifest with
 * a "# left" line so the test runner can report it.
 */
import { appendFileSync, readFileSync, unlinkSync } from 'node:fs';
import { parseManifest, removeScratchItem, WATCHER_READY } from './scratch-guard.js';

const [manifest, ownerArg] = process.argv.slice(2);
const owner = Number(ownerArg);

let done = false;
function cleanup(): void {
  if (done) return;
  done = true;
  let text = '';
  try { text = readFileSync(manifest, 'utf8'); } catch { process.exit(0); }
  // Processes first (they hold namespaces and files), then the rest newest first.
  const items = parseManifest(text);
  const order = [...items.filter((i) => i.kind === 'pid'), ...items.filter((i) => i.kind !== 'pid').reverse()];
  const left = order.filter((it) => !removeScratchItem(it));
  if (left.length === 0) { try { unlinkSync(manifest); } catch { /* gone */ } }
  else appendFileSync(manifest, left.map((it) => `# left ${it.kind} ${it.name}\n`).join(''));
  process.exit(left.length ? 1 : 0);
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (Number.isInteger(owner) && owner > 1) { try { process.kill(owner, 'SIGKILL'); } catch { /* gone */ } }
    cleanup();
  });
}
process.stdin.on('end', cleanup);
process.stdin.on('close', cleanup);
process.stdin.on('error', cleanup);
process.stdin.resume();
// Handlers are in place: tell the owner, which waits for this line before it creates anything
// (a signal to the group before this point would have ended us with nothing cleaned).
appendFileSync(manifest, `${WATCHER_READY} ${process.pid}\n`);
