/**
 * Prometheus endpoint (GET /metrics) and the scrape-time source that reads
 * the datapath counters and map occupancy.
 */
import { createServer, type Server } from 'node:http';
import { readStats } from '../maps/accessors.js';
import type { GscipMaps } from '../maps/gscip-maps.js';
import { registry, setDatapathMetricsSource, type DatapathMetricsSource } from '../metrics/metrics.js';

export { readStats } from '../maps/accessors.js';

/** Map occupancy is O(entries) to count (~0.4 s of CPU for a 1M-entry PIT): cache it for `minIntervalMs`. */
export function datapathSource(maps: GscipMaps, stashPackets: () => number, minIntervalMs = 30_000): DatapathMetricsSource {
  let at = 0;
  let cached: Array<{ map: string; entries: number; capacity: number }> = [];
  return {
    stats: () => readStats(maps),
    occupancy: () => {
      if (Date.now() - at >= minIntervalMs) {
        cached = [maps.pit, maps.xlat, maps.keys, maps.iface].map((m) => ({ map: m.name, entries: m.count(), capacity: m.maxEntries }));
        at = Date.now();
      }
      return cached;
    },
    stashPackets,
  };
}

export function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const host = s.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(s.slice(i + 1)) };
}

export async function startMetricsServer(listen: string, source: DatapathMetricsSource): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  setDatapathMetricsSource(source);
  const { host, port } = parseHostPort(listen);
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      }, (e: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics collection failed: ${e.message}\n`);
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`metrics: cannot listen on ${listen}: ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const url = typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/metrics` : listen;
  return {
    server, url,
    close: () => new Promise<void>((resolve) => { setDatapathMetricsSource(null); server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
