/**
 * Crash anywhere, lose nothing: a `cordon` verb killed (SIGKILL, CORDON_CRASH_AT) or failed (CORDON_FAIL_AT)
 * at each named step of create, start, pause, resume, kill, delete, exec and update. After each, the next
 * cordon process (`list`) must find the log and the kernel agreeing — every live container listed with the
 * log's state, its init alive and frozen exactly when paused; nothing left of one the log does not have; no
 * intent left over — and the id must be reusable. Also the races the issue found: two CLIs pausing and
 * resuming the same containers, and `cordon create` SIGKILLed at random moments.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerHost } from '../../actors/container-host.js';
import { reapZombieChild } from '../../kernel/index.js';
import { VERB_CRASH_POINTS as CRASH_POINTS, type CrashPoint } from '../../actors/crash-points.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { destroyAll } from '../fixtures/containers.js';
import { cgroupDirsOf, checkInvariants, leftoverIntents, pidsIn } from '../fixtures/invariants.js';
import { until } from '../fixtures/wait.js';
import { cordon, removeIoDir, startCordon, theFailure } from '../cli/helpers.js';

let sleeper: Bundle;
const roots: string[] = [];

beforeAll(() => {
  sleeper = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '100000']) });
});

afterAll(async () => {
  for (const r of roots) {
    await destroyAll(r).catch(() => {});
    rmSync(r, { recursive: true, force: true });
  }
  sleeper?.cleanup();
  removeIoDir();
});

function freshRoot(): string {
  const r = mkdtempSync('/tmp/cordon-it-crash-');
  roots.push(r);
  return r;
}

type Pre = 'none' | 'created' | 'running' | 'paused' | 'checkpointed';
const VERBS: Record<string, { pre: Pre; args: (id: string) => string[] }> = {
  create: { pre: 'none', args: (id) => ['create', '-b', '@B', id] },
  start: { pre: 'created', args: (id) => ['start', id] },
  pause: { pre: 'running', args: (id) => ['pause', id] },
  resume: { pre: 'paused', args: (id) => ['resume', id] },
  kill: { pre: 'running', args: (id) => ['kill', id, 'KILL'] },
  delete: { pre: 'running', args: (id) => ['delete', '--force', id] },
  exec: { pre: 'running', args: (id) => ['exec', id, 'true'] },
  update: { pre: 'running', args: (id) => ['update', '--pids-limit', '77', id] },
  // CRIU needs the container's stdio to be pipes (a host file outside its mounts cannot be dumped): run with pipes.
  checkpoint: { pre: 'running', args: (id) => ['checkpoint', '--image-path', images(id), id] },
  restore: { pre: 'checkpointed', args: (id) => ['restore', '-d', '--image-path', images(id), id] },
};

const images = (id: string) => join('/tmp', `cordon-it-crash-images-${id}`);

async function ok(root: string, args: string[], opts: { stdin?: 'pipe' } = {}): Promise<void> {
  const r = await cordon(root, args, opts.stdin ? { pipes: true } : {});
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** Bring container `id` to `pre` through the CLI. */
async function prepare(root: string, id: string, pre: Pre): Promise<void> {
  if (pre === 'none') return;
  await ok(root, ['create', '-b', sleeper.dir, id], { stdin: 'pipe' });
  if (pre === 'created') return;
  await ok(root, ['start', id]);
  if (pre === 'paused') await ok(root, ['pause', id]);
  if (pre === 'checkpointed') await ok(root, ['checkpoint', '--image-path', images(id), id]);
}

/** After a crash or failure: the invariants hold, and the id can be deleted and made again. */
async function afterwards(root: string, id: string, what: string): Promise<void> {
  expect(await checkInvariants(root, [id]), what).toEqual([]);
  await ok(root, ['delete', '--force', id]);
  await ok(root, ['create', '-b', sleeper.dir, id]);
  await ok(root, ['delete', '--force', id]);
  expect(cgroupDirsOf(id), what).toEqual([]);
  expect(await checkInvariants(root, [id]), what).toEqual([]);
}

