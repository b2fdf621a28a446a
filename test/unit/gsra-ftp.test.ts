/**
 * GSRA FTP passive mode, the pure parts (controlplane/gsra/ftp-reply.ts and
 * the router's announcement rule in admission.ts): 227/229 parsing, the
 * EN's length-keeping 227 rewrite (VIN longer, shorter, equal; no room;
 * checksum right, a corrupt segment never made valid), and the router
 * admitting a port outside an IN's `ports` only after that user's control
 * connection to that IN announced it (refused `not_announced` otherwise).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { find227, find229, parseFtpFrame, rewrite227, rewriteFtpFrame } from '../../controlplane/gsra/ftp-reply.js';
import { GsraAdmission } from '../../controlplane/gsra/admission.js';
import { parseFrame, tcpFrame } from '../lib/packets.js';

const frame = (payload: string, src = '198.19.128.1') => tcpFrame({ src, dst: '192.0.2.20', sport: 21, dport: 45000, seq: 7, flags: 0x18, payload: Buffer.from(payload) });

describe('FTP replies: parse and the EN\'s rewrite', () => {
  test('227 and 229 numbers', () => {
    assert.deepEqual(find227('227 Entering Passive Mode (100,64,1,10,195,80).'), { start: 27, end: 45, addr: '100.64.1.10', port: 195 * 256 + 80 });
    assert.equal(find227('227 Entering Passive Mode (300,64,1,10,195,80)'), null);
    assert.equal(find227('227 nothing here'), null);
    assert.equal(find229('229 Entering Extended Passive Mode (|||50000|)'), 50000);
    assert.equal(find229('229 Entering Extended Passive Mode (!!!2121!)'), 2121);
    assert.equal(find229('229 (|||0|)'), null);
    const f = parseFtpFrame(frame('229 Entering Extended Passive Mode (|||50000|)\r\n'))!;
    assert.equal(f.code, 229);
    assert.equal(f.port, 50000);
    assert.equal(parseFtpFrame(frame('226 Transfer complete.\r\n')), null);
  });

  test('the rewrite keeps the length: a longer VIN takes room from the text, a shorter one pads it', () => {
    const p = Buffer.from('227 Entering Passive Mode (100,64,1,10,195,80).\r\n');
    const longer = rewrite227(p, '198.19.128.1');
    assert.equal(longer.kind, 'rewritten');
    const l = (longer as { payload: Buffer }).payload;
    assert.equal(l.length, p.length);
    assert.equal(l.toString(), '227 Entering Passive Mode(198,19,128,1,195,80).\r\n');
    assert.deepEqual(find227(l.toString().trimEnd()), { start: 26, end: 45, addr: '198.19.128.1', port: 195 * 256 + 80 });
    const shorter = rewrite227(Buffer.from('227 Entering Passive Mode (100,64,100,100,195,80).\r\n'), '198.19.1.1');
    const s = (shorter as { payload: Buffer }).payload.toString();
    assert.equal(s, '227 Entering Passive Mode     (198,19,1,1,195,80).\r\n');
    assert.equal(s.length, '227 Entering Passive Mode (100,64,100,100,195,80).\r\n'.length);
    assert.equal(rewrite227(Buffer.from('227 (198,19,128,1,1,2)\r\n'), '198.19.128.1').kind, 'same');
    assert.deepEqual(rewrite227(Buffer.from('227 (1,1,1,1,195,80)\r\n'), '198.19.128.1'), { kind: 'passed', why: 'no_room' });
    assert.deepEqual(rewrite227(Buffer.from('227 Entering Passive Mode\r\n'), '198.19.128.1'), { kind: 'passed', why: 'no_numbers' });
    // what follows the first line is kept byte for byte
    const two = rewrite227(Buffer.from('227 Entering Passive Mode (100,64,1,10,1,2)\r\n150 x\r\n'), '198.19.128.10');
    assert.match((two as { payload: Buffer }).payload.toString(), /\(198,19,128,10,1,2\)\r\n150 x\r\n$/);
  });

  test('the frame: address rewritten, TCP checksum right, length unchanged; a corrupt segment passes as it came', () => {
    const f = frame('227 Entering Passive Mode (100,64,1,10,195,80).\r\n');
    const out = rewriteFtpFrame(f, '198.19.128.1');
    assert.equal(out.kind, 'rewritten');
    const g = (out as { frame: Buffer }).frame;
    assert.equal(g.length, f.length);
    const p = parseFrame(g);
    assert.ok(p.l4?.checksumOk, 'TCP checksum');
    assert.ok(p.ip?.checksumOk);
    assert.match(p.l4!.payload.toString(), /\(198,19,128,1,195,80\)/);
    const bad = Buffer.from(f);
    bad[bad.length - 5] ^= 1;
    assert.deepEqual(rewriteFtpFrame(bad, '198.19.128.1'), { kind: 'passed', why: 'bad_checksum' });
  });
});

describe('FTP data ports at the router: only the announced ones', () => {
  const key = Buffer.alloc(32, 1);
  const setup = (): GsraAdmission => {
    const a = new GsraAdmission({ portLo: 40000, portHi: 40099, maxEntries: 64, leaseMs: 10_000, idleMs: 300_000 }, 60_000);
    a.setServers([{ name: 'ftp.example.net', address: '100.64.1.10', outsideAccess: 'allow', groups: [1], ports: [21] }, { name: 'any.example.net', address: '100.64.1.11', outsideAccess: 'allow', groups: [1] }]);
    a.setUsers([{ userId: 'alice', groups: [1], key }, { userId: 'bob', groups: [1], key }]);
    return a;
  };
  const control = (a: GsraAdmission, user: string, s: number): void => {
    const r = a.authenticate(user, 1, 'ftp.example.net', 6, 21, 0);
    assert.ok(r.ok);
    const m = a.map(user, r.value.t, 6, { addr: '192.0.2.20', port: s }, 21, { addr: '192.0.2.20', port: 7253 }, 0);
    assert.ok(m.ok);
  };

  test('a port outside `ports` is refused not_announced; announced on the user\'s control connection it is admitted, until it lapses', () => {
    const a = setup();
    control(a, 'alice', 45000);
    assert.deepEqual(a.authenticate('alice', 1, 'ftp.example.net', 6, 50000, 1), { ok: false, reason: 'not_announced' });
    const m = a.announce({ inside: { addr: '100.64.1.10', port: 21 }, en: { addr: '192.0.2.20', port: 45000 } }, 50000, 2);
    assert.equal(m?.userId, 'alice');
    assert.ok(a.authenticate('alice', 1, 'ftp.example.net', 6, 50000, 3).ok, 'announced: admitted');
    assert.deepEqual(a.announcements(3), [{ userId: 'alice', pin: '100.64.1.10', port: 50000, expiresInMs: 59_999 }], 'shown in the status');
    assert.deepEqual(a.authenticate('alice', 1, 'ftp.example.net', 6, 50001, 3), { ok: false, reason: 'not_announced' }, 'another port still refused');
    assert.deepEqual(a.authenticate('bob', 1, 'ftp.example.net', 6, 50000, 3), { ok: false, reason: 'not_announced' }, 'another user: refused');
    assert.deepEqual(a.authenticate('alice', 1, 'ftp.example.net', 17, 50000, 3), { ok: false, reason: 'not_announced' }, 'UDP: refused');
    assert.deepEqual(a.authenticate('alice', 1, 'ftp.example.net', 6, 50000, 60_003), { ok: false, reason: 'not_announced' }, 'lapsed');
    assert.ok(a.authenticate('alice', 1, 'ftp.example.net', 6, 21, 3).ok, 'a listed port needs no announcement');
    assert.ok(a.authenticate('alice', 1, 'any.example.net', 6, 50001, 3).ok, 'an IN without ports: every port, as before');
  });

  test('a reply on no live mapping announces nothing', () => {
    const a = setup();
    assert.equal(a.announce({ inside: { addr: '100.64.1.10', port: 21 }, en: { addr: '192.0.2.20', port: 45000 } }, 50000, 0), null);
    control(a, 'alice', 45000);
    assert.equal(a.announce({ inside: { addr: '100.64.1.10', port: 21 }, en: { addr: '192.0.2.21', port: 45000 } }, 50000, 0), null, 'another EN end');
    assert.deepEqual(a.authenticate('alice', 1, 'ftp.example.net', 6, 50000, 1), { ok: false, reason: 'not_announced' });
  });
});
