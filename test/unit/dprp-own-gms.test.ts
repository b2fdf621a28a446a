/**
 * The agent's own GMS endpoints for DPRP (handler.ts gmsEndpointsOf): only the
 * exact IPv4 address and TCP port of each GMS URL; a name is never matched
 * (it is not resolved on the punt path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gmsEndpointsOf } from '../../controlplane/dprp/handler.js';

test('GMS URLs give their exact IPv4 endpoints (explicit port, https default 443); names and junk give none', () => {
  assert.deepEqual(gmsEndpointsOf(['https://192.0.2.1:7443', 'https://198.51.100.7', 'https://gms.example.net:7443', 'not a url', 'https://[2001:db8::1]:7443']),
    [{ addr: '192.0.2.1', port: 7443 }, { addr: '198.51.100.7', port: 443 }]);
  assert.deepEqual(gmsEndpointsOf([]), []);
});
