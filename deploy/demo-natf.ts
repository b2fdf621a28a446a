/**
 * NAT-f demo: a global host reaches a private host behind a GNAT by name.
 *
 *   node dist/deploy/demo-natf.js [--ge]   (root; BIND 9 and curl installed)
 *
 * The namespaces of test/netns/natf-topology.ts (per-run prefix; removed on
 * exit, failure or Ctrl-C): alice (global GES), a real BIND 9, the GNAT (CL,
 * its ACT allowing bob and denying dave), bob (100.64.1.10, a plain host with
 * an HTTP server, no port forward anywhere). Prints what alice's unmodified
 * tools see (getent, curl by name), alice's NRT and VAT, the GNAT's NAT
 * session of origin inbound, and a denied name failing at once. With --ge,
 * bob is a GE itself (a CL GES, ACT `ge: true`): PCCOM runs alice <-> bob end
 * to end, and the demo also shows the three PITs (alice G1:X <-> G2:Z, the
 * GNAT the same tuple passed, bob G1:X <-> P1:Y; docs/natf.md "A private GE
 * behind the GNAT"). Exit 0 only if every step did what it should.
 */
import { BOB, HTTP_PORT, NatfTopo } from '../test/netns/natf-topology.js';
import { waitFor } from '../test/lib/netns.js';

const LIMIT_MS = 120_000;

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) { process.stderr.write('demo-natf: needs root (namespaces)\n'); return 2; }
  const ge = process.argv.includes('--ge');
  const n = new NatfTopo('natfdm', { bobGe: ge });
  const cap = setTimeout(() => { process.stderr.write('demo-natf: time limit reached\n'); n.cleanupSync(); process.exit(1); }, LIMIT_MS);
  const stop = (): void => { n.cleanupSync(); process.exit(130); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let ok = true;
  const step = (title: string, out: string, good: boolean): void => {
    ok &&= good;
    process.stdout.write(`\n== ${title} ${good ? '[ok]' : '[FAILED]'}\n${out.trim()}\n`);
  };
  try {
    await n.start();
    const srv = n.t.spawn('bob', 'node', ['-e', `require('http').createServer((q, r) => r.end('hello from bob (100.64.1.10), you are ' + q.socket.remoteAddress + '\\n')).listen(${HTTP_PORT}, ${JSON.stringify(BOB)}, () => console.log('ready'))`]);
    let o = '';
    srv.stdout?.on('data', (d: Buffer) => { o += d.toString(); });
    await waitFor('bob\'s HTTP server', () => o.includes('ready'), 5000);
    const real = n.dns.lookup('dns', 'bob');
    step('DNS holds bob.example.net at the GNAT\'s global address', `dig @dns bob.example.net -> ${real}`, real === '192.0.2.2');
    const g = n.appExec('alice', 'getent', ['ahostsv4', 'bob.example.net']).stdout;
    step('alice (getent, the system resolver) gets a virtual address', g, /^198\.1[89]\./.test(g));
    const c = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://bob.example.net:${HTTP_PORT}/`], { allowFail: true });
    step(`alice: curl http://bob.example.net:8080/ (encrypted ${ge ? 'end to end to bob' : 'to the GNAT'}, no port forward)`, c.stdout || c.stderr, c.code === 0 && c.stdout.startsWith('hello from bob'));
    step('alice: gscip maps dump nrt', n.g.ok('alice', ['maps', 'dump', 'nrt', ...n.g.instanceArgs('alice')]), true);
    step('alice: gscip maps dump vat', n.g.ok('alice', ['maps', 'dump', 'vat', ...n.g.instanceArgs('alice')]), true);
    const nat = n.g.ok('gnat', ['maps', 'dump', 'nat', ...n.g.instanceArgs('gnat')]);
    step('GNAT: gscip maps dump nat (a session of origin inbound for alice only)', nat, /inbound/.test(nat));
    if (ge) {
      const pits = (h: string): string => n.g.ok(h, ['maps', 'dump', 'pit', ...n.g.instanceArgs(h)]);
      const pa = pits('alice');
      step('alice: gscip maps dump pit (G1:X <-> G2:Z, encrypt/decrypt)', pa, /encrypt/.test(pa) && /192\.0\.2\.2/.test(pa));
      const pg = pits('gnat');
      step('GNAT: gscip maps dump pit (the same tuple, passed: it relays the ciphertext)', pg, /pass/.test(pg) && !/crypt/.test(pg));
      const pb = pits('bob');
      step('bob: gscip maps dump pit (G1:X <-> P1:Y, encrypt/decrypt)', pb, /decrypt/.test(pb) && /100\.64\.1\.10/.test(pb));
    }
    const t0 = Date.now();
    const d = n.appExec('alice', 'curl', ['-sS', '--max-time', '10', `http://dave.example.net:${HTTP_PORT}/`], { allowFail: true });
    step(`alice: curl http://dave.example.net:8080/ (the ACT denies dave): fails in ${Date.now() - t0} ms`, d.stderr, d.code === 7);
  } catch (e) {
    ok = false;
    process.stderr.write(`demo-natf: ${(e as Error).stack ?? String(e)}\n`);
  } finally {
    clearTimeout(cap);
    await n.stop();
    n.cleanupSync();
  }
  process.stdout.write(`\n${ok ? 'every step did what it should' : 'a step FAILED'}\n`);
  return ok ? 0 : 1;
}

main().then((c) => process.exit(c), () => process.exit(1));
