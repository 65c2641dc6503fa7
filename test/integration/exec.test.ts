/**
 * exec into running containers, from inside: the new process is in every namespace of the container (its
 * /proc/self/ns links equal pid 1's), sees pid 1, is listed by `ps`, gets the container's seccomp profile,
 * its own user, cwd, env and capabilities, and its exit code comes back — through the CLI and the library.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Cordon } from '../../actors/cordon.js';
import { makeBundle, REPO_ROOT } from '../fixtures/bundle.js';

const CLI = path.join(REPO_ROOT, 'bin/cordon.js');
const root = mkdtempSync(path.join(tmpdir(), 'cordon-exec-'));
const bundle = makeBundle({
  spec: (s) => {
    s.process.args = ['sleep', '1000'];
    s.linux.namespaces = [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }];
    s.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] };
  },
});
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
// Output through pipes: a detached container or exec keeps the CLI's stdout open, so those run with stdio ignored.
const cordon = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { env, encoding: 'utf8', timeout: 30_000 });
const detached = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { env, stdio: 'ignore', timeout: 30_000 });

afterAll(() => {
  for (const id of ['ex1', 'ex2']) cordon('delete', '--force', id);
  rmSync(root, { recursive: true, force: true });
  bundle.cleanup();
});

describe('exec', () => {
  it('joins every namespace of the container, sees pid 1, gets its seccomp profile, and returns its exit code (CLI)', () => {
    expect(detached('run', '-d', '-b', bundle.dir, 'ex1').status).toBe(0);
    const r = cordon('exec', 'ex1', 'sh', '-c', [
      'for n in cgroup ipc mnt net pid uts; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] && echo "same $n" || echo "differs $n"; done',
      'echo "pid1=$(cat /proc/1/comm)"', 'echo "me=$$"', 'grep "^Seccomp:" /proc/self/status', 'mkdir /tmp/x 2>&1 | sed "s/.*: //"', 'exit 7',
    ].join('; '));
    expect(r.status, r.stderr).toBe(7);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 6)).toEqual(['same cgroup', 'same ipc', 'same mnt', 'same net', 'same pid', 'same uts']);
    expect(lines).toContain('pid1=sleep');
    expect(Number(lines.find((l) => l.startsWith('me='))?.slice(3))).toBeGreaterThan(1);
    expect(lines).toContain('Seccomp:\t2');
    expect(lines).toContain('Permission denied');
  });

  it('runs as the given user in the given cwd with extra env and capabilities; ps lists it with its host pid', () => {
    const r = cordon('exec', '-u', '1000:1000', '--cwd', '/tmp', '-e', 'FOO=bar', '--cap', 'CAP_SYS_ADMIN', 'ex1', 'sh', '-c', 'id -u; id -g; pwd; echo $FOO; grep ^CapBnd /proc/self/status');
    expect(r.status, r.stderr).toBe(0);
    const [uid, gid, cwd, foo, bnd] = r.stdout.trim().split('\n');
    expect([uid, gid, cwd, foo]).toEqual(['1000', '1000', '/tmp', 'bar']);
    expect(BigInt(`0x${bnd.split('\t')[1]}`) & (1n << 21n)).toBe(1n << 21n);
    const bg = detached('exec', '-d', '--pid-file', path.join(root, 'exec.pid'), 'ex1', 'sleep', '30');
    expect(bg.status).toBe(0);
    const pid = Number(execFileSync('cat', [path.join(root, 'exec.pid')]).toString());
    const ps = JSON.parse(cordon('ps', '--format', 'json', 'ex1').stdout) as number[];
    expect(ps).toContain(pid);
    const events = cordon('events', '--no-follow', '--format', 'json', '--filter', 'container=ex1', '--filter', 'action=exec-start').stdout.trim().split('\n').map((l) => JSON.parse(l) as { attributes: { pid: number } });
    expect(events.map((e) => e.attributes.pid)).toContain(pid);
    expect(cordon('exec', 'ex1', 'no-such-command').status).toBe(1);
  });

  it('library: container.exec has its own machine and exec-start / exec-exit events', async () => {
    const c = await Cordon.open({ root });
    try {
      const ctr = await c.create('ex2', { bundle: bundle.dir });
      await ctr.start();
      const seen: string[] = [];
      const sub = ctr.events$({}).subscribe((e) => seen.push(e.action));
      const x = await ctr.exec({ args: ['sh', '-c', 'exit 3'] });
      expect(x.pid).toBeGreaterThan(0);
      expect(await x.exited).toEqual({ exitCode: 3, signal: null });
      expect(x.actor.getSnapshot().value).toBe('exited');
      // exited resolves after exec-exit is in the log, whose appends reach events$ subscribers in this process at once.
      sub.unsubscribe();
      expect(seen).toEqual(['exec-start', 'exec-exit']);
      await expect(ctr.exec({ args: ['no-such-command'] })).rejects.toMatchObject({ code: 'ConfigInvalid', field: 'process.args[0]' });
      await ctr.destroy({ force: true });
    } finally {
      await c.close();
    }
  });
});
