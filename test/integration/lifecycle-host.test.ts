/**
 * What the host sees around a container's life: during create/start/kill/delete (state, the init process,
 * its namespaces) and after it (no mount under the bundle, no state dir, no process, no child left), for
 * the library and for the `cordon` CLI (bin/cordon.js, i.e. dist/: run `npx tsc -p tsconfig.json` first).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../fixtures/bundle.js';
import { Harness, hostMountsUnder, hostNs, pidExists, sections, sh, waitFor } from './harness.js';

const h = new Harness('life');
afterAll(() => h.cleanup());

const CLI = join(REPO_ROOT, 'bin', 'cordon.js');

/** Pids of this process's children (all threads). */
function children(): number[] {
  const out: number[] = [];
  for (const t of readdirSync('/proc/self/task')) {
    const text = readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out.sort((a, b) => a - b);
}

/** Fds for a container's stdio, writing to a fresh temp file. */
function outFile(): { path: string; fd: number; nullFd: number; close(): void; read(): string } {
  const path = h.file('out');
  const fd = openSync(path, 'w');
  const nullFd = openSync('/dev/null', 'r');
  return {
    path,
    fd,
    nullFd,
    close: () => {
      closeSync(fd);
      closeSync(nullFd);
    },
    read: () => readFileSync(path, 'utf8'),
  };
}

describe('library: after a foreground run', () => {
  it('no mount under the bundle, no state dir, no process, no child', async () => {
    const before = children();
    const r = await h.run(sh('echo "== pid =="; echo $$; echo "== mounts =="; wc -l < /proc/self/mountinfo'));
    expect(r.status).toEqual({ code: 0, signal: null });
    const s = sections(r.out);
    expect(s.pid).toBe('1');
    expect(Number(s.mounts)).toBeGreaterThan(10);
    expect(r.pid).toBeGreaterThan(1);
    expect(hostMountsUnder(r.bundle.dir)).toEqual([]);
    expect(existsSync(join(h.root, r.id))).toBe(false);
    expect(pidExists(r.pid)).toBe(false);
    expect(children()).toEqual(before);
    expect(h.rt.list()).toEqual([]);
  });

  it('the exit code is reported; pid 1 ignores signals from inside its namespace that it has no handler for', async () => {
    expect((await h.run(sh('exit 7'))).status).toEqual({ code: 7, signal: null });
    // The kernel protects a pid namespace's init from SIGKILL sent from inside: the shell carries on.
    expect((await h.run(sh('kill -9 $$; echo survived'))).out).toBe('survived\n');
  });
});

describe('library: create, state, start, kill, delete', () => {
  it('each step as seen from the host', async () => {
    const b = h.bundle((s) => {
      s.process.args = ['sh', '-c', 'echo started; exec sleep 30'];
    });
    const id = h.nextId();
    const io = outFile();
    const before = children();
    let created;
    try {
      created = await h.rt.create(id, { bundle: b.dir, stdio: [io.nullFd, io.fd, io.fd] });
    } finally {
      io.close();
    }
    const dir = join(h.root, id);
    expect(readdirSync(dir).sort()).toEqual(['exec.fifo', 'state.json']);
    let st = h.rt.stateOf(id);
    expect(st).toMatchObject({ id, status: 'created', bundle: b.dir, rootfs: b.rootfs });
    const pid = st.pid;
    // Parked before execve: the process exists in its own namespaces, nothing printed yet.
    expect(pidExists(pid)).toBe(true);
    for (const n of ['pid', 'mnt', 'net', 'uts', 'ipc']) expect(hostNs(pid, n), n).not.toBe(hostNs('self', n));
    expect(io.read()).toBe('');
    expect(hostMountsUnder(b.dir)).toEqual([]);

    await h.rt.start(id);
    expect(await waitFor(() => io.read() === 'started\n')).toBe(true);
    expect(existsSync(join(dir, 'exec.fifo'))).toBe(false);
    st = h.rt.stateOf(id);
    expect(st.status).toBe('running');
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8')).toBe('sleep\n');
    await expect(h.rt.delete(id)).rejects.toThrow(/not stopped: running/);

    // SIGTERM is ignored by a pid 1 without a handler (sleep): the host must use SIGKILL, as with runc.
    await h.rt.kill(id, 15);
    await new Promise((r) => setTimeout(r, 200));
    expect(h.rt.stateOf(id).status).toBe('running');
    await h.rt.kill(id, 9);
    expect(await created.init.exited).toEqual({ code: null, signal: 9, core: false });
    expect(h.rt.stateOf(id).status).toBe('stopped');
    await h.rt.delete(id);
    expect(existsSync(dir)).toBe(false);
    expect(pidExists(pid)).toBe(false);
    expect(hostMountsUnder(b.dir)).toEqual([]);
    expect(children()).toEqual(before);
  });

  it('delete of a created (never started) container kills it; delete --force of a running one too', async () => {
    const b = h.bundle((s) => {
      s.process.args = ['sleep', '30'];
    });
    const io = outFile();
    const idA = h.nextId();
    const idB = h.nextId();
    let a, bb;
    try {
      a = await h.rt.create(idA, { bundle: b.dir, stdio: [io.nullFd, io.fd, io.fd] });
      bb = await h.rt.create(idB, { bundle: b.dir, stdio: [io.nullFd, io.fd, io.fd] });
    } finally {
      io.close();
    }
    await h.rt.start(idB);
    expect(h.rt.stateOf(idA).status).toBe('created');
    expect(h.rt.stateOf(idB).status).toBe('running');
    await h.rt.delete(idA);
    await h.rt.delete(idB, { force: true });
    // delete waited through the handles of this process: both report the SIGKILL.
    expect(await a.init.exited).toEqual({ code: null, signal: 9, core: false });
    expect(await bb.init.exited).toEqual({ code: null, signal: 9, core: false });
    for (const [id, pid] of [[idA, a.init.pid], [idB, bb.init.pid]] as const) {
      expect(existsSync(join(h.root, id))).toBe(false);
      expect(pidExists(pid)).toBe(false);
    }
    expect(hostMountsUnder(b.dir)).toEqual([]);
    expect(h.rt.list()).toEqual([]);
  });

  it('start runs the hooks read at create, as runc does: config.json edited in between does not change them', async () => {
    const log = join(tmpdir(), `cordon-hooks-${process.pid}-${Date.now()}.log`);
    const b = h.bundle((s) => {
      s.process.args = ['true'];
      s.hooks = { poststart: [{ path: '/bin/sh', args: ['sh', '-c', `echo poststart-of-create >> ${log}`] }] };
    });
    const id = h.nextId();
    const io = outFile();
    try {
      await h.rt.create(id, { bundle: b.dir, stdio: [io.nullFd, io.fd, io.fd] });
    } finally {
      io.close();
    }
    const spec = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')) as { hooks?: unknown };
    spec.hooks = { poststart: [{ path: '/bin/sh', args: ['sh', '-c', `echo poststart-of-edit >> ${log}`] }] };
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(spec));
    await h.rt.start(id);
    expect(readFileSync(log, 'utf8')).toBe('poststart-of-create\n');
    await waitFor(() => h.rt.stateOf(id).status === 'stopped');
    await h.rt.delete(id);
    rmSync(log, { force: true });
  });

  it('a failure inside the child (a mount the kernel refuses) leaves no state dir, mount or process', async () => {
    const b = h.bundle((s) => {
      s.mounts.push({ destination: '/mnt/bad', type: 'cordonfs-does-not-exist', source: 'none' });
      s.process.args = ['true'];
    });
    const id = h.nextId();
    const before = children();
    await expect(h.rt.run(id, { bundle: b.dir, stdio: [0, 1, 2] })).rejects.toThrow(/^mounts\[7\]: .*ENODEV/);
    expect(existsSync(join(h.root, id))).toBe(false);
    expect(hostMountsUnder(b.dir)).toEqual([]);
    expect(children()).toEqual(before);
  });
});

