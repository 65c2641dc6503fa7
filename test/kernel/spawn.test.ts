import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePlan, resolveFd } from '../../kernel/spawn/chain.js';
import { SpawnPlan } from '../../kernel/spawn/spawn-plan.js';
import { CLONE } from '../../kernel/sys/flags.js';
import { SpawnError } from '../../kernel/spawn/spawn-handle.js';
import { spawn } from '../../kernel/spawn/spawn.js';
import { C } from '../../kernel/sys/libc.js';
import { openPipe } from '../../kernel/io/fd.js';
import { spawnStress } from '../../bench/spawn-stress.js';
import { ROOTFS } from '../fixtures/bundle.js';

function capture(): { fd: number; read: () => string; file: string } {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-spawn-')), 'out');
  const fd = fs.openSync(file, 'w+');
  return { fd, file, read: () => fs.readFileSync(file, 'utf8') };
}

describe('spawn engine', () => {
  it('resolves per-spawn fds: free slots skip kept fds, close_range gaps cover everything else', () => {
    const fds = { report: 5, gate: 3, stopR: 8, stopW: 9, keep: [20], stdio: [0, 1, 2] };
    expect(resolveFd({ free: 0 }, fds, ['x'])).toBe(4);
    expect(resolveFd({ free: 1 }, fds, ['x'])).toBe(6);
    expect(resolveFd({ free: 3 }, fds, ['x'])).toBe(10);
    expect(resolveFd({ keep: 'x' }, fds, ['x'])).toBe(20);
    // kept, sorted: 3 5 8 9 20 → gaps [3,2]=none, [4,4], [6,7], [none], [10,19], [21,~0]
    const gaps = [0, 1, 2, 3, 4, 5].map((g) => [resolveFd({ gap: g, hi: false }, fds, ['x']), resolveFd({ gap: g, hi: true }, fds, ['x'])]);
    expect(gaps).toEqual([[0xffffffff, 0xffffffff], [4, 4], [6, 7], [0xffffffff, 0xffffffff], [10, 19], [21, 0xffffffff]]);
  });

  it('with preserved fds, free slots and gaps start above 3..3+N-1', () => {
    const fds = { report: 7, gate: 6, stopR: 8, stopW: 9, keep: [20, 21], stdio: [0, 1, 2], preserved: 2 };
    expect(resolveFd({ free: 0 }, fds, ['a', 'b'])).toBe(5);
    expect(resolveFd({ free: 1 }, fds, ['a', 'b'])).toBe(10);
    expect(resolveFd({ gap: 0, hi: false }, fds, ['a', 'b'])).toBe(5);
    expect(resolveFd({ gap: 0, hi: true }, fds, ['a', 'b'])).toBe(5);
  });

  it('passes preserved fds through as 3, 4 in the given order, and nothing else', async () => {
    const out = capture();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-preserve-'));
    fs.writeFileSync(path.join(dir, 'a'), 'A\n');
    fs.writeFileSync(path.join(dir, 'b'), 'B\n');
    const a = fs.openSync(path.join(dir, 'a'), 'r');
    const b = fs.openSync(path.join(dir, 'b'), 'r');
    const p = new SpawnPlan().preserveFds(2);
    p.exec('/bin/sh', ['sh', '-c', 'cat <&3; cat <&4; ls /proc/self/fd | wc -l'], ['PATH=/bin:/usr/bin']);
    const c = compilePlan(p);
    // Swapped on purpose: the child's 3 is b, its 4 is a, whatever numbers they had here.
    const h = spawn(c, { stdio: [0, out.fd, out.fd], keep: { 'preserve:0': b, 'preserve:1': a } });
    c.free();
    fs.closeSync(out.fd);
    await h.started;
    expect(await h.exited).toEqual({ code: 0, signal: null });
    fs.closeSync(a);
    fs.closeSync(b);
    fs.rmSync(dir, { recursive: true });
    expect(out.read().trim().split('\n')).toEqual(['B', 'A', '6']); // 0-4 and the directory ls reads
  });

  it('a created child may wait at its start gate longer than the setup timeout', async () => {
    const p = new SpawnPlan();
    p.gate('start');
    p.exec('/bin/true', ['true'], []);
    const c = compilePlan(p);
    const h = spawn(c, { timeoutMs: 200, gates: { start: () => new Promise((r) => setTimeout(r, 600)) } });
    c.free();
    await h.started;
    expect(await h.exited).toEqual({ code: 0, signal: null });
  });

  it('runs a chain in new namespaces, passes gates in order and reports exec', async () => {
    const out = capture();
    const p = new SpawnPlan();
    p.gate('setup');
    p.call('sethostname', [Buffer.from('chain'), 5], { label: 'sethostname("chain")' });
    p.gate('start');
    p.exec('/bin/sh', ['sh', '-c', 'echo "$$ $(hostname)"; ls /proc/self/fd | wc -l'], ['PATH=/bin:/usr/bin']);
    const c = compilePlan(p);
    const order: string[] = [];
    const h = spawn(c, { namespaces: CLONE.NEWUTS | CLONE.NEWPID, stdio: [0, out.fd, out.fd], gates: { setup: () => void order.push('setup'), start: () => void order.push('start') } });
    c.free();
    fs.closeSync(out.fd);
    await h.started;
    expect(await h.exited).toEqual({ code: 0, signal: null });
    expect(order).toEqual(['setup', 'start']);
    const [line, nfds] = out.read().trim().split('\n');
    expect(line).toBe('1 chain');
    expect(Number(nfds)).toBe(4); // 0, 1, 2 and the directory ls reads
  });

  it('a failing step names the step, its arguments and errno, and the child is killed before exec', async () => {
    const p = new SpawnPlan();
    p.call('chdir', ['/does/not/exist'], { label: 'chdir("/does/not/exist")', field: 'process.cwd' });
    p.exec('/bin/true', ['true'], []);
    const c = compilePlan(p);
    const h = spawn(c);
    c.free();
    const err = await h.started.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect((err as SpawnError).message).toBe('process.cwd: chdir("/does/not/exist") failed: ENOENT (No such file or directory)');
    expect((err as SpawnError).code).toBe('ENOENT');
    expect(await h.exited).toMatchObject({ signal: 9 });
  });

  it('a failed execve is reported with errno and exit 127', async () => {
    const p = new SpawnPlan();
    p.exec('/no/such/binary', ['x'], []);
    const c = compilePlan(p);
    const h = spawn(c);
    c.free();
    await expect(h.started).rejects.toThrow('execve("/no/such/binary") failed: ENOENT');
    expect(await h.exited).toEqual({ code: 127, signal: null });
  });

  it('successful steps send nothing; a tolerated failure and a failure deep in a long plan are each named exactly', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-frames-'));
    const p = new SpawnPlan();
    for (let i = 0; i < 200; i++) p.call('getppid', [], { label: `getppid #${i}` });
    p.call('mkdir', [dir, 0o755], { check: 'report', tolerate: [17], label: 'mkdir(existing dir)' });
    p.gate('middle');
    for (let i = 0; i < 100; i++) p.call('getppid', [], { label: `getppid #${200 + i}` });
    p.call('mkdir', [path.join(dir, 'no/such/parent'), 0o755], { label: 'mkdir(under a missing parent)', field: 'mounts[9]' });
    p.exec('/bin/true', ['true'], []);
    const c = compilePlan(p);
    const h = spawn(c, { gates: { middle: () => {} } });
    c.free();
    const err = await h.started.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect(err).toMatchObject({ label: 'mkdir(under a missing parent)', code: 'ENOENT', field: 'mounts[9]' });
    expect((err as Error).message).toBe('mounts[9]: mkdir(under a missing parent) failed: ENOENT (No such file or directory)');
    expect(h.tolerated.map((t) => [t.label, t.errno])).toEqual([['mkdir(existing dir)', 17]]);
    expect(h.timings.gates.middle).toBeGreaterThan(0);
    expect(await h.exited).toMatchObject({ signal: 9 });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a child whose parent detached at its gate still execs when released (no SIGPIPE from the exec marker)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-detached-'));
    const out = path.join(dir, 'out');
    const [r, w] = openPipe();
    const p = new SpawnPlan();
    p.gate('start', p.keep('release'));
    p.exec('/bin/sh', ['sh', '-c', `echo ran > ${out}`], []);
    const c = compilePlan(p);
    const h = spawn(c, { keep: { release: r } });
    c.free();
    await h.arrived('start');
    const pid = h.pid;
    h.detach(); // closes the report pipe: the marker's write fails with EPIPE
    fs.writeSync(w, Buffer.from([0]));
    fs.closeSync(r);
    fs.closeSync(w);
    const info = Buffer.alloc(128);
    expect(C.waitid(1 /* P_PID */, pid, info, 4 /* WEXITED */)).toBe(0);
    expect({ code: info.readInt32LE(8), status: info.readInt32LE(24) }).toEqual({ code: 1 /* CLD_EXITED */, status: 0 });
    expect(fs.readFileSync(out, 'utf8')).toBe('ran\n');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a throwing gate handler fails the spawn and kills the child', async () => {
    const p = new SpawnPlan();
    p.gate('setup');
    p.exec('/bin/true', ['true'], []);
    const c = compilePlan(p);
    const h = spawn(c, { gates: { setup: () => { throw new Error('cgroup placement failed'); } } });
    c.free();
    await expect(h.started).rejects.toThrow('gate(setup) failed: cgroup placement failed');
    expect(await h.exited).toMatchObject({ signal: 9 });
  });

  it('survives 200 container starts under a loaded event loop (bench/spawn-stress.ts runs 2,000)', async () => {
    const r = await spawnStress(200, ROOTFS);
    expect(r.failures).toEqual([]);
    expect({ ok: r.ok, crashes: r.crashes, hangs: r.hangs, zombies: r.zombies }).toEqual({ ok: 200, crashes: 0, hangs: 0, zombies: 0 });
    expect(r.fdsAfter).toBeLessThanOrEqual(r.fdsBefore);
  }, 120_000);
});
