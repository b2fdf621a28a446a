/**
 * `gscip doctor --json` against a real agent in a test namespace:
 *  - a running, attached agent of this build: every instance check holds, exit 0;
 *  - its ingress filter removed by hand (tc filter del): the interface's check fails, naming it;
 *  - the agent stopped: the agent check fails, exit 1;
 *  - a pinned map replaced by one of another value size (an older build's pin):
 *    that pin fails, named, with the command that clears it;
 *  - an object calling a helper TC programs may not use and a kfunc no kernel has:
 *    the agent refuses to start, naming both with their fixes, and doctor --host-only fails on them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, sh } from '../lib/netns.js';
import { bpfUnavailable, defaultObjectPath } from '../lib/bpf-harness.js';
import { GscipRunner } from '../lib/agent-process.js';
import type { Check } from '../../controlplane/doctor/checks.js';

const skip = bpfUnavailable();

interface Report { ok: boolean; summary: Record<string, number>; checks: Check[] }

function doctor(g: GscipRunner, extra: string[] = []): { code: number | null; r: Report } {
  const res = g.cli('a', ['doctor', '--json', ...g.instanceArgs(), '--bpf-object', defaultObjectPath(), ...extra]);
  let r: Report;
  try { r = JSON.parse(res.out) as Report; } catch { throw new Error(`doctor printed no JSON (exit ${res.code}): ${res.out}\n${res.err}`); }
  return { code: res.code, r };
}

function check(r: Report, id: string): Check {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id} in ${r.checks.map((x) => x.id).join(', ')}`);
  return c;
}

describe('gscip doctor against a real agent', { timeout: 120_000 }, () => {
  test('running+attached holds; hand-detached, stopped and stale-pinned fail by name', { skip: skip ?? false }, async (t) => {
    const topo = new Topology('dr');
    const g = new GscipRunner(topo, 'dr');
    t.after(() => { g.cleanup(); topo.cleanupSync(); });
    topo.addHost('a');
    topo.addHost('b');
    topo.link('a', 'eth0', 'b', 'eth0');
    topo.addr('a', 'eth0', '192.0.2.1/24');
    topo.addr('b', 'eth0', '192.0.2.2/24');
    const agent = await g.startAgent('a', ['--iface', 'eth0', '--metrics', 'none']);
    t.after(() => agent.stop('SIGKILL'));

    // 1. Running and attached, pins of this build: exit 0 (warnings such as an unsynchronised clock do not fail).
    let d = doctor(g);
    for (const id of ['host.btf', 'host.helpers', 'host.kfuncs', 'host.load', 'instance.agent', 'instance.attached.eth0', 'instance.pins', 'instance.punt']) {
      assert.equal(check(d.r, id).status, 'ok', `${id}: ${check(d.r, id).detail}`);
    }
    assert.match(check(d.r, 'instance.agent').detail, new RegExp(`running \\(pid ${agent.pid}`));
    assert.match(check(d.r, 'instance.attached.eth0').detail, /ingress id \d+, egress id \d+, programs of this build/);
    assert.equal(d.r.ok, true, JSON.stringify(d.r.checks.filter((c) => c.status === 'fail')));
    assert.equal(d.code, 0);
    // The interfaces default to the state file's, and --host-only skips the instance.
    assert.ok(!doctor(g, ['--host-only']).r.checks.some((c) => c.id.startsWith('instance.')));

    // 2. Ingress filter removed by hand: that interface fails, by name and direction; exit 1.
    topo.exec('a', 'tc', ['filter', 'del', 'dev', 'eth0', 'ingress', 'pref', '1', 'handle', '0x65c1', 'bpf']);
    d = doctor(g, ['--iface', 'eth0']);
    const att = check(d.r, 'instance.attached.eth0');
    assert.equal(att.status, 'fail');
    assert.match(att.detail, /^eth0: no GSCIP filter on ingress/);
    assert.doesNotMatch(att.detail, /egress/, 'egress is still attached and not blamed');
    assert.match(att.fix ?? '', /gscip agent run --instance dr/);
    assert.equal(check(d.r, 'instance.agent').status, 'ok');
    assert.equal(d.code, 1);

    // 3. Agent stopped: the agent check fails.
    await agent.stop('SIGTERM');
    d = doctor(g);
    const ag = check(d.r, 'instance.agent');
    assert.equal(ag.status, 'fail');
    assert.match(ag.detail, /no agent is running/);
    assert.match(ag.fix ?? '', /gscip agent run --instance dr/);
    assert.equal(check(d.r, 'instance.punt').status, 'skip');
    assert.equal(check(d.r, 'instance.pins').status, 'ok', 'pins of this build still match');
    assert.equal(d.code, 1);

    // 4. A stale pin: gscip_pit replaced by a map with another value size (as an older build would have left it).
    const pin = `${g.pinRoot}/dr/gscip_pit`;
    assert.ok(existsSync(pin));
    unlinkSync(pin);
    sh('bpftool', ['map', 'create', pin, 'type', 'hash', 'key', '4', 'value', '4', 'entries', '4', 'name', 'gscip_pit']);
    d = doctor(g);
    const p = check(d.r, 'instance.pin.gscip_pit');
    assert.equal(p.status, 'fail');
    assert.match(p.detail, new RegExp(`${pin} is stale`));
    assert.match(p.detail, /key size 4, this build 16; value size 4, this build \d+/);
    assert.match(p.fix ?? '', new RegExp(`^gscip agent detach --unpin --instance dr --pin-root ${g.pinRoot} --run-dir ${g.runDir}`));
    assert.equal(d.r.checks.filter((c) => c.id.startsWith('instance.pin.') && c.status === 'fail').length, 1, 'only the replaced pin is blamed');
    assert.ok(!d.r.checks.some((c) => c.id === 'instance.pins'), 'no "all pins match" row next to a stale one');
    assert.equal(d.code, 1);

    // The printed fix works: afterwards no pins are left to be stale.
    g.ok('a', ['agent', 'detach', '--unpin', ...g.instanceArgs()]);
    d = doctor(g);
    assert.equal(check(d.r, 'instance.pins').status, 'skip');
  });

  test('an object needing what the kernel lacks: the agent refuses, naming each; doctor fails on each', { skip: skip ?? false }, (t) => {
    const topo = new Topology('dq');
    const g = new GscipRunner(topo, 'dq');
    const dir = mkdtempSync(join(tmpdir(), 'gscip-doctor-'));
    t.after(() => { g.cleanup(); topo.cleanupSync(); rmSync(dir, { recursive: true, force: true }); });
    topo.addHost('a');
    // bpf_override_return (58) is a kprobe helper; the kfunc exists nowhere.
    writeFileSync(join(dir, 'bad.bpf.c'), [
      'typedef unsigned long long __u64;',
      '#define SEC(n) __attribute__((section(n), used))',
      'static long (*bpf_override_return)(void *regs, __u64 rc) = (void *)58;',
      'extern int bpf_gscip_no_such_kfunc(void) __attribute__((section(".ksyms")));',
      'SEC("tc") int gscip_bad(void *ctx) { bpf_override_return(ctx, 0); return bpf_gscip_no_such_kfunc(); }',
      'char LICENSE[] SEC("license") = "GPL";', ''].join('\n'));
    const obj = join(dir, 'bad.bpf.o');
    sh('clang', ['-g', '-O2', '-target', 'bpf', '-c', join(dir, 'bad.bpf.c'), '-o', obj]);

    const run = g.cli('a', ['agent', 'run', ...g.instanceArgs(), '--bpf-object', obj, '--iface', 'lo', '--metrics', 'none']);
    assert.equal(run.code, 1, run.err);
    assert.match(run.err, /this host lacks what the fast path .*bad\.bpf\.o needs/);
    assert.match(run.err, /- helper bpf_override_return: the programs call bpf_override_return \(id 58\) 1x .*; fix: /);
    assert.match(run.err, /- kfunc bpf_gscip_no_such_kfunc: .* no function of that name; fix: /);
    assert.doesNotMatch(run.err, /verifier log/);
    assert.equal(existsSync(`${g.runDir}/dq.lock`), false, 'refused before taking the instance lock');
    assert.equal(existsSync(`${g.pinRoot}/dq`), false, 'refused before pinning anything');

    const res = g.cli('a', ['doctor', '--host-only', '--json', ...g.instanceArgs(), '--bpf-object', obj]);
    assert.equal(res.code, 1);
    const r = JSON.parse(res.out) as Report;
    assert.equal(check(r, 'host.helper.bpf_override_return').status, 'fail');
    assert.equal(check(r, 'host.kfunc.bpf_gscip_no_such_kfunc').status, 'fail');
    assert.equal(check(r, 'host.load').status, 'fail');
    assert.match(check(r, 'host.load').detail, /bpf_gscip_no_such_kfunc/);
  });
});
