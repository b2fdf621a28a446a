/** gscip doctor's verdict and rendering: warnings and skips never fail, each fix is listed once, JSON is the same data. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { allHold, failed, guard, ok, skip, warn } from '../../controlplane/doctor/checks.js';
import { doctorExitCode, doctorReport, formatDoctorReport, formatFailures } from '../../controlplane/doctor/report.js';

describe('doctor report', { timeout: 10_000 }, () => {
  test('exit code 0 only when nothing failed', () => {
    const good = [ok('a', 'A', 'fine'), warn('b', 'B', 'meh', 'do x'), skip('c', 'C', 'not asked')];
    assert.equal(allHold(good), true);
    assert.equal(doctorExitCode(doctorReport(good)), 0);
    const bad = [...good, failed('d', 'D', 'broken', 'do y')];
    assert.equal(doctorExitCode(doctorReport(bad)), 1);
    assert.deepEqual(doctorReport(bad).summary, { ok: 1, warn: 1, fail: 1, skip: 1 });
    assert.equal(doctorExitCode(doctorReport([])), 0);
  });

  test('the table lists every check, references each fix, and ends with the verdict', () => {
    const r = doctorReport([
      ok('host.btf', 'kernel BTF', '/sys/kernel/btf/vmlinux'),
      warn('host.time', 'time sync', 'not synchronised', 'run chronyd'),
      failed('instance.pins.gscip_pit', 'pin gscip_pit', 'value size 4, this build 64', 'gscip agent detach --unpin --instance x'),
    ]);
    const s = formatDoctorReport(r, 80);
    const lines = s.split('\n');
    assert.match(lines[0], /^STATUS\s+CHECK\s+DETAIL$/);
    assert.match(s, /^ok\s+kernel BTF\s+\/sys\/kernel\/btf\/vmlinux$/m);
    assert.match(s, /^WARN\s+time sync\s+not synchronised \[1\]$/m);
    assert.match(s, /^FAIL\s+pin gscip_pit\s+value size 4, this build 64 \[2\]$/m);
    assert.match(s, /\[1\] time sync: run chronyd/);
    assert.match(s, /\[2\] pin gscip_pit: gscip agent detach --unpin --instance x/);
    assert.equal(lines[lines.length - 1], '1 check failed (1 ok, 1 warning, 1 failed, 0 skipped)');
  });

  test('long details wrap under the detail column; no line passes the width except an unbreakable word', () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const s = formatDoctorReport(doctorReport([ok('x', 'X', long)]), 60);
    const rows = s.split('\n').slice(1, -2);
    assert.ok(rows.length > 2);
    for (const l of rows) assert.ok(l.length <= 60, `${l.length}: ${l}`);
    assert.equal(rows.map((l) => l.slice(15)).join(' '), long);
    assert.match(s.split('\n').pop()!, /^all checks hold/);
  });

  test('the refusal message lists each failure with its fix', () => {
    const m = formatFailures([ok('a', 'A', 'x'), failed('h', 'helper bpf_loop', 'not offered', 'newer kernel'), failed('b', 'bpffs', 'no bpf fs')]);
    assert.equal(m, '  - helper bpf_loop: not offered; fix: newer kernel\n  - bpffs: no bpf fs');
  });

  test('a check that throws becomes a failure naming it, not a crash', async () => {
    const r = await guard('host.x', 'x', () => { throw new Error('boom'); });
    assert.equal(r.length, 1);
    assert.equal(r[0].status, 'fail');
    assert.match(r[0].detail, /the check itself failed: boom/);
  });
});
