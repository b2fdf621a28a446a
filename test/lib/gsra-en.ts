/**
 * The EN's side of GSRA as a script for a test namespace (no agent on the
 * EN): controlplane/gsra/en-session.ts over UDP 7253 to the router, then the
 * application's flow to GGR:t from port s (what the EN's VAT rewrite of
 * VIN:d does once NAT-f's VAT lands). Jobs: tcp (send a file), udp (one
 * echo), stream (paced TCP until the router cuts it, then a new admission),
 * refuse (n admissions and connects, outcomes counted). Prints one JSON line.
 */
import { resolve } from 'node:path';

const DIST = resolve(__dirname, '../..');

/** The EN's side in its namespace: admit(name, proto, s, d) -> {state, failure, t}; then a transfer, an echo, or refused attempts. */
export function enScript(keyHex: string, job: Record<string, unknown>, a: { gen: string; ggr: string; behindNat?: boolean }): string {
  const GEN = a.gen, GGR = a.ggr, BEHIND = a.behindNat === true;
  return `
const { EnSession } = require(${JSON.stringify(`${DIST}/controlplane/gsra/en-session.js`)});
const dgram = require('dgram'), net = require('net'), fs = require('fs');
const key = Buffer.from(${JSON.stringify(keyHex)}, 'hex');
const job = ${JSON.stringify(job)};
const sock = dgram.createSocket('udp4');
let cur = null;
sock.on('message', (m) => { if (cur) cur.onMsg(m); });
function admit(name, proto, s, d) {
  return new Promise((res) => {
    const sess = new EnSession({ userId: 'alice', key, group: 1, name, vin: '198.18.0.1', ggr: ${JSON.stringify(GGR)}, proto, local: { addr: ${JSON.stringify(GEN)}, port: s }, dport: d, behindNat: ${BEHIND} });
    let timer = null;
    const go = (out) => {
      clearTimeout(timer);
      if (!out) { cur = null; return res({ state: sess.state, failure: sess.failure, t: sess.t, seen: sess.vat ? sess.vat.seenAs : null }); }
      if (out.fromPort) { // BIND: from the flow's own port s
        const b = dgram.createSocket('udp4');
        b.on('message', (m) => { b.close(); if (cur) cur.onMsg(m); });
        b.bind(out.fromPort, () => b.send(out.msg, out.to.port, out.to.addr));
        setTimeout(() => { try { b.close(); } catch {} }, out.waitMs).unref();
      } else sock.send(out.msg, out.to.port, out.to.addr);
      timer = setTimeout(() => go(sess.onTimer(Date.now())), out.waitMs);
    };
    if (process.env.GSRA_EN_DEBUG) console.error('admit', name, proto, s, d);
    cur = { onMsg: (m) => { if (process.env.GSRA_EN_DEBUG) console.error('reply code', m[1], 'state', sess.state); const n = sess.onReply(m, Date.now()); if (n || sess.state === 'done' || sess.state === 'failed') go(n); } };
    go(sess.start(Date.now()));
  });
}
function connectOnce(port, lport) {
  return new Promise((res) => {
    const c = net.connect({ host: ${JSON.stringify(GGR)}, port, localPort: lport });
    const t = setTimeout(() => { c.destroy(); res('TIMEOUT'); }, 3000);
    c.on('connect', () => { clearTimeout(t); c.destroy(); res('CONNECTED'); });
    c.on('error', (e) => { clearTimeout(t); res(e.code); });
  });
}
sock.bind(0, async () => {
  const out = {};
  if (job.kind === 'tcp') {
    const a = await admit(job.name, 6, job.s, job.d);
    out.admit = a;
    if (a.state === 'done') {
      await new Promise((res) => {
        const c = net.connect({ host: ${JSON.stringify(GGR)}, port: a.t, localPort: job.s });
        c.on('connect', () => fs.createReadStream(job.file).pipe(c));
        c.on('close', () => res());
        c.on('error', (e) => { out.error = e.message; res(); });
      });
    }
  } else if (job.kind === 'stream') {
    const a = await admit(job.name, 6, job.s, job.d);
    out.admit = a;
    if (a.state === 'done') {
      await new Promise((res) => {
        const c = net.connect({ host: ${JSON.stringify(GGR)}, port: a.t, localPort: job.s });
        const chunk = Buffer.alloc(16384, 0x61);
        let timer = null, sent = 0;
        const stop = (why) => { clearInterval(timer); out.end = why; out.endAt = Date.now(); out.sent = sent; res(); };
        c.on('connect', () => { timer = setInterval(() => { if (c.write(chunk)) sent += chunk.length; }, 20); });
        c.on('error', (e) => stop(e.code));
        c.on('close', () => stop(out.end || 'close'));
        setTimeout(() => { c.destroy(); stop('still_open'); }, job.maxMs);
      });
      out.after = await admit(job.name, 6, job.s + 1, job.d);
    }
  } else if (job.kind === 'latency') {
    // first connects: through GSRA (admission, then connect to GGR:t) or plain (job.direct: connect to it)
    out.ms = [];
    for (let i = 0; i < job.n; i++) {
      const t0 = process.hrtime.bigint();
      let host = job.direct, port = job.d;
      if (!job.direct) {
        const a = await admit(job.name, 6, job.s + i, job.d);
        if (a.state !== 'done') { out.failed = (out.failed || 0) + 1; continue; }
        host = ${JSON.stringify(GGR)}; port = a.t;
      }
      const ok = await new Promise((res) => {
        const c = net.connect({ host, port, localPort: job.s + i });
        c.on('connect', () => { c.destroy(); res(true); });
        c.on('error', () => res(false));
      });
      if (ok) out.ms.push(Number(process.hrtime.bigint() - t0) / 1e6); else out.failed = (out.failed || 0) + 1;
    }
  } else if (job.kind === 'bulk') {
    let host = job.direct, port = job.d;
    if (!job.direct) { const a = await admit(job.name, 6, job.s, job.d); out.admit = a; host = ${JSON.stringify(GGR)}; port = a.t; }
    const chunk = Buffer.alloc(1 << 16, 0x5a);
    const t0 = process.hrtime.bigint();
    await new Promise((res) => {
      const c = net.connect({ host, port, localPort: job.s });
      let left = job.bytes;
      const pump = () => { while (left > 0) { left -= chunk.length; if (!c.write(chunk)) { c.once('drain', pump); return; } } c.end(); };
      c.on('connect', pump);
      c.on('close', () => res());
      c.on('error', (e) => { out.error = e.message; res(); });
    });
    out.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    out.gbps = (job.bytes * 8) / out.seconds / 1e9;
  } else if (job.kind === 'udp') {
    const a = await admit(job.name, 17, job.s, job.d);
    out.admit = a;
    if (a.state === 'done') {
      const u = dgram.createSocket('udp4');
      await new Promise((r) => u.bind(job.s, ${JSON.stringify(GEN)}, r));
      out.echo = await new Promise((res) => {
        const t = setTimeout(() => res('TIMEOUT'), 3000);
        u.on('message', (m, rinfo) => { clearTimeout(t); res(m.toString() + ' from ' + rinfo.address + ':' + rinfo.port); });
        u.send('ping through gsra', a.t, ${JSON.stringify(GGR)});
      });
      u.close();
    }
  } else {
    const reasons = {}; const connects = {};
    const t0 = Date.now();
    for (let i = 0; i < job.n; i++) {
      const a = await admit(job.name, 6, 30000 + i, job.d);
      const k = a.state === 'failed' ? a.failure : a.state;
      reasons[k] = (reasons[k] || 0) + 1;
      // the application's flow anyway (as if it ignored the refusal): to a port t the router never gave
      const c = await connectOnce(40100 + (i % 800), 30000 + i);
      connects[c] = (connects[c] || 0) + 1;
    }
    out.reasons = reasons; out.connects = connects; out.ms = Date.now() - t0;
  }
  console.log(JSON.stringify(out));
  process.exit(0);
});
setTimeout(() => { console.log(JSON.stringify({ error: 'script timeout' })); process.exit(3); }, job.scriptMs || 100000).unref();`
}