describe('every crash point of every verb', () => {
  it('has a verb that reaches it', () => {
    for (const p of CRASH_POINTS) expect(Object.keys(VERBS), p).toContain(p.split(':')[0]);
  });

  it.each(CRASH_POINTS.map((p) => [p]))('SIGKILL at %s: the next process finds the log and the kernel agreeing, the id reusable', async (point: CrashPoint) => {
    const root = freshRoot();
    const verb = point.split(':')[0];
    const id = `c-${point.replace(':', '-')}`;
    const v = VERBS[verb];
    await prepare(root, id, v.pre);
    const args = v.args(id).map((a) => (a === '@B' ? sleeper.dir : a));
    const r = await cordon(root, args, { env: { CORDON_CRASH_AT: point } });
    // Killed there: the step was reached (a test that passed without crashing would test nothing).
    expect(r.signal, `${point}: ${r.stderr}`).toBe('SIGKILL');
    expect(r.stderr).toContain(`crash point ${point}`);
    await afterwards(root, id, point);
  });

  it.each(CRASH_POINTS.map((p) => [p]))('injected failure at %s: the verb fails visibly and the log and the kernel agree', async (point: CrashPoint) => {
    const root = freshRoot();
    const verb = point.split(':')[0];
    const id = `f-${point.replace(':', '-')}`;
    const v = VERBS[verb];
    await prepare(root, id, v.pre);
    const args = v.args(id).map((a) => (a === '@B' ? sleeper.dir : a));
    const r = await cordon(root, args, { env: { CORDON_FAIL_AT: point } });
    expect(r.code, `${point}: ${r.stderr}`).toBe(1);
    expect(theFailure(r).message).toContain(`injected failure at ${point}`);
    await afterwards(root, id, point);
  });
});

describe('races the lock closes', () => {
  it('two CLIs pausing and resuming the same containers: every verb succeeds or is refused by the machine, and the freezer always agrees with the log', async () => {
    const root = freshRoot();
    const ids = ['race-1', 'race-2', 'race-3', 'race-4'];
    for (const id of ids) await prepare(root, id, 'running');
    const loop = async (first: 'pause' | 'resume') => {
      const codes: string[] = [];
      for (let round = 0; round < 6; round++) {
        for (const id of ids) {
          const verb = (round % 2 === 0) === (first === 'pause') ? 'pause' : 'resume';
          const r = await cordon(root, [verb, id]);
          if (r.code !== 0) codes.push(theFailure(r).code);
        }
      }
      return codes;
    };
    const [a, b] = await Promise.all([loop('pause'), loop('resume')]);
    // Refusals only ever say the container was already where the verb would take it.
    for (const c of [...a, ...b]) expect(['ContainerPaused', 'ContainerNotPaused']).toContain(c);
    expect(await checkInvariants(root, ids)).toEqual([]);
  });

  it('cordon create SIGKILLed at random moments: nothing leaks, every live container is listed, every id is reusable', async () => {
    const root = freshRoot();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = `killed-${i}`;
      ids.push(id);
      const c = startCordon(root, ['create', '-b', sleeper.dir, id]);
      const delay = 5 + ((i * 37) % 250);
      const t = setTimeout(() => c.child.kill('SIGKILL'), delay);
      await c.done.catch(() => undefined);
      clearTimeout(t);
    }
    expect(await checkInvariants(root, ids)).toEqual([]);
    for (const id of ids) {
      await ok(root, ['delete', '--force', id]);
      expect(pidsIn(cgroupDirsOf(id))).toEqual([]);
    }
    expect(await checkInvariants(root, ids)).toEqual([]);
  });

  it('a running daemon finishes a verb a CLI left midway by itself, without another verb touching the container', async () => {
    const root = freshRoot();
    const id = 'swept';
    await prepare(root, id, 'created');
    const daemon = startCordon(root, ['daemon'], { timeoutMs: 120_000 });
    try {
      await until(() => (existsSync(join(root, 'cordon.sock')) ? true : undefined), 20_000, 'the daemon socket');
      const r = await cordon(root, ['start', id], { env: { CORDON_CRASH_AT: 'start:recorded' } });
      expect(r.signal).toBe('SIGKILL');
      expect(leftoverIntents(root)).toEqual([id]);
      // The log says running; the daemon's sweep releases the init parked at its exec fifo.
      await until(() => (leftoverIntents(root).length === 0 && !existsSync(join(root, id, 'exec.fifo')) ? true : undefined), 15_000, 'the sweep');
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.done.catch(() => {});
    }
    expect(await checkInvariants(root, [id])).toEqual([]);
    await ok(root, ['delete', '--force', id]);
  });

  it('an init reaped by another waiter in this process (a reconcile) while its handle follows it: the handle still learns how it ended', async () => {
    const root = freshRoot();
    const h = await ContainerHost.open({ root, watch: 'own' });
    try {
      const c = await h.create('reaped', { bundle: sleeper.dir });
      const pid = c.init.pid;
      const start = BigInt(c.record.pidStartTime);
      process.kill(pid, 'SIGKILL');
      // Synchronously, so the handle's own poll callback cannot run first: wait for the zombie, then reap it here.
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 500 && !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'); i++) Atomics.wait(pause, 0, 0, 10);
      expect(reapZombieChild(pid, start)).toEqual({ code: null, signal: 9, core: false });
      const st = await Promise.race([c.init.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
      expect(st).toEqual({ code: null, signal: 9, core: false });
      await h.destroy('reaped', { force: true });
    } finally {
      await h.close();
    }
  });
});
