/**
 * The applications of the NAT-f namespace tests, as `node -e` scripts: bob's
 * HTTP service, and a TCP sink and source for a transfer the other way; and
 * the data they carry.
 */
import { randomBytes } from 'node:crypto';

/** `bytes` of random data with `marker` 64 times in the middle (a capture that shows it saw plaintext). */
export function markedData(bytes: number, marker: string): Buffer {
  return Buffer.concat([randomBytes(bytes / 2), Buffer.from(marker.repeat(64)), randomBytes(bytes / 2 - marker.length * 64)]);
}

/** bob's service on addr:port: GET /blob serves the file; anything else answers with the peer address bob sees. Exits after lifeMs. */
export const bobHttpServer = (file: string, addr: string, port: number, lifeMs: number): string => `
const http = require('http'), fs = require('fs');
const srv = http.createServer((q, r) => {
  if (q.url === '/blob') { const b = fs.readFileSync(${JSON.stringify(file)}); r.writeHead(200, { 'content-length': b.length }); r.end(b); return; }
  r.writeHead(200, { 'content-type': 'text/plain' }); r.end('hello from bob, you are ' + q.socket.remoteAddress + '\\n');
});
srv.keepAliveTimeout = 100;
srv.listen(${port}, ${JSON.stringify(addr)}, () => console.log('ready'));
setTimeout(() => process.exit(3), ${lifeMs}).unref();`;

/** A TCP sink on addr:port: writes what it gets to `out`, prints the peer it sees, exits at the end of the stream. */
export const tcpSink = (out: string, addr: string, port: number): string => `
const net = require('net'), fs = require('fs');
const out = fs.createWriteStream(${JSON.stringify(out)});
const srv = net.createServer((c) => { console.log('peer ' + c.remoteAddress + ':' + c.remotePort); c.pipe(out); c.on('error', () => {}); c.on('end', () => out.end(() => process.exit(0))); });
srv.listen(${port}, ${JSON.stringify(addr)}, () => console.log('ready'));
setTimeout(() => process.exit(3), 90000).unref();`;

/** A TCP source: sends the file `inp` to host:port from localPort, exits when the connection closes (2 on an error). */
export const tcpSource = (inp: string, host: string, port: number, localPort: number): string => `
const net = require('net'), fs = require('fs');
const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port}, localPort: ${localPort} });
s.on('connect', () => fs.createReadStream(${JSON.stringify(inp)}).pipe(s));
s.on('close', () => process.exit(0));
s.on('error', (e) => { console.error(e.message); process.exit(2); });
setTimeout(() => process.exit(3), 90000).unref();`;

/** A UDP echo on addr:port: answers each datagram with 'echo:<sender address>:' before it. Exits after lifeMs. */
export const udpEcho = (addr: string, port: number, lifeMs: number): string => `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => d.send(Buffer.concat([Buffer.from('echo:' + r.address + ':'), m]), r.port, r.address));
d.bind(${port}, ${JSON.stringify(addr)}, () => console.log('ready'));
setTimeout(() => process.exit(3), ${lifeMs}).unref();`;

/** Three datagrams '<text>-i' to name:port on a connected socket (the system resolver); prints each reply with the address it came from. */
export const udpByName = (name: string, port: number, text: string): string => `
const d = require('dgram').createSocket('udp4'); const got = [];
d.on('message', (m, r) => { got.push(r.address + ' ' + m.toString()); if (got.length === 3) { console.log(JSON.stringify(got)); process.exit(0); } });
require('dns').lookup(${JSON.stringify(name)}, { family: 4 }, (e, a) => { if (e) { console.log('lookup ' + e.code); process.exit(1); }
  d.connect(${port}, a, () => { for (let i = 0; i < 3; i++) setTimeout(() => d.send(${JSON.stringify(text)} + '-' + i), i * 50); }); });
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 8000).unref();`;
