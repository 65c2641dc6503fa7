/**
 * Terminals and OCI hooks, through the CLI as separate processes: a terminal container's pty is made in its
 * own devpts (`tty` names /dev/pts/N there, `stty size` is consoleSize) and its master reaches a
 * --console-socket receiver or, in the foreground, the caller's tty; hooks run in order, in the right
 * namespaces, with the state on stdin, and their failure rules hold.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acceptUnix, listenUnix, recvFds } from '../../kernel/index.js';
import { type OciSpecLike, REPO_ROOT, makeBundle } from '../fixtures/bundle.js';
import { waitReadable } from '../fixtures/wait.js';

const CLI = path.join(REPO_ROOT, 'bin/cordon.js');
const work = mkdtempSync(path.join(tmpdir(), 'cordon-tty-hooks-'));
const root = path.join(work, 'root');
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const cordon = (args: string[], stdio: 'pipe' | 'ignore' = 'pipe') =>
  spawnSync(process.execPath, [CLI, '--root', root, ...args], { env, encoding: 'utf8', stdio: ['ignore', stdio, stdio], timeout: 30_000 });
const bundles: Array<{ cleanup(): void }> = [];
const bundle = (edit: (s: OciSpecLike) => void) => {
  const b = makeBundle({ spec: edit });
  bundles.push(b);
  return b;
};

afterAll(() => {
  for (const id of ['tty-cs', 'tty-fg', 'hk-1', 'hk-2', 'hk-3']) cordon(['delete', '--force', id], 'ignore');
  for (const b of bundles) b.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('terminals', () => {
  it('--console-socket receives a working pty master made in the container (tty is /dev/pts/N, stty size is consoleSize)', async () => {
    const b = bundle((s) => {
      s.process.terminal = true;
      s.process.consoleSize = { height: 33, width: 101 };
      s.process.args = ['sh', '-c', 'tty; stty size; read line; echo "got $line"'];
    });
    const sockPath = path.join(work, 'console.sock');
    const lfd = listenUnix(sockPath);
    const create = spawnSync(process.execPath, [CLI, '--root', root, 'create', '--console-socket', sockPath, '-b', b.dir, 'tty-cs'], { env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    expect(create.status, create.stderr).toBe(0);
    const conn = acceptUnix(lfd);
    expect(conn).toBeGreaterThan(0);
    await waitReadable(conn, 5000);
    const { fds, data } = recvFds(conn, 1);
    expect(data.toString()).toBe('/dev/ptmx');
    expect(fds).toHaveLength(1);
    const master = fds[0];
    expect(cordon(['start', 'tty-cs'], 'ignore').status).toBe(0);
    const { writeSync, readSync, closeSync } = await import('node:fs');
    let out = '';
    const buf = Buffer.alloc(4096);
    const readUntil = async (text: string) => {
      for (let i = 0; i < 50 && !out.includes(text); i++) {
        await waitReadable(master, 5000);
        const n = readSync(master, buf, 0, buf.length, null);
        out += buf.toString('utf8', 0, n);
      }
    };
    // Typed only after the container printed its size: the tty echoes input, which must not land before `tty`'s line.
    await readUntil('33 101');
    writeSync(master, 'hello\n');
    await readUntil('got hello');
    const lines = out.split(/\r?\n/);
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(lines).toContain('33 101');
    expect(out).toContain('got hello');
    closeSync(master);
    closeSync(conn);
    closeSync(lfd);
    expect(cordon(['delete', '--force', 'tty-cs']).status).toBe(0);
  });

  it('create of a terminal container without --console-socket is refused (as runc) and leaves nothing', () => {
    const b = bundle((s) => {
      s.process.terminal = true;
    });
    const r = cordon(['create', '-b', b.dir, 'tty-none']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('cannot allocate a tty');
    expect(existsSync(path.join(root, 'tty-none'))).toBe(false);
  });

  it('a foreground run is wired to the caller\'s terminal (driven through script(1) as the tty)', () => {
    const b = bundle((s) => {
      s.process.terminal = true;
      s.process.consoleSize = { height: 20, width: 70 };
      s.process.args = ['sh', '-c', 'tty; stty size; exit 4'];
    });
    const cmd = `${process.execPath} ${CLI} --root ${root} run -b ${b.dir} tty-fg`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { env, encoding: 'utf8', timeout: 30_000 });
    // Two ptys in a row (the container's and script's) each turn \n into \r\n. script(1), finding its stdin at EOF,
    // types its EOF character (NUL in the raw mode cordon puts the tty in) at some moment; cordon passes it on
    // as a raw terminal must, and the container's tty echoes it as "^@" wherever it lands.
    const lines = r.stdout.replaceAll('^@', '').split(/\r*\n/).filter((l) => l && !l.startsWith('cordon: warning'));
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(lines).toContain('20 70');
    expect(r.status).toBe(4);
  });
});

describe('hooks', () => {
  const log = path.join(work, 'hooks.log');
  const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `read s; echo "${name} $(echo "$s" | sed -n 's/.*"status":"\\([a-z]*\\)".*/\\1/p')" >> ${log}`] });

  it('run in the spec\'s order with the state on stdin; createContainer sees the container\'s mount namespace, startContainer its rootfs', () => {
    const nsFile = path.join(work, 'cc-mnt');
    const b = bundle((s) => {
      s.process.args = ['sh', '-c', `echo process >> /dev/null`];
      s.hooks = {
        prestart: [hook('prestart')],
        createRuntime: [hook('createRuntime')],
        createContainer: [hook('createContainer'), { path: '/bin/sh', args: ['sh', '-c', `readlink /proc/self/ns/mnt > ${nsFile}`] }],
        // Resolved in the container: its /etc/passwd has the "app" user the host does not.
        startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'grep -q "^app:" /etc/passwd'] }],
        poststart: [hook('poststart')],
        poststop: [hook('poststop')],
      };
    });
    const r = cordon(['run', '-b', b.dir, 'hk-1']);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['prestart creating', 'createRuntime creating', 'createContainer creating', 'poststart running', 'poststop stopped']);
    expect(readFileSync(nsFile, 'utf8').trim()).not.toBe(readlinkSync('/proc/self/ns/mnt'));
    const events = cordon(['events', '--no-follow', '--format', 'json', '--filter', 'container=hk-1', '--filter', 'action=hook']).stdout.trim().split('\n').map((l) => JSON.parse(l) as { attributes: { point: string; ok: boolean } });
    expect(events.map((e) => `${e.attributes.point}:${e.attributes.ok}`)).toEqual(['prestart:true', 'createRuntime:true', 'createContainer:true', 'createContainer:true', 'startContainer:true', 'poststart:true', 'poststop:true']);
  });

  it('a failing createRuntime hook aborts the create, names the hook, and leaves nothing behind', () => {
    const b = bundle((s) => {
      s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'echo broken >&2; exit 3'] }] };
    });
    const r = cordon(['create', '-b', b.dir, 'hk-2']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('hooks.createRuntime[0]: hook /bin/sh exited with status 3: broken');
    expect(existsSync(path.join(root, 'hk-2'))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(b.dir);
  });

  it('a timed-out hook is killed and reported; a failing poststop hook only warns', () => {
    const slow = bundle((s) => {
      s.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '10'], timeout: 1 }] };
    });
    const t0 = Date.now();
    const r = cordon(['create', '-b', slow.dir, 'hk-3']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('hooks.createRuntime[0]: hook /bin/sleep timed out after 1 s');
    expect(Date.now() - t0).toBeLessThan(8000);
    const post = bundle((s) => {
      s.process.args = ['true'];
      s.hooks = { poststop: [{ path: '/bin/false' }] };
    });
    const ok = cordon(['run', '-b', post.dir, 'hk-3']);
    expect(ok.status).toBe(0);
    expect(ok.stderr).toContain('cordon: warning: hooks.poststop[0]: hook /bin/false exited with status 1');
  });
});
