/**
 * The applications of the NAT-f namespace tests, as `node -e` scripts: bob's
 * HTTP service, and a TCP sink and source for a transfer the other way.
 */

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