describe('CLI (bin/cordon.js)', () => {
  const cli = (args: string[], stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe']) =>
    spawnSync(process.execPath, [CLI, '--root', h.root, ...args], { stdio, encoding: 'utf8', timeout: 30_000 });

  it('run: the container writes to the CLI\'s stdout, its exit code is the CLI\'s, nothing is left', async () => {
    const b = h.bundle((s) => {
      s.process.args = ['sh', '-c', 'echo "pid=$$ host=$(hostname)"; echo err-line >&2; exit 3'];
    });
    const id = h.nextId();
    const r = cli(['run', '-b', b.dir, id]);
    expect(r.stdout).toBe('pid=1 host=cordon\n');
    expect(r.stderr).toContain('err-line\n');
    expect(r.status).toBe(3);
    expect(existsSync(join(h.root, id))).toBe(false);
    expect(hostMountsUnder(b.dir)).toEqual([]);
    expect(cli(['list', '-q']).stdout).toBe('');
  });

  it('create, state, start, state, delete as separate processes', async () => {
    const b = h.bundle((s) => {
      s.process.args = ['sh', '-c', 'echo hello-from-cli'];
    });
    const id = h.nextId();
    const io = outFile();
    const errPath = h.file('err');
    const errFd = openSync(errPath, 'w');
    const pidFile = h.file('pid');
    let r;
    try {
      // The container inherits the CLI's stdio: give it files, not pipes spawnSync would wait on.
      r = cli(['create', '-b', b.dir, '--pid-file', pidFile, id], [io.nullFd, io.fd, errFd]);
    } finally {
      io.close();
      closeSync(errFd);
    }
    // The default spec's ambient caps are not in the inheritable set: the CLI warns, as runc logs.
    expect(readFileSync(errPath, 'utf8')).toMatch(/^cordon: warning: process\.capabilities\.ambient: /);
    expect(r.status).toBe(0);
    const state1 = JSON.parse(cli(['state', id]).stdout);
    expect(state1).toMatchObject({ id, status: 'created', bundle: b.dir, rootfs: b.rootfs });
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(state1.pid);
    expect(pidExists(state1.pid)).toBe(true);
    expect(cli(['start', id]).status).toBe(0);
    // The init was re-parented when `create` exited; it is reaped by the machine's init, lazily.
    expect(await waitFor(() => io.read() === 'hello-from-cli\n', 5000)).toBe(true);
    expect(await waitFor(() => JSON.parse(cli(['state', id]).stdout).status === 'stopped', 5000)).toBe(true);
    const del = cli(['delete', id]);
    expect([del.status, del.stderr]).toEqual([0, '']);
    expect(existsSync(join(h.root, id))).toBe(false);
    expect(hostMountsUnder(b.dir)).toEqual([]);
    const again = cli(['state', id]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/^cordon: /);
  });

  it('run --no-pivot through the CLI also gives the rootfs as "/"', async () => {
    const b = h.bundle((s) => {
      s.process.args = ['sh', '-c', 'head -1 /proc/self/mountinfo | cut -d" " -f4,5; test -e /work && echo visible || echo absent'];
    });
    const r = cli(['run', '--no-pivot', '-b', b.dir, h.nextId()]);
    expect([r.status, r.stdout]).toEqual([0, `${b.rootfs} /\nabsent\n`]);
  });

  it('runc runs the same bundle with the same result (sanity check of the fixture)', () => {
    const b = h.bundle((s) => {
      s.process.args = ['sh', '-c', 'echo "pid=$$ host=$(hostname) uid=$(id -u)"'];
    });
    const runcRoot = h.file('runc-root');
    const theirs = execFileSync('runc', ['--root', runcRoot, 'run', '-b', b.dir, `runc-${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const ours = cli(['run', '-b', b.dir, h.nextId()]).stdout;
    expect(ours).toBe(theirs);
    expect(ours).toBe('pid=1 host=cordon uid=0\n');
  });
});
