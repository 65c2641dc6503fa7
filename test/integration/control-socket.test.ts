/**
 * The daemon's control socket under failure, with a real `cordon daemon` process, real containers (root) and
 * the CLI as separate processes: a daemon SIGKILLed at a crash point (CORDON_CRASH_AT) in the middle of a create
 * request, a SIGSTOPped daemon (the CLI's Timeout, and nothing created after SIGCONT), and a caller that dies
 * while the daemon creates its container (the daemon deletes it again). Every case ends with the log and the
 * kernel agreeing: no process, cgroup or state dir that nobody asked for.
 * Uses dist/ (bin/cordon.js): run `npm run build` first.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CordonEvent } from '../../events/schema.js';
import { type Bundle, type OciSpecLike, makeBundle } from '../fixtures/bundle.js';
import { destroyAll } from '../fixtures/containers.js';
import { CLI, type Running, alive, cordon, exec, leftovers, removeIoDir, startCordon, stateOf, theFailure, waitFor } from '../cli/helpers.js';

const roots: string[] = [];
const bundles: Bundle[] = [];
const dirs: string[] = [];
const daemons: Running[] = [];

afterAll(async () => {
  for (const d of daemons) {
    if (d.child.exitCode !== null || d.child.signalCode !== null) continue;
    d.child.kill('SIGCONT');
    d.child.kill('SIGKILL');
    await d.done.catch(() => {});
  }
  for (const root of roots) {
    await destroyAll(root);
    rmSync(root, { recursive: true, force: true });
  }
  for (const b of bundles) b.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  removeIoDir();
});

function freshRoot(name: string): string {
  const r = mkdtempSync(`/tmp/cordon-it-ctl-${name}-`);
  roots.push(r);
  return r;
}

function bundle(args: string[], more?: (s: OciSpecLike) => void): Bundle {
  const b = makeBundle({
    spec: (s) => {
      s.process.args = args;
      more?.(s);
    },
  });
  bundles.push(b);
  return b;
}

/** `cordon daemon` on `root` (with `env` added), once it serves. */
async function daemon(root: string, env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const d = startCordon(root, ['daemon'], { env, timeoutMs: 120_000 });
  daemons.push(d);
  await waitFor('the daemon to start', () => readFileSync(d.stderrFile, 'utf8').includes('supervising'), 15_000);
  return d;
}

/** The journal's records for one container, parsed straight from the file. */
function actions(root: string, id: string): string[] {
  const p = join(root, 'events.journal');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l.slice(9)) as CordonEvent).filter((e) => e.containerId === id).map((e) => e.action);
}

/** Cgroup directories named `id` anywhere in the first levels of /sys/fs/cgroup (a leaked container's). */
function cgroupsNamed(id: string, dir = '/sys/fs/cgroup', depth = 4): string[] {
  const found: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return found;
  }
  for (const e of entries) {
    const p = join(dir, e);
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      continue;
    }
    if (!isDir) continue;
    if (e === id) found.push(p);
    else if (depth > 1) found.push(...cgroupsNamed(id, p, depth - 1));
  }
  return found;
}

/** What a container left under `root` and in the kernel, but the stale socket of a killed daemon. */
function leftBehind(b: Bundle, root: string, id: string): string[] {
  return [...leftovers(b.dir, root).filter((l) => l !== 'state root entry: cordon.sock'), ...cgroupsNamed(id).map((c) => `cgroup ${c}`)];
}

