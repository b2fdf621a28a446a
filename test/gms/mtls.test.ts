/**
 * Enrollment and mutual TLS on loopback: an enrolled GE is served; no
 * certificate, a certificate from another CA, a revoked GE, a reused token,
 * an expired token and a wrong CA fingerprint are all refused. Secrets are
 * owner-only on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rawRequest, enroll, fetchGeState, GmsRefusedError } from '../../controlplane/gms/client.js';
import { GmsCa, createCsr, generateKeyPair } from '../../controlplane/gms/ca.js';
import { enrollGe, FIG6, startGms, tempDir } from './helpers.js';

test('GMS mutual TLS: who is served and who is refused', async (t) => {
  const gmsDir = tempDir('mtls');
  const agentDir = tempDir('mtls-agent');
  const rogueDir = tempDir('mtls-rogue');
  t.after(() => { gmsDir.remove(); agentDir.remove(); rogueDir.remove(); });
  const { server, admin } = await startGms(gmsDir.path);
  t.after(() => server.close());
  await admin.apply(FIG6, false);
  const base = new URL(server.url);

  await t.test('enrolled GE is served its info and keys', async () => {
    await enrollGe(server, admin, 'ges2-manager', agentDir.path);
    const d = await fetchGeState(agentDir.path);
    assert.equal(d.userId, 'ges2-manager');
    assert.equal(d.mode, 'OP');
    assert.deepEqual(d.groups, [1, 2]);
    assert.deepEqual(d.keys.map((k) => `${k.group}/${k.version}`), ['1/1', '2/1']);
    for (const k of d.keys) assert.equal(Buffer.from(k.key, 'base64').length, 32);
  });

  await t.test('private key, certificate and key cache are owner-only', () => {
    for (const f of ['identity/agent.key', 'identity/agent.crt']) assert.equal(statSync(join(agentDir.path, f)).mode & 0o777, 0o600, f);
    for (const d of ['identity']) assert.equal(statSync(join(agentDir.path, d)).mode & 0o777, 0o700, d);
    assert.equal(statSync(join(gmsDir.path, 'gms.sqlite')).mode & 0o777, 0o600);
    assert.equal(statSync(join(gmsDir.path, 'ca', 'ca.key')).mode & 0o777, 0o600);
    assert.equal(statSync(gmsDir.path).mode & 0o777, 0o700);
  });

  await t.test('no client certificate: 401 on GE and admin routes', async () => {
    const ca = server.ca.certPem;
    for (const p of ['/v1/ge/self', '/v1/ge/events', '/v1/admin/ges']) {
      const r = await rawRequest(base, p, { ca });
      assert.equal(r.status, 401, p);
      assert.equal(JSON.parse(r.body).error, 'no_cert');
    }
  });

  await t.test('certificate from another CA with the same user ID: 401', async () => {
    const rogue = await GmsCa.loadOrCreate(join(rogueDir.path, 'ca'));
    const keys = await generateKeyPair();
    const c = await rogue.issueClient(await createCsr('x', keys), 'ges2-manager', 'ge', 1);
    const { exportPrivateKeyPem } = await import('../../controlplane/gms/ca.js');
    const r = await rawRequest(base, '/v1/ge/self', { ca: server.ca.certPem, cert: c.certPem, key: await exportPrivateKeyPem(keys.privateKey) });
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).error, 'untrusted');
  });

  await t.test('a GE certificate cannot use admin routes', async () => {
    const id = { ca: server.ca.certPem, cert: readFileSync(join(agentDir.path, 'identity/agent.crt'), 'utf8'), key: readFileSync(join(agentDir.path, 'identity/agent.key'), 'utf8') };
    const r = await rawRequest(base, '/v1/admin/keys', id);
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).error, 'wrong_role');
  });

  await t.test('reused token refused; token for one GE gives that GE identity only', async () => {
    const tk = await admin.issueToken('ges1-staff', 600);
    const d1 = tempDir('mtls-a1');
    const d2 = tempDir('mtls-a2');
    try {
      await enroll({ gmsUrl: server.url, token: tk.token, caFingerprint: server.ca.fingerprint(), dataDir: d1.path });
      assert.equal((await fetchGeState(d1.path)).userId, 'ges1-staff');
      await assert.rejects(enroll({ gmsUrl: server.url, token: tk.token, caFingerprint: server.ca.fingerprint(), dataDir: d2.path }),
        (e: GmsRefusedError) => e.status === 403 && e.code === 'token_used');
    } finally { d1.remove(); d2.remove(); }
  });

  await t.test('expired token refused', async () => {
    const tk = await admin.issueToken('ges3-manager', 1);
    await new Promise((r) => setTimeout(r, 1100));
    const d = tempDir('mtls-exp');
    try {
      await assert.rejects(enroll({ gmsUrl: server.url, token: tk.token, caFingerprint: server.ca.fingerprint(), dataDir: d.path }),
        (e: GmsRefusedError) => e.status === 403 && e.code === 'token_expired');
    } finally { d.remove(); }
  });

  await t.test('unknown token and wrong CA fingerprint refused', async () => {
    const d = tempDir('mtls-unk');
    try {
      await assert.rejects(enroll({ gmsUrl: server.url, token: 'A'.repeat(43), caFingerprint: server.ca.fingerprint(), dataDir: d.path }),
        (e: GmsRefusedError) => e.code === 'token_unknown');
      const tk = await admin.issueToken('gea-server', 600);
      await assert.rejects(enroll({ gmsUrl: server.url, token: tk.token, caFingerprint: 'ab'.repeat(32), dataDir: d.path }), /ca-fingerprint: the GMS presented CA/);
      // the token was not burnt by the failed attempt: the right fingerprint works
      await enroll({ gmsUrl: server.url, token: tk.token, caFingerprint: server.ca.fingerprint(), dataDir: d.path });
    } finally { d.remove(); }
  });

  await t.test('expired certificate (right CA, known to the GMS) refused', async () => {
    const keys = await generateKeyPair();
    // valid 2 s: X.509 times have whole seconds, so notAfter (now + 2 s) may be cut by up to 1 s;
    // 1 s (the old figure) could leave a few ms of validity and make "served while valid" flaky
    const c = await server.ca.issueClient(await createCsr('x', keys), 'ges3-manager', 'ge', 2 / 86400);
    await server.store.addCert({ serial: c.serial, kind: 'ge', userId: 'ges3-manager', issuedAt: Date.now(), notAfter: c.notAfter });
    const { exportPrivateKeyPem } = await import('../../controlplane/gms/ca.js');
    const tls = { ca: server.ca.certPem, cert: c.certPem, key: await exportPrivateKeyPem(keys.privateKey) };
    assert.equal((await rawRequest(base, '/v1/ge/self', tls)).status, 200, 'served while valid');
    await new Promise((r) => setTimeout(r, Math.max(0, c.notAfter - Date.now()) + 1100));
    const r = await rawRequest(base, '/v1/ge/self', tls);
    assert.equal(r.status, 401);
    assert.match(JSON.parse(r.body).message, /CERT_HAS_EXPIRED/);
  });

  await t.test('certificate of the right CA that the GMS database does not know: 403', async () => {
    const keys = await generateKeyPair();
    const c = await server.ca.issueClient(await createCsr('x', keys), 'ges3-manager', 'ge', 1); // never recorded
    const { exportPrivateKeyPem } = await import('../../controlplane/gms/ca.js');
    const r = await rawRequest(base, '/v1/ge/self', { ca: server.ca.certPem, cert: c.certPem, key: await exportPrivateKeyPem(keys.privateKey) });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).error, 'unknown_cert');
  });

  await t.test('token for a GE that is not defined cannot be issued', async () => {
    await assert.rejects(admin.issueToken('nobody', 60), (e: Error & { status?: number; code?: string }) => e.status === 404 && e.code === 'unknown_ge');
  });

  await t.test('revoked GE refused', async () => {
    await admin.revoke('ges2-manager');
    await assert.rejects(fetchGeState(agentDir.path), (e: GmsRefusedError) => e.status === 403 && e.code === 'revoked');
  });
});
