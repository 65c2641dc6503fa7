/**
 * kernel/criu with a real CRIU (>= 4, as scripts/criu.sh installs; root): a process tree dumped and restored
 * through the RPC — a busybox shell counting into a file, pid 1 of its own pid namespace and leader of its own
 * session — counts on from where it stopped; leave-running; the notify points; and failures that name the
 * operation and quote CRIU's log. Nothing is skipped: without a usable CRIU every test fails saying so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { criuCheck, criuDump, criuRestore, criuVersion, openPidfd, pidfdSignal, waitPidfd, type CriuNotifyScript } from '../../kernel/index.js';
import { LifecycleError } from '../../errors/index.js';
import { openPipe } from '../../kernel/io/fd.js';
import { O } from '../../kernel/sys/flags.js';
import { until } from '../fixtures/wait.js';

const CRIU = process.env.CORDON_CRIU ?? ['/usr/local/sbin/criu', '/usr/sbin/criu'].find((p) => fs.existsSync(p)) ?? 'criu';
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p)) ?? 'busybox';

let tmp: string;
let criuProblem: string | undefined;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-criu-'));
  try {
    const v = await criuVersion({ criu: CRIU });
    if (v.major < 4) criuProblem = `${CRIU} is CRIU ${v.text}; these tests need >= 4 (run scripts/criu.sh)`;
  } catch (e) {
    criuProblem = `no usable CRIU (${CRIU}): ${(e as Error).message} — run scripts/criu.sh (npm test's setup does)`;
  }
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Fail (never skip) when CRIU is not there. */
function needCriu(): void {
  if (criuProblem) throw new Error(criuProblem);
}

const live: number[] = [];
afterEach(async () => {
  for (const pid of live.splice(0)) await killPid(pid);
});

/** SIGKILL a pid and wait until it is gone (reaped when it is our child). */
async function killPid(pid: number): Promise<void> {
  let fd: number;
  try {
    fd = openPidfd(pid);
  } catch {
    return;
  }
  try {
    pidfdSignal(fd, 9);
  } catch {
    // already gone
  }
  await waitPidfd(fd, 10_000);
}

interface Counter {
  /** The wrapper (unshare), our child. */
  wrapper: ChildProcess;
  /** Host pid of the counting shell (pid 1 of its pid namespace): the tree to dump. */
  pid: number;
  file: string;
  exited: Promise<void>;
}

/**
 * Start `unshare --pid --fork [--net] setsid busybox sh -c <count into FILE>`; stdio is /dev/null, or stdout
 * is `stdoutFd` (where it also writes each number).
 */
async function startCounter(dir: string, net = false, stdoutFd?: number): Promise<Counter> {
  const file = path.join(dir, 'count');
  const script = `i=0; while :; do i=$((i+1)); echo $i >> ${file}; ${stdoutFd === undefined ? '' : 'echo $i; '}${BUSYBOX} usleep 50000; done`;
  const stdio = stdoutFd === undefined ? ('ignore' as const) : (['ignore', stdoutFd, 'ignore'] as ['ignore', number, 'ignore']);
  const wrapper = spawn('unshare', ['--pid', '--fork', ...(net ? ['--net'] : []), 'setsid', BUSYBOX, 'sh', '-c', script], { stdio });
  const exited = new Promise<void>((resolve) => wrapper.once('exit', () => resolve()));
  const wpid = wrapper.pid!;
  // The shell is the wrapper's only child once unshare has forked and setsid has exec'd busybox.
  const pid = await until(
    () => {
      const kids = fs.readFileSync(`/proc/${wpid}/task/${wpid}/children`, 'utf8').trim();
      if (!kids) return undefined;
      const p = Number(kids.split(/\s+/)[0]);
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(' sh') || fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('\0sh\0') ? p : undefined;
    },
    10_000,
    'the counting shell',
  );
  live.push(pid);
  await untilCount(file, 3);
  return { wrapper, pid, file, exited };
}