describe('a daemon that dies in the middle of a create request', () => {
  it('SIGKILLed after the create, before its answer: the CLI reports the container created; log and kernel agree', async () => {
    const root = freshRoot('crash-after');
    const b = bundle(['sleep', '1000']);
    const d = await daemon(root, { CORDON_CRASH_AT: 'control-socket:after-create' });
    const c = await cordon(root, ['create', '-b', b.dir, 'ka-1']);
    expect((await d.done).signal).toBe('SIGKILL');
    expect(c.code, c.stderr).toBe(0);
    const m = /cordon: warning: the daemon \((.*)\) closed the connection before it answered; container ka-1 was created \(pid (\d+)\) and is recorded/.exec(c.stderr);
    expect(m, c.stderr).not.toBeNull();
    expect(m?.[1]).toBe(join(root, 'cordon.sock'));
    const pid = Number(m?.[2]);
    expect(await stateOf(root, 'ka-1')).toMatchObject({ status: 'created', pid });
    expect(alive(pid)).toBe(true);
    expect(actions(root, 'ka-1')).toEqual(['create']);
    expect(cgroupsNamed('ka-1').length).toBeGreaterThan(0);

    // It is a container like any other: it starts, and delete --force leaves nothing.
    expect((await cordon(root, ['start', 'ka-1'])).code).toBe(0);
    expect((await stateOf(root, 'ka-1')).status).toBe('running');
    const del = await cordon(root, ['delete', '--force', 'ka-1']);
    expect(del.code, del.stderr).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(actions(root, 'ka-1')).toEqual(['create', 'start', 'kill', 'exit', 'destroy']);
    expect(leftBehind(b, root, 'ka-1')).toEqual([]);
  });

  it('SIGKILLed halfway through its answer (run -d): the cut reply is not a JSON error; the container is created and runs', async () => {
    const root = freshRoot('crash-mid');
    const b = bundle(['sleep', '1000']);
    const d = await daemon(root, { CORDON_CRASH_AT: 'control-socket:mid-answer' });
    const c = await cordon(root, ['run', '-d', '-b', b.dir, 'km-1']);
    expect((await d.done).signal).toBe('SIGKILL');
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).not.toContain('JSON');
    expect(c.stderr).toMatch(/cordon: warning: the daemon \(.*\) closed the connection before it answered; container km-1 was created \(pid \d+\)/);
    const st = await stateOf(root, 'km-1');
    expect(st.status).toBe('running');
    expect(actions(root, 'km-1')).toEqual(['create', 'start']);
    expect((await cordon(root, ['delete', '--force', 'km-1'])).code).toBe(0);
    expect(alive(st.pid as number)).toBe(false);
    expect(leftBehind(b, root, 'km-1')).toEqual([]);
  });

  it('SIGKILLed before the create: nothing was created and no daemon is left, so the CLI creates it itself', async () => {
    const root = freshRoot('crash-before');
    const b = bundle(['sleep', '1000']);
    const d = await daemon(root, { CORDON_CRASH_AT: 'control-socket:before-create' });
    const c = await cordon(root, ['create', '-b', b.dir, 'kb-1']);
    expect((await d.done).signal).toBe('SIGKILL');
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toContain(`cordon: warning: the daemon (${join(root, 'cordon.sock')}) closed the connection before it answered; nothing was created and no daemon listens any more: container kb-1 is created here`);
    const st = await stateOf(root, 'kb-1');
    expect(st.status).toBe('created');
    expect(alive(st.pid as number)).toBe(true);
    expect(actions(root, 'kb-1')).toEqual(['create']);
    expect((await cordon(root, ['delete', '--force', 'kb-1'])).code).toBe(0);
    expect(leftBehind(b, root, 'kb-1')).toEqual([]);
  });
});

