/**
 * `exec -t` and `--preserve-fds`, through the CLI as separate processes, as runc: an exec'd process gets a
 * pty made in the container (`tty` names /dev/pts/N there), handed to --console-socket or wired to the
 * caller's tty in the foreground; with --preserve-fds N the caller's fds 3..3+N-1 are the process's 3..,
 * and no other fd of the runtime reaches it (exec, and run/create the same way).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptUnix, listenUnix, recvFds } from '../../kernel/index.js';
import { REPO_ROOT, makeBundle } from '../fixtures/bundle.js';
import { waitReadable } from '../fixtures/wait.js';

const CLI = path.join(REPO_ROOT, 'bin/cordon.js');
const work = mkdtempSync(path.join(tmpdir(), 'cordon-exec-tty-'));
const root = path.join(work, 'root');
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const bundle = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
const cordon = (args: string[], stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe']) =>
  spawnSync(process.execPath, [CLI, '--root', root, ...args], { env, encoding: 'utf8', stdio, timeout: 30_000 });

beforeAll(() => {
  expect(cordon(['run', '-d', '-b', bundle.dir, 'xt'], ['ignore', 'ignore', 'ignore']).status).toBe(0);
});

afterAll(() => {
  cordon(['delete', '--force', 'xt']);
  bundle.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('exec -t', () => {
  it('--console-socket receives a working pty master made in the container; the exec exits with the process', async () => {
    const sockPath = path.join(work, 'console.sock');
    const lfd = listenUnix(sockPath);
    const child = spawn(process.execPath, [CLI, '--root', root, 'exec', '-t', '--console-socket', sockPath, 'xt', 'sh', '-c', 'tty; read line; echo "got $line"; exit 6'], { env, stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await waitReadable(lfd, 10_000);
    const conn = acceptUnix(lfd);
    await waitReadable(conn, 5000);
    const { fds, data } = recvFds(conn, 1);
    expect(data.toString()).toBe('/dev/ptmx');
    expect(fds).toHaveLength(1);
    const master = fds[0];
    let out = '';
    const buf = Buffer.alloc(4096);
    const readUntil = async (text: string) => {
      for (let i = 0; i < 50 && !out.includes(text); i++) {
        await waitReadable(master, 5000);
        out += buf.toString('utf8', 0, readSync(master, buf, 0, buf.length, null));
      }
    };
    await readUntil('\n'); // the tty line, before our input is echoed
    expect(out.split(/\r?\n/)[0]).toMatch(/^\/dev\/pts\/\d+$/);
    writeSync(master, 'hello\n');
    await readUntil('got hello');
    expect(out).toContain('got hello');
    expect(await exited).toBe(6);
    closeSync(master);
    closeSync(conn);
    closeSync(lfd);
  });

  it('in the foreground it is wired to the caller\'s terminal (script(1) as the tty), window size included', () => {
    const cmd = `stty rows 21 cols 77; ${process.execPath} ${CLI} --root ${root} exec -t xt sh -c 'tty; stty size; exit 5'`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { env, encoding: 'utf8', timeout: 30_000 });
    const lines = r.stdout.split(/\r*\n/).filter((l) => l);
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(lines).toContain('21 77');
    expect(r.status).toBe(5);
  });

  it('is refused when detached without a console socket, and a console socket without -t is refused', () => {
    const a = cordon(['exec', '-d', '-t', 'xt', 'true']);
    expect(a.status).toBe(1);
    expect(a.stderr).toContain('cannot allocate tty if cordon will detach without setting console socket');
    const b = cordon(['exec', '--console-socket', '/nonexistent', 'xt', 'true']);
    expect(b.status).toBe(1);
    expect(b.stderr).toContain('cannot use console socket if cordon will not allocate tty');
  });
});

describe('--preserve-fds', () => {
  const script = 'cat <&3; echo to-four >&4; ls /proc/self/fd | sort -n | tr "\\n" " "';

  it('exec: the caller\'s fds 3 and 4 are the process\'s 3 and 4, and nothing else leaks in', () => {
    const inFile = path.join(work, 'in3');
    const outFile = path.join(work, 'out4');
    writeFileSync(inFile, 'from-three\n');
    const fd3 = openSync(inFile, 'r');
    const fd4 = openSync(outFile, 'w');
    try {
      const r = cordon(['exec', '--preserve-fds', '2', 'xt', 'sh', '-c', script], ['ignore', 'pipe', 'pipe', fd3, fd4]);
      expect(r.status, r.stderr).toBe(0);
      const [first, fdList] = r.stdout.split('\n');
      expect(first).toBe('from-three');
      // 0-2, 3, 4, and the fd ls opens for /proc/self/fd itself.
      expect(fdList.trim().split(' ').map(Number).filter((n) => n > 4)).toHaveLength(1);
      expect(fdList.trim().split(' ').slice(0, 5)).toEqual(['0', '1', '2', '3', '4']);
    } finally {
      closeSync(fd3);
      closeSync(fd4);
    }
    expect(readFileSync(outFile, 'utf8')).toBe('to-four\n');
  });

  it('run: the same for a container\'s first process; without the flag fd 3 is not there', () => {
    const b = makeBundle({ spec: (s) => void (s.process.args = ['sh', '-c', script]) });
    const inFile = path.join(work, 'in3r');
    const outFile = path.join(work, 'out4r');
    writeFileSync(inFile, 'run-three\n');
    const fd3 = openSync(inFile, 'r');
    const fd4 = openSync(outFile, 'w');
    try {
      const r = cordon(['run', '--preserve-fds', '2', '-b', b.dir, 'xr'], ['ignore', 'pipe', 'pipe', fd3, fd4]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe('run-three');
      const plain = cordon(['run', '-b', b.dir, 'xr2'], ['ignore', 'pipe', 'pipe', fd3, fd4]);
      expect(plain.stdout + plain.stderr).toContain('3: Bad file descriptor'); // `cat <&3` in a process without fd 3
    } finally {
      closeSync(fd3);
      closeSync(fd4);
      b.cleanup();
    }
    expect(readFileSync(outFile, 'utf8')).toBe('to-four\n');
  });
});