/** The numbers in the count file. */
function counts(file: string): number[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

const untilCount = (file: string, n: number) => until(() => (counts(file).length >= n ? true : undefined), 20_000, `${n} lines in ${file}`);

function imagesDir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

describe('criuVersion and criuCheck over the RPC', () => {
  it('reports CRIU >= 4 and passes the check', async () => {
    needCriu();
    const v = await criuVersion({ criu: CRIU });
    expect(v.major).toBeGreaterThanOrEqual(4);
    expect(v.text).toMatch(/^\d+\.\d+/);
    await criuCheck({ criu: CRIU });
  });
});

describe('criuDump and criuRestore', () => {
  it('dumps a counting shell (it stops), restores it, and it counts on from where it stopped', async () => {
    needCriu();
    const dir = imagesDir('counter');
    const c = await startCounter(dir);
    const images = imagesDir('counter/images');
    await criuDump({ criu: CRIU, pid: c.pid, imagesDir: images, root: '/' });
    await c.exited; // the tree was killed after the dump: unshare saw its child die
    const atDump = counts(c.file);
    expect(fs.existsSync(path.join(images, 'inventory.img'))).toBe(true);
    expect(fs.readFileSync(path.join(images, 'dump.log'), 'utf8')).toMatch(/Dumping finished successfully/);

    const { pid } = await criuRestore({ criu: CRIU, imagesDir: images, root: '/' });
    live.push(pid);
    expect(pid).toBeGreaterThan(0);
    // The restored shell is our child (rst_sibling) and pid 1 of a new pid namespace.
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(new RegExp(`PPid:\\s+${process.pid}\\n`));
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/NSpid:\s+\d+\s+1\n/);
    await untilCount(c.file, atDump.length + 3);
    const after = counts(c.file);
    // One run of numbers: no restart from 1, no gap, every number once.
    expect(after).toEqual(after.map((_, i) => i + 1));
    expect(after.length).toBeGreaterThan(atDump.length);
    expect(fs.readFileSync(path.join(images, 'restore.log'), 'utf8')).toMatch(/Restore finished successfully/);
  });

  it('leaveRunning: the tree goes on counting after the dump, and the images restore', async () => {
    needCriu();
    const dir = imagesDir('leave');
    const c = await startCounter(dir);
    const images = imagesDir('leave/images');
    await criuDump({ criu: CRIU, pid: c.pid, imagesDir: images, root: '/', leaveRunning: true });
    const atDump = counts(c.file).length;
    await untilCount(c.file, atDump + 3);
    expect(fs.existsSync(`/proc/${c.pid}`)).toBe(true);

    await killPid(c.pid);
    await c.exited;
    const { pid } = await criuRestore({ criu: CRIU, imagesDir: images, root: '/' });
    live.push(pid);
    const before = counts(c.file).length;
    await untilCount(c.file, before + 3);
    // The restored shell counts on from its value at the dump, so numbers repeat after the kill.
    const all = counts(c.file);
    expect(all[before]).toBeLessThanOrEqual(atDump + 2);
  });

  it('notify: the callback sees the dump and restore points in order, and CRIU waits for it', async () => {
    needCriu();
    const dir = imagesDir('notify');
    const c = await startCounter(dir, true); // own network namespace: CRIU locks and unlocks its network
    const images = imagesDir('notify/images');
    const seen: Array<{ script: CriuNotifyScript; pid?: number }> = [];
    let countAtPostDump = -1;
    await criuDump({
      criu: CRIU,
      pid: c.pid,
      imagesDir: images,
      root: '/',
      notify: async (script, info) => {
        seen.push({ script, ...info });
        if (script === 'post-dump') {
          // The tree is frozen here: nothing counts while CRIU waits for this callback.
          countAtPostDump = counts(c.file).length;
          await new Promise((r) => setTimeout(r, 300));
          expect(counts(c.file).length).toBe(countAtPostDump);
        }
      },
    });
    await c.exited;
    const dumpScripts = seen.map((s) => s.script);
    expect(dumpScripts).toEqual(expect.arrayContaining(['pre-dump', 'network-lock', 'post-dump']));
    expect(dumpScripts.indexOf('pre-dump')).toBeLessThan(dumpScripts.indexOf('post-dump'));
    expect(countAtPostDump).toBeGreaterThan(0);

    seen.length = 0;
    const { pid } = await criuRestore({ criu: CRIU, imagesDir: images, root: '/', notify: (script, info) => void seen.push({ script, ...info }) });
    live.push(pid);
    const restoreScripts = seen.map((s) => s.script);
    expect(restoreScripts).toEqual(expect.arrayContaining(['setup-namespaces', 'post-restore', 'network-unlock', 'pre-resume', 'post-resume']));
    expect(restoreScripts.indexOf('post-restore')).toBeLessThan(restoreScripts.indexOf('post-resume'));
    // post-restore carries the restored init's host pid (runc takes it from there).
    expect(seen.find((s) => s.script === 'post-restore')?.pid).toBe(pid);
    await untilCount(c.file, countAtPostDump + 3);
  });

  it('a rejecting notify callback fails the dump, naming it, and the tree keeps running', async () => {
    needCriu();
    const dir = imagesDir('reject');
    const c = await startCounter(dir);
    const images = imagesDir('reject/images');
    const err = await criuDump({
      criu: CRIU,
      pid: c.pid,
      imagesDir: images,
      root: '/',
      notify: (script) => {
        if (script === 'pre-dump') throw new Error('not now');
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LifecycleError);
    const e = err as LifecycleError;
    expect(e.code).toBe('SystemError');
    expect(e.message).toContain(`criu dump of pid ${c.pid}`);
    expect(e.message).toContain('a notify callback failed: not now');
    expect(e.message).toContain(path.join(images, 'dump.log'));
    const n = counts(c.file).length;
    await untilCount(c.file, n + 2);
  });
});

describe('the deadline', () => {
  it('a criu that does not finish in timeoutMs is killed, and the error says so (the tree runs on)', async () => {
    needCriu();
    const dir = imagesDir('deadline');
    const c = await startCounter(dir);
    const images = imagesDir('deadline/images');
    const t0 = Date.now();
    const e = (await criuDump({
      criu: CRIU,
      pid: c.pid,
      imagesDir: images,
      root: '/',
      timeoutMs: 1500,
      // Never answered: CRIU waits at pre-dump, before it seizes anything.
      notify: (script) => (script === 'pre-dump' ? new Promise<void>(() => undefined) : undefined),
    }).catch((x: unknown) => x)) as LifecycleError;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.message).toContain(`criu dump of pid ${c.pid} (images ${images}): timed out: no final response from criu within 1500 ms (criu killed by SIGKILL)`);
    const n = counts(c.file).length;
    await untilCount(c.file, n + 2);
  });
});

describe('inheritFds', () => {
  it("restores a tree whose stdout was a pipe onto a new pipe given as inherit_fd 'pipe:[INODE]'", async () => {
    needCriu();
    const dir = imagesDir('inherit');
    const [r1, w1] = openPipe(O.CLOEXEC | O.NONBLOCK);
    const c = await startCounter(dir, false, w1);
    const key = `pipe:[${fs.fstatSync(w1).ino}]`;
    fs.closeSync(w1);
    const images = imagesDir('inherit/images');
    await criuDump({ criu: CRIU, pid: c.pid, imagesDir: images, root: '/' });
    await c.exited;
    fs.closeSync(r1);
    const atDump = counts(c.file).length;

    const [r2, w2] = openPipe(O.CLOEXEC | O.NONBLOCK);
    try {
      const { pid } = await criuRestore({ criu: CRIU, imagesDir: images, root: '/', inheritFds: [{ key, fd: w2 }] });
      live.push(pid);
      fs.closeSync(w2);
      let out = '';
      const buf = Buffer.alloc(4096);
      const lines = await until(
        () => {
          try {
            const n = fs.readSync(r2, buf, 0, buf.length, null);
            out += buf.toString('utf8', 0, n);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          }
          const l = out.split('\n').filter((x) => x !== '');
          return l.length >= 3 ? l.map(Number) : undefined;
        },
        20_000,
        'numbers on the inherited pipe',
      );
      // What comes out of the new pipe continues the count from the dump.
      expect(lines[0]).toBeGreaterThanOrEqual(atDump);
      expect(lines[0]).toBeLessThanOrEqual(atDump + 1);
      expect(lines[1]).toBe(lines[0] + 1);
    } finally {
      fs.closeSync(r2);
    }
  });
});

describe('failures name the operation and quote CRIU', () => {
  it('a missing images dir: the operation, the path and errno (CRIU is not started)', async () => {
    needCriu();
    const missing = path.join(tmp, 'no-such-dir');
    const e = (await criuRestore({ criu: CRIU, imagesDir: missing, root: '/' }).catch((x: unknown) => x)) as LifecycleError;
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.code).toBe('SystemError');
    expect(e.message).toBe(`criu restore (images ${missing}, root /): open images dir ${JSON.stringify(missing)}: ENOENT`);
  });

  it('garbage images: CRIU fails, the error names the restore and quotes the Error lines of restore.log', async () => {
    needCriu();
    const images = imagesDir('garbage');
    fs.writeFileSync(path.join(images, 'inventory.img'), 'this is not a CRIU image\n');
    const e = (await criuRestore({ criu: CRIU, imagesDir: images, root: '/' }).catch((x: unknown) => x)) as LifecycleError;
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.code).toBe('SystemError');
    expect(e.message).toMatch(new RegExp(`^criu restore \\(images ${images}, root /\\): CRIU failed`));
    const lines = e.message.split('\n');
    const at = lines.indexOf(`log ${path.join(images, 'restore.log')}:`);
    expect(at).toBeGreaterThan(0);
    const quoted = lines.slice(at + 1);
    expect(quoted.join('\n')).toMatch(/Error .*inventory\.img/);
    const log = fs.readFileSync(path.join(images, 'restore.log'), 'utf8');
    for (const l of quoted) expect(log).toContain(l);
  });

  it('a dump of a pid that does not exist: CRIU fails and the log is quoted', async () => {
    needCriu();
    const images = imagesDir('nopid');
    const e = (await criuDump({ criu: CRIU, pid: 0x3ffffe, imagesDir: images, root: '/' }).catch((x: unknown) => x)) as LifecycleError;
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.message).toMatch(/^criu dump of pid 4194302 \(images .*\): CRIU failed/);
    expect(e.message).toMatch(/log .*dump\.log:\n.*\S/);
  });

  it('options CRIU cannot take are refused before criu runs, naming the field', async () => {
    const images = imagesDir('badopts');
    const ns = (await criuDump({ criu: CRIU, pid: 1, imagesDir: images, root: '/', emptyNs: ['network', 'bogus'] }).catch((x: unknown) => x)) as LifecycleError;
    expect([ns.code, ns.field, ns.message]).toEqual(['ConfigInvalid', 'emptyNs[1]', 'criu dump of pid 1 (images ' + images + '): emptyNs[1]: unknown namespace "bogus"']);
    const log = (await criuRestore({ criu: CRIU, imagesDir: images, root: '/', logFile: 'sub/restore.log' }).catch((x: unknown) => x)) as LifecycleError;
    expect([log.code, log.field]).toEqual(['ConfigInvalid', 'logFile']);
    expect(log.message).toMatch(/^criu restore \(images .*\): logFile must be a file name inside workDir/);
  });

  it('a criu binary that does not exist: the operation and the spawn error', async () => {
    const e = (await criuVersion({ criu: '/nonexistent/criu' }).catch((x: unknown) => x)) as LifecycleError;
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.message).toMatch(/^criu version: cannot run criu: spawn \/nonexistent\/criu swrk 3: .*ENOENT/);
  });
});