describe('a SIGSTOPped daemon', () => {
  it('create fails with Timeout naming the socket within CORDON_CONTROL_TIMEOUT_MS; after SIGCONT nothing is created', async () => {
    const root = freshRoot('stopped');
    const b = bundle(['sleep', '1000']);
    const d = await daemon(root);
    d.child.kill('SIGSTOP');
    let c;
    try {
      // Through bash, whose `times` then prints the CPU time its child (the CLI) used: the wait is a poll(2), not a loop.
      c = await exec('bash', ['-c', `"$0" "$@"; echo "exit $?" >&2; times >&2`, process.execPath, CLI, '--root', root, 'create', '-b', b.dir, 'st-1'], { env: { CORDON_CONTROL_TIMEOUT_MS: '3000' }, timeoutMs: 20_000 });
    } finally {
      d.child.kill('SIGCONT');
    }
    expect(c.stderr).toContain('exit 1\n');
    const f = theFailure(c);
    expect(f.code).toBe('Timeout');
    expect(f.message).toBe(`create st-1: no answer from the daemon on ${join(root, 'cordon.sock')} within 3000 ms (CORDON_CONTROL_TIMEOUT_MS); the request is withdrawn, and the daemon creates nothing for it`);
    expect(c.ms).toBeGreaterThanOrEqual(3000);
    expect(c.ms).toBeLessThan(3000 + 5000);
    // `times`: the shell's user and system time, then its children's: far less than the 3 s a busy wait burns.
    const children = c.stderr.trim().split('\n').at(-1) as string;
    const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((t, m) => t + Number(m[1]) * 60 + Number(m[2]), 0);
    expect(cpu, children).toBeLessThan(1);

    // Resumed, the daemon reads the request, finds its caller gone and does nothing for it.
    await waitFor('the daemon to drop the request', () => readFileSync(d.stderrFile, 'utf8').includes('control socket: create st-1: the caller hung up before the create started; nothing is done for it'), 15_000);
    expect((await cordon(root, ['list', '-q'])).stdout).toBe('');
    expect(actions(root, 'st-1')).toEqual([]);
    expect(leftBehind(b, root, 'st-1')).toEqual([]);

    // The daemon serves on: the next create goes through it.
    const ok = await cordon(root, ['create', '-b', b.dir, 'st-2']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(actions(root, 'st-2')).toEqual(['create']);
    expect((await cordon(root, ['delete', '--force', 'st-2'])).code).toBe(0);
    d.child.kill('SIGTERM');
    expect((await d.done).code).toBe(0);
    expect(leftBehind(b, root, 'st-2')).toEqual([]);
  });

  it('CORDON_CONTROL_TIMEOUT_MS that is not a number is refused by name', async () => {
    const root = freshRoot('bad-timeout');
    const b = bundle(['sleep', '1000']);
    const d = await daemon(root);
    const c = await cordon(root, ['create', '-b', b.dir, 'bt-1'], { env: { CORDON_CONTROL_TIMEOUT_MS: 'soon' } });
    expect(c.code).toBe(1);
    expect(theFailure(c)).toEqual({ code: 'BadRequest', message: 'CORDON_CONTROL_TIMEOUT_MS: expected a number of milliseconds > 0, got "soon"' });
    expect(actions(root, 'bt-1')).toEqual([]);
    d.child.kill('SIGTERM');
    expect((await d.done).code).toBe(0);
  });
});

describe('a caller that dies while the daemon creates its container', () => {
  it('the daemon deletes the container again: no process, cgroup or state dir is left for nobody', async () => {
    const root = freshRoot('caller-gone');
    const sync = mkdtempSync(join(tmpdir(), 'cordon-ctl-sync-'));
    dirs.push(sync);
    // A prestart hook (run by the daemon during the create, after the spawn) that waits for the test's go.
    const hook = join(sync, 'hook.sh');
    writeFileSync(hook, `touch ${sync}/started\nwhile [ ! -e ${sync}/go ]; do sleep 0.05; done\n`);
    const b = bundle(['sleep', '1000'], (s) => void (s.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', hook] }] }));
    const d = await daemon(root);
    const cli = startCordon(root, ['create', '-b', b.dir, 'cg-1'], { timeoutMs: 30_000 });
    await waitFor('the hook to run', () => existsSync(join(sync, 'started')), 15_000);
    cli.child.kill('SIGKILL');
    expect((await cli.done).signal).toBe('SIGKILL');
    writeFileSync(join(sync, 'go'), '');
    await waitFor('the daemon to delete it again', () => readFileSync(d.stderrFile, 'utf8').includes('control socket: create cg-1: the caller hung up before the answer; the container is deleted again') && actions(root, 'cg-1').includes('destroy'), 15_000);
    expect(actions(root, 'cg-1')).toEqual(['hook', 'create', 'kill', 'exit', 'destroy']);
    expect((await cordon(root, ['list', '-q'])).stdout).toBe('');
    expect(leftBehind(b, root, 'cg-1')).toEqual([]);
    d.child.kill('SIGTERM');
    expect((await d.done).code).toBe(0);
  });
});
